"""Real tesseract on the bundled sample: denoising must lower the character error rate."""

from __future__ import annotations

import cv2
import pytest
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


def test_an_ocr_language_tesseract_lacks_is_refused_before_any_page(tmp_path, identity_model):
    from ocr_denoise import RunOptions, SettingsError, denoise_folder
    from ocr_denoise.ocr import available_languages

    have = available_languages()
    assert "eng" in have
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "one.png"), cv2.imread(str(REPO / "examples" / "sample_noisy.png")))
    with pytest.raises(SettingsError) as e:
        denoise_folder(src, tmp_path / "out", ocr=True, ocr_lang="eng+xyz",
                       model=identity_model)
    message = str(e.value)
    assert "tesseract has no xyz" in message and "tesseract-ocr-xyz" in message
    assert ", ".join(have) in message  # the languages it does have
    assert not (tmp_path / "out").exists()  # nothing was denoised nor written
    with pytest.raises(SettingsError, match="no xyz"):
        RunOptions(ocr=True, ocr_lang="xyz")
    assert RunOptions(ocr=True, ocr_lang="+".join(have)).ocr_lang == "+".join(have)
    assert RunOptions(ocr_lang="xyz").ocr_lang == "xyz"  # not checked without ocr


def test_check_ocr_checks_the_languages_where_it_runs():
    from ocr_denoise import SettingsError
    from ocr_denoise.work import check_ocr

    check_ocr()
    check_ocr("eng")
    with pytest.raises(SettingsError, match="tesseract has no xyz"):
        check_ocr("eng+xyz")
