"""Bring pages scanned far from the model's scale to it, and back.

The model was trained on text whose x-height is 10-40 pixels: body text
(9-12 pt) scanned at about 150-600 DPI. A 100-DPI fax or a 1200-DPI archive
scan shows it letters whose strokes and gaps are a different size from
anything it has seen, and it cleans them badly. So:

**The rule.** When the page's resolution is known and either axis is below
150 or above 600 DPI, the page is resampled to 300 DPI on both axes (which
also squares the pixels of a 204 x 98 DPI fax), denoised, and resampled back
to its own size. Between 150 and 600 DPI, or with no DPI, nothing is resampled.

**Implausible DPI is ignored.** Software often writes 72 or 96 DPI into images
whatever they hold, and believing it would blow a 2480 x 3508 page (an A4 page
at 300 DPI) up to 10333 x 14617 pixels. A DPI is only believed when the page it
implies is at most 20 inches on its longer side (A3 is 16.5 in); this also
bounds the resampled page to 6000 x 6000 pixels.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Optional, Tuple

import cv2
import numpy as np

from .normalize import check_page

logger = logging.getLogger(__name__)

#: DPI range the model was trained at (x-heights of 10-40 px on body text).
TRAINED_DPI = (150.0, 600.0)
#: The resolution pages outside that range are resampled to.
TARGET_DPI = 300.0
#: A DPI implying a page longer than this (inches) is taken to be a made-up default.
MAX_PAGE_INCHES = 20.0

Dpi = Tuple[float, float]


def as_dpi(value: object) -> Optional[Dpi]:
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
        x, y = (float(v) for v in pair)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


def working_dpi(dpi: object, width: int, height: int) -> Optional[Dpi]:
    """The DPI to denoise a ``width`` x ``height`` page at, or None to leave it as is.

    ``dpi``: what the page says (see ``as_dpi``). Returns ``(300.0, 300.0)``
    when either axis is outside 150-600 DPI and the page it implies is at most
    ``MAX_PAGE_INCHES`` on its longer side; None otherwise.
    """
    d = as_dpi(dpi)
    if d is None:
        return None
    lo, hi = TRAINED_DPI
    if all(lo <= v <= hi for v in d):
        return None
    inches = max(width / d[0], height / d[1])
    if inches > MAX_PAGE_INCHES:
        logger.debug("not resampling a %dx%d page at %r DPI: it would be %.0f inches long, "
                     "so the DPI is probably a default", width, height, d, inches)
        return None
    return (TARGET_DPI, TARGET_DPI)


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


def denoise_at_scale(denoise: Callable[[np.ndarray], np.ndarray], img: np.ndarray,
                     dpi: object) -> np.ndarray:
    """``denoise(img)``, at 300 DPI when ``dpi`` is outside the trained range.

    ``img``: a page ``normalize.check_page`` accepts (checked before any
    resampling, so a bad page is refused with the same message either way). ``denoise``: page -> H x W uint8 (e.g. ``Denoiser.denoise``).
    Returns an H x W uint8 page of ``img``'s own size either way.
    """
    d = as_dpi(dpi)
    if d is None:  # the common case: no second pass over the page to check it
        return denoise(img)
    spec = check_page(img)
    h, w = spec.height, spec.width
    target = working_dpi(d, w, h)
    if target is None:
        return denoise(img)
    ww = max(1, round(w * target[0] / d[0]))
    wh = max(1, round(h * target[1] / d[1]))
    logger.debug("denoising a %dx%d page at %r DPI as %dx%d (%r DPI)", w, h, d, ww, wh, target)
    x = np.asarray(img)
    if x.dtype == np.float16 or (x.dtype.kind == "f" and not x.dtype.isnative):
        x = x.astype(np.float32)  # OpenCV resizes neither half floats nor big-endian
    elif not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    page = denoise(_resize(np.ascontiguousarray(x), ww, wh))
    return _resize(page, w, h)
