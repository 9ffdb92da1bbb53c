"""Whether a model keeps letters as printed: clean text in, the same strokes out.

    .venv/bin/python benchmarks/strokes.py                       # the shipped model
    .venv/bin/python benchmarks/strokes.py --model runs/X.onnx   # a candidate

Rendered clean text at x-heights 8-30 px (serif, sans, mono), through
``denoise_page`` with the guard off (the model itself on every pixel): for each
page, how much the ink share moved (an autoencoder that redraws letters bold, as v8
does, adds 10-40%) and tesseract's CER on the page and on the output. The pages are
``tests/test_strokes.py``'s, which asserts on them for the shipped model (issue "A
denoiser that helps real pages", must-show 3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train import synth  # noqa: E402

#: (x-height px, font family) of the pages.
CASES = [(8, "serif"), (12, "sans"), (12, "mono"), (20, "serif"), (30, "sans")]


def clean_page(x_height: float, family: str, seed: int) -> tuple[np.ndarray, str]:
    """A clean rendered page (uint8, white = 255) of ``family`` text at ``x_height``,
    and its text."""
    rng = np.random.default_rng(seed)
    h = int(max(160, 9 * x_height))
    page = synth.render_page(rng, h, 640, x_height=x_height, family=family, ink=0.0,
                             margin=16)
    return np.round(page.clean * 255).astype(np.uint8), page.text


def seed_of(x_height: float, family: str) -> int:
    return int(x_height) * 7 + len(family)


def ink(img: np.ndarray) -> float:
    """Darkness summed over the page: the ink's share, grey edges counted in part."""
    return float((255.0 - img.astype(np.float64)).sum() / 255.0)


def main(argv: list[str] | None = None) -> int:
    from ocr_denoise import Denoiser, denoise_page
    from ocr_denoise.ocr import cer, tesseract_text

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    args = ap.parse_args(argv)
    d = Denoiser(args.model, device="cpu", light=None)
    print(f"model: {d.model_path}\n")
    print("| x-height | font | ink moved | CER in | CER out |\n|---:|---|---:|---:|---:|")
    for x_height, family in CASES:
        page, text = clean_page(x_height, family, seed_of(x_height, family))
        out = denoise_page(page, denoiser=d, guard=False)
        a, b = ink(page), ink(out)
        print(f"| {x_height} | {family} | {100 * (b - a) / a:+.2f}% | "
              f"{100 * cer(text, tesseract_text(page)):.2f} | "
              f"{100 * cer(text, tesseract_text(out)):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
