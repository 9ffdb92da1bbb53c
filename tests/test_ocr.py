"""Real tesseract on the bundled sample: denoising must lower the character error rate."""

from __future__ import annotations

import cv2
from helpers import REPO

from ocr_denoise import denoise_page
from ocr_denoise.ocr import cer, levenshtein, tesseract_text


def test_cer_counts_edits_and_folds_whitespace():
    assert cer("abc def", "abc\n def") == 0.0
    assert cer("abcd", "abxd") == 0.25
    assert levenshtein("kitten", "sitting") == 3


def test_sample_page_reads_better_after_denoising():
    ex = REPO / "examples"
    truth = (ex / "sample_text.txt").read_text()
    noisy = cv2.imread(str(ex / "sample_noisy.png"), cv2.IMREAD_GRAYSCALE)
    before = cer(truth, tesseract_text(noisy))
    after = cer(truth, tesseract_text(denoise_page(noisy)))
    print(f"sample CER noisy {before:.3f} -> denoised {after:.3f}")
    assert after < before
