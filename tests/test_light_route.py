"""The light route (``Denoiser(light=...)``): a page the guard leaves for having no
damage goes to a second, light model where ``guard.light`` says so.

v8 erodes the letters of pages without heavy damage, so the guard does not run it
there; a residual model that starts as the identity does no harm on such pages and
may help archive pages. The models here are tiny real ONNX models run by
onnxruntime: ``lighten_model`` as the main model (ink lighter, white paper stays
255) and ``darken_model`` as the light one (every pixel 0.2 darker, so white paper
becomes 204): which of them ran shows in the page."""

from __future__ import annotations

import pytest

from ocr_denoise import guard

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
