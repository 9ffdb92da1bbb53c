"""``denoise_page`` with Pillow images: every mode read by what its values mean, a mode L
image of the same size back with the input's DPI, and the README's pytesseract example
run as written. Real Pillow, real onnxruntime (shipped model), real tesseract."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, readme_block, text_page
from PIL import Image

from ocr_denoise import denoise_page


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    """A 60 x 80 uint8 text-like page with a few hundred distinct levels of noise."""
    rng = np.random.default_rng(7)
    g = text_page(rng, 60, 80)
    g = np.clip(g + 0.15 * rng.standard_normal(g.shape), 0, 1)
    return (g * 255).round().astype(np.uint8)


def _mode_images(g: np.ndarray) -> dict[str, Image.Image]:
    """The same grey page in every Pillow mode that can hold it (exactly, except
    YCbCr's rounding)."""
    L = Image.fromarray(g, "L")
    rgb = L.convert("RGB")
    opaque = np.full(g.shape, 255, np.uint8)
    g16 = g.astype(np.uint16) * 257  # 0..255 -> 0..65535 exactly
    return {
        "L": L,
        "LA": Image.merge("LA", [L, Image.fromarray(opaque)]),
        "La": Image.merge("LA", [L, Image.fromarray(opaque)]).convert("La"),
        "P": L.convert("P", palette=Image.Palette.ADAPTIVE, colors=256),
        "PA": Image.merge("RGBA", [*rgb.split(), Image.fromarray(opaque)]).convert("PA"),
        "RGB": rgb,
        "RGBA": rgb.convert("RGBA"),
        "RGBa": rgb.convert("RGBA").convert("RGBa"),
        "RGBX": rgb.convert("RGBX"),
        "CMYK": rgb.convert("CMYK"),
        "YCbCr": rgb.convert("YCbCr"),
        "I;16": Image.fromarray(g16),
        "I;16B": Image.frombytes("I;16B", L.size, g16.astype(">u2").tobytes()),
        "I": Image.fromarray(g16.astype(np.int32)),
        "F": Image.fromarray(g.astype(np.float32)),
    }


def test_each_mode_holding_the_same_page_denoises_like_the_uint8_array(gray):
    ref = denoise_page(gray, device="cpu")
    images = _mode_images(gray)
    assert {im.mode for im in images.values()} == set(images)  # each really is that mode
    worst = {}
    for mode, im in images.items():
        out = denoise_page(im, device="cpu")
        assert out.mode == "L" and out.size == im.size, mode
        worst[mode] = int(np.abs(np.asarray(out, np.int16) - ref).max())
    # Exact modes give the same bytes; YCbCr's round trip moves levels by 1-2.
    assert all(v == 0 for m, v in worst.items() if m != "YCbCr"), worst
    assert worst["YCbCr"] <= 4, worst


def test_16_bit_pages_keep_their_full_range_instead_of_being_clipped_to_white():
    """Pillow's own convert('L') clips I;16 and I to 0..255: ink at level 3276 of
    65535 would turn as white as the paper. It must stay ink."""
    page = text_page(np.random.default_rng(3), 60, 80)  # ink 0.05, paper 1.0
    ink = page < 0.5
    g16 = (page * 65535).round().astype(np.uint16)
    expected = denoise_page(g16, device="cpu")
    assert expected[ink].mean() < 100  # the ink survives denoising
    for im in (Image.fromarray(g16), Image.fromarray(g16.astype(np.int32))):
        assert np.asarray(im.convert("L")).min() == 255  # what Pillow would do
        out = np.asarray(denoise_page(im, device="cpu"))
        np.testing.assert_array_equal(out, expected, err_msg=im.mode)


def test_one_bit_page_is_read_as_black_and_white(gray):
    bw = Image.fromarray(gray).convert("1")  # dithered black and white
    as_array = np.asarray(bw).astype(np.uint8) * 255
    assert set(np.unique(as_array)) == {0, 255}
    out = denoise_page(bw, device="cpu")
    np.testing.assert_array_equal(np.asarray(out), denoise_page(as_array, device="cpu"))


def test_transparent_pixels_are_white_paper():
    ink = np.zeros((40, 40, 4), np.uint8)  # black, fully transparent
    white = np.full((40, 40), 255, np.uint8)
    for im in (Image.fromarray(ink, "RGBA"), Image.fromarray(ink[..., 2:], "LA")):
        out = denoise_page(im, device="cpu")
        np.testing.assert_array_equal(np.asarray(out), denoise_page(white, device="cpu"))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F"])
@pytest.mark.parametrize("dpi", [(300, 300), (200.5, 199.5), (72, 72), None])
def test_result_is_mode_L_of_the_same_size_with_the_input_dpi(gray, mode, dpi):
    im = _mode_images(gray).get(mode) or Image.fromarray(gray).convert(mode)
    im = im.copy()
    if dpi is not None:
        im.info["dpi"] = dpi
    out = denoise_page(im, device="cpu")
    assert (out.mode, out.size) == ("L", im.size)
    assert out.info.get("dpi") == dpi
    assert im.mode == mode and im.info.get("dpi") == dpi  # the input is left alone


def test_dpi_survives_saving_and_reading_back(gray, tmp_path):
    im = Image.fromarray(gray)
    im.info["dpi"] = (400, 400)
    out = denoise_page(im, device="cpu")
    out.save(tmp_path / "p.png", **out.info)  # as pytesseract saves its input
    with Image.open(tmp_path / "p.png") as back:
        assert tuple(round(v) for v in back.info["dpi"]) == (400, 400)


def test_input_image_pixels_are_not_modified(gray):
    for im in _mode_images(gray).values():
        before = im.tobytes()
        denoise_page(im, device="cpu")
        assert im.tobytes() == before, im.mode


@pytest.mark.parametrize("make, message", [
    (lambda: Image.fromarray(np.array([[-1, 70000]], np.int32)),
     r"mode I .*\[-1, 70000\]; expected 16-bit"),
    (lambda: Image.fromarray(np.array([[0.0, 300.0]], np.float32)),
     r"mode F .*\[0, 300\]; expected Pillow's 0..255"),
    (lambda: Image.fromarray(np.array([[0.0, np.nan]], np.float32)), r"mode F .*1 NaN or infinite"),
])
def test_values_a_mode_cannot_hold_as_a_page_are_refused_not_guessed(make, message):
    with pytest.raises(ValueError, match=message):
        denoise_page(make(), device="cpu")


# -- the README's example, as written ------------------------------------------------------


def test_readme_pytesseract_example_runs_and_reads_the_page():
    code = readme_block("### PIL and pytesseract")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    from ocr_denoise.ocr import normalize_text

    truth = set(normalize_text((REPO / "examples" / "sample_text.txt").read_text()).split())
    words = set(normalize_text(r.stdout).split())
    # The example prints what tesseract read from the denoised page: real words of
    # the page, not an empty string or an error (quality is test_ocr.py's job).
    assert len(words & truth) >= 5, r.stdout[:500]
