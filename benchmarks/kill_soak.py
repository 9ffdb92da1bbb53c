"""Kill soak: ``kill -9`` an ``ocr-denoise IN -o OUT --jobs 2`` run at random moments,
run it again each time, and check that nothing is ever lost, partial or left behind.

Generates a folder of small pages (seeded), makes the reference with one
uninterrupted run, then, round after round, starts the same command on a second
output folder and SIGKILLs it at a random moment: half of the rounds the whole
process group (the main process and its workers at once, as a terminal's
``kill -9 -PGID`` or an OOM kill of the container), the other half only the main
process (its workers notice and exit on their own, still holding their files for a
moment, so the next run meets live claims). A round's kill lands either while the
run starts up (libraries, model, worker processes) or at a random moment after it wrote
its first few new pages. After every kill, each file under a final name must be
byte-identical to the reference (never partial). When the rounds are spent, the
command is run again until it exits 0, and then:

- 0 lost: every input has its output;
- 0 partial: every output byte-identical to the uninterrupted run;
- 0 stray: no temporary (``.NAME.PID.RANDOM-KERNEL.tmp``) and no claim
  (``.NAME.ocr-claim``) left in the output folder.

    .venv/bin/python benchmarks/kill_soak.py                   # 300 pages, 24 kills
    .venv/bin/python benchmarks/kill_soak.py --pages 60 --kills 6 --seed 3

Exit status 0 when every check holds, 1 otherwise. ``tests/test_kill_soak.py`` runs
a short version of it in the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CMD = [sys.executable, "-m", "ocr_denoise.cli"]


def make_pages(folder: Path, n: int, size: int, seed: int) -> None:
    """``n`` grey ``size`` x ``size`` pages: dark strokes on light paper, speckle."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        page = np.full((size, size), 230, np.uint8)
        for _ in range(max(1, size // 16)):
            x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, 4))
            cv2.line(page, (x0, y0), (x1, y1), int(rng.integers(0, 90)), 2)
        speckle = rng.random((size, size)) < 0.02
        page[speckle] = rng.integers(0, 256, int(speckle.sum()), dtype=np.uint8)
        cv2.imwrite(str(folder / f"page{i:04d}.png"), page)


def outputs(folder: Path) -> dict[str, bytes]:
    """Files under final names (not hidden) and their bytes."""
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if not p.name.startswith(".")}


def strays(folder: Path) -> list[str]:
    """Hidden files (temporaries, claims) in the output folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) \
        if folder.exists() else []


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    out = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


@dataclass
class Soak:
    kills: int = 0  # rounds killed while the run was still going
    kills_group: int = 0
    kills_main_only: int = 0
    kills_in_startup: int = 0
    rounds_finished_first: int = 0  # the run ended before its kill
    reruns_to_finish: int = 0
    partial_seen: list[str] = field(default_factory=list)  # final names with wrong bytes
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.partial_seen or self.lost or self.wrong or self.stray)


def soak(work: Path, *, pages: int = 300, size: int = 48, kills: int = 24, seed: int = 0,
         jobs: int = 2, extra: tuple[str, ...] = (), timeout: float = 1800,
         log=print) -> Soak:
    """Run the soak in ``work`` (created); returns what it found."""
    t0 = time.monotonic()
    rnd = random.Random(seed)
    src, ref, out = work / "in", work / "reference", work / "out"
    make_pages(src, pages, size, seed)
    args = [str(src), "-o", None, "--jobs", str(jobs), "-q", *extra]

    def command(folder: Path) -> list[str]:
        return [*CMD, *[str(folder) if a is None else a for a in args]]

    r = subprocess.run(command(ref), cwd=REPO, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"the reference run failed: {r.stderr}")
    reference = outputs(ref)
    assert len(reference) == pages, f"reference has {len(reference)} of {pages} outputs"
    result = Soak()
    deadline = time.monotonic() + timeout

    while result.kills < kills and time.monotonic() < deadline:
        before = len(outputs(out))
        if before == pages:
            break  # all done before enough kills: more pages needed
        proc = subprocess.Popen(command(out), cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        in_startup = rnd.random() < 0.3
        if in_startup:  # at a random moment of its start-up (before its first page)
            end = time.monotonic() + rnd.uniform(0.0, 1.5)
            while (proc.poll() is None and time.monotonic() < end
                   and len(outputs(out)) == before):
                time.sleep(0.005)
        else:  # a random moment after its k-th new page: files are in flight
            k = rnd.randint(1, 6)
            while proc.poll() is None and len(outputs(out)) < before + k:
                time.sleep(0.005)
            time.sleep(rnd.uniform(0.0, 0.05))
        group = rnd.random() < 0.5
        if proc.poll() is not None:
            result.rounds_finished_first += 1
            continue
        workers = _children(proc.pid)
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        result.kills += 1
        result.kills_group += group
        result.kills_main_only += not group
        result.kills_in_startup += in_startup
        now = outputs(out)
        bad = [n for n, data in now.items() if reference.get(n) != data]
        result.partial_seen += bad
        log(f"kill {result.kills:2d}: {'group' if group else 'main '} "
            f"{'startup' if in_startup else 'working'}, {len(now) - before:4d} new, "
            f"{len(now):4d}/{pages} done, {len(strays(out))} hidden file(s) left by it"
            + (f", NOT IDENTICAL: {bad}" if bad else ""))
        if not group:  # orphaned workers exit on their own within a second
            end = time.monotonic() + 30
            while any(alive(w) for w in workers) and time.monotonic() < end:
                time.sleep(0.05)

    for _ in range(10):  # run again until it finishes
        result.reruns_to_finish += 1
        r = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode == 0:
            break
        log(f"rerun exited {r.returncode}: {r.stderr[-500:]}")
    final = outputs(out)
    result.lost = sorted(set(reference) - set(final))
    result.wrong = sorted(n for n in final if final[n] != reference.get(n))
    result.stray = strays(out)
    result.seconds = time.monotonic() - t0
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--size", type=int, default=48, help="page side in pixels")
    ap.add_argument("--kills", type=int, default=24, help="kills that land mid-run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where to put the pages and outputs (default: a temporary folder)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kill_soak-") as tmp:
        work = a.workdir or Path(tmp)
        r = soak(work, pages=a.pages, size=a.size, kills=a.kills, seed=a.seed, jobs=a.jobs)
    print(f"\n{r.kills} kills mid-run ({r.kills_group} whole group, {r.kills_main_only} main "
          f"process only; {r.kills_in_startup} during start-up), {r.rounds_finished_first} "
          f"round(s) ended before their kill, {r.reruns_to_finish} rerun(s) to finish, "
          f"{r.seconds:.0f} s")
    print(f"lost {len(r.lost)}, partial or wrong {len(r.partial_seen) + len(r.wrong)}, "
          f"stray hidden files {len(r.stray)}" + ("" if r.ok else f": {r.lost} {r.partial_seen}"
                                                  f" {r.wrong} {r.stray}"))
    print("OK" if r.ok else "FAILED")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
