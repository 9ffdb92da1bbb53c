"""Compare models page by page from ``ocr_quality.py --json`` files of the same pages.

    .venv/bin/python benchmarks/compare_ocr.py runs/v7-B20.json runs/X-B20.json [...]

For each file's ``denoised`` column: the mean CER per damage kind and over kinds,
the mean of the kinds' medians, and the mean with each kind's single worst page left
out; then, for every file after the first, how many pages it reads better and worse
than the first. Why: the means are dominated by a few pages that fail outright (one
Gaussian page at 83% CER is 4 of a 20-page kind's points), so two models' means
differ by more than their typical pages do; the median and the paired count show
whether a change helps most pages or moves a few. And the paired difference of
MEAN (the mean of the kinds' means) against the first file, with a 95% bootstrap
interval that resamples pages within each kind. Files must score the same pages:
same ``--seed`` and ``--pages`` (checked by page count per kind); ``--kinds``
compares only those kinds (default: the first file's).
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


def paired_mean_difference(ref: dict[str, list[float]], other: dict[str, list[float]],
                           n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """MEAN (mean over kinds of the kinds' mean CER) of ``other`` minus ``ref``'s, on
    the same pages, and its 95% percentile bootstrap interval: each resample draws
    each kind's pages with replacement, the same pages for both."""
    rng = np.random.default_rng(seed)
    diffs = {k: np.asarray(other[k], float) - np.asarray(ref[k], float) for k in ref}
    means = np.zeros(n)
    for d in diffs.values():
        means += d[rng.integers(0, len(d), (n, len(d)))].mean(axis=1)
    means /= len(diffs)
    point = float(np.mean([d.mean() for d in diffs.values()]))
    return point, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="ocr_quality.py --json outputs; the first is "
                                             "the reference")
    ap.add_argument("--kinds", default="", help="comma-separated kinds to compare")
    args = ap.parse_args(argv)
    runs = {f: load(f) for f in args.files}
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if kinds:
        missing = [(f, k) for f in args.files for k in kinds if k not in runs[f]]
        if missing:
            ap.error(f"--kinds: {missing[0][1]} is not in {missing[0][0]}")
        runs = {f: {k: run[k] for k in kinds} for f, run in runs.items()}
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
        mean, lo, hi = paired_mean_difference(ref, runs[f])
        print(f"  MEAN difference {mean:+.2f} [{lo:+.2f}, {hi:+.2f}] (95% bootstrap, "
              f"pages resampled within kinds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
