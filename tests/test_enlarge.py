"""The learned 2x enlargement (issue 32) in the runtime: the model's interface, its
cubic base cut in windows, the pipeline path, seams, entry points and memory.

Real onnxruntime throughout; the enlargement models here are tiny real ONNX graphs
(``helpers.enlarger_model``; fixtures ``zero_enlarger``, ``mix_enlarger``): ``zero``
returns its base (what an untrained model computes), ``mix`` blends the base with a
nearest-neighbour enlargement of the patch, so any misplaced window or seam shows. The
Keras side (training pairs, export) is ``tests/test_enlarge_train.py``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import enlarger_model, small_print

from ocr_denoise import Denoiser, denoise_page
from ocr_denoise import rescale as page_rescale
from ocr_denoise.errors import ModelError, SettingsError
from ocr_denoise.normalize import to_uint8

P = 28


def whole_page_mix(page: np.ndarray) -> np.ndarray:
    """What ``mix`` computes on the whole page at once (no tiles)."""
    cubic = page_rescale.enlarged(page, 2).astype(np.float32) / np.float32(255)
    near = np.repeat(np.repeat(page.astype(np.float32) / np.float32(255), 2, 0), 2, 1)
    return to_uint8(np.float32(0.3) * cubic + np.float32(0.7) * near)


# -- the cubic windows -------------------------------------------------------------------


@pytest.mark.parametrize("h,w", [(1, 1), (1, 40), (3, 2), (29, 31), (57, 200), (90, 1033)])
def test_cubic_windows_are_the_whole_page_enlargement_at_every_position(rng, h, w):
    page = rng.integers(0, 256, (h, w), dtype=np.uint8)
    full = page_rescale.enlarged(page, 2)
    s = P - 4
    ys = np.repeat(np.arange(-4, h, s), len(range(-4, w, s)))
    xs = np.tile(np.arange(-4, w, s), len(range(-4, h, s)))
    got = page_rescale.cubic_windows(lambda a, b: page[a:b], h, w, ys, xs, P)
    # and one by one, in another order: the same values
    order = rng.permutation(len(ys))
    alone = page_rescale.cubic_windows(lambda a, b: page[a:b], h, w, ys[order][:7],
                                       xs[order][:7], P)
    np.testing.assert_array_equal(alone, got[order][:7])
    for win, y, x in zip(got, ys, xs):
        y0, x0 = 2 * int(y), 2 * int(x)
        a0, a1 = max(y0, 0), min(y0 + 2 * P, 2 * h)
        b0, b1 = max(x0, 0), min(x0 + 2 * P, 2 * w)
        np.testing.assert_array_equal(
            to_uint8(win[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0]), full[a0:a1, b0:b1])


# -- the model's interface -------------------------------------------------------------


def test_an_enlargement_model_is_accepted_with_its_scale_and_base(zero_enlarger):
    d = Denoiser(zero_enlarger, device="cpu")
    spec = d.interface
    assert (spec.scale, spec.base, spec.patch) == (2, page_rescale.CUBIC, P)
    x = np.random.default_rng(0).random((3, P, P), dtype=np.float32)
    b = np.random.default_rng(1).random((3, 2 * P, 2 * P), dtype=np.float32)
    np.testing.assert_array_equal(d.denoise_patches(x, b), b)
    with pytest.raises(ValueError, match="base enlargement"):
        d.denoise_patches(x)
    with pytest.raises(ValueError, match=r"expected \(3, 56, 56\)"):
        d.denoise_patches(x, x)


@pytest.mark.parametrize("kwargs,match", [
    ({"metadata": {"scale": "3"}}, "input 'base' has shape"),
    ({"metadata": {"scale": None}}, "scale=1 with base='cubic-v1'"),
    ({"metadata": {"base": "lanczos-v9"}}, "newer ocr-denoise"),
    ({"metadata": {"patch_size": "32"}}, "patch_size='32'"),
])
def test_an_enlargement_model_that_does_not_fit_is_refused(tmp_path, kwargs, match):
    path = enlarger_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelError, match=match):
        Denoiser(path, device="cpu")


@pytest.mark.parametrize("broken", ["missing", "damaged", "ill-fitting"])
def test_a_broken_enlargement_model_is_refused_naming_the_option_and_the_file(tmp_path,
                                                                           broken):
    # The user gave two models; the error says it was the enlarger that failed.
    path = tmp_path / f"{broken}.onnx"
    if broken == "damaged":
        path.write_bytes(b"not an onnx model")
    elif broken == "ill-fitting":
        enlarger_model(path, metadata={"base": "lanczos-v9"})
    with pytest.raises(ModelError, match=rf"^enlarger=.*{broken}\.onnx.*: .*{broken}\.onnx"):
        Denoiser(device="cpu", enlarger=path)


def test_a_denoiser_is_refused_as_enlarger_and_an_enlarger_as_denoiser(zero_enlarger):
    with pytest.raises(SettingsError, match="not an enlargement model"):
        Denoiser(device="cpu", enlarger="denoise")
    with pytest.raises(SettingsError, match="it is not a denoiser"):
        Denoiser(zero_enlarger, device="cpu").denoise(np.full((30, 30), 200, np.uint8))


def test_no_enlargement_model_is_shipped_yet_so_auto_means_none():
    from ocr_denoise.model import SHIPPED_MODELS

    d = Denoiser(device="cpu")
    assert ("enlarge" in SHIPPED_MODELS) == (d.enlarger is not None)


# -- the pipeline ----------------------------------------------------------------------


def rendered_small_print(seed: int = 1) -> np.ndarray:
    """Serif prose at an x-height of 6 px, clean, as uint8 (``train.synth``)."""
    from train import synth

    clean = synth.render_page(np.random.default_rng(seed), 160, 240, x_height=6.0,
                              family="serif", margin=6).clean
    return np.clip(np.rint(clean * 255), 0, 255).astype(np.uint8)


def test_the_untrained_model_gives_exactly_the_runtimes_cubic_enlargement(zero_enlarger):
    page = rendered_small_print()
    d = Denoiser(device="cpu", enlarger=zero_enlarger)
    out, rec = denoise_page(page, denoiser=d, upscale="auto", explain=True)
    assert out.shape == (2 * page.shape[0], 2 * page.shape[1])
    np.testing.assert_array_equal(out, page_rescale.enlarged(page, 2))
    assert (rec.action, rec.rule, rec.scale) == ("enlarged", "enlarged", 2)
    assert f"by the enlargement model {zero_enlarger}" in rec.reason and rec.measurements
    # the same bytes as today's cubic path, where it leaves the enlarged page
    plain, prec = denoise_page(page, denoiser=Denoiser(device="cpu", enlarger=None),
                               upscale=2, explain=True)
    assert prec.action == "enlarged"
    np.testing.assert_array_equal(out, plain)


def test_a_page_whose_text_is_not_small_keeps_todays_path(rng, zero_enlarger):
    page = cv2.resize(small_print(rng, 80, 100), (400, 320), interpolation=cv2.INTER_NEAREST)
    with_model = Denoiser(device="cpu", enlarger=zero_enlarger)
    out, rec = denoise_page(page, denoiser=with_model, upscale="auto", explain=True)
    assert rec.scale == 1 and "enlargement model" not in rec.reason
    np.testing.assert_array_equal(out, denoise_page(page, device="cpu", upscale="auto"))


@pytest.mark.parametrize("h,w", [(1, 1), (5, 3), (29, 57), (101, 77), (3001, 203)])
def test_tiles_join_without_seams_at_any_size_and_band_split(mix_enlarger, h, w):
    rng = np.random.default_rng(h * 1000 + w)
    page = rng.integers(0, 256, (h, w), dtype=np.uint8)
    d = Denoiser(device="cpu", enlarger=mix_enlarger, threads=1)
    out = d.denoise(page, upscale=2, guard=False)
    want = whole_page_mix(page)
    diff = np.abs(out.astype(int) - want)
    # float sums in another order than the whole page's: at most a rounding apart
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_the_same_bytes_whatever_the_threads_batches_and_entry_point(tmp_path, mix_enlarger):
    from PIL import Image

    rng = np.random.default_rng(7)
    page = small_print(rng, 613, 301)
    ref = Denoiser(device="cpu", enlarger=mix_enlarger, threads=1).denoise(page, upscale="auto")
    assert ref.shape == (1226, 602)
    for threads, batch in ((2, 128), (2, 5), (1, 1)):
        d = Denoiser(device="cpu", enlarger=mix_enlarger, threads=threads, batch_size=batch)
        assert d.enlarger is not None and d.enlarger.workers == threads
        np.testing.assert_array_equal(d.denoise(page, upscale="auto"), ref)
    d = Denoiser(device="cpu", enlarger=mix_enlarger)
    np.testing.assert_array_equal(denoise_page(page, denoiser=d, upscale="auto"), ref)
    cv2.imwrite(str(tmp_path / "p.png"), page)
    np.testing.assert_array_equal(
        denoise_page(tmp_path / "p.png", denoiser=d, upscale="auto"), ref)
    img = denoise_page(Image.fromarray(page), denoiser=d, upscale="auto")
    np.testing.assert_array_equal(np.asarray(img), ref)
    # a pickled Denoiser (what a worker process gets) brings its enlarger along
    import pickle

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(d)).denoise(page, upscale="auto"),
                                  ref)


def test_a_colour_page_is_enlarged_from_its_8_bit_grey(rng, zero_enlarger):
    gray = small_print(rng)
    bgr = np.dstack([gray] * 3)
    d = Denoiser(device="cpu", enlarger=zero_enlarger)
    np.testing.assert_array_equal(d.denoise(bgr, upscale=2),
                                  page_rescale.enlarged(gray, 2))


def test_another_factor_than_the_models_enlarges_by_cubic(rng, zero_enlarger):
    page = small_print(rng, 60, 70)
    d = Denoiser(device="cpu", enlarger=zero_enlarger)
    _, rec = d.denoise(page, upscale=3, explain=True)
    assert rec.scale == 3 and "enlargement model" not in rec.reason
