"""Property-based tests (hypothesis) over ``denoise_page`` and the tiling.

Generated pages cover every supported dtype (uint8, uint16, float16/32/64, either
byte order), every channel form (H x W, x1, x3, x4), sizes from 1 x 1 to several
thousand pixels per side (rarely, with a bounded area so the suite stays fast
on 2 cores), values at the extremes, and every memory layout we could think of:
contiguous, Fortran order, transposed, strided, reversed, channel-strided,
zero-stride broadcast views, read-only.

Most properties run through a real onnxruntime session of a tiny identity or
invert ONNX model (``helpers.make_onnx_model``), so the expected output has an
independent oracle (a float64 BT.601 gray conversion). A few run the shipped
model, whose exact outputs are not asserted (it may be retrained), only
invariances that must hold for any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from ocr_denoise import denoise_page
from ocr_denoise.tiling import TileGrid, apply_tiled, symmetric_indices, tile_array

SUPPORTED = [np.uint8, np.uint16, np.float16, np.float32, np.float64]
LAYOUTS = ["C", "F", "transposed", "strided", "reversed", "channel-strided", "broadcast",
           "byteswapped"]


def cases(n: int) -> settings:
    """``n`` generated examples; no deadline (no wall-clock assertions, 2 shared cores)."""
    return settings(max_examples=n, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- strategies --------------------------------------------------------------------------

@st.composite
def page_shapes(draw, max_area: int = 1_000_000, max_side: int = 4000,
                allow_big: bool = True) -> tuple[int, int]:
    """(H, W): mostly up to 40 px, often up to 400, rarely one side in the thousands."""
    size = draw(st.integers(0, 99))
    if size < 70 or not allow_big:
        return draw(st.integers(1, 40)), draw(st.integers(1, 40))
    if size < 94:
        return draw(st.integers(1, 400)), draw(st.integers(1, 400))
    long = draw(st.integers(1000, max_side))
    short = draw(st.integers(1, max(1, max_area // long)))
    return (long, short) if draw(st.booleans()) else (short, long)


@dataclass
class Page:
    """A generated page: ``arr`` is what the caller passes, ``values`` the same
    pixels as a plain C-contiguous array, ``base`` the buffer ``arr`` views."""

    arr: np.ndarray
    values: np.ndarray
    base: np.ndarray
    how: str


def _fill(rng: np.random.Generator, shape: tuple[int, ...], dtype, mode: str) -> np.ndarray:
    """Pixels in the dtype's valid range: random, constant, or only the extremes."""
    dt = np.dtype(dtype)
    hi = 1.0 if dt.kind == "f" else float(np.iinfo(dt).max)
    if mode == "random":
        x = rng.random(shape) * hi if dt.kind == "f" else rng.integers(0, hi + 1, shape)
    elif mode == "extremes":
        x = rng.integers(0, 2, shape) * hi
    elif mode == "black":
        x = np.zeros(shape)
    elif mode == "white":
        x = np.full(shape, hi)
    else:  # "edges": float corner cases (subnormals, -0.0, 1 - eps, rounding noise)
        assert dt.kind == "f"
        tiny = float(np.finfo(dt).smallest_subnormal)
        edge = [0.0, -0.0, tiny, 1.0, float(1 - np.finfo(dt).eps), 0.5]
        if dt.itemsize >= 4:
            edge += [1 + 5e-7, -5e-7]  # within the documented 1e-6 tolerance
        x = rng.choice(np.array(edge), shape)
    return np.asarray(x).astype(dt)


@st.composite
def pages(draw, dtypes=SUPPORTED, max_area: int = 1_000_000, allow_big: bool = True) -> Page:
    h, w = draw(page_shapes(max_area=max_area, allow_big=allow_big))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    modes = ["random", "extremes", "black", "white"] + (["edges"] if dtype.kind == "f" else [])
    mode = draw(st.sampled_from(modes))
    layout = draw(st.sampled_from(LAYOUTS))
    read_only = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (h, w) if channels is None else (h, w, channels)
    values = _fill(rng, shape, dtype, mode)

    if layout == "F":
        arr = base = np.asfortranarray(values)
    elif layout == "transposed":
        base = np.ascontiguousarray(np.swapaxes(values, 0, 1))
        arr = np.swapaxes(base, 0, 1)
    elif layout == "strided" and h * w <= 200_000:
        sy, sx = draw(st.integers(2, 3)), draw(st.integers(2, 3))
        big_shape = (h * sy, w * sx) + shape[2:]
        base = _fill(rng, big_shape, dtype, "random")  # garbage between the pixels
        base[::sy, ::sx] = values
        arr = base[::sy, ::sx]
    elif layout == "reversed":
        base = np.ascontiguousarray(values[::-1, ::-1])
        arr = base[::-1, ::-1]
    elif layout == "channel-strided" and channels is not None:
        base = _fill(rng, (h, w, 2 * channels), dtype, "random")
        base[..., ::2] = values
        arr = base[..., ::2]
    elif layout == "broadcast":  # zero strides; numpy makes it read-only
        values = np.ascontiguousarray(np.broadcast_to(values[:1], values.shape))
        base = values[:1].copy()
        arr = np.broadcast_to(base, values.shape)
    elif layout == "byteswapped" and dtype.itemsize > 1:
        arr = base = values.astype(dtype.newbyteorder())
    else:
        layout = "C"
        arr = base = values.copy()
    if read_only and arr.flags.writeable:
        arr.flags.writeable = False
    how = (f"{shape} {arr.dtype} {mode} {layout} read_only={not arr.flags.writeable} "
           f"strides={arr.strides}")
    side = max(h, w)
    event(f"longest side {'>= 1000' if side >= 1000 else '41..999' if side > 40 else '<= 40'}")
    event(f"layout {layout}")
    return Page(arr, values, base, how)


def expected_gray(values: np.ndarray) -> np.ndarray:
    """The oracle: float64 gray in [0, 1] (BT.601 weights, alpha over white), then
    rounded to uint8 levels. Written independently of ``normalize.py``."""
    x = values.astype(np.float64)
    if values.dtype.kind == "u":
        x /= float(np.iinfo(values.dtype).max)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim == 3:
        g = 0.114 * x[..., 0] + 0.587 * x[..., 1] + 0.299 * x[..., 2]
        if x.shape[2] == 4:
            g = g * x[..., 3] + (1.0 - x[..., 3])
        x = g
    return np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5)


def run_and_check_untouched(page: Page, **kwargs) -> np.ndarray:
    """denoise_page(page.arr), asserting the input (and its buffer) is unchanged."""
    before, base_before = page.arr.tobytes(), page.base.tobytes()
    writeable = page.arr.flags.writeable
    out = denoise_page(page.arr, device="cpu", **kwargs)
    assert page.arr.tobytes() == before, "input modified"
    assert page.base.tobytes() == base_before, "input's buffer modified"
    assert page.arr.flags.writeable == writeable
    h, w = page.values.shape[:2]
    assert out.shape == (h, w) and out.dtype == np.uint8 and out.flags.c_contiguous
    return out


# -- denoise_page through onnxruntime, tiny models ------------------------------------------

@cases(400)
@given(page=pages())
def test_identity_model_returns_the_gray_page_for_any_supported_input(identity_model, page):
    note(page.how)
    out = run_and_check_untouched(page, model=identity_model)
    diff = np.abs(out.astype(np.int64) - expected_gray(page.values))
    assert diff.max() <= 1, (diff.max(), np.unravel_index(diff.argmax(), diff.shape))
    # The memory layout never changes a single byte of the result.
    assert denoise_page(np.ascontiguousarray(page.values), model=identity_model,
                        device="cpu").tobytes() == out.tobytes()


@cases(150)
@given(page=pages(max_area=200_000), overlap=st.integers(0, 14),
       batch_size=st.sampled_from([1, 2, 7, 64, 512, 5000]))
def test_invert_model_with_any_overlap_and_batch_size_inverts_the_gray_page(
        invert_model, page, overlap, batch_size):
    note(page.how)
    assume(page.values.shape[0] * page.values.shape[1] <= 20_000 or batch_size >= 64)
    out = run_and_check_untouched(page, model=invert_model, overlap=overlap,
                                  batch_size=batch_size, guard=False)
    diff = np.abs((255 - out.astype(np.int64)) - expected_gray(page.values))
    assert diff.max() <= 1, diff.max()


# -- the shipped model: invariances only -------------------------------------------------

@cases(30)
@given(page=pages(dtypes=[np.uint8], max_area=60_000, allow_big=False))
def test_shipped_model_output_is_a_page_and_independent_of_layout_and_dtype(page):
    note(page.how)
    out = run_and_check_untouched(page)
    assert out.tobytes() == denoise_page(np.ascontiguousarray(page.values),
                                         device="cpu").tobytes()
    # v/255 and (257 v)/65535 are the same rational, so the same float32: the same bytes.
    as16 = page.values.astype(np.uint16) * 257
    assert denoise_page(as16, device="cpu").tobytes() == out.tobytes()


@cases(10)
@given(shape=page_shapes(max_area=300_000, max_side=3000))
def test_shipped_model_keeps_a_blank_page_blank_at_any_size(shape):
    white = np.full(shape, 255, np.uint8)
    out = denoise_page(white, device="cpu")
    assert out.shape == shape and out.dtype == np.uint8
    assert out.min() >= 200  # denoising white paper must not print anything on it


# -- unsupported input ----------------------------------------------------------------------

UNSUPPORTED_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint32, np.uint64, np.bool_,
                      np.complex64, np.complex128, np.object_, "datetime64[s]", "U2", "S2"]


@st.composite
def bad_pages(draw) -> tuple[object, type, str]:
    """(input, exception type, text the message must contain)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    kind = draw(st.sampled_from(["dtype", "ndim", "channels", "empty", "poison", "object"]))
    if kind == "dtype":
        dt = np.dtype(draw(st.sampled_from(UNSUPPORTED_DTYPES)))
        return np.zeros((h, w), dt), TypeError, f"dtype {dt}"
    if kind == "ndim":
        ndim = draw(st.sampled_from([0, 1, 4, 5]))
        shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
        return np.zeros(shape, np.uint8), ValueError, f"({ndim}-D)"
    if kind == "channels":
        c = draw(st.sampled_from([0, 2, 5, 6, 8, 32]))
        return np.zeros((h, w, c), np.uint8), ValueError, f"channels {c}"
    if kind == "empty":
        shape = draw(st.sampled_from([(0, w), (h, 0), (0, 0), (0, w, 3), (h, 0, 4)]))
        return np.zeros(shape, np.float32), ValueError, "empty page"
    if kind == "object":
        # (a str or Path is a file to read: denoise_page accepts paths)
        obj = draw(st.sampled_from([None, [[0, 1]], 1.0, b"\x89PNG"]))
        return obj, TypeError, "expected a page as a numpy array"
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    channels = draw(st.sampled_from([(), (1,), (3,), (4,)]))
    arr = rng.random((h, w) + channels).astype(dtype)
    poison = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1.001, -0.001, 255.0, -1e30]))
    k = draw(st.integers(1, 3))
    idx = tuple(rng.integers(0, s, k) for s in arr.shape)
    with np.errstate(over="ignore"):  # -1e30 becomes -inf in float16: still poison
        arr[idx] = poison
        as_stored = np.asarray(poison, dtype)
    if np.isnan(poison):
        return arr, ValueError, "NaN"
    if np.isinf(as_stored):
        return arr, ValueError, "infinite"
    return arr, ValueError, "expected values in [0, 1]"


@cases(200)
@given(bad=bad_pages())
def test_unsupported_input_is_refused_naming_it_and_left_untouched(identity_model, bad):
    arr, exc, text = bad
    before = arr.tobytes() if isinstance(arr, np.ndarray) else None
    with pytest.raises(exc) as info:
        denoise_page(arr, model=identity_model, device="cpu")
    assert text in str(info.value)
    assert "expected" in str(info.value)
    if before is not None:
        assert arr.tobytes() == before


# -- tiling, pure numpy ---------------------------------------------------------------------

@st.composite
def grids(draw, max_area: int = 400_000) -> tuple[int, int, int, int]:
    h, w = draw(page_shapes(max_area=max_area, max_side=3000))
    patch = draw(st.integers(2, 40))
    overlap = draw(st.integers(0, patch // 2))
    return h, w, patch, overlap


@cases(200)
@given(g=grids(), batch_size=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1))
def test_tiling_an_identity_reproduces_any_page(g, batch_size, seed):
    h, w, patch, overlap = g
    page = np.random.default_rng(seed).random((h, w), dtype=np.float32)
    out = tile_array(page, lambda p: p, patch=patch, overlap=overlap, batch_size=batch_size)
    assert out.shape == page.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, page, atol=2e-6)


@cases(150)
@given(g=grids(max_area=100_000), b1=st.integers(1, 600), b2=st.integers(1, 600),
       seed=st.integers(0, 2**32 - 1))
def test_tiling_result_is_bit_identical_for_any_two_batch_sizes(g, b1, b2, seed):
    h, w, patch, overlap = g
    page = np.random.default_rng(seed).random((h, w), dtype=np.float32)
    fn = lambda p: p ** 2 + 0.1 * p[:, ::-1, :]  # noqa: E731 - position-dependent
    a = tile_array(page, fn, patch=patch, overlap=overlap, batch_size=b1)
    b = tile_array(page, fn, patch=patch, overlap=overlap, batch_size=b2)
    assert a.tobytes() == b.tobytes()


@cases(150)
@given(g=grids(max_area=100_000), batch_size=st.integers(1, 600))
def test_tiling_sees_every_patch_once_within_batch_limit_and_emits_each_row_once(g, batch_size):
    h, w, patch, overlap = g
    grid = TileGrid(h, w, patch, overlap)
    page = np.ones((h, w), np.float32)
    seen, rows = [], []

    def fn(p: np.ndarray) -> np.ndarray:
        assert p.shape[1:] == (patch, patch) and p.dtype == np.float32
        seen.append(len(p))
        return p

    def source(y0: int, y1: int) -> np.ndarray:
        assert 0 <= y0 < y1 <= h
        return page[y0:y1]

    apply_tiled(source, lambda a, b, r: rows.append((a, b, r.shape)), grid, fn,
                batch_size=batch_size)
    assert sum(seen) == grid.count and max(seen) <= batch_size
    assert rows[0][0] == 0 and rows[-1][1] == h
    assert all(rows[i][1] == rows[i + 1][0] for i in range(len(rows) - 1))
    assert all(shape == (b - a, w) for a, b, shape in rows)


@cases(300)
@given(n=st.integers(1, 50), before=st.integers(0, 200), after=st.integers(0, 200))
def test_symmetric_indices_match_numpy_symmetric_padding(n, before, after):
    want = np.pad(np.arange(n), (before, after), mode="symmetric")
    assert symmetric_indices(-before, n + after, n).tolist() == want.tolist()
