"""How many patches are blank paper, and what the model makes of them: the figures
behind ``tiling.DEFAULT_SKIP_WHITE``.

    .venv/bin/python benchmarks/white_patches.py                       # selection pages
    .venv/bin/python benchmarks/white_patches.py --seed 313372026 --split report

For each page the model runs on (``denoise_page``'s guard on; pages it leaves as
they are are counted, not measured), every patch the model is given is kept with
its output. For each threshold ``t`` a patch is "white" when its darkest pixel
(after flattening) is at least ``t``; the script prints the share of white
patches and the darkest grey level (0..255) the model wrote on any of them: how
far from white the skipped patches would have come out with the model. Then the
pages themselves with ``skip_white=t`` against ``skip_white=None`` (model on
every patch): how many pixels differ, and by how much at most, and the seconds
``denoise`` took for the group's pages with each setting (best of ``--repeat`` per
page, the two settings alternating, in one process: compare within a run).

Pages: ``ocr_quality.py``'s kinds (``--pages`` per kind, ``--seed``: its
``SELECT_SEED`` by default, the pages models and settings are chosen on), FUNSD
forms of ``real_scans.py``'s ``--split``, NoisyOffice's val pages and
``speed.py``'s letter page. Choose on the selection pages; report on the others.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from model_view import ModelView  # noqa: E402
from ocr_quality import DATA, KINDS, SELECT_SEED, kind_page  # noqa: E402
from real_scans import split_of  # noqa: E402
from speed import letter_page  # noqa: E402

from ocr_denoise import pipeline  # noqa: E402
from ocr_denoise.images import read_image  # noqa: E402
from ocr_denoise.session import Denoiser  # noqa: E402


class Recording(ModelView):
    """The pipeline's view of ``model`` (every patch to the model), keeping each
    patch's darkest pixel it is given and of the model's output for it."""

    def __init__(self, model: Denoiser) -> None:
        # One band at a time: each batch's inputs and outputs are appended as a pair.
        super().__init__(model, skip_white=None, workers=1)
        self.inputs: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []

    def denoise_patches(self, patches: np.ndarray,
                        context_windows: np.ndarray | None = None) -> np.ndarray:
        out = self.model.denoise_patches(patches, context_windows)
        self.inputs.append(patches.reshape(len(patches), -1).min(axis=1))
        self.outputs.append(out.reshape(len(out), -1).min(axis=1))
        return out


def pages(seed: int, per_kind: int, split: str, folders: bool = True):
    """(group, name, page array) for every page measured."""
    for kind in KINDS:
        for i in range(per_kind):
            yield kind, f"{kind} {i}", kind_page(kind, i, seed)[1]
    if not folders:
        return
    for f in sorted((DATA / "funsd-train" / "images").glob("*.png")):
        if split_of(f.stem) == split:
            yield "funsd", f.stem, read_image(f)
    for f in sorted((DATA / "noisyoffice" / "val" / "noisy").glob("*.png")):
        yield "noisyoffice", f.stem, read_image(f)
    yield "letter", "speed.py's letter page", letter_page()


def best_seconds(skipping: Denoiser, model: Denoiser, img: np.ndarray,
                 repeat: int) -> tuple[float, float]:
    """Best of ``repeat`` seconds of ``denoise(img)`` for each, in alternating order."""
    best = [float("inf"), float("inf")]
    for r in range(repeat):
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            d = (skipping, model)[i]
            t0 = time.perf_counter()
            d.denoise(img)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best[0], best[1]


def measure(thresholds: list[float], seed: int, per_kind: int, split: str,
            folders: bool = True, repeat: int = 3) -> dict:
    """Per group: pages, pages the guard left alone, patches, and per threshold the
    white share, the darkest model output on white patches and the page differences."""
    model = Denoiser(skip_white=None)
    skipping = {t: Denoiser(skip_white=t) for t in thresholds}
    for d in [model, *skipping.values()]:  # build every session before timing any
        d.denoise(np.full((64, 64), 128, np.uint8), guard=False)
    groups: dict[str, dict] = {}
    for group, _name, img in pages(seed, per_kind, split, folders):
        g = groups.setdefault(group, {"pages": 0, "left_alone": 0, "patches": 0, "by": {
            str(t): {"white": 0, "darkest_output": 255, "pixels_differ": 0,
                     "max_page_diff": 0, "seconds": 0.0, "model_seconds": 0.0}
            for t in thresholds}})
        g["pages"] += 1
        rec = Recording(model)
        full = pipeline.denoise(rec, img)
        if not rec.inputs:
            g["left_alone"] += 1
            continue
        lo = np.concatenate(rec.inputs)
        dark = np.round(np.concatenate(rec.outputs) * 255)
        g["patches"] += len(lo)
        for t in thresholds:
            b = g["by"][str(t)]
            white = lo >= t
            b["white"] += int(white.sum())
            if white.any():
                b["darkest_output"] = min(b["darkest_output"], int(dark[white].min()))
            diff = np.abs(skipping[t].denoise(img).astype(np.int16) - full)
            skip_s, model_s = best_seconds(skipping[t], model, img, repeat)
            b["seconds"] += skip_s
            b["model_seconds"] += model_s
            b["pixels_differ"] += int(np.count_nonzero(diff))
            b["max_page_diff"] = max(b["max_page_diff"], int(diff.max()))
    return groups


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--thresholds", default="0.9,0.95,0.97,1.0")
    ap.add_argument("--seed", type=int, default=SELECT_SEED,
                    help="ocr_quality's page seed (default: its selection seed)")
    ap.add_argument("--pages", type=int, default=5, help="pages per ocr_quality kind")
    ap.add_argument("--split", default="selection", choices=["selection", "report"],
                    help="FUNSD forms of this real_scans.py split")
    ap.add_argument("--no-folders", action="store_true",
                    help="only ocr_quality's generated pages (no FUNSD, NoisyOffice, letter)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timing: best of this many runs per page and setting")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    ts = [float(t) for t in args.thresholds.split(",")]
    res = measure(ts, args.seed, args.pages, args.split, not args.no_folders, args.repeat)
    print(f"seed {args.seed}, FUNSD {args.split}; white: darkest pixel >= t; "
          "darkest: the model's darkest output on white patches (0..255); "
          f"time: denoise's seconds with skip_white=t / with None (best of {args.repeat} "
          "per page, summed over the group's pages)")
    print(f"{'pages':14s} {'n':>3s} {'alone':>5s} {'patches':>7s}  "
          + "  ".join(f"t={t}: white darkest differ max  time" for t in ts))
    for group, g in res.items():
        cells = []
        for t in ts:
            b = g["by"][str(t)]
            share = 100 * b["white"] / g["patches"] if g["patches"] else 0.0
            darkest = b["darkest_output"] if b["white"] else "-"
            ratio = b["seconds"] / b["model_seconds"] if b["model_seconds"] else 1.0
            cells.append(f"{share:5.1f}% {darkest!s:>4s} {b['pixels_differ']:8d} "
                         f"{b['max_page_diff']:2d} {ratio:5.2f}")
        print(f"{group:14s} {g['pages']:3d} {g['left_alone']:5d} {g['patches']:7d}  "
              + "  ".join(f"{c:>34s}" for c in cells))
    if args.json:
        Path(args.json).write_text(json.dumps({"seed": args.seed, "split": args.split,
                                               "groups": res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
