"""Regenerate the bundled sample page: ``python examples/make_sample.py``.

Writes ``sample_noisy.png`` (what a user would scan), ``sample_clean.png`` and
``sample_text.txt`` (the true text) next to this file. Seeded: rerunning gives
the same files on the same fonts and Python version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from train import synth  # noqa: E402

SEED = 20261125


def main() -> None:
    rng = np.random.default_rng(SEED)
    page = synth.render_page(rng, 700, 1000, x_height=15, family="serif", ink=0.1, margin=40)
    x = page.clean
    x = synth.damage(x, "stains", rng, 0.8)
    x = synth.damage(x, "crumple", rng, 0.5)
    x = synth.damage(x, "gaussian", rng, 0.6)
    x = synth.damage(x, "salt_pepper", rng, 0.3)
    x = synth.damage(x, "blur_jpeg", rng, 0.3)
    cv2.imwrite(str(HERE / "sample_noisy.png"), np.round(x * 255).astype(np.uint8))
    cv2.imwrite(str(HERE / "sample_clean.png"), np.round(page.clean * 255).astype(np.uint8))
    (HERE / "sample_text.txt").write_text(page.text + "\n")
    print(f"wrote sample page {x.shape[1]}x{x.shape[0]} with {len(page.text)} characters")


if __name__ == "__main__":
    main()
