"""Tiling is pure numpy: check geometry, blending and band processing with plain functions."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocr_denoise.errors import SettingsError
from ocr_denoise.tiling import TileGrid, apply_tiled, blend_window, symmetric_indices, tile_array

SIZES = [(1, 1), (1, 2), (2, 1), (5, 7), (27, 28), (28, 28), (29, 29), (56, 57), (3, 200),
         (123, 301)]


@pytest.mark.parametrize("overlap", [0, 1, 4, 6, 14])
def test_window_shifts_sum_to_one(overlap):
    w = np.sqrt(np.diag(blend_window(28, overlap)))  # the separable 1-D profile
    s = 28 - overlap
    total = np.zeros(28 * 4)
    for k in range(3):
        total[k * s : k * s + 28] += w
    # Away from the first rising and last falling ramp, weights sum to exactly 1.
    assert np.allclose(total[overlap : 2 * s + overlap], 1.0, atol=1e-6)


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("overlap", [0, 3, 6, 14])
def test_identity_function_reproduces_page_exactly(rng, h, w, overlap):
    page = rng.random((h, w), dtype=np.float32)
    out = tile_array(page, lambda p: p, overlap=overlap)
    assert out.shape == page.shape
    np.testing.assert_allclose(out, page, atol=1e-6)


@pytest.fixture(params=[1, 512], ids=["bands-of-one-row", "bands-of-512"])
def band_patches(request, monkeypatch):
    """Run a test with bands of one patch row (many bands: the carry between bands and
    later bands' origins are exercised) and with the default size."""
    from ocr_denoise import tiling
    monkeypatch.setattr(tiling, "BAND_PATCHES", request.param)
    return request.param


@pytest.mark.parametrize("h,w", [(5, 7), (56, 57), (123, 301)])
@pytest.mark.parametrize("batch_size", [1, 7, 128])
def test_context_is_asked_for_each_patchs_page_origin(rng, h, w, batch_size, band_patches):
    """A context function that cuts the mirror-padded page at the origins it is
    given, passed straight through, rebuilds the page: only if every origin is the
    one of the patch it comes with."""
    page = rng.random((h, w), dtype=np.float32)

    def cut(ys, xs):
        out = np.empty((len(ys), 28, 28), np.float32)
        for i, (y, x) in enumerate(zip(ys, xs)):
            r = symmetric_indices(y, y + 28, h)
            c = symmetric_indices(x, x + 28, w)
            out[i] = page[np.ix_(r, c)]
        return out

    grid = TileGrid(h, w, 28, 6)
    got = np.empty_like(page)

    def sink(y0, y1, rows):
        got[y0:y1] = rows

    apply_tiled(lambda a, b: page[a:b], sink, grid, lambda p, ctx: ctx,
                batch_size=batch_size, context=cut)
    np.testing.assert_allclose(got, page, atol=1e-6)


def test_every_patch_seen_once_and_batches_respect_limit(rng):
    page = rng.random((100, 90), dtype=np.float32)
    grid = TileGrid(100, 90, 28, 6)
    sizes = []

    def fn(p):
        sizes.append(len(p))
        return p

    tile_array(page, fn, overlap=6, batch_size=5)
    assert sum(sizes) == grid.count
    assert max(sizes) <= 5


@pytest.mark.parametrize("batch_size", [1, 3, 17, 10_000])
def test_result_does_not_depend_on_batch_size(rng, batch_size, monkeypatch):
    from ocr_denoise import tiling
    page = rng.random((70, 111), dtype=np.float32)
    fn = lambda p: p ** 2 + 0.1 * p[:, ::-1, :]  # position-dependent inside a patch
    ref = tile_array(page, fn, batch_size=10_000)  # one band
    for band in (1, 512):  # and many: bands of one patch row, then the default
        monkeypatch.setattr(tiling, "BAND_PATCHES", band)
        np.testing.assert_array_equal(tile_array(page, fn, batch_size=batch_size), ref)


def test_sink_receives_each_row_once_in_order(rng, band_patches):
    page = rng.random((200, 40), dtype=np.float32)
    got = []
    apply_tiled(lambda a, b: page[a:b], lambda a, b, r: got.append((a, b, r.shape)),
                TileGrid(200, 40, 28, 6), lambda p: p, batch_size=2)
    assert got[0][0] == 0 and got[-1][1] == 200
    assert all(got[i][1] == got[i + 1][0] for i in range(len(got) - 1))
    assert all(shape == (b - a, 40) for a, b, shape in got)


@pytest.mark.parametrize("overlap,width", [(4, 1), (6, 1), (8, 2), (12, 3)])
def test_blending_hides_patch_borders(overlap, width):
    """A function wrong only on the outermost pixels of each patch leaves no grid."""
    page = np.full((120, 120), 0.5, np.float32)

    def border_damage(p):
        q = p.copy()
        q[:, :width, :] = q[:, -width:, :] = 0.0
        q[:, :, :width] = q[:, :, -width:] = 0.0
        return q

    assert tile_array(page, border_damage, overlap=0).min() == 0.0  # no blending: a grid
    np.testing.assert_allclose(tile_array(page, border_damage, overlap=overlap), 0.5, atol=1e-6)


def test_symmetric_indices_handles_single_pixel_and_wide_pads():
    assert symmetric_indices(-3, 4, 1).tolist() == [0] * 7
    assert symmetric_indices(-2, 5, 3).tolist() == [1, 0, 0, 1, 2, 2, 1]


@pytest.mark.parametrize("overlap", [-1, 15])
def test_bad_overlap_is_rejected(overlap):
    with pytest.raises(ValueError, match="overlap"):
        TileGrid(10, 10, 28, overlap)


@pytest.mark.parametrize("n", [1, 2, 5, 31, 32, 33, 100, 2550])
@pytest.mark.parametrize("pad", [0, 1, 4, 14, 70])
def test_column_pieces_gather_exactly_the_mirror_padded_columns(n, pad):
    from ocr_denoise.tiling import column_pieces, symmetric_indices
    idx = symmetric_indices(-pad, n + pad, n)
    a = np.arange(3 * n, dtype=np.float32).reshape(3, n)
    got = np.concatenate([a[:, p] for p in column_pieces(idx)], axis=1)
    np.testing.assert_array_equal(got, a[:, idx])


@pytest.mark.parametrize("cols,batch_size", [(1, 1), (107, 128), (107, 1), (600, 128),
                                             (3, 10_000)])
def test_bands_hold_a_batch_and_about_band_patches(cols, batch_size):
    from ocr_denoise.tiling import BAND_PATCHES, band_rows
    target = max(batch_size, BAND_PATCHES)  # a batch at least, else about BAND_PATCHES
    rows = band_rows(cols, batch_size)
    assert rows >= 1
    assert rows == 1 or rows * cols <= target  # as many whole rows as fit the target,
    assert (rows + 1) * cols > target  # and not one row fewer


def test_source_reads_stay_bounded_by_the_band_on_a_wide_page(rng):
    """Memory beyond the page is O(band x width): no read spans more than a band's rows."""
    from ocr_denoise.tiling import band_rows
    h, w = 700, 2550
    page = rng.random((h, w), dtype=np.float32)
    grid = TileGrid(h, w, 28, 4)
    reads = []

    def source(a, b):
        reads.append(b - a)
        return page[a:b]

    out = np.empty_like(page)
    apply_tiled(source, lambda a, b, r: out.__setitem__(slice(a, b), r), grid, lambda p: p,
                batch_size=128)
    rows = band_rows(grid.cols, 128)
    assert 1 < len(reads) < grid.rows
    assert max(reads) <= (rows - 1) * grid.stride + grid.patch
    np.testing.assert_array_equal(out, page)


def inked_paper(rng, h, w, level=0.98):
    """Paper at ``level`` with a few dark blobs: most patches are blank, some are not."""
    page = np.full((h, w), level, np.float32)
    for _ in range(4):
        y, x = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
        page[y : y + 6, x : x + 6] = rng.random((6, 6), dtype=np.float32) * 0.5
    return page


@pytest.mark.parametrize("batch_size", [1, 7, 128])
def test_blank_patches_skip_the_function_and_come_out_white(rng, batch_size, band_patches):
    page = inked_paper(rng, 150, 170)
    seen = []

    def fn(p):
        seen.append(p.reshape(len(p), -1).min(axis=1))
        return p

    out = tile_array(page, fn, batch_size=batch_size, skip_white=0.97)
    lows = np.concatenate(seen)
    assert (lows < 0.97).all()  # nothing blank reached it
    assert 0 < len(lows) < TileGrid(150, 170).count  # and only part of the page was blank
    assert max(len(s) for s in seen) <= batch_size
    ink = page < 0.97
    # The blobs come back as they went in (identity); the paper far from them is white.
    np.testing.assert_allclose(out[ink], page[ink], atol=1e-6)
    assert np.isclose(out, 1.0).mean() > 0.5
    # Without skipping the identity gives the page back, paper at 0.98 included.
    np.testing.assert_allclose(tile_array(page, fn, batch_size=batch_size), page, atol=1e-6)


def test_skipping_gives_the_same_result_for_any_band_and_batch_size(rng, monkeypatch):
    from ocr_denoise import tiling
    page = inked_paper(rng, 90, 133)
    fn = lambda p: p ** 2 + 0.1 * p[:, ::-1, :]  # position-dependent inside a patch
    ref = tile_array(page, fn, batch_size=10_000, skip_white=0.97)
    assert not np.allclose(ref, tile_array(page, fn, batch_size=10_000))
    for band in (1, 512):
        monkeypatch.setattr(tiling, "BAND_PATCHES", band)
        for batch_size in (1, 5, 128):
            np.testing.assert_array_equal(
                tile_array(page, fn, batch_size=batch_size, skip_white=0.97), ref)


def test_a_blank_page_never_calls_the_function():
    calls = []
    out = tile_array(np.full((60, 70), 0.99, np.float32), lambda p: calls.append(p) or p,
                     skip_white=0.97)
    assert calls == [] and (out == 1.0).all()


def test_skipped_patches_take_their_context_origins_with_them(rng, band_patches):
    """With blank patches left out, each patch still gets its own context: a context
    function cutting the page at the given origins, passed through, rebuilds the inked
    part of the page (a wrong origin would move the blobs)."""
    h, w = 123, 301
    page = inked_paper(rng, h, w)

    def cut(ys, xs):
        out = np.empty((len(ys), 28, 28), np.float32)
        for i, (y, x) in enumerate(zip(ys, xs)):
            out[i] = page[np.ix_(symmetric_indices(y, y + 28, h), symmetric_indices(x, x + 28, w))]
        return out

    got = np.empty_like(page)

    def sink(y0, y1, rows):
        got[y0:y1] = rows

    apply_tiled(lambda a, b: page[a:b], sink, TileGrid(h, w, 28, 6), lambda p, ctx: ctx,
                batch_size=7, context=cut, skip_white=0.97)
    ink = page < 0.97
    np.testing.assert_allclose(got[ink], page[ink], atol=1e-6)


# -- bands on several threads --------------------------------------------------------------

@pytest.mark.parametrize("workers", [2, 3, 8])
@pytest.mark.parametrize("shape,overlap,batch,band", [
    ((200, 131), 4, 7, 1), ((97, 40), 6, 2, 1), ((300, 61), 0, 5, 1), ((55, 300), 14, 128, 1),
    ((29, 29), 4, 1, 1)])
def test_any_number_of_workers_gives_the_same_bytes(rng, monkeypatch, workers, shape,
                                                    overlap, batch, band):
    from ocr_denoise import tiling
    monkeypatch.setattr(tiling, "BAND_PATCHES", band)  # many bands, so threads overlap
    page = inked_paper(rng, *shape)
    fn = lambda p: p ** 2 + 0.1 * p[:, ::-1, :]  # position-dependent inside a patch
    ref = tile_array(page, fn, overlap=overlap, batch_size=batch, skip_white=0.97)
    got = tile_array(page, fn, overlap=overlap, batch_size=batch, skip_white=0.97,
                     workers=workers)
    assert got.tobytes() == ref.tobytes()


def test_with_workers_each_row_reaches_the_sink_exactly_once_and_context_follows(rng,
                                                                                monkeypatch):
    import threading

    from ocr_denoise import tiling
    monkeypatch.setattr(tiling, "BAND_PATCHES", 1)  # a band per patch row: ten bands
    page = rng.random((230, 90), dtype=np.float32)
    grid = TileGrid(230, 90, 28, 4)
    seen = np.zeros(230, int)
    lock, threads = threading.Lock(), set()

    def sink(a, b, r):
        assert r.shape == (b - a, 90)
        with lock:
            seen[a:b] += 1
            threads.add(threading.get_ident())

    def ctx(ys, xs):  # the patch's own top-left pixel, checked by fn below
        return np.broadcast_to(page[np.clip(ys + 4, 0, 229), np.clip(xs + 4, 0, 89)]
                               [:, None, None], (len(ys), 28, 28)).astype(np.float32)

    def fn(p, c):
        inside = (c[:, 0, 0] == p[:, 4, 4])
        assert inside.all()  # each patch arrives with its own context
        return p

    apply_tiled(lambda a, b: page[a:b], sink, grid, fn, batch_size=9, context=ctx, workers=4)
    assert (seen == 1).all()
    assert len(threads) > 1  # the bands really ran on the pool


def test_an_error_in_one_band_reaches_the_caller_and_the_other_bands_stop(rng, monkeypatch):
    from ocr_denoise import tiling
    monkeypatch.setattr(tiling, "BAND_PATCHES", 1)
    page = rng.random((600, 60), dtype=np.float32)
    calls = []

    def fn(p):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("model failed on a batch")
        time.sleep(0.01)  # bands take time, as the model's do
        return p

    with pytest.raises(RuntimeError, match="model failed"):
        tile_array(page, fn, batch_size=3, workers=2)
    assert len(calls) < TileGrid(600, 60).count // 3  # not every band ran after it


def test_zero_workers_are_refused():
    with pytest.raises(SettingsError, match="workers must be >= 1"):
        tile_array(np.ones((30, 30), np.float32), lambda p: p, workers=0)


# -- output scale: P x P patches in, kP x kP out ---------------------------------------------

SCALED_SIZES = [(1, 1), (1, 2), (2, 1), (5, 7), (28, 28), (29, 57), (57, 29), (100, 3),
                (3, 100)]


def enlarge(a, k):
    """Pixel repetition on the last two axes: each pixel becomes a k x k block."""
    return np.repeat(np.repeat(a, k, axis=-2), k, axis=-1)


def bilinear(a, k):
    """Bilinear enlargement by k on the last two axes (pixel centres at (i + 0.5) / k - 0.5,
    clamped at the edges, as cv2.resize's INTER_LINEAR does)."""
    def axis(n):
        c = np.clip((np.arange(k * n) + 0.5) / k - 0.5, 0, n - 1)
        i0 = np.floor(c).astype(int)
        return i0, np.minimum(i0 + 1, n - 1), (c - i0).astype(np.float32)

    r0, r1, fr = axis(a.shape[-2])
    c0, c1, fc = axis(a.shape[-1])
    rows = a[..., r0, :] * (1 - fr)[:, None] + a[..., r1, :] * fr[:, None]
    return rows[..., c0] * (1 - fc) + rows[..., c1] * fc


def position_dependent_enlargement(k):
    """Enlarges by repetition after a map that depends on the position in the patch, so
    that a patch blended at a wrong place or with different weights would show."""
    return lambda p: enlarge(p ** 2 + 0.1 * p[:, ::-1, :], k)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("overlap", [0, 1, 2, 4, 6, 14])
def test_scaled_window_shifts_sum_to_one(k, overlap):
    """The output window ramps over k*o pixels; shifted by the output stride k*s, its
    copies still form a partition of unity."""
    P, o = 28 * k, overlap * k
    w = np.sqrt(np.diag(blend_window(P, o)))
    s = P - o
    total = np.zeros(P * 4)
    for i in range(3):
        total[i * s : i * s + P] += w
    assert np.allclose(total[o : 2 * s + o], 1.0, atol=1e-6)


@pytest.mark.parametrize("h,w", SCALED_SIZES)
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("overlap", [0, 2, 4])
def test_repetition_by_k_gives_the_page_enlarged_by_repetition(rng, h, w, k, overlap):
    page = rng.random((h, w), dtype=np.float32)
    out = tile_array(page, lambda p: enlarge(p, k), overlap=overlap, scale=k)
    assert out.shape == (k * h, k * w) and out.dtype == np.float32
    if overlap == 0:  # every output pixel is one patch's, with weight 1
        np.testing.assert_array_equal(out, enlarge(page, k))
    else:  # two weights summing to 1, in float32: no seams, to rounding
        np.testing.assert_allclose(out, enlarge(page, k), atol=1e-6)


@pytest.mark.parametrize("h,w", [(1, 1), (5, 7), (29, 57), (100, 3), (61, 130)])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("overlap", [0, 2, 4])
def test_scaled_result_is_bit_identical_for_any_band_batch_and_workers(rng, monkeypatch,
                                                                      h, w, k, overlap):
    from ocr_denoise import tiling
    page = rng.random((h, w), dtype=np.float32)
    fn = position_dependent_enlargement(k)
    ref = tile_array(page, fn, overlap=overlap, batch_size=10_000, scale=k)  # one band
    np.testing.assert_allclose(ref, enlarge(page ** 2, k), atol=0.11)  # near the map
    for band in (1, 512):  # bands of one patch row (many carries), then the default
        monkeypatch.setattr(tiling, "BAND_PATCHES", band)
        for batch_size in (1, 5, 128):
            for workers in (1, 2, 3):
                got = tile_array(page, fn, overlap=overlap, batch_size=batch_size,
                                 workers=workers, scale=k)
                assert got.tobytes() == ref.tobytes(), (band, batch_size, workers)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("overlap", [2, 4, 6])
def test_bilinear_patches_blend_into_the_bilinear_page_without_seams(rng, k, overlap):
    """A per-patch bilinear enlargement is wrong only on each patch's outermost output
    pixel (it clamps where the page would interpolate across the patch edge); those get
    no weight, so the tiled result is the whole page enlarged bilinearly."""
    page = rng.random((45, 83), dtype=np.float32)
    out = tile_array(page, lambda p: bilinear(p, k), overlap=overlap, scale=k)
    np.testing.assert_allclose(out, bilinear(page, k), atol=2e-6)
    assert not np.allclose(tile_array(page, lambda p: bilinear(p, k), overlap=0, scale=k),
                           bilinear(page, k), atol=1e-3)  # without blending: seams


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("shape,overlap,batch", [((200, 131), 4, 7), ((97, 40), 6, 2),
                                                  ((29, 29), 4, 1), ((55, 300), 14, 128)])
def test_bilinear_enlargement_gives_the_same_bytes_on_one_or_three_workers(
        rng, monkeypatch, k, shape, overlap, batch):
    from ocr_denoise import tiling
    monkeypatch.setattr(tiling, "BAND_PATCHES", 1)  # many bands, so threads overlap
    page = inked_paper(rng, *shape)
    fn = lambda p: bilinear(p, k)
    ref = tile_array(page, fn, overlap=overlap, batch_size=batch, scale=k, skip_white=0.97)
    got = tile_array(page, fn, overlap=overlap, batch_size=batch, scale=k, skip_white=0.97,
                     workers=3)
    assert got.shape == (k * shape[0], k * shape[1])
    assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("batch_size", [1, 7, 128])
def test_skipped_white_patches_come_out_as_white_kp_blocks(rng, k, batch_size, band_patches):
    page = inked_paper(rng, 150, 170)
    seen = []

    def fn(p):
        assert p.shape[1:] == (28, 28)
        seen.append(p.reshape(len(p), -1).min(axis=1))
        return enlarge(p, k)

    out = tile_array(page, fn, batch_size=batch_size, skip_white=0.97, scale=k)
    assert out.shape == (k * 150, k * 170)
    lows = np.concatenate(seen)
    assert (lows < 0.97).all()  # nothing blank reached fn
    assert 0 < len(lows) < TileGrid(150, 170).count
    ink = enlarge(page, k) < 0.97
    np.testing.assert_allclose(out[ink], enlarge(page, k)[ink], atol=1e-6)
    # Far from the blobs the enlarged paper is white: exactly the skipped blocks' 1.0.
    assert np.isclose(out, 1.0).mean() > 0.5
    # The same output pixels are white as at k = 1, enlarged: blocks land at k times.
    white1 = np.isclose(tile_array(page, lambda p: p, batch_size=batch_size,
                                   skip_white=0.97), 1.0)
    np.testing.assert_array_equal(np.isclose(out, 1.0), enlarge(white1, k))


@pytest.mark.parametrize("k", [2, 3])
def test_a_blank_page_at_scale_is_white_and_never_calls_the_function(k):
    """White to float32 rounding: the k*o-pixel ramps (over 12 pixels at k = 3, o = 4)
    need not be dyadic fractions, so two weights may sum to 1 within an ulp, not to 1."""
    calls = []
    out = tile_array(np.full((60, 70), 0.99, np.float32), lambda p: calls.append(p) or p,
                     skip_white=0.97, scale=k)
    assert calls == [] and out.shape == (60 * k, 70 * k)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def enlarged_cut(page, k, P=28):
    """A context function: the page enlarged by repetition, mirror-padded, cut at the
    output windows k * (ys, xs), kP x kP each."""
    h, w = page.shape
    big = enlarge(page, k)

    def cut(ys, xs):
        out = np.empty((len(ys), k * P, k * P), np.float32)
        for i, (y, x) in enumerate(zip(ys, xs)):
            r = symmetric_indices(k * y, k * y + k * P, k * h)
            c = symmetric_indices(k * x, k * x + k * P, k * w)
            out[i] = big[np.ix_(r, c)]
        return out

    return cut


@pytest.mark.parametrize("h,w", [(5, 7), (29, 57), (123, 301)])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("batch_size", [1, 7, 128])
def test_scaled_context_reaches_fn_unchanged_at_each_patchs_output_window(
        rng, h, w, k, batch_size, band_patches):
    """Context is asked at input-page corners and may return kP x kP arrays; passed
    straight through by fn, cuts of the enlarged page at k*(ys, xs) rebuild the
    enlarged page: only if each patch comes with its own window."""
    page = rng.random((h, w), dtype=np.float32)
    shapes = []

    def fn(p, ctx):
        shapes.append((p.shape, ctx.shape))
        # The window's top-left k x k block is the patch's top-left pixel, enlarged.
        np.testing.assert_array_equal(ctx[:, 0, 0], p[:, 0, 0])
        return ctx

    got = np.empty((k * h, k * w), np.float32)
    apply_tiled(lambda a, b: page[a:b], lambda a, b, r: got.__setitem__(slice(a, b), r),
                TileGrid(h, w, 28, 6, scale=k), fn, batch_size=batch_size,
                context=enlarged_cut(page, k))
    assert all(ps[1:] == (28, 28) and cs == (ps[0], 28 * k, 28 * k) for ps, cs in shapes)
    np.testing.assert_allclose(got, enlarge(page, k), atol=1e-6)


@pytest.mark.parametrize("k", [2, 3])
def test_scaled_context_follows_skipped_patches_and_workers(rng, monkeypatch, k):
    from ocr_denoise import tiling
    monkeypatch.setattr(tiling, "BAND_PATCHES", 1)
    h, w = 123, 301
    page = inked_paper(rng, h, w)
    grid = TileGrid(h, w, 28, 4, scale=k)

    def run(workers):
        got = np.empty((k * h, k * w), np.float32)
        apply_tiled(lambda a, b: page[a:b], lambda a, b, r: got.__setitem__(slice(a, b), r),
                    grid, lambda p, ctx: ctx, batch_size=7, context=enlarged_cut(page, k),
                    skip_white=0.97, workers=workers)
        return got

    outs = [run(1), run(3)]
    ink = enlarge(page, k) < 0.97
    np.testing.assert_allclose(outs[0][ink], enlarge(page, k)[ink], atol=1e-6)
    assert outs[0].tobytes() == outs[1].tobytes()


@pytest.mark.parametrize("k", [2, 3])
def test_sink_receives_each_output_row_once_in_order_at_scale(rng, k, band_patches):
    page = rng.random((200, 41), dtype=np.float32)
    got = []
    apply_tiled(lambda a, b: page[a:b], lambda a, b, r: got.append((a, b, r.shape)),
                TileGrid(200, 41, 28, 6, scale=k), lambda p: enlarge(p, k), batch_size=2)
    assert got[0][0] == 0 and got[-1][1] == 200 * k
    assert all(got[i][1] == got[i + 1][0] for i in range(len(got) - 1))
    assert all(shape == (b - a, 41 * k) for a, b, shape in got)


@pytest.mark.parametrize("k", [2, 3])
def test_with_workers_each_output_row_reaches_the_sink_exactly_once(rng, monkeypatch, k):
    import threading

    from ocr_denoise import tiling
    monkeypatch.setattr(tiling, "BAND_PATCHES", 1)
    page = rng.random((230, 90), dtype=np.float32)
    seen = np.zeros(230 * k, int)
    lock, threads = threading.Lock(), set()

    def sink(a, b, r):
        assert r.shape == (b - a, 90 * k)
        with lock:
            seen[a:b] += 1
            threads.add(threading.get_ident())

    apply_tiled(lambda a, b: page[a:b], sink, TileGrid(230, 90, 28, 4, scale=k),
                lambda p: enlarge(p, k), batch_size=9, workers=3)
    assert (seen == 1).all()
    assert len(threads) > 1


def test_a_tall_page_at_scale_2_is_streamed_band_by_band(rng, monkeypatch):
    """3000 x 200 at k = 2: fn never gets more than a batch, output rows reach the sink
    in band-sized pieces while the page is still being read, and the memory the tiler
    allocates stays a few output bands, far below the 6000 x 400 output page."""
    import tracemalloc

    from ocr_denoise import tiling
    from ocr_denoise.tiling import band_rows
    monkeypatch.setattr(tiling, "BAND_PATCHES", 36)
    h, w, k, batch = 3000, 200, 2, 9
    page = rng.random((h, w), dtype=np.float32)
    grid = TileGrid(h, w, 28, 4, scale=k)
    rows = band_rows(grid.cols, batch)
    assert 1 < rows < grid.rows // 8  # many bands of several patch rows
    events, largest = [], [0]

    def source(a, b):
        events.append(("read", b - a))
        return page[a:b]

    def fn(p):
        largest[0] = max(largest[0], p.nbytes)
        return enlarge(p, k)

    def sink(a, b, r):  # keeps nothing: what the tiler holds is all that is held
        assert r.shape == (b - a, k * w)
        events.append(("rows", b - a))

    tracemalloc.start()
    try:
        apply_tiled(source, sink, grid, fn, batch_size=batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert largest[0] <= batch * 28 * 28 * 4
    written = [n for e, n in events if e == "rows"]
    assert sum(written) == k * h
    assert max(written) <= k * (rows * grid.stride + grid.overlap)  # a band's rows at most
    reads = [i for i, (e, _) in enumerate(events) if e == "read"]
    assert len(reads) > 8 and max(n for e, n in events if e == "read") <= (
        (rows - 1) * grid.stride + grid.patch)
    # Before the last band is read, all but about a band of output rows are out.
    assert sum(n for e, n in events[: reads[-1]] if e == "rows") >= k * (
        h - (rows + 1) * grid.stride)
    band_out = rows * grid.cols * (k * 28) ** 2 * 4  # a band's kP x kP results, float32
    assert peak <= 4 * band_out
    assert peak <= grid.out_height * grid.out_width * 4 // 4


@pytest.mark.parametrize("scale", [0, -1, 1.5, 2.0, "2", True, None])
def test_scale_must_be_an_int_of_at_least_one(scale):
    with pytest.raises(SettingsError, match="scale"):
        TileGrid(10, 10, 28, 4, scale=scale)


def test_scale_leaves_the_input_grid_alone_and_sizes_the_output():
    a, b = TileGrid(29, 57, 28, 4), TileGrid(29, 57, 28, 4, scale=3)
    assert (b.height, b.width, b.patch, b.overlap, b.stride, b.rows, b.cols, b.count) == (
        a.height, a.width, a.patch, a.overlap, a.stride, a.rows, a.cols, a.count)
    assert (a.out_height, a.out_width) == (29, 57)
    assert (b.out_height, b.out_width) == (87, 171)
    assert TileGrid(5, 5, scale=np.int64(2)).out_height == 10


@pytest.mark.parametrize("k,returns", [(2, lambda p: p), (1, lambda p: enlarge(p, 2)),
                                       (3, lambda p: enlarge(p, 2))])
def test_a_function_that_does_not_return_kp_patches_is_refused(k, returns):
    with pytest.raises(SettingsError, match=f"with scale {k} it must return"):
        tile_array(np.ones((40, 40), np.float32) * 0.5, returns, scale=k)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(h=st.integers(1, 90), w=st.integers(1, 90), patch=st.integers(2, 30),
       overlap_frac=st.floats(0, 1), k=st.sampled_from([1, 2, 3]),
       b1=st.integers(1, 200), b2=st.integers(1, 200), seed=st.integers(0, 2**32 - 1))
def test_any_grid_and_scale_enlarges_by_repetition_the_same_for_any_batches(
        h, w, patch, overlap_frac, k, b1, b2, seed):
    overlap = int(overlap_frac * (patch // 2))
    page = np.random.default_rng(seed).random((h, w), dtype=np.float32)
    a = tile_array(page, lambda p: enlarge(p, k), patch=patch, overlap=overlap,
                   batch_size=b1, scale=k)
    np.testing.assert_allclose(a, enlarge(page, k), atol=2e-6)
    fn = position_dependent_enlargement(k)
    x = tile_array(page, fn, patch=patch, overlap=overlap, batch_size=b1, scale=k)
    y = tile_array(page, fn, patch=patch, overlap=overlap, batch_size=b2, scale=k,
                   workers=2)
    assert x.tobytes() == y.tobytes()
