"""Page-level normalisation: flatten the paper to white and stretch the ink's contrast.

Why. A 28 x 28 patch cannot tell a grey blotch that is a coffee stain from one that
is a bold letter, nor faint ink on a faded page from faint text showing through
from the back: the answer depends on the rest of the page. Two page-wide
measurements settle it, and models trained with them (``metadata
preprocess=flatten-v1``) receive every page, in training and at run time,
through :func:`flatten_rows`:

* the **background**: the page mean-pooled over 4 x 4 blocks, closed (max then
  min filter, which removes anything darker and narrower than ``4 * CLOSE``
  pixels, i.e. text) and smoothed. (Within ``BLOCK * CLOSE / 2`` pixels of the
  page edge a steep lighting gradient is flattened less: the closing sees only
  one side of it.) Dividing by it turns stains, shadows, uneven
  lighting and grey paper into white paper (Lu, Su and Tan's DIBCO 2009 winner
  estimates the background the same way);
* the **ink level**: how dark the darkest ink is after flattening (a high
  percentile of block darkness). Darkness is divided by it, so faded ink is
  stretched towards black while text showing through from the back stays
  lighter than the front's ink. The gain is capped at ``1 / MIN_INK`` so an
  empty page's noise is not blown up.

Both are computed once per page from a 1/16-size copy (a few MB even for a
600-DPI A3 page); the page is then converted band by band, like the rest of the
pipeline, and any band comes out bit-identical to the same rows of a whole-page
conversion. Inputs and outputs: float32 rows in [0, 1], white = 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

#: The preprocessing name a model's ONNX metadata (key ``preprocess``) gives to ask for this.
NAME = "flatten-v1"
#: Block size of the low-resolution copy the page-wide levels are measured on.
BLOCK = 4
#: Closing kernel in blocks: features darker and narrower than BLOCK * CLOSE px are not paper.
CLOSE = 9
#: Percentile of block darkness taken as the ink level, and its floor (caps the gain at 4).
INK_PERCENTILE = 99.5
MIN_INK = 0.25
#: Background below this is treated as this (a black scan border divides to white, not inf).
MIN_BACKGROUND = 0.05
_BAND = 512  # rows per block when measuring (a multiple of BLOCK)

RowSource = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class PageLevels:
    """What :func:`measure` learnt about a page: its background at 1/BLOCK scale
    (float32, ceil(H/BLOCK) x ceil(W/BLOCK)) and the gain applied to darkness."""

    background: np.ndarray
    gain: float
    height: int
    width: int


def _pool(rows: np.ndarray) -> np.ndarray:
    """Mean over BLOCK x BLOCK blocks; a ragged last block is padded by replication."""
    h, w = rows.shape
    ph, pw = -h % BLOCK, -w % BLOCK
    if ph or pw:
        rows = np.pad(rows, ((0, ph), (0, pw)), mode="edge")
    H, W = rows.shape
    # INTER_AREA at an integer factor is the block mean, 10x faster than numpy's.
    return cv2.resize(np.ascontiguousarray(rows, dtype=np.float32), (W // BLOCK, H // BLOCK),
                      interpolation=cv2.INTER_AREA)


def measure(source: RowSource, height: int, width: int) -> PageLevels:
    """Measure a page's background and ink level, reading it through ``source(y0, y1)``
    (float32 rows y0..y1 of the page in [0, 1]) one band after another."""
    small = np.concatenate([_pool(source(y0, min(height, y0 + _BAND)))
                            for y0 in range(0, height, _BAND)])
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (CLOSE, CLOSE))
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_REPLICATE)
    bg = cv2.blur(bg, (CLOSE, CLOSE), borderType=cv2.BORDER_REPLICATE)
    bg = np.clip(np.maximum(bg, small), MIN_BACKGROUND, 1.0).astype(np.float32)
    dark = np.clip(1.0 - small / bg, 0.0, 1.0)
    ink = float(np.percentile(dark, INK_PERCENTILE))
    return PageLevels(bg, 1.0 / max(ink, MIN_INK), height, width)


def background_rows(y0: int, y1: int, levels: PageLevels) -> np.ndarray:
    """The measured background of page rows y0..y1, at full resolution (float32)."""
    hs, ws = levels.background.shape
    r0 = max(0, y0 // BLOCK - 1)
    r1 = min(hs, -(-y1 // BLOCK) + 1)
    # Resizing a crop with one spare block each side gives exactly the rows a
    # whole-page resize would (cv2 maps dst j to src (j + 0.5) / BLOCK - 0.5).
    up = cv2.resize(levels.background[r0:r1], (ws * BLOCK, (r1 - r0) * BLOCK),
                    interpolation=cv2.INTER_LINEAR)
    return up[y0 - r0 * BLOCK : y1 - r0 * BLOCK, : levels.width]


def flatten_rows(rows: np.ndarray, y0: int, levels: PageLevels) -> np.ndarray:
    """Rows y0..y0+len(rows) of a page (float32, [0, 1]) -> flattened float32 rows in [0, 1]."""
    bg = background_rows(y0, y0 + rows.shape[0], levels)
    # 1 - clip((1 - rows / bg) * gain, 0, 1), one buffer: a third less time per band
    # than a temporary per step, and the same bytes.
    out = np.divide(rows, bg, dtype=np.float32)
    np.subtract(np.float32(1.0), out, out=out)
    np.multiply(out, np.float32(levels.gain), out=out)
    np.clip(out, 0.0, 1.0, out=out)
    return np.subtract(np.float32(1.0), out, out=out)


def flatten_page(page: np.ndarray) -> np.ndarray:
    """A whole H x W float32 page in [0, 1] -> its flattened copy (for training)."""
    page = np.asarray(page, dtype=np.float32)
    h, w = page.shape
    levels = measure(lambda a, b: page[a:b], h, w)
    return flatten_rows(page, 0, levels)
