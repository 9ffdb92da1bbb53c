"""Page context: what a patch's surroundings look like, at a quarter of the resolution.

A 28 x 28 patch cannot tell whether the page it comes from is speckled, blurred or
showing text through from the back, nor whether a dark blob continues into a stain
or a line of text. A model that declares ``context=quarter-v1`` in its metadata
reads, next to each patch, a second P x P window: the page (as the model sees it,
i.e. after any ``preprocess``) averaged over 4 x 4 blocks, centred on the patch, so
it covers 4P x 4P pixels (112 x 112 for P = 28).

The same two functions serve training (``train/data.py``) and the runtime
(``session.py``), so the windows a model learnt on are the windows it is given.
numpy and OpenCV's block mean; knows nothing about ONNX or files.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .errors import PageError

NAME = "quarter-v1"
SCALE = 4
#: Blocks read per band in ``quarter_page`` (rows = 4 x this): bounds its memory.
_BAND_BLOCKS = 64

#: (y0, y1) -> float32 rows y0..y1-1 of the page, full width (as ``tiling.RowSource``).
RowSource = Callable[[int, int], np.ndarray]


def quarter_page(source: RowSource, height: int, width: int, patch: int) -> np.ndarray:
    """The H x W page as float32 4 x 4 block means, padded with ``patch`` white blocks
    (1.0) on every side: shape (ceil(H/4) + 2P, ceil(W/4) + 2P).

    Blocks that overhang the page's bottom or right edge count the missing pixels
    as white paper, as the padding does: beyond the page there is nothing to see.
    ``source`` is read once, top to bottom, a band of 256 rows at a time.
    """
    qh, qw = -(-height // SCALE), -(-width // SCALE)
    out = np.ones((qh + 2 * patch, qw + 2 * patch), dtype=np.float32)
    rows = SCALE * _BAND_BLOCKS
    for y0 in range(0, height, rows):
        y1 = min(y0 + rows, height)
        band = np.ones((-(-(y1 - y0) // SCALE) * SCALE, qw * SCALE), dtype=np.float32)
        band[: y1 - y0, :width] = source(y0, y1)
        # INTER_AREA at an integer factor is the block mean, 15x faster than numpy's
        b = cv2.resize(band, (qw, len(band) // SCALE), interpolation=cv2.INTER_AREA)
        q0 = patch + y0 // SCALE
        out[q0 : q0 + len(b), patch : patch + qw] = b
    return out


def windows(quarter: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch: int) -> np.ndarray:
    """(N, P, P) float32 context windows for the patches whose top-left corners are
    at page rows ``ys`` and columns ``xs`` (ints; may be negative or run past the
    page by up to P, as the tiler's padded grid does). ``quarter`` is
    :func:`quarter_page`'s map. The window's centre is the block holding the
    patch's centre pixel ``(y + P // 2, x + P // 2)``.
    """
    ys = np.asarray(ys, dtype=np.intp)
    xs = np.asarray(xs, dtype=np.intp)
    # padded index of the window's first row: centre block + P (padding) - P // 2
    r0 = (ys + patch // 2) // SCALE + patch - patch // 2
    c0 = (xs + patch // 2) // SCALE + patch - patch // 2
    if len(ys) and (r0.min() < 0 or c0.min() < 0 or r0.max() + patch > quarter.shape[0]
                    or c0.max() + patch > quarter.shape[1]):
        raise PageError(
            f"patch origins rows {ys.min()}..{ys.max()}, columns {xs.min()}..{xs.max()} reach "
            f"past the {quarter.shape[0]}x{quarter.shape[1]} quarter map and its {patch}-block "
            "padding (origins may lie at most about 2 patches outside the page)")
    # one gather of whole windows from a strided view: 2.5x faster than indexing pixels
    return sliding_window_view(quarter, (patch, patch))[r0, c0]
