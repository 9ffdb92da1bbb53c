"""Tiling is pure numpy: check geometry, blending and band processing with plain functions."""

from __future__ import annotations

import time

import numpy as np
import pytest

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
