"""benchmarks/pages_needed.py: how often a "not worse" bar fails on random subsets."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import pages_needed  # noqa: E402


def heavy_tailed(n: int = 120) -> np.ndarray:
    """A model that helps most pages by a point and ruins one in twenty by six."""
    d = np.full(n, -1.0)
    d[::20] = 6.0
    return d


def test_a_uniform_gain_never_fails_the_bar():
    assert pages_needed.failure_share(np.full(60, -1.0), 20, 0.2, draws=50) == 0.0


def test_rare_bad_pages_fail_small_subsets_more_often_than_large_ones():
    d = heavy_tailed()
    small = pages_needed.failure_share(d, 20, 0.2, draws=100)
    large = pages_needed.failure_share(d, 60, 0.2, draws=100)
    assert small > large
    assert small > 0.1  # a real risk at 20 pages


def test_a_size_beyond_the_file_is_refused():
    with pytest.raises(ValueError, match="1..10"):
        pages_needed.failure_share(np.zeros(10), 11, 0.2, draws=5)


def test_the_command_reads_a_json_file_and_names_a_missing_kind(tmp_path, capsys):
    d = heavy_tailed(40)
    path = tmp_path / "sel.json"
    path.write_text(json.dumps({"ocr": {"pages": {"thermal": {
        "damaged": [5.0] * 40, "denoised": list(5.0 + d)}}}}))
    assert pages_needed.main([str(path), "--kind", "thermal", "--sizes", "20,40",
                              "--draws", "20"]) == 0
    out = capsys.readouterr().out
    assert "thermal, 40 pages" in out and "20 pages: upper end" in out
    with pytest.raises(SystemExit):
        pages_needed.main([str(path), "--kind", "fax"])
    assert "fax is not in" in capsys.readouterr().err
