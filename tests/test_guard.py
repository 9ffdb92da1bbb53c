"""The guard: the model's output replaces a page only where the model was measured
to help; smooth pages and pages without the damage it removes come out as they
came in."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from ocr_denoise import Denoiser, RunOptions, denoise_folder, denoise_page, guard
from ocr_denoise.images import read_image, write_image
from train import synth


def u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def text(x_height: float, seed: int = 0, h: int = 400, w: int = 500) -> np.ndarray:
    page = synth.render_page(np.random.default_rng(seed), h, w, x_height=x_height,
                             family="serif", ink=0.1, margin=20)
    return u8(page.clean)


def rows_of(page: np.ndarray):
    return lambda a, b: page[a:b].astype(np.float32) / 255.0


@pytest.mark.parametrize("sigma", [5.0, 20.0, 40.0])
def test_noise_estimate_finds_the_noise_added_to_a_flat_page(sigma):
    rng = np.random.default_rng(1)
    page = np.clip(128 + rng.normal(0, sigma, (300, 400)), 0, 255).astype(np.uint8)
    assert guard.measure(rows_of(page), *page.shape).noise == pytest.approx(sigma, rel=0.1)
    flat = np.full((50, 60), 200, np.uint8)
    assert guard.measure(rows_of(flat), *flat.shape).noise == 0.0


@pytest.mark.parametrize("x_height", [6, 9, 14, 22])
def test_text_height_is_about_the_x_height(x_height):
    assert guard.text_height(text(x_height)) == pytest.approx(x_height, abs=2.5)


def test_no_text_height_without_enough_letters():
    assert guard.text_height(np.full((200, 200), 255, np.uint8)) is None


def test_large_pages_are_sampled_within_the_pixel_budget():
    bands = guard.bands(20_000, 1_000)
    assert sum(y1 - y0 for y0, y1 in bands) * 1_000 <= guard.SAMPLE_PIXELS
    assert len(bands) >= 2 and all(y1 - y0 == guard.BAND for y0, y1 in bands)
    # spread over the page, margins not preferred: the first band is not at the top
    assert bands[0][0] > 0 and bands[-1][1] < 20_000 and bands[-1][0] > 10_000
    assert guard.bands(100, 100) == [(0, 100)]
    assert len(guard.bands(9_921, 14_031)) == 2  # very wide: two bands, over the budget


def test_smooth_page_is_left_as_it_is_and_the_model_never_runs(lighten_model, monkeypatch):
    from ocr_denoise import pipeline

    page = np.full((60, 80), 120, np.uint8)
    ran = []
    real = pipeline.tile_infer_stitch
    monkeypatch.setattr(pipeline, "tile_infer_stitch", lambda *a: ran.append(1) or real(*a))
    d = Denoiser(lighten_model, device="cpu")
    np.testing.assert_array_equal(d.denoise(page), page)
    assert ran == []
    assert (d.denoise(page, guard=False) == 171).all()  # 120 + 0.2 * 255
    assert ran == [1]


def shaded(page: np.ndarray) -> np.ndarray:
    """``page`` under light falling off to the right: damage the model removes."""
    return (page * np.linspace(1.0, 0.6, page.shape[1])).astype(np.uint8)


def test_clean_page_is_left_as_it_is(lighten_model):
    page = text(16)
    assert not guard.before(guard.measure(rows_of(page), *page.shape)).apply
    np.testing.assert_array_equal(Denoiser(lighten_model, device="cpu").denoise(page), page)


def stats_of(page: np.ndarray) -> guard.PageStats:
    return guard.measure(rows_of(page), *page.shape)


def test_shaded_paper_is_a_stain_and_a_black_border_is_not():
    page = text(16)
    assert stats_of(shaded(page)).stain >= guard.STAIN
    assert guard.before(stats_of(shaded(page))).apply
    bordered = page.copy()
    bordered[:, :60] = 0  # a black scan border, and an inverted banner
    bordered[:50, 100:] = 10
    assert stats_of(bordered).stain < guard.STAIN


def test_grey_is_text_showing_through_not_the_edges_of_small_or_blurred_print():
    rng = np.random.default_rng(2)
    clean = synth.render_page(rng, 400, 500, x_height=16, ink=0.1, margin=20).clean
    through = u8(synth.bleed_through(clean, rng, 0.8))
    assert stats_of(through).grey >= guard.GREY
    for page in (text(6), u8(cv2.GaussianBlur(clean, (0, 0), 1.2))):
        assert stats_of(page).grey < guard.GREY


def test_grey_on_a_soft_page_is_the_blur_of_its_letters_not_damage(monkeypatch):
    rng = np.random.default_rng(2)
    clean = synth.render_page(rng, 400, 500, x_height=24, ink=0.1, margin=20).clean
    through = stats_of(u8(synth.bleed_through(clean, rng, 0.8)))  # sharp letters, grey behind
    blurred = u8(cv2.GaussianBlur(clean, (0, 0), 3.0)) + rng.normal(0, 0.6, clean.shape)
    soft = stats_of(np.clip(blurred, 0, 255).astype(np.uint8))  # a phone capture's blur
    monkeypatch.setattr(guard, "GREY_SHARP", 0.7)
    assert through.grey >= guard.GREY and through.detail >= guard.GREY_SHARP
    assert guard.before(through).apply and guard.before(through).rule == "grey"
    assert soft.grey >= guard.GREY and soft.detail < guard.GREY_SHARP
    assert not guard.before(soft).apply
    monkeypatch.setattr(guard, "GREY_SHARP", 0.0)  # guard-v3: the soft page went to the model
    assert guard.before(soft).apply


def test_fine_noise_is_grain_not_the_edges_of_tiny_print_nor_specks(monkeypatch):
    rng = np.random.default_rng(4)
    small = text(6)  # sharp 6-px serif: its hairlines read as noise to ``noise``
    grainy = np.clip(text(16) + rng.normal(0, 3, (400, 500)), 0, 255).astype(np.uint8)
    specks = u8(synth.salt_pepper(text(16) / 255.0, rng, 0.5))
    assert stats_of(small).fine_noise < 1.2 <= stats_of(grainy).fine_noise
    assert stats_of(specks).fine_noise < 1.2
    assert stats_of(specks).noise >= guard.NOISE  # specks: ``noise`` sees them
    assert guard.before(stats_of(specks)).apply
    # guard-v4: grain alone no longer sends a page to the model (on real scans it is
    # JPEG ringing and paper grain, which the model made read worse); guard-v3 did
    assert not guard.before(stats_of(grainy)).apply
    monkeypatch.setattr(guard, "FINE_NOISE", 1.2)
    assert guard.before(stats_of(grainy)).apply


def test_faint_ink_goes_to_the_model_and_dark_ink_does_not():
    faint = u8(0.9 * (1.0 - (1.0 - text(16) / 255.0) * 0.2))  # ink at 80% of the paper
    assert stats_of(faint).ink < guard.FAINT
    assert guard.before(stats_of(faint)).apply
    assert stats_of(text(16)).ink >= guard.FAINT


def test_faint_blurred_print_is_left_as_it_is_and_faint_sharp_print_is_not(monkeypatch):
    from train import scans

    sharp = stats_of(u8(0.9 * (1.0 - (1.0 - text(16) / 255.0) * 0.2)))
    assert guard.before(sharp).apply  # faint ink whose letters are still sharp
    copies = [stats_of(u8(scans.make("photocopy", np.random.default_rng(seed), 0.6)[1]))
              for seed in range(3)]
    for stats in copies:
        assert stats.ink < guard.FAINT and stats.grey >= guard.FAINT_BLUR
        assert not guard.before(stats).apply
    monkeypatch.setattr(guard, "FAINT_BLUR", float("inf"))  # guard-v2: the model ran
    assert all(guard.before(stats).apply for stats in copies)


def test_text_size_rule_takes_the_larger_of_the_inputs_and_outputs_heights(monkeypatch):
    stats = stats_of(shaded(text(16)))
    monkeypatch.setattr(guard, "MIN_TEXT", 9.0)
    assert not guard.after(stats, lambda: 6.0, lambda: 7.0).apply
    # fragments in the output do not make letters small that the input shows large
    assert guard.after(stats, lambda: 6.0, lambda: 15.0).apply
    assert guard.after(stats, lambda: 12.0, lambda: 1 / 0).apply  # input not measured
    monkeypatch.setattr(guard, "MIN_TEXT", 0.0)  # the rule off: nothing is measured
    assert guard.after(stats, lambda: 1 / 0, lambda: 1 / 0).apply


def test_small_text_rule_reaches_the_pipeline(lighten_model, monkeypatch):
    d = Denoiser(lighten_model, device="cpu")
    small, large = shaded(text(6)), shaded(text(16))
    monkeypatch.setattr(guard, "MIN_TEXT", 9.0)
    np.testing.assert_array_equal(d.denoise(small), small)
    assert (d.denoise(small, guard=False) != small).any()
    assert (d.denoise(large) != large).any()


def test_heavy_noise_is_cleaned_even_when_the_text_is_small(lighten_model):
    rng = np.random.default_rng(3)
    noisy = np.clip(text(6) + rng.normal(0, 40, (400, 500)), 0, 255).astype(np.uint8)
    assert guard.measure(rows_of(noisy), *noisy.shape).noise >= guard.NOISY
    assert (Denoiser(lighten_model, device="cpu").denoise(noisy) != noisy).any()


def test_passthrough_of_a_colour_page_is_its_grey_version(lighten_model):
    g = np.full((40, 50), 150, np.uint8)
    bgr = np.dstack([g, g, g])
    out = denoise_page(bgr, model=lighten_model, device="cpu")
    np.testing.assert_array_equal(out, g)


def test_shipped_model_leaves_small_clean_text_alone():
    small = text(6, seed=5)
    np.testing.assert_array_equal(denoise_page(small), small)
    assert (denoise_page(small, guard=False) != small).any()


def test_guard_setting_reaches_folder_runs_and_the_command_line(lighten_model, tmp_path):
    page = np.full((60, 80), 120, np.uint8)
    write_image(tmp_path / "in" / "p.png", page)
    on = denoise_folder(tmp_path / "in", tmp_path / "on", model=lighten_model, device="cpu")
    off = denoise_folder(tmp_path / "in", tmp_path / "off", device="cpu",
                         options=RunOptions(model=str(lighten_model), guard=False))
    assert on.ok and off.ok
    np.testing.assert_array_equal(read_image(tmp_path / "on" / "p.png"), page)
    assert (read_image(tmp_path / "off" / "p.png") == 171).all()
    subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(tmp_path / "in" / "p.png"),
                    "-o", str(tmp_path / "cli.png"), "--model", str(lighten_model),
                    "--no-guard", "-q"], check=True)
    assert (read_image(tmp_path / "cli.png") == 171).all()


@pytest.mark.parametrize("rule", [False, True])
def test_an_enlarged_page_goes_to_the_model_exactly_when_the_enlarged_rule_says(
        lighten_model, monkeypatch, rule):
    from ocr_denoise import rescale

    monkeypatch.setattr(guard, "ENLARGED", rule)
    page = text(12)  # clean print: no damage the model removes
    d = Denoiser(lighten_model, device="cpu")
    out = d.denoise(page, upscale=2)
    model = d.denoise(page, upscale=2, guard=False)
    assert out.shape == model.shape == (2 * page.shape[0], 2 * page.shape[1])
    # With the rule, the model's output (lightened ink); without, the enlargement alone.
    assert np.array_equal(out, model) == rule
    assert np.array_equal(out, rescale.enlarged(page, 2)) != rule
    # A page at its own size is not sent to the model by the rule.
    np.testing.assert_array_equal(d.denoise(page), page)
