"""The light route (``Denoiser(light=...)``): a page the guard leaves for having no
damage goes to a second, light model where ``guard.light`` says so.

v8 erodes the letters of pages without heavy damage, so the guard does not run it
there; a residual model that starts as the identity does no harm on such pages and
may help archive pages. The models here are tiny real ONNX models run by
onnxruntime: ``lighten_model`` as the main model (ink lighter, white paper stays
255) and ``darken_model`` as the light one (every pixel 0.2 darker, so white paper
becomes 204): which of them ran shows in the page."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from ocr_denoise import Denoiser, denoise_page, guard
from ocr_denoise.errors import SettingsError, SettingsTypeError
from ocr_denoise.session import LIGHT_MODEL, light_arg
from train import synth


def u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def text(x_height: float, seed: int = 0, h: int = 300, w: int = 400) -> np.ndarray:
    return u8(synth.render_page(np.random.default_rng(seed), h, w, x_height=x_height,
                                family="serif", ink=0.1, margin=20).clean)


def stats_of(page: np.ndarray) -> guard.PageStats:
    return guard.measure(lambda a, b: page[a:b].astype(np.float32) / 255.0, *page.shape)


def darkened(page: np.ndarray) -> np.ndarray:
    """What ``darken_model`` makes of a page: every pixel 0.2 (51 levels) darker."""
    return np.clip(page.astype(int) - 51, 0, 255)


@pytest.fixture(scope="module")
def quiet() -> np.ndarray:
    """Clean serif prose, large letters, no noise: the guard leaves it (no-damage) and,
    under the current thresholds, it suits the light model."""
    page = text(22)
    stats = stats_of(page)
    assert guard.before(stats).rule == "no-damage"
    assert stats.noise < guard.LIGHT_MAX_NOISE and stats.detail >= guard.LIGHT_MIN_DETAIL, \
        "the quiet page no longer suits guard.light's thresholds: pick another page"
    assert guard.text_height(page) >= guard.LIGHT_MIN_TEXT
    return page


@pytest.fixture(scope="module")
def with_light(lighten_model, darken_model) -> Denoiser:
    return Denoiser(lighten_model, device="cpu", light=darken_model)


@pytest.fixture(scope="module")
def without_light(lighten_model) -> Denoiser:
    return Denoiser(lighten_model, device="cpu", light=None)


# -- guard.light -----------------------------------------------------------------------


def stats(noise: float, detail: float) -> guard.PageStats:
    return guard.PageStats(noise=noise, detail=detail, stain=0.0, fine_noise=0.0, grey=0.0,
                           ink=0.8)


def test_light_rule_takes_quiet_sharp_pages_of_large_text_and_says_the_values():
    ok = stats(guard.LIGHT_MAX_NOISE - 0.5, guard.LIGHT_MIN_DETAIL + 0.5)
    yes = guard.light(ok, lambda: guard.LIGHT_MIN_TEXT)
    assert (yes.apply, yes.rule) == (True, "light")
    assert f"text {guard.LIGHT_MIN_TEXT:.0f} px" in yes.reason
    no = guard.light(ok, lambda: guard.LIGHT_MIN_TEXT - 1)
    assert (no.apply, no.rule) == (False, "light-no")
    assert f"text {guard.LIGHT_MIN_TEXT - 1:.0f} px < {guard.LIGHT_MIN_TEXT:.0f}" in no.reason
    assert not guard.light(ok, lambda: None).apply  # too few letters to tell


@pytest.mark.parametrize("noise,detail,said", [
    (guard.LIGHT_MAX_NOISE, guard.LIGHT_MIN_DETAIL + 0.5, "noise"),
    (guard.LIGHT_MAX_NOISE - 0.5, guard.LIGHT_MIN_DETAIL - 0.1, "detail"),
])
def test_noisy_or_soft_pages_are_refused_without_measuring_their_text(noise, detail, said):
    no = guard.light(stats(noise, detail), lambda: 1 / 0)  # never called
    assert (no.apply, no.rule) == (False, "light-no") and said in no.reason


def test_light_rules_are_named_in_rules():
    from ocr_denoise.decision import RULES

    assert {"light", "light-no"} <= set(RULES)


# -- the pipeline ----------------------------------------------------------------------


def test_a_quiet_page_is_denoised_by_the_light_model_and_the_record_says_light(
        quiet, with_light, darken_model):
    out, rec = with_light.denoise(quiet, explain=True)
    assert (rec.action, rec.rule, rec.stage, rec.scale) == ("denoised", "light", "before", 1)
    assert str(darken_model) in rec.reason and rec.measurements
    assert np.abs(out.astype(int) - darkened(quiet)).max() <= 1


def test_without_a_light_model_the_quiet_page_comes_out_as_it_came(quiet, without_light):
    out, rec = without_light.denoise(quiet, explain=True)
    np.testing.assert_array_equal(out, quiet)
    assert (rec.action, rec.rule) == ("left", "no-damage")
    assert rec.reason == guard.before(stats_of(quiet)).reason  # today's record, word for word


def test_an_identity_light_model_gives_a_quiet_page_back_unchanged(quiet, lighten_model,
                                                                  identity_model):
    d = Denoiser(lighten_model, device="cpu", light=identity_model)
    out, rec = d.denoise(quiet, explain=True)
    assert rec.rule == "light"
    np.testing.assert_array_equal(out, quiet)


def test_a_noisy_page_goes_to_the_main_model_and_not_to_the_light_one(with_light,
                                                                      without_light):
    rng = np.random.default_rng(3)
    noisy = np.clip(text(22) + rng.normal(0, 25, (300, 400)), 0, 255).astype(np.uint8)
    out, rec = with_light.denoise(noisy, explain=True)
    assert rec.rule == "noise" and rec.action == "denoised"
    np.testing.assert_array_equal(out, without_light.denoise(noisy))
    assert (out > 204).any()  # the light model would have left nothing lighter than 204


def test_a_smooth_page_is_left_even_with_a_light_model(with_light):
    page = np.full((60, 80), 120, np.uint8)
    out, rec = with_light.denoise(page, explain=True)
    assert (rec.action, rec.rule) == ("left", "smooth")
    np.testing.assert_array_equal(out, page)


def test_only_no_damage_pages_go_to_the_light_model(quiet, with_light, monkeypatch):
    # the quiet page, which the light rule takes, counted as smooth: it stays left
    monkeypatch.setattr(guard, "SMOOTH", stats_of(quiet).detail + 1)
    out, rec = with_light.denoise(quiet, explain=True)
    assert (rec.action, rec.rule) == ("left", "smooth")
    np.testing.assert_array_equal(out, quiet)


def test_no_after_check_refuses_the_light_models_output(quiet, with_light, monkeypatch):
    monkeypatch.setattr(guard, "MIN_TEXT", 1000.0)  # would hand back any main-model page
    out, rec = with_light.denoise(quiet, explain=True)
    assert (rec.action, rec.rule) == ("denoised", "light")
    assert np.abs(out.astype(int) - darkened(quiet)).max() <= 1


def test_with_the_guard_off_only_the_main_model_runs(quiet, with_light, without_light):
    out, rec = with_light.denoise(quiet, guard=False, explain=True)
    assert rec.rule == "guard-off"
    np.testing.assert_array_equal(out, without_light.denoise(quiet, guard=False))
    assert (out == 255).any()  # the main model keeps white paper; the light one would not


def test_small_text_is_left_and_the_record_says_why(with_light):
    small = text(8)
    assert guard.text_height(small) < guard.LIGHT_MIN_TEXT
    out, rec = with_light.denoise(small, explain=True)
    np.testing.assert_array_equal(out, small)
    assert (rec.action, rec.rule) == ("left", "no-damage")
    assert "not for the light model" in rec.reason and "px <" in rec.reason


def test_the_text_size_threshold_decides_the_route(quiet, with_light, monkeypatch):
    height = guard.text_height(quiet)
    assert height is not None
    monkeypatch.setattr(guard, "LIGHT_MIN_TEXT", height + 1)
    out, rec = with_light.denoise(quiet, explain=True)
    assert rec.rule == "no-damage"
    np.testing.assert_array_equal(out, quiet)
    monkeypatch.setattr(guard, "LIGHT_MIN_TEXT", height)
    assert with_light.denoise(quiet, explain=True)[1].rule == "light"


def test_an_enlarged_page_does_not_go_to_the_light_model(quiet, with_light, without_light):
    out, rec = with_light.denoise(quiet, upscale=2, explain=True)
    assert rec.rule != "light" and rec.scale == 2
    np.testing.assert_array_equal(out, without_light.denoise(quiet, upscale=2))


def test_denoise_page_with_the_denoiser_gives_the_same_bytes(quiet, with_light):
    out, rec = denoise_page(quiet, denoiser=with_light, explain=True)
    assert rec.rule == "light"
    np.testing.assert_array_equal(out, with_light.denoise(quiet))


# -- settings --------------------------------------------------------------------------


def test_auto_is_the_shipped_light_model_only_when_shipped_and_beside_the_default(
        monkeypatch, lighten_model):
    from ocr_denoise import model

    default = model.default_model_path()
    assert light_arg(None, default) is None
    assert light_arg(lighten_model, default) == lighten_model  # a path is kept
    monkeypatch.delitem(model.SHIPPED_MODELS, LIGHT_MODEL, raising=False)
    assert light_arg("auto", default) is None
    monkeypatch.setitem(model.SHIPPED_MODELS, LIGHT_MODEL, "light.onnx")
    assert light_arg("auto", default) == LIGHT_MODEL
    assert light_arg("auto", lighten_model) is None  # a user's own model: none
    assert Denoiser(lighten_model, device="cpu").light is None


def test_no_light_model_is_shipped_yet_so_the_default_denoiser_has_none():
    from ocr_denoise.model import SHIPPED_MODELS

    d = Denoiser(device="cpu")
    assert (LIGHT_MODEL in SHIPPED_MODELS) == (d.light is not None)


def test_an_enlargement_model_is_refused_as_the_light_model(lighten_model, zero_enlarger):
    with pytest.raises(SettingsError, match=r"light=.*zero\.onnx.*scale=2"):
        Denoiser(lighten_model, device="cpu", light=zero_enlarger)


def test_a_light_setting_of_the_wrong_type_is_refused(lighten_model):
    with pytest.raises(SettingsTypeError, match="light must be.*int"):
        Denoiser(lighten_model, device="cpu", light=3)  # type: ignore[arg-type]


def test_the_light_model_travels_as_settings_and_shows_in_repr(quiet, with_light,
                                                             darken_model):
    assert f"light={str(darken_model)!r}" in repr(with_light)
    state = with_light.__getstate__()
    assert state["_loaded"] is None and state["light"].__getstate__()["_loaded"] is None
    copy = pickle.loads(pickle.dumps(with_light))
    assert copy.light is not None and copy.light.model_path == with_light.light.model_path
    assert copy._loaded is None and copy.light._loaded is None  # no session travelled
    np.testing.assert_array_equal(copy.denoise(quiet), with_light.denoise(quiet))


def test_a_denoiser_pickled_before_the_light_model_has_none(lighten_model):
    state = Denoiser(lighten_model, device="cpu", light=None).__getstate__()
    del state["light"]
    old = Denoiser.__new__(Denoiser)
    old.__setstate__(state)
    assert old.light is None and "light=" not in repr(old)
