"""The shipped model keeps letters as printed: clean text in, the same strokes out.

Rendered clean text at x-heights 8-30 px, through ``denoise_page`` with the guard off
(the model itself on every pixel): the output's ink share stays within a few percent
of the input's (an autoencoder that redraws letters bold, as v8 did, adds 10-40%),
and tesseract reads the output as well as the input (issue "A denoiser that helps
real pages", must-show 3). The residual candidate (``train.recipe.residual``) keeps
every case within 3.2% and reads each as well or better.
"""

from __future__ import annotations

import numpy as np
import pytest

from ocr_denoise import denoise_page
from ocr_denoise.ocr import cer, tesseract_text
from train import synth

pytest.importorskip("pytesseract")

#: The ink share may move by this fraction of itself (anti-aliased edges may sharpen).
INK_TOLERANCE = 0.05
#: Character error rate the output may add to the input's (a fraction: half a point).
CER_TOLERANCE = 0.005


def _clean_page(x_height: float, family: str, seed: int) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(seed)
    h = int(max(160, 9 * x_height))
    page = synth.render_page(rng, h, 640, x_height=x_height, family=family, ink=0.0,
                             margin=16)
    return np.round(page.clean * 255).astype(np.uint8), page.text


def _ink(img: np.ndarray) -> float:
    """Darkness summed over the page: the ink's share, grey edges counted in part."""
    return float((255.0 - img.astype(np.float64)).sum() / 255.0)


#: v8, the shipped autoencoder, redraws small letters bold (+21% and +9% ink on these):
#: strict, so the test fails once a model that keeps them ships and the mark must go.
V8_BOLD = pytest.mark.xfail(strict=True, reason="v8 redraws small letters bold (issue 33)")


@pytest.mark.parametrize("x_height,family", [
    pytest.param(8, "serif", marks=V8_BOLD), pytest.param(12, "sans", marks=V8_BOLD),
    (12, "mono"), (20, "serif"), (30, "sans")])
def test_clean_text_keeps_its_stroke_width_and_reads_as_well(x_height, family):
    page, text = _clean_page(x_height, family, seed=int(x_height) * 7 + len(family))
    out = denoise_page(page, guard=False)
    assert out.shape == page.shape and out.dtype == np.uint8
    ink_in, ink_out = _ink(page), _ink(out)
    assert abs(ink_out - ink_in) <= INK_TOLERANCE * ink_in, (ink_in, ink_out)
    before = cer(text, tesseract_text(page))
    after = cer(text, tesseract_text(out))
    assert after <= before + CER_TOLERANCE, (before, after)
