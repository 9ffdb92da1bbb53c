"""Every input form the API accepts maps to the same gray [0, 1] page; the rest is refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocr_denoise.normalize import check_page, to_gray_float, to_uint8


def convert(img):
    return to_gray_float(img, check_page(img))


def test_uint8_uint16_and_float_agree(rng):
    u8 = rng.integers(0, 256, (9, 13), dtype=np.uint8)
    ref = u8.astype(np.float32) / 255
    np.testing.assert_allclose(convert(u8), ref, atol=1e-6)
    np.testing.assert_allclose(convert(u8.astype(np.uint16) * 257), ref, atol=1e-6)
    np.testing.assert_allclose(convert(ref.astype(np.float64)), ref, atol=1e-6)
    np.testing.assert_allclose(convert(u8[..., None]), ref, atol=1e-6)


def test_bgr_matches_opencv_gray(rng):
    bgr = rng.integers(0, 256, (11, 7, 3), dtype=np.uint8)
    want = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255
    np.testing.assert_allclose(convert(bgr), want, atol=1 / 255 + 1e-6)


def test_transparent_pixels_become_white_paper():
    bgra = np.zeros((2, 2, 4), np.uint8)  # black ink...
    bgra[0, 0, 3] = 255  # ...opaque in one pixel only
    g = convert(bgra)
    assert g[0, 0] == 0.0
    assert np.all(g.ravel()[1:] == 1.0)


def test_input_is_not_modified(rng):
    img = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    before = img.copy()
    convert(img)
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize("bad,exc,msg", [
    (None, TypeError, "got None"),
    ([[1, 2]], TypeError, "got list"),
    (np.zeros((4, 4), np.int32), TypeError, "int32"),
    (np.zeros((4, 4), bool), TypeError, "bool"),
    (np.zeros((4, 4), np.complex64), TypeError, "complex64"),
    (np.zeros((4, 4), object), TypeError, "object"),
    (np.zeros((4,), np.uint8), ValueError, "1-D"),
    (np.zeros((2, 4, 4, 1), np.uint8), ValueError, "4-D"),
    (np.zeros((4, 4, 5), np.uint8), ValueError, "channels 5"),
    (np.zeros((4, 4, 2), np.uint8), ValueError, "channels 2"),
    (np.zeros((0, 4), np.uint8), ValueError, "empty"),
])
def test_unsupported_pages_are_refused_with_what_was_expected(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        check_page(bad)


@pytest.mark.parametrize("value,msg", [(np.nan, "NaN"), (np.inf, "infinite"),
                                       (255.0, r"\[0, 1\]"), (-0.5, r"\[0, 1\]")])
def test_bad_float_values_are_refused(value, msg):
    img = np.full((3, 3), 0.5, np.float32)
    img[1, 1] = value
    with pytest.raises(ValueError, match=msg):
        convert(img)


def test_to_uint8_rounds_and_clips():
    x = np.array([-0.1, 0.0, 0.5 / 255, 0.5, 1.0, 1.2], np.float32)
    assert to_uint8(x).tolist() == [0, 0, 1, 128, 255, 255]
