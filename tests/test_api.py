"""``denoise_page`` with the shipped model: shapes, dtypes, and that it really denoises."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import small_print, text_page

from ocr_denoise import denoise_page, get_denoiser


@pytest.mark.parametrize("shape", [(1, 1), (1, 30), (30, 1), (28, 28), (45, 61), (100, 7)])
def test_output_is_uint8_page_of_the_input_size(shape, rng):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    out = denoise_page(img)
    assert out.shape == shape and out.dtype == np.uint8


@pytest.mark.parametrize("make", [
    lambda g: (g * 255).round().astype(np.uint8),
    lambda g: (g * 65535).round().astype(np.uint16),
    lambda g: g.astype(np.float64),
    lambda g: np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2),
    lambda g: np.dstack([np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, 2),
                         np.full(g.shape, 255, np.uint8)]),
], ids=["uint8", "uint16", "float64", "bgr", "bgra"])
def test_every_input_form_gives_the_same_page(make, rng):
    g = text_page(rng, 60, 80)
    ref = denoise_page((g * 255).round().astype(np.uint8))
    out = denoise_page(make(g))
    assert out.shape == g.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).max() <= 2


def test_shipped_model_removes_noise(rng):
    clean = text_page(rng, 120, 160)
    noisy = np.clip(clean + 0.25 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    out = denoise_page(noisy).astype(np.float32) / 255
    rmse_in = np.sqrt(np.mean((noisy - clean) ** 2))
    rmse_out = np.sqrt(np.mean((out - clean) ** 2))
    # Identity scores 1.0. The bars of text_page are not glyphs, so this only checks
    # the shipped model is a working denoiser; OCR quality is benchmarks/ocr_quality.py's job.
    assert rmse_out < 0.75 * rmse_in, (rmse_in, rmse_out)


def test_input_array_is_not_modified(rng):
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    before = img.copy()
    denoise_page(img)
    np.testing.assert_array_equal(img, before)


def test_one_denoiser_is_reused_per_settings():
    assert get_denoiser() is get_denoiser()
    assert get_denoiser(overlap=6) is not get_denoiser()
    assert get_denoiser(skip_white=None) is not get_denoiser()
    with pytest.raises(TypeError, match="skip_white"):  # True == 1, but it is no level
        get_denoiser(skip_white=True)
    assert get_denoiser(skip_white=1).skip_white == 1.0


def test_denoise_page_passes_skip_white_to_its_denoiser():
    """skip_white=None gives the model-everywhere page, the one a Denoiser built so
    gives; with a caller's Denoiser the setting must not be given twice."""
    from helpers import text_page

    from ocr_denoise import Denoiser, SettingsError
    rng = np.random.default_rng(2)
    page = np.ones((120, 160), np.float32)
    page[40:90, 40:120] = text_page(rng, 50, 80)
    img = (page * 255).astype(np.uint8)
    everywhere = Denoiser(skip_white=None).denoise(img, guard=False)
    assert np.array_equal(denoise_page(img, guard=False, skip_white=None), everywhere)
    with pytest.raises(SettingsError, match="skip_white"):
        denoise_page(img, denoiser=Denoiser(), skip_white=None)


# -- a 20000 x 20000 page in a process limited to 3 GB of address space ------------------

_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # before anything loads
import numpy as np
from ocr_denoise import denoise_page
model = None if sys.argv[1] == "shipped" else sys.argv[1]
h, w = int(sys.argv[2]), int(sys.argv[3])
page = np.full((h, w), 255, np.uint8)
try:
    out = denoise_page(page, model=model, device="cpu")
    print("RESULT ok", out.shape, out.dtype, int(out.min()), int(out.max()))
except MemoryError as e:
    print("RESULT MemoryError", e)
peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmPeak")][0]
print("VMPEAK_KB", peak)
"""


def _run_limited(model: str, h: int, w: int) -> str:
    import subprocess
    import sys

    from helpers import REPO

    r = subprocess.run([sys.executable, "-c", _LIMITED, model, str(h), str(w)],
                       capture_output=True, text=True, cwd=REPO, timeout=900)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])  # a signal is negative
    return r.stdout


def test_20000_square_blank_page_is_denoised_within_3_gb_of_address_space(identity_model):
    """The whole pipeline (check, band-wise conversion, tiling, onnxruntime, output)
    on a 400-Mpx page, with the identity model so it takes seconds, not minutes."""
    out = _run_limited(str(identity_model), 20000, 20000)
    assert "RESULT ok (20000, 20000) uint8 255 255" in out, out


def test_shipped_model_on_a_20000_px_wide_band_fits_in_3_gb_of_address_space():
    """The shipped model's working set for a page 20000 px wide: the full-width
    band of patches and onnxruntime's arena at the default batch size."""
    out = _run_limited("shipped", 66, 20000)
    assert "RESULT ok (66, 20000) uint8" in out, out
    lo = int(out.split("RESULT ok (66, 20000) uint8")[1].split()[0])
    assert lo >= 200, out  # blank paper stays blank


_SQUEEZED = """
import resource, sys
import numpy as np
from ocr_denoise import denoise_page
page = np.full((20000, 20000), 255, np.uint8)
denoise_page(np.full((8, 8), 255, np.uint8), model=sys.argv[1], device="cpu")  # warm
vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
resource.setrlimit(resource.RLIMIT_AS, ((vm + 200 * 1024) * 1024,) * 2)  # no room for the output
try:
    denoise_page(page, model=sys.argv[1], device="cpu")
    print("RESULT ok")
except MemoryError as e:
    print("RESULT MemoryError", e)
print("ALIVE")
"""


def test_page_too_big_for_the_address_space_left_is_a_memory_error_not_a_crash(identity_model):
    import subprocess
    import sys

    from helpers import REPO

    r = subprocess.run([sys.executable, "-c", _SQUEEZED, str(identity_model)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    assert "RESULT MemoryError" in r.stdout and "(20000, 20000)" in r.stdout, r.stdout
    assert "ALIVE" in r.stdout


# -- file paths ------------------------------------------------------------------------------


def test_path_gives_the_page_of_the_array_opencv_reads(tmp_path, rng):
    import cv2

    page = (text_page(rng, 60, 80) * 65535).astype(np.uint16)
    for name, img in [("p.png", (page // 257).astype(np.uint8)), ("p16.tif", page),
                      ("c.png", np.dstack([page // 257] * 3).astype(np.uint8))]:
        cv2.imwrite(str(tmp_path / name), img)
        out = denoise_page(tmp_path / name, device="cpu")
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8
        expected = denoise_page(cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED),
                                device="cpu")
        np.testing.assert_array_equal(out, expected, err_msg=name)
        np.testing.assert_array_equal(denoise_page(str(tmp_path / name), device="cpu"), out)


def test_path_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    from ocr_denoise.images import ImageTooLargeError, write_image

    write_image(tmp_path / "big.png", np.full((100, 100), 255, np.uint8))
    with pytest.raises(ImageTooLargeError, match="100x100 = 10,000 pixels, more than the limit"):
        denoise_page(tmp_path / "big.png", max_pixels=9_999)
    assert denoise_page(tmp_path / "big.png", max_pixels=10_000).shape == (100, 100)


def test_unreadable_paths_raise_an_image_read_error_naming_the_file(tmp_path):
    from ocr_denoise.images import ImageReadError

    (tmp_path / "notes.png").write_text("not an image")
    for p, reason in [(tmp_path / "missing.png", "no such file"),
                      (tmp_path / "notes.png", "not a readable image"),
                      (tmp_path, "is a directory")]:
        with pytest.raises(ImageReadError, match=reason) as e:
            denoise_page(p)
        assert e.value.path == p


def test_multi_page_file_is_refused_rather_than_cut_to_its_first_page(tmp_path):
    from ocr_denoise.images import write_pages

    write_pages(tmp_path / "two.tif", [np.full((20, 20), 255, np.uint8)] * 2)
    with pytest.raises(ValueError, match="has 2 pages; denoise_page takes one"):
        denoise_page(tmp_path / "two.tif")


# -- the resolution rule (ocr_denoise.rescale) ------------------------------------------------


@pytest.mark.parametrize("dpi, expected", [
    (None, None),                       # unknown: leave it
    (300, None),
    ((150, 150), None),
    ((600, 600), None),                 # the range's end is in range
    ((600.5, 600.5), (300.0, 300.0)),
    ((1200, 1200), (300.0, 300.0)),     # too fine: down to 300
    ((1200, 400), (300.0, 400.0)),      # only the axis that is too fine
    ((100, 100), None),                 # too coarse, but never enlarged
    ((204, 98), None),                  # fax "standard"
    ((0, 1200), None),                  # broken values: ignored
    ((float("nan"), 1200), None),
    ((float("inf"), 1200), None),
    ("1200", None),
    ((1200, 1200, 1200), None),
])
def test_only_axes_above_600_dpi_are_resampled_to_300(dpi, expected):
    from ocr_denoise.rescale import working_dpi

    assert working_dpi(dpi) == expected


@pytest.mark.parametrize("dpi, working", [
    ((1200, 1200), (20, 25)),    # 80 x 100 at 1200 DPI -> a quarter
    ((900, 2400), (10, 33)),     # each axis to 300 DPI
    ((1200, 300), (80, 25)),
    ((100, 100), (80, 100)),     # coarse: as is
    ((300, 300), (80, 100)),     # in range: as is
])
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_model_sees_the_page_at_the_working_dpi_and_the_caller_gets_its_own_size(
        dpi, working, channels, identity_model, monkeypatch):
    from ocr_denoise import Denoiser, pipeline

    shape = (80, 100) + ((channels,) if channels else ())
    page = np.full(shape, 200, np.uint8)
    seen: list = []
    real = pipeline.tile_infer_stitch

    def recording(rows, windows, denoiser, out):
        seen.append((rows.height, rows.width))
        return real(rows, windows, denoiser, out)

    monkeypatch.setattr(pipeline, "tile_infer_stitch", recording)
    out = pipeline.denoise(Denoiser(identity_model), page, dpi, guard=False)
    assert seen == [working]
    # a flat page stays flat through resampling there and back
    assert out.shape == (80, 100) and out.dtype == np.uint8 and np.ptp(out) == 0


def test_bad_page_is_refused_before_any_resampling(identity_model, monkeypatch):
    from ocr_denoise import Denoiser, PageError, pipeline, rescale

    seen: list = []
    monkeypatch.setattr(rescale, "working_page", lambda *a: seen.append(a))
    with pytest.raises(PageError, match=r"expected values in \[0, 1\]"):
        pipeline.denoise(Denoiser(identity_model), np.full((10, 10), 2.0), (1200, 1200))
    assert seen == []


def test_dpi_recorded_in_a_file_or_image_steers_resampling_and_rescale_false_stops_it(
        tmp_path, rng):
    from PIL import Image

    from ocr_denoise.images import write_image

    page = (text_page(rng, 120, 160) * 255).astype(np.uint8)
    as_is = denoise_page(page, device="cpu")
    at_1200 = denoise_page(page, dpi=1200, device="cpu")
    assert at_1200.shape == page.shape and not np.array_equal(at_1200, as_is)
    np.testing.assert_array_equal(denoise_page(page, dpi=(100, 100), device="cpu"), as_is)

    write_image(tmp_path / "p1200.png", page, dpi=(1200, 1200))
    np.testing.assert_array_equal(denoise_page(tmp_path / "p1200.png", device="cpu"),
                                  at_1200)
    np.testing.assert_array_equal(
        denoise_page(tmp_path / "p1200.png", rescale=False, device="cpu"), as_is)
    # an explicit dpi= wins over the file's
    np.testing.assert_array_equal(
        denoise_page(tmp_path / "p1200.png", dpi=300, device="cpu"), as_is)

    im = Image.fromarray(page)
    im.info["dpi"] = (1200, 1200)
    out = denoise_page(im, device="cpu")
    np.testing.assert_array_equal(np.asarray(out), at_1200)
    assert out.info["dpi"] == (1200, 1200)
    np.testing.assert_array_equal(np.asarray(denoise_page(im, rescale=False, device="cpu")),
                                  as_is)


def test_specks_on_a_1200_dpi_page_are_removed_better_at_300_dpi():
    """Salt and pepper on a 1200-DPI page of large letters: tesseract reads the
    page denoised at 300 DPI better than the page denoised as it is (the rule's
    reason; 3-page figures in ocr_denoise/rescale.py)."""
    from ocr_denoise.ocr import cer, tesseract_text
    from train import synth

    rng = np.random.default_rng([1200, 0, 11])
    page = synth.render_page(rng, 1000, 1500, x_height=84, family="serif", ink=0.1,
                             margin=84)
    noisy = np.clip(synth.damage(page.clean, "salt_pepper", rng, 0.6) * 255 + 0.5, 0,
                    255).astype(np.uint8)
    scaled = cer(page.text, tesseract_text(denoise_page(noisy, dpi=1200), config="--dpi 1200"))
    as_is = cer(page.text, tesseract_text(denoise_page(noisy, rescale=False),
                                          config="--dpi 1200"))
    print(f"1200-DPI salt and pepper: CER {as_is:.3f} denoised as is, {scaled:.3f} at 300 DPI")
    assert scaled < as_is


# -- the enlargement model by name or path (issue 32) ----------------------------------


def test_denoise_page_enlarges_with_the_enlarger_it_is_given_by_path(rng, mix_enlarger):
    from PIL import Image

    from ocr_denoise import Denoiser

    page = small_print(rng)
    want = Denoiser(device="cpu", enlarger=mix_enlarger).denoise(page, upscale=2)
    cubic = denoise_page(page, device="cpu", upscale=2, enlarger=None)
    assert want.shape == cubic.shape == (2 * page.shape[0], 2 * page.shape[1])
    assert not np.array_equal(want, cubic)  # the model really is used
    for given in (mix_enlarger, str(mix_enlarger)):
        np.testing.assert_array_equal(
            denoise_page(page, device="cpu", upscale=2, enlarger=given), want)
    img = denoise_page(Image.fromarray(page), device="cpu", upscale=2,
                       enlarger=mix_enlarger)
    np.testing.assert_array_equal(np.asarray(img), want)
    # one cached Denoiser per enlargement model, however its path is spelt
    a = get_denoiser(device="cpu", enlarger=mix_enlarger)
    assert get_denoiser(device="cpu", enlarger=str(mix_enlarger)) is a
    assert a.enlarger is not None and a.enlarger.model_path == mix_enlarger
    assert get_denoiser(device="cpu", enlarger=None) is not a


def test_a_wrong_kind_of_enlarger_or_both_denoiser_and_enlarger_are_refused(rng,
                                                                             mix_enlarger):
    from ocr_denoise import Denoiser, SettingsError
    from ocr_denoise.errors import ModelNotFoundError, SettingsTypeError

    page = small_print(rng, 40, 50)
    with pytest.raises(SettingsError, match=r"enlarger='denoise': .*denoiser.* is not an "
                                            "enlargement model"):
        denoise_page(page, device="cpu", upscale=2, enlarger="denoise")
    with pytest.raises(ModelNotFoundError, match="nowhere.onnx: model file not found"):
        denoise_page(page, device="cpu", upscale=2, enlarger="/nowhere.onnx")
    with pytest.raises(SettingsTypeError, match="enlarger must be"):
        denoise_page(page, device="cpu", enlarger=2)  # type: ignore[call-overload]
    with pytest.raises(SettingsError, match="enlarger"):
        denoise_page(page, denoiser=Denoiser(device="cpu"), enlarger=mix_enlarger)
