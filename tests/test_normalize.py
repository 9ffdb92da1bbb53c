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


# -- hardening: every unsupported input names what was expected and what was given ------

@pytest.mark.parametrize("bad,exc,msg", [
    (np.zeros((4, 4), np.int8), TypeError, r"dtype int8 \(convert 0\.\.255 data"),
    (np.zeros((4, 4), np.int64), TypeError, "dtype int64"),
    (np.zeros((4, 4), np.uint32), TypeError, "dtype uint32"),
    (np.zeros((4, 4), np.uint64), TypeError, "dtype uint64"),
    (np.zeros((4, 4), np.complex128), TypeError, "dtype complex128; expected uint8, uint16"),
    (np.zeros((4, 4), "datetime64[s]"), TypeError, "dtype datetime64"),
    (np.zeros((4, 4), "U1"), TypeError, "dtype <U1"),
    (np.zeros((4, 4), "S1"), TypeError, "dtype |S1"),
    (np.zeros((4, 4), [("g", np.uint8)]), TypeError, "unsupported page dtype"),
    (np.array(0.5, np.float32), ValueError, r"\(\) \(0-D\); expected H x W"),
    (np.zeros((1, 1, 1, 1, 1), np.uint8), ValueError, "5-D"),
    (np.zeros((4, 4, 0), np.uint8), ValueError, "channels 0"),
    (np.zeros((0, 0), np.float32), ValueError, "empty page of shape"),
    (np.zeros((4, 0, 3), np.uint8), ValueError, "expected at least 1 x 1"),
    (3.0, TypeError, "got float"),
    ("page.png", TypeError, "got str; convert it with numpy.asarray"),
])
def test_more_unsupported_pages_are_refused_naming_expected_and_given(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        check_page(bad)


def test_bool_mask_gets_a_hint_how_to_pass_it():
    with pytest.raises(TypeError, match=r"dtype bool.*astype\(numpy.uint8\) \* 255"):
        check_page(np.ones((3, 3), bool))


def test_message_lists_the_supported_dtypes_and_shapes():
    with pytest.raises(TypeError) as e:
        check_page(np.zeros((2, 2), np.int32))
    assert "uint8, uint16, or float16/float32/float64 with values in [0, 1]" in str(e.value)
    with pytest.raises(ValueError) as e:
        check_page(np.zeros((2, 2, 2, 2), np.uint8))
    assert "H x W x 3 (BGR) or H x W x 4 (BGRA)" in str(e.value)


def test_nan_and_infinity_are_counted():
    img = np.full((5, 5, 3), 0.5, np.float64)
    img[0, 0, 0] = img[4, 4, 2] = np.nan
    img[2, 2, 1] = -np.inf
    with pytest.raises(ValueError, match="contains 2 NaN and 1 infinite values; expected finite"):
        check_page(img)


def test_nan_in_the_alpha_channel_is_refused():
    img = np.ones((3, 3, 4), np.float32)
    img[1, 1, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        check_page(img)


def test_huge_float64_is_reported_as_out_of_range_not_as_infinite():
    # 1e300 overflows float32; the check runs on the page's own dtype.
    img = np.full((2, 2), 0.5)
    img[0, 0] = 1e300
    with pytest.raises(ValueError, match=r"values in \[0\.5, 1e\+300\]; expected"):
        check_page(img)


def test_float16_max_is_out_of_range():
    with pytest.raises(ValueError, match=r"values in \[0, 65504\]; expected values in \[0, 1\]"):
        check_page(np.array([[0, 65504]], np.float16))


def test_nan_far_down_a_page_larger_than_one_scan_block_is_found():
    img = np.full((2100, 2000), 0.5, np.float32)  # 4.2 M values: two scan blocks
    img[-1, -1] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        check_page(img)
    img[-1, -1] = 1.5
    with pytest.raises(ValueError, match=r"values in \[0\.5, 1\.5\]"):
        check_page(img)


@pytest.mark.parametrize("value,ok", [(1 + 1e-7, True), (-1e-7, True), (1 + 1e-4, False),
                                      (-1e-4, False)])
def test_rounding_noise_just_outside_0_1_is_clipped_but_real_excess_refused(value, ok):
    img = np.full((3, 3), 0.5, np.float64)
    img[1, 1] = value
    if ok:
        g = convert(img)
        assert 0.0 <= g.min() and g.max() <= 1.0
    else:
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            convert(img)


@pytest.mark.parametrize("dtype", [">u2", ">f4", ">f8", "<u2"])
def test_either_byte_order_is_read_correctly(dtype, rng):
    u8 = rng.integers(0, 256, (6, 7), dtype=np.uint8)
    native = u8.astype(np.uint16) * 257 if "u" in dtype else u8 / 255
    img = native.astype(dtype)
    np.testing.assert_allclose(convert(img), u8 / 255, atol=1e-6)


def test_read_only_and_strided_inputs_are_converted_without_copies_of_the_caller(rng):
    base = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    base.flags.writeable = False
    view = base[::3, ::-2]  # non-contiguous, negative stride, read-only
    np.testing.assert_array_equal(convert(view), convert(np.ascontiguousarray(view)))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself
def test_ndarray_subclasses_are_read_as_plain_arrays():
    m = np.matrix([[0, 255], [255, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(convert(m), [[0, 1], [1, 0]])


def test_gray_of_a_band_is_the_same_bytes_as_those_rows_of_the_whole_page(rng):
    img = rng.integers(0, 65536, (37, 23, 4), dtype=np.uint16)
    spec = check_page(img)
    whole = to_gray_float(img, spec)
    for a, b in [(0, 1), (5, 17), (17, 37)]:
        assert to_gray_float(img[a:b], spec).tobytes() == whole[a:b].tobytes()
