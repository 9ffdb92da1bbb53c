"""ocr_denoise.context: the quarter-resolution page and the windows cut from it."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_denoise.context import SCALE, quarter_page, windows
from ocr_denoise.tiling import TileGrid

P = 28


def _quarter(page: np.ndarray) -> np.ndarray:
    return quarter_page(lambda a, b: page[a:b], page.shape[0], page.shape[1], P)


def test_quarter_page_is_the_block_mean_inside_white_padding(rng):
    page = rng.random((600, 92), dtype=np.float32)  # taller than one 256-row band
    q = _quarter(page)
    want = page.reshape(600 // SCALE, SCALE, 92 // SCALE, SCALE).mean(axis=(1, 3))
    np.testing.assert_allclose(q[P:-P, P:-P], want, atol=1e-6)
    assert (q[:P] == 1).all() and (q[-P:] == 1).all()
    assert (q[:, :P] == 1).all() and (q[:, -P:] == 1).all()


def test_quarter_page_of_an_odd_sized_page_is_the_block_mean_of_it_on_white(rng):
    page = rng.random((257, 93), dtype=np.float32)  # ragged last block row and column
    white = np.ones((260, 96), np.float32)
    white[:257, :93] = page
    want = white.reshape(65, SCALE, 24, SCALE).mean(axis=(1, 3))
    np.testing.assert_allclose(_quarter(page)[P:-P, P:-P], want, atol=1e-6)


def test_blocks_overhanging_the_page_count_the_missing_pixels_as_white():
    page = np.zeros((5, 9), np.float32)  # ink everywhere; last block row/column overhang
    q = _quarter(page)[P:-P, P:-P]
    assert q.shape == (2, 3)
    assert q[0, 0] == 0.0
    assert q[0, 2] == pytest.approx(12 / 16)  # 1 of 4 columns is page
    assert q[1, 2] == pytest.approx(15 / 16)  # 1 pixel of 16


def test_window_is_centred_on_the_block_of_the_patch_centre():
    page = np.ones((300, 260), np.float32)
    page[141, 97] = 0.0  # a dark pixel: darkens block (35, 24)
    q = _quarter(page)
    y, x = 141 - P // 2, 97 - P // 2  # patch centred on it
    w = windows(q, np.array([y]), np.array([x]), P)[0]
    dark = np.argwhere(w < 1)
    assert dark.tolist() == [[P // 2, P // 2]]


@pytest.mark.parametrize("h,w", [(1, 1), (3, 700), (700, 3), (61, 47), (257, 256)])
@pytest.mark.parametrize("overlap", [0, 4, 14])
def test_every_patch_of_the_tilers_padded_grid_has_a_window(rng, h, w, overlap):
    page = rng.random((h, w), dtype=np.float32)
    grid = TileGrid(h, w, P, overlap=overlap)
    ys = np.arange(grid.rows) * grid.stride - grid.overlap
    xs = np.arange(grid.cols) * grid.stride - grid.overlap
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    win = windows(_quarter(page), yy.ravel(), xx.ravel(), P)
    assert win.shape == (grid.count, P, P) and win.dtype == np.float32


def test_origins_beyond_one_patch_outside_the_page_are_refused(rng):
    q = _quarter(rng.random((40, 40), dtype=np.float32))
    with pytest.raises(ValueError, match="outside the page"):
        windows(q, np.array([-3 * P]), np.array([0]), P)
