"""The light route (``Denoiser(light=...)``): a page with grainy paper that is not
noisy goes to a second, light model (``guard.light``), asked before the main model's
rules.

v8 erodes the letters of pages without heavy damage; a residual model taught
non-local means on real pages made grainy archive pages read better. The models
here are tiny real ONNX models run by onnxruntime: ``lighten_model`` as the main
model (ink lighter, white paper stays 255) and ``darken_model`` as the light one
(every pixel 0.2 darker, so white paper becomes 204): which of them ran shows in
the page."""

from __future__ import annotations

import dataclasses
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


def grained(page: np.ndarray, sigma: float, seed: int = 3) -> np.ndarray:
    """``page`` with Gaussian grain of ``sigma`` gray levels."""
    rng = np.random.default_rng(seed)
    return np.clip(page + rng.normal(0, sigma, page.shape), 0, 255).astype(np.uint8)


def stats_of(page: np.ndarray) -> guard.PageStats:
    return guard.measure(lambda a, b: page[a:b].astype(np.float32) / 255.0, *page.shape)


def darkened(page: np.ndarray) -> np.ndarray:
    """What ``darken_model`` makes of a page: every pixel 0.2 (51 levels) darker."""
    return np.clip(page.astype(int) - 51, 0, 255)


@pytest.fixture(scope="module")
def grainy() -> np.ndarray:
    """Serif prose on grainy paper that is not noisy: the light model's page under the
    current thresholds (the guard alone would leave it: no damage v8 removes)."""
    page = grained(text(22), 3.0)
    stats = stats_of(page)
    assert guard.LIGHT_FINE_NOISE <= stats.fine_noise and stats.noise < guard.LIGHT_MAX_NOISE, \
        f"the grainy page no longer suits guard.light's thresholds ({stats}): pick another"
    assert guard.before(stats).rule == "no-damage"
    return page


@pytest.fixture(scope="module")
def quiet() -> np.ndarray:
    """Clean serif prose, no grain: left as it came, with or without a light model."""
    page = text(22)
    assert stats_of(page).fine_noise < guard.LIGHT_FINE_NOISE
    return page


@pytest.fixture(scope="module")
def with_light(lighten_model, darken_model) -> Denoiser:
    return Denoiser(lighten_model, device="cpu", light=darken_model)


@pytest.fixture(scope="module")
def without_light(lighten_model) -> Denoiser:
    return Denoiser(lighten_model, device="cpu", light=None)


# -- guard.light -----------------------------------------------------------------------


def stats(noise: float, fine_noise: float, **kw: float) -> guard.PageStats:
    base = dict(noise=noise, detail=3.0, stain=0.0, fine_noise=fine_noise, grey=0.0, ink=0.8)
    return guard.PageStats(**{**base, **kw})


def test_light_rule_takes_grainy_paper_that_is_not_noisy_and_says_the_values():
    yes = guard.light(stats(guard.LIGHT_MAX_NOISE - 0.5, guard.LIGHT_FINE_NOISE))
    assert (yes.apply, yes.rule) == (True, "light")
    assert f"fine noise {guard.LIGHT_FINE_NOISE:.2f}" in yes.reason


@pytest.mark.parametrize("noise,fine,said", [
    (guard.LIGHT_MAX_NOISE, guard.LIGHT_FINE_NOISE + 1, "noise"),
    (guard.LIGHT_MAX_NOISE - 0.5, guard.LIGHT_FINE_NOISE - 0.01, "fine noise"),
])
def test_noisy_or_smooth_paper_is_not_for_the_light_model(noise, fine, said):
    no = guard.light(stats(noise, fine))
    assert (no.apply, no.rule) == (False, "light-no") and said in no.reason


def test_light_rules_are_named_in_rules():
    from ocr_denoise.decision import RULES

    assert {"light", "light-no"} <= set(RULES)


# -- the pipeline ----------------------------------------------------------------------


def test_a_grainy_page_is_denoised_by_the_light_model_and_the_record_says_light(
        grainy, with_light, darken_model):
    out, rec = with_light.denoise(grainy, explain=True)
    assert (rec.action, rec.rule, rec.stage, rec.scale) == ("denoised", "light", "before", 1)
    assert str(darken_model) in rec.reason and rec.measurements
    assert np.abs(out.astype(int) - darkened(grainy)).max() <= 1


def test_without_a_light_model_the_grainy_page_comes_out_as_it_came(grainy, without_light):
    out, rec = without_light.denoise(grainy, explain=True)
    np.testing.assert_array_equal(out, grainy)
    assert (rec.action, rec.rule) == ("left", "no-damage")
    assert rec.reason == guard.before(stats_of(grainy)).reason  # today's record, word for word


def test_a_page_without_grain_is_left_and_the_record_says_why(quiet, with_light):
    out, rec = with_light.denoise(quiet, explain=True)
    np.testing.assert_array_equal(out, quiet)
    assert (rec.action, rec.rule) == ("left", "no-damage")
    assert "not for the light model (fine noise" in rec.reason


def test_an_identity_light_model_gives_a_grainy_page_back_unchanged(grainy, lighten_model,
                                                                   identity_model):
    d = Denoiser(lighten_model, device="cpu", light=identity_model)
    out, rec = d.denoise(grainy, explain=True)
    assert rec.rule == "light"
    np.testing.assert_array_equal(out, grainy)


def test_a_noisy_page_goes_to_the_main_model_and_not_to_the_light_one(with_light,
                                                                      without_light):
    noisy = grained(text(22), 25.0)
    out, rec = with_light.denoise(noisy, explain=True)
    assert rec.rule == "noise" and rec.action == "denoised"
    np.testing.assert_array_equal(out, without_light.denoise(noisy))
    assert (out > 204).any()  # the light model would have left nothing lighter than 204


def test_the_light_model_is_asked_before_the_main_models_damage_rules(
        grainy, with_light, monkeypatch):
    # The grainy page counted as stained (a rule that would send it to the main model):
    # the light model still takes it, as it took the grainy archive pages v8 was sent.
    monkeypatch.setattr(guard, "STAIN", 0.0)
    assert guard.before(stats_of(grainy)).rule == "stain"
    out, rec = with_light.denoise(grainy, explain=True)
    assert (rec.action, rec.rule) == ("denoised", "light")
    assert np.abs(out.astype(int) - darkened(grainy)).max() <= 1


def test_a_smooth_page_is_left_even_with_a_light_model(grainy, with_light, monkeypatch):
    # the grainy page, which the light rule takes, counted as smooth: it stays left
    monkeypatch.setattr(guard, "SMOOTH", stats_of(grainy).detail + 1)
    out, rec = with_light.denoise(grainy, explain=True)
    assert (rec.action, rec.rule) == ("left", "smooth")
    np.testing.assert_array_equal(out, grainy)


def test_no_after_check_refuses_the_light_models_output(grainy, with_light, monkeypatch):
    monkeypatch.setattr(guard, "MIN_TEXT", 1000.0)  # would hand back any main-model page
    out, rec = with_light.denoise(grainy, explain=True)
    assert (rec.action, rec.rule) == ("denoised", "light")
    assert np.abs(out.astype(int) - darkened(grainy)).max() <= 1


def test_with_the_guard_off_only_the_main_model_runs(grainy, with_light, without_light):
    out, rec = with_light.denoise(grainy, guard=False, explain=True)
    assert rec.rule == "guard-off"
    np.testing.assert_array_equal(out, without_light.denoise(grainy, guard=False))
    assert (out > 204).any()  # the light model would have left nothing lighter than 204


def test_the_fine_noise_threshold_decides_the_route(grainy, with_light, monkeypatch):
    fine = stats_of(grainy).fine_noise
    monkeypatch.setattr(guard, "LIGHT_FINE_NOISE", fine + 0.01)
    out, rec = with_light.denoise(grainy, explain=True)
    assert rec.rule == "no-damage"
    np.testing.assert_array_equal(out, grainy)
    monkeypatch.setattr(guard, "LIGHT_FINE_NOISE", fine)
    assert with_light.denoise(grainy, explain=True)[1].rule == "light"


def test_an_enlarged_page_does_not_go_to_the_light_model(grainy, with_light, without_light):
    out, rec = with_light.denoise(grainy, upscale=2, explain=True)
    assert rec.rule != "light" and rec.scale == 2
    np.testing.assert_array_equal(out, without_light.denoise(grainy, upscale=2))


def test_denoise_page_with_the_denoiser_gives_the_same_bytes(grainy, with_light):
    out, rec = denoise_page(grainy, denoiser=with_light, explain=True)
    assert rec.rule == "light"
    np.testing.assert_array_equal(out, with_light.denoise(grainy))


def test_the_record_keeps_every_measurement_the_route_used(grainy, with_light):
    rec = with_light.denoise(grainy, explain=True)[1]
    assert set(rec.measurements) == {f.name for f in dataclasses.fields(guard.PageStats)}
    assert rec.measurements["fine_noise"] == pytest.approx(stats_of(grainy).fine_noise)


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


def test_the_light_model_travels_as_settings_and_shows_in_repr(grainy, with_light,
                                                             darken_model):
    assert f"light={str(darken_model)!r}" in repr(with_light)
    state = with_light.__getstate__()
    assert state["_loaded"] is None and state["light"].__getstate__()["_loaded"] is None
    copy = pickle.loads(pickle.dumps(with_light))
    assert copy.light is not None and copy.light.model_path == with_light.light.model_path
    assert copy._loaded is None and copy.light._loaded is None  # no session travelled
    np.testing.assert_array_equal(copy.denoise(grainy), with_light.denoise(grainy))


def test_a_denoiser_pickled_before_the_light_model_has_none(lighten_model):
    state = Denoiser(lighten_model, device="cpu", light=None).__getstate__()
    del state["light"]
    old = Denoiser.__new__(Denoiser)
    old.__setstate__(state)
    assert old.light is None and "light=" not in repr(old)


def test_a_missing_light_model_is_refused_naming_the_option_and_the_file(lighten_model,
                                                                        tmp_path):
    from ocr_denoise.errors import ModelNotFoundError

    missing = tmp_path / "gone.onnx"
    with pytest.raises(ModelNotFoundError, match=r"light=.*gone\.onnx.*gone\.onnx"):
        Denoiser(lighten_model, device="cpu", light=missing)
