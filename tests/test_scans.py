"""train.scans: the kinds of page real scans have, as the OCR benchmark draws them, and
benchmarks/ocr_quality.py's use of them (pages of the old kinds unchanged, paired
differences per kind)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO

from ocr_denoise import guard
from train import scans, synth

sys.path.insert(0, str(REPO / "benchmarks"))
import ocr_quality  # noqa: E402


def u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", list(scans.KINDS))
def test_each_kind_draws_a_text_page_and_its_damage_the_same_way_for_a_seed(kind):
    a_page, a = scans.make(kind, np.random.default_rng(7), 0.6)
    b_page, b = scans.make(kind, np.random.default_rng(7), 0.6)
    np.testing.assert_array_equal(a, b)
    assert a_page.text == b_page.text and len(a_page.text.split()) > 20
    assert a.dtype == np.float32 and a.shape == a_page.clean.shape
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.abs(a - a_page.clean).mean() > 0.002  # damaged: not the clean page


def test_unknown_kind_is_named():
    with pytest.raises(KeyError, match="no_such"):
        scans.make("no_such", np.random.default_rng(0), 0.5)


def test_small_serif_print_is_5_to_8_px():
    for seed in range(3):
        page, _ = scans.make("small_serif", np.random.default_rng(seed), 0.5)
        height = guard.text_height(u8(page.clean))
        assert height is not None and 4 <= height <= 9


def test_enlarged_small_print_is_what_auto_upscale_enlarges_and_its_target_is_sharp():
    import cv2

    for seed in range(3):
        page, noisy = scans.make("enlarged", np.random.default_rng(seed), 0.5)
        h, w = noisy.shape
        scanned = cv2.resize(u8(noisy), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        small = guard.text_height(scanned)
        assert small is not None
        assert guard.upscale_factor(0.0, small) == 2  # upscale="auto" enlarges the scan
        big = guard.text_height(u8(page.clean))
        # (blur makes the scan's print measure taller than it is, so only the order
        # is certain)
        assert big is not None and big > small
        # Interpolated, not sharp: its edges are softer than the target's.
        edge = lambda x: np.abs(np.diff(x, axis=1)).max(axis=1).mean()  # noqa: E731
        assert edge(noisy) < 0.8 * edge(page.clean)
        # An 8-bit page, as the runtime's enlargement of an 8-bit scan is.
        levels = noisy * 255
        assert np.abs(levels - np.round(levels)).max() < 1e-3


def test_thermal_ink_is_light_grey_at_45_to_80_percent_of_the_paper():
    for seed in range(3):
        page, noisy = scans.make("thermal", np.random.default_rng(seed), 1.0)
        ink = page.clean < 0.2  # the cores of the letters
        paper = page.clean > 0.99
        ratio = np.median(noisy[ink]) / np.median(noisy[paper])
        assert 0.45 <= ratio <= 0.85, ratio
        assert 0.8 <= np.median(noisy[paper]) <= 0.96  # off-white


def test_form_has_rules_and_underlines_that_are_not_text():
    page = scans.render_form(np.random.default_rng(3))
    dark_rows = (page.clean < 0.5).mean(axis=1)
    assert (dark_rows > 0.5).sum() >= 3  # underlines run across most of the page
    assert all(":" in line for line in page.text.splitlines())  # label: value, no rules


def test_old_kinds_keep_their_pages_and_new_kinds_come_after_them():
    assert ocr_quality.KINDS[: len(synth.DAMAGES)] == list(synth.DAMAGES)
    ki = list(synth.DAMAGES).index("stains")
    page, rng = ocr_quality.val_page(ki, 2)
    old = synth.damage(page.clean, "stains", rng, float(rng.uniform(0.4, 1.0)))
    new_page, new = ocr_quality.kind_page("stains", 2)
    np.testing.assert_array_equal(old, new)
    assert new_page.text == page.text


def test_paired_differences_take_the_best_baseline_of_each_kind():
    per_page = {"k": {"damaged": [10.0, 20.0, 30.0], "denoised": [5.0, 10.0, 15.0],
                      "otsu": [4.0, 9.0, 14.0], "sauvola": [50.0, 50.0, 50.0]}}
    out = ocr_quality.paired_differences(per_page, ["damaged", "denoised", "otsu", "sauvola"])
    mean, lo, hi = out["k"]["vs_damaged"]
    assert mean == pytest.approx(-10.0) and lo <= mean <= hi
    assert out["k"]["vs_best_baseline"][3] == "otsu"
    assert out["k"]["vs_best_baseline"][0] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", list(scans.KINDS))
def test_each_kind_draws_a_training_size_page(kind):
    page, noisy = scans.make(kind, np.random.default_rng(1), 0.5, 256, 256)
    assert noisy.shape == page.clean.shape and noisy.shape[0] == 256
    assert noisy.shape[1] <= 256 and page.text


def test_training_draws_scan_kinds_only_when_asked():
    from train import data

    plain = data.synthetic_patches(400, np.random.default_rng(5), per_page=200)
    mixed = data.synthetic_patches(400, np.random.default_rng(5), per_page=200,
                                   scan_fraction=1.0)
    assert plain[0].shape == mixed[0].shape == (400, 28, 28)
    assert not np.array_equal(plain[0], mixed[0])
    # every page a scan kind: the inputs are what train.scans draws, not synth's
    rng = np.random.default_rng(5)
    rng.random()  # the scan_fraction draw
    kind = str(rng.choice(list(scans.KINDS)))
    _, first = scans.make(kind, rng, float(rng.uniform(0.3, 1.0)), 256, 256)
    x0 = mixed[0][:200]
    assert x0.min() >= first.min() - 1e-6 and x0.max() <= first.max() + 1e-6


def test_the_enlarged_columns_read_the_page_at_twice_its_size_only_when_asked(zero_enlarger):
    """``cubic2x`` and ``enlarged`` are asked for by name (never in the default table);
    with an untrained enlargement model both are the same cubic page, so they score the
    same on every page."""
    from ocr_denoise import Denoiser

    assert not set(ocr_quality.ENLARGED) & set(ocr_quality.METHODS)
    with pytest.raises(ValueError, match="cubic3x"):
        ocr_quality.check_methods(["cubic3x"])
    den = Denoiser(None, device="cpu", enlarger=str(zero_enlarger))
    r = ocr_quality.ocr_table(den, 1, 1, ["small_serif"], methods=["cubic2x", "enlarged"])
    assert r["methods"] == ["cubic2x", "enlarged"]
    cols = r["pages"]["small_serif"]
    assert cols["cubic2x"] == cols["enlarged"]
