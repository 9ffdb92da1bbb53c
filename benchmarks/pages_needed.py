"""How many pages per kind does a "not worse" verdict need? Read off selection pages.

    .venv/bin/python benchmarks/pages_needed.py runs/sel/v8g3-thermal120.json --kind thermal
    .venv/bin/python benchmarks/pages_needed.py J.json --kind thermal --sizes 20,40,60 --bar 0.2

The bar of issue "Real scans" for a kind: the paired difference (denoised minus
``--against``, points of CER) has a 95% bootstrap interval whose upper end is at
most ``--bar``. On a kind whose per-page differences are heavy-tailed (one page in
twenty that tesseract reads 6 points worse for reasons a page away from the clean
one's, an ASCII table, say), that bar fails at 20 pages for a model that helps on
most pages. This script takes an ``ocr_quality.py --json`` file of many selection
pages (``--seed 42422026 --pages 120``), draws ``--draws`` random subsets of each
size without replacement, and prints how often the bar fails on a subset: a page
count at which a model measured as helping on the whole set still fails often is
too small to judge that kind. Choose the page count here, on selection pages,
before the report pages are run; drawing without replacement from a finite set
flatters sizes near the set's own (use a set at least twice the largest size).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from real_scans import bootstrap  # noqa: E402


def failure_share(diffs: np.ndarray, size: int, bar: float, draws: int,
                  seed: int = 0) -> float:
    """Share of ``draws`` random ``size``-page subsets of ``diffs`` (per-page
    differences, points) whose 95% bootstrap interval's upper end exceeds ``bar``."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if not 1 <= size <= len(diffs):
        raise ValueError(f"size must be in 1..{len(diffs)} (the pages in the file), got {size}")
    rng = np.random.default_rng(seed)
    fails = 0
    for i in range(draws):
        sub = diffs[rng.choice(len(diffs), size, replace=False)]
        fails += bootstrap(sub, n=2_000, seed=i)[2] > bar
    return fails / draws


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", help="ocr_quality.py --json output (many pages of one seed)")
    ap.add_argument("--kind", required=True)
    ap.add_argument("--against", default="damaged", help="column the denoised page is "
                                                         "compared with")
    ap.add_argument("--sizes", default="20,40,60")
    ap.add_argument("--bar", type=float, default=0.2, help="largest upper end allowed")
    ap.add_argument("--draws", type=int, default=200)
    args = ap.parse_args(argv)
    pages = json.loads(Path(args.file).read_text())["ocr"]["pages"]
    if args.kind not in pages:
        ap.error(f"--kind {args.kind} is not in {args.file} (it has {', '.join(pages)})")
    cols = pages[args.kind]
    for col in ("denoised", args.against):
        if col not in cols:
            ap.error(f"{args.file} has no {col!r} column for {args.kind}")
    diffs = np.asarray(cols["denoised"], float) - np.asarray(cols[args.against], float)
    mean, lo, hi = bootstrap(diffs)
    print(f"{args.kind}, {len(diffs)} pages: denoised vs {args.against} "
          f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    for size in (int(s) for s in args.sizes.split(",")):
        try:
            share = failure_share(diffs, size, args.bar, args.draws)
        except ValueError as e:
            ap.error(str(e))
        print(f"{size:4d} pages: upper end above {args.bar:+.1f} in {100 * share:.0f}% "
              f"of {args.draws} random subsets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
