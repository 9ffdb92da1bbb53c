"""A short kill soak (``benchmarks/kill_soak.py``, which runs 24 kills over 300 pages):
``kill -9`` of a ``--jobs 2`` run at random moments, of the whole process group or of
the main process alone, each followed by a rerun; nothing may be lost, partial or
left behind, and every output is byte-identical to an uninterrupted run."""

from __future__ import annotations

import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import kill_soak  # noqa: E402


def test_random_kills_then_a_rerun_lose_nothing_and_leave_nothing(tmp_path):
    lines: list[str] = []
    r = kill_soak.soak(tmp_path, pages=100, size=32, kills=6, seed=1, timeout=600,
                    log=lines.append)
    # The soak stops killing once every page is done; a fast machine may finish the
    # 100 pages before the sixth kill (a CI run did at 60 pages after five).
    assert r.kills >= 4, "\n".join(lines)
    assert r.kills_group and r.kills_main_only, "\n".join(lines)
    assert r.ok, (r, "\n".join(lines))
    assert r.reruns_to_finish == 1  # one rerun finishes whatever the kills left
