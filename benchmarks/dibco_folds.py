"""DIBCO figures for a model that has seen DIBCO: leave one year out.

The shipped model's second stage trains on DIBCO (``train/recipe.py``), which is also
the evaluation set, so its own DIBCO scores would flatter it. This script reruns that
stage five times from the same stage-1 checkpoint, each time without one year, and
scores each run only on the year it did not see: Kaggle-style honest figures for
the recipe, over the same 2009-2013 images as ``ocr_quality.py``'s DIBCO table.

    .venv/bin/python benchmarks/dibco_folds.py --init runs/v6/base/model.keras --out runs/v6-folds
    .venv/bin/python benchmarks/dibco_folds.py --out runs/v6-folds --no-train   # score again
    .venv/bin/python benchmarks/dibco_folds.py --init CKPT --out runs/cand-folds \
        --stage2-args='--scan-fraction 0.25'       # a candidate: stage 2 with these flags

Each fold takes ~7 minutes on 2 cores (train ~5, export, score).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from ocr_quality import dibco_scores  # noqa: E402

from ocr_denoise import Denoiser  # noqa: E402
from train.recipe import DIBCO_YEARS  # noqa: E402


def train_fold(init: str, out: Path, year: str, stage2_args: str = "") -> None:
    py = sys.executable
    subprocess.run([py, "-m", "train", "recipe", "--out", str(out), "--init", init,
                    "--hold-out", year, "--stage2-args", stage2_args, "--quiet"],
                   cwd=REPO, check=True)
    subprocess.run([py, "-m", "train", "export", str(out), "--output", str(out / "model.onnx")],
                   cwd=REPO, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the runs OUT/hold-YEAR")
    ap.add_argument("--init", help="stage-1 checkpoint (.keras) every fold starts from")
    ap.add_argument("--years", nargs="*", default=list(DIBCO_YEARS))
    ap.add_argument("--stage2-args", default="",
                    help="a candidate recipe: these fit flags override stage 2's, e.g. "
                    "--stage2-args='--scan-fraction 0.25'")
    ap.add_argument("--no-train", action="store_true", help="score the runs already in OUT")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    if not args.no_train and not args.init:
        ap.error("--init is required unless --no-train")
    out = Path(args.out)
    t0 = time.time()
    folds: dict[str, dict] = {}
    for year in args.years:
        run = out / f"hold-{year}"
        if not args.no_train:
            train_fold(args.init, run, year, args.stage2_args)
        folds[year] = dibco_scores(Denoiser(run / "model.onnx", device="cpu"), [year])
        r = folds[year]
        print(f"{year}: {r['denoised']['n']} images, denoised {r['denoised']['psnr']:.2f} dB, "
              f"sauvola {r['sauvola']['psnr']:.2f} dB", flush=True)
    methods = list(next(iter(folds.values())))
    n_all = sum(folds[y][methods[0]]["n"] for y in folds)
    pooled = {m: {k: sum(folds[y][m][k] * folds[y][m]["n"] for y in folds) / n_all
                  for k in ("psnr", "f")} for m in methods}
    print(f"\n## DIBCO, each year scored by the fold that did not train on it ({n_all} images)\n")
    print("| method | " + " | ".join(folds) + " | all: PSNR dB | F-measure % |")
    print("|---|" + "---:|" * (len(folds) + 2))
    for m in methods:
        cells = " | ".join(f"{folds[y][m]['psnr']:.2f}" for y in folds)
        print(f"| {m} | {cells} | {pooled[m]['psnr']:.2f} | {pooled[m]['f']:.1f} |")
    gain = pooled["denoised"]["psnr"] - pooled["sauvola"]["psnr"]
    print(f"\ndenoised - sauvola: {gain:+.2f} dB   ({time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"folds": folds, "pooled": pooled, "n": n_all},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
