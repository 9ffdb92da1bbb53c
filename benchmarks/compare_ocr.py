"""Compare models page by page from ``ocr_quality.py --json`` files of the same pages.

    .venv/bin/python benchmarks/compare_ocr.py runs/v7-B20.json runs/X-B20.json [...]

For each file's ``denoised`` column: the mean CER per damage kind and over kinds,
the mean of the kinds' medians, and the mean with each kind's single worst page left
out; then, for every file after the first, how many pages it reads better and worse
than the first. Why: the means are dominated by a few pages that fail outright (one
Gaussian page at 83% CER is 4 of a 20-page kind's points), so two models' means
differ by more than their typical pages do; the median and the paired count show
whether a change helps most pages or moves a few. Files must score the same pages:
same ``--seed``, ``--pages`` and ``--kinds`` (checked by page count per kind).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def load(path: str) -> dict[str, list[float]]:
    """kind -> per-page CERs (%) of the ``denoised`` column."""
    pages = json.loads(Path(path).read_text())["ocr"]["pages"]
    return {kind: cols["denoised"] for kind, cols in pages.items()}


def summary(per_kind: dict[str, list[float]]) -> dict[str, float]:
    return {"mean": float(np.mean([np.mean(v) for v in per_kind.values()])),
            "median": float(np.mean([np.median(v) for v in per_kind.values()])),
            "no_worst": float(np.mean([np.mean(sorted(v)[:-1]) for v in per_kind.values()]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="ocr_quality.py --json outputs; the first is "
                                             "the reference")
    args = ap.parse_args(argv)
    runs = {f: load(f) for f in args.files}
    ref_name, ref = args.files[0], runs[args.files[0]]
    for name, run in runs.items():
        shape = {k: len(v) for k, v in run.items()}
        if shape != {k: len(v) for k, v in ref.items()}:
            ap.error(f"{name} scores other pages than {ref_name}: {shape}")
    names = [Path(f).stem for f in args.files]
    print("| damage | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for kind in ref:
        print(f"| {kind} | " + " | ".join(f"{np.mean(runs[f][kind]):.1f}" for f in args.files)
              + " |")
    sums = {f: summary(runs[f]) for f in args.files}
    for key, label in (("mean", "MEAN"), ("median", "mean of medians"),
                       ("no_worst", "mean without each kind's worst page")):
        print(f"| {label} | " + " | ".join(f"{sums[f][key]:.2f}" for f in args.files) + " |")
    a = np.concatenate([ref[k] for k in ref])
    for f in args.files[1:]:
        b = np.concatenate([runs[f][k] for k in ref])
        print(f"{f} against {ref_name}: better on {int(np.sum(b < a))} pages, worse on "
              f"{int(np.sum(b > a))}, equal on {int(np.sum(b == a))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
