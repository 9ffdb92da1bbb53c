"""Bring pages scanned at very high resolution down to the model's scale, and back.

The model was trained on text whose x-height is 10-40 pixels: body text
(9-12 pt) scanned at about 150-600 DPI, with noise at the pixel level.

**The rule.** When the page's resolution is known and an axis is above 600
DPI, that axis is resampled to 300 DPI (area averaging), the page denoised,
and resampled back to its own size. Nothing is enlarged by this rule
(``upscale`` is the separate, opt-in enlargement): pages below 150 DPI are
denoised as they are, on purpose.

Why only down. Measured with tesseract on synthetic prose (3 pages per row,
CER, shipped v4 model, denoised at the page's own scale -> resampled to 300 DPI):

====================  ==========================  ==========================
page                  Gaussian noise              salt-and-pepper noise
====================  ==========================  ==========================
1200 DPI (x-h. 84)    0.022 -> 0.105              0.144 -> 0.037
100 DPI (x-h. 7)      0.479 -> 0.962 if enlarged  0.219 -> 0.443 if enlarged
                      (not done)                  (not done)
====================  ==========================  ==========================

A scan's noise lives on its own pixel grid. Enlarging a 100-DPI page smears
each noisy pixel into a 3 x 3 blob, a kind of noise the model never saw, and
the result reads far worse: the model copes better with small letters than
with that. Shrinking a 1200-DPI page averages specks away (much better on
salt and pepper), costs some accuracy under Gaussian noise, and leaves a
sixteenth of the pixels to process; on these pages it is better on average
(0.071 against 0.083) and 16 times less work, so it is the default, and
``rescale=False`` keeps the page's own scale. Three pages per row is a small
sample: treat the 1200-DPI row as a direction, not a settled figure.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import cv2
import numpy as np

from .normalize import PageSpec

logger = logging.getLogger(__name__)

#: Pages above this resolution (dots per inch, either axis) are denoised at TARGET_DPI.
MAX_DPI = 600.0
#: The resolution such pages are resampled to.
TARGET_DPI = 300.0

Dpi = tuple[float, float]


def as_dpi(value: object) -> Dpi | None:
    """``value`` as (x, y) dots per inch, or None when absent or unusable.

    Accepts one number (the same on both axes) or a pair of numbers, as in
    Pillow's ``info['dpi']``; zero, negative, NaN, infinite or non-numeric
    values give None (no DPI known), never an error: a DPI only steers
    resampling, and a broken one must not stop a page from being cleaned.
    """
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        pair = (value, value) if np.ndim(value) == 0 else tuple(value)  # type: ignore[arg-type]
        x, y = (float(v) for v in pair)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


def scaled_dpi(dpi: object, factor: float) -> Dpi | None:
    """``dpi`` (see ``as_dpi``) for a page enlarged ``factor`` times on each axis
    (``upscale``); None when no usable DPI is known."""
    d = as_dpi(dpi)
    return None if d is None else (d[0] * factor, d[1] * factor)


def working_dpi(dpi: object) -> Dpi | None:
    """The (x, y) DPI to denoise a page of resolution ``dpi`` at, or None to leave
    it as is.

    ``dpi``: what the page says (see ``as_dpi``). An axis above 600 DPI becomes
    300; if neither is, or the DPI is unknown, returns None.
    """
    d = as_dpi(dpi)
    if d is None or max(d) <= MAX_DPI:
        return None
    x, y = (TARGET_DPI if v > MAX_DPI else v for v in d)
    return (x, y)


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resample to width x height: area averaging to shrink (no aliasing of
    specks), bicubic to enlarge. Float pages are kept in [0, 1]."""
    shrink = width * height < img.shape[0] * img.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    out = cv2.resize(img, (width, height), interpolation=interp)
    if out.ndim == 2 and img.ndim == 3:  # OpenCV drops a single channel axis
        out = out[..., None]
    if out.dtype.kind == "f":
        np.clip(out, 0.0, 1.0, out=out)
    return out


def working_page(img: np.ndarray, page: PageSpec, dpi: object) -> np.ndarray:
    """``img`` at the resolution the model works at: the same array unless an
    axis of ``dpi`` is above 600 DPI, then that axis resampled to 300 DPI.

    ``img``: a page ``normalize.check_page`` accepted, described by ``page``.
    ``dpi``: the page's resolution (see ``as_dpi``), or None. A resampled page
    keeps ``img``'s dtype and channels (float16 and non-native byte orders,
    which OpenCV cannot resize, become float32 / native first).
    """
    d = as_dpi(dpi)
    target = working_dpi(d)
    if d is None or target is None:  # the common case: nothing to do
        return img
    h, w = page.height, page.width
    ww = max(1, round(w * target[0] / d[0]))
    wh = max(1, round(h * target[1] / d[1]))
    logger.debug("denoising a %dx%d page at %r DPI as %dx%d (%r DPI)", w, h, d, ww, wh, target)
    x = np.asarray(img)
    if x.dtype == np.float16 or (x.dtype.kind == "f" and not x.dtype.isnative):
        x = x.astype(np.float32)  # OpenCV resizes neither half floats nor big-endian
    elif not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return _resize(np.ascontiguousarray(x), ww, wh)


def enlarged(img: np.ndarray, factor: int) -> np.ndarray:
    """``img`` (a checked page, any dtype and channels) enlarged ``factor`` times
    on each axis by bicubic interpolation (``upscale``)."""
    x = np.asarray(img)
    if x.dtype == np.float16 or (x.dtype.kind == "f" and not x.dtype.isnative):
        x = x.astype(np.float32)
    elif not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return _resize(np.ascontiguousarray(x), x.shape[1] * factor, x.shape[0] * factor)


#: The cubic enlargement a learned enlargement model adds its correction to (its
#: metadata ``base``): ``enlarged`` of the page as 8-bit grey, i.e. OpenCV's bicubic
#: (``cv2.INTER_CUBIC``, fixed-point on uint8, edge pixels replicated), cut into
#: windows by ``cubic_windows``.
CUBIC = "cubic-v1"
#: Input pixels read beyond a window on each side: the bicubic's four taps reach
#: two input pixels past the window's edge pixels (``cubic_windows``).
CUBIC_MARGIN = 2


def cubic_windows(read8: Callable[[int, int], np.ndarray], height: int, width: int,
                  ys: np.ndarray, xs: np.ndarray, patch: int, factor: int = 2) -> np.ndarray:
    """Windows of the ``factor``-times bicubic enlargement of an 8-bit grey page,
    without enlarging the page: (N, factor * patch, factor * patch) float32 in [0, 1].

    ``read8(y0, y1)``: rows y0..y1-1 of the height x width uint8 page. Window i is
    the output block whose top-left corner is (factor * ys[i], factor * xs[i]) in
    the enlarged page (``ys``/``xs``: input-page corners, which may lie outside the
    page, as the tiler's do). Each strip of patch rows is read with ``CUBIC_MARGIN``
    rows and columns more on each side (indices clamped to the page, as OpenCV
    replicates the edge), enlarged by ``enlarged`` and cropped. Why that is exact: at
    an integer factor the bicubic's weights depend only on an output pixel's
    position within its input pixel, and its taps reach at most two input pixels
    past it; so wherever the window lies on the page, each of its pixels is the
    same integer arithmetic on the same input pixels as in ``enlarged(page)``
    (``tests/test_enlarge.py`` checks equality at every position, sizes, borders).
    Pixels outside the page are the bicubic of the replicated edge.
    """
    q, m = factor * patch, CUBIC_MARGIN
    ys, xs = np.asarray(ys), np.asarray(xs)
    out = np.empty((len(ys), q, q), np.float32)
    for y in np.unique(ys):
        sel = np.flatnonzero(ys == y)
        rows = np.clip(np.arange(y - m, y + patch + m), 0, height - 1)
        x0 = int(xs[sel].min()) - m
        cols = np.clip(np.arange(x0, int(xs[sel].max()) + patch + m), 0, width - 1)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        strip = np.asarray(read8(lo, hi))[rows - lo][:, cols]
        up = enlarged(np.ascontiguousarray(strip), factor)
        for i in sel:
            c = factor * (int(xs[i]) - x0)
            out[i] = up[factor * m : factor * m + q, c : c + q]
    np.divide(out, np.float32(255.0), out=out)  # as a uint8 page becomes float32 gray
    return out


def to_size(page: np.ndarray, width: int, height: int) -> np.ndarray:
    """A denoised H' x W' uint8 page brought back to width x height (bicubic to
    enlarge, area to shrink); the same array when it already has that size."""
    if page.shape[:2] == (height, width):
        return page
    return _resize(page, width, height)
