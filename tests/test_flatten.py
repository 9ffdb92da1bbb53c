"""ocr_denoise.flatten: page background flattening and ink contrast stretch."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_onnx_model, text_page

from ocr_denoise import Denoiser, flatten
from ocr_denoise.model import ModelError
from ocr_denoise.normalize import to_uint8


def _levels(page: np.ndarray) -> flatten.PageLevels:
    return flatten.measure(lambda a, b: page[a:b], *page.shape)


@pytest.mark.parametrize("bands", [[1], [5, 300], [7, 8, 9, 100], [64, 65]])
def test_any_band_split_gives_the_whole_page_result_bit_for_bit(rng, bands):
    page = text_page(rng, 150, 97) * np.linspace(0.6, 1.0, 97, dtype=np.float32)
    levels = _levels(page)
    whole = flatten.flatten_page(page)
    cuts = [0, *[c for c in bands if c < page.shape[0]], page.shape[0]]
    parts = [flatten.flatten_rows(page[a:b], a, levels) for a, b in zip(cuts, cuts[1:]) if b > a]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_uneven_lighting_is_flattened_to_white_paper_and_keeps_the_text(rng):
    clean = text_page(rng, 160, 200)
    light = np.outer(np.linspace(0.5, 1.0, 160), np.linspace(0.7, 1.0, 200)).astype(np.float32)
    out = flatten.flatten_page(clean * light)
    paper, ink = clean == 1.0, clean < 0.5
    # before: paper ranges 0.35..1; after: paper is white and ink stays dark. The
    # closing overestimates a steep gradient's background within half its kernel
    # of the page edge, so the edge is left out.
    e = flatten.BLOCK * flatten.CLOSE // 2
    inner = np.zeros_like(paper)
    inner[e:-e, e:-e] = True
    assert np.percentile(out[paper & inner], 5) > 0.93
    assert np.median(out[ink]) < 0.2


def test_faded_ink_is_stretched_but_lighter_back_side_text_stays_lighter(rng):
    clean = text_page(rng, 160, 200)
    faded = 0.85 * (1.0 - 0.3 * (1.0 - clean))  # grey paper, ink 30% darker than it
    out = flatten.flatten_page(faded.astype(np.float32))
    ink = clean < 0.5
    assert np.median(out[ink]) < 0.5 * np.median(faded[ink] / 0.85)
    back = np.fliplr(text_page(np.random.default_rng(7), 160, 200))
    page = clean * (1.0 - 0.4 * (1.0 - back))  # back-side text at 40% of the front's darkness
    out = flatten.flatten_page(page.astype(np.float32))
    only_back = (back < 0.5) & ~ink
    assert np.median(out[only_back]) > np.median(out[ink]) + 0.3


def test_clean_white_page_is_left_exactly_white():
    out = flatten.flatten_page(np.ones((40, 50), np.float32))
    np.testing.assert_array_equal(out, 1.0)


def test_gain_is_capped_so_faint_paper_noise_is_not_blown_up(rng):
    page = np.clip(0.9 + 0.01 * rng.standard_normal((100, 100)), 0, 1).astype(np.float32)
    levels = _levels(page)
    assert levels.gain <= 1.0 / flatten.MIN_INK + 1e-6
    assert flatten.flatten_page(page).std() < 0.01 / 0.9 / flatten.MIN_INK * 1.5


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (3, 5), (4, 4), (37, 2)])
def test_tiny_and_black_pages_give_finite_values_in_range(shape):
    for fill in (0.0, 0.5, 1.0):
        out = flatten.flatten_page(np.full(shape, fill, np.float32))
        assert out.shape == shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_denoiser_flattens_pages_for_models_that_ask_for_it(tmp_path, rng):
    page = (text_page(rng, 90, 130) * np.linspace(0.55, 1.0, 130)).astype(np.float32)
    asks = make_onnx_model(tmp_path / "flat.onnx", metadata={"preprocess": flatten.NAME})
    plain = make_onnx_model(tmp_path / "plain.onnx")
    got = Denoiser(asks, device="cpu").denoise(page, guard=False)
    want = to_uint8(flatten.flatten_page(page))
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # and a model that does not ask sees the page as it is
    same = Denoiser(plain, device="cpu").denoise(page, guard=False)
    assert np.abs(same.astype(int) - to_uint8(page).astype(int)).max() <= 1
    assert np.abs(got.astype(int) - same.astype(int)).max() > 50


def test_model_asking_for_unknown_preprocessing_is_refused_with_its_path(tmp_path):
    path = make_onnx_model(tmp_path / "future.onnx", metadata={"preprocess": "dewarp-v9"})
    with pytest.raises(ModelError, match=r"future\.onnx.*dewarp-v9"):
        Denoiser(path, device="cpu")
