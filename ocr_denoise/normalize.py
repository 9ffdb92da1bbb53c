"""Turn the pages users hand us into the one form the model reads, and back.

The model sees grey float32 in [0, 1] with white paper = 1. Users hand us whatever
their scanner or library produced, so this module owns every conversion:

* ``check_page`` validates an array once, up front, before any work is done, and
  says precisely what is wrong (type, dtype, rank, channels, size, float values)
  and what was expected.
* ``to_gray_float`` converts a block of rows of a checked page. It works on row
  slices so a page can be converted band by band and never exists as a whole
  float32 copy (a 600-DPI A3 page is 69 Mpx: 277 MB as float32).
* ``to_uint8`` maps float rows back to the H x W uint8 page we return.

Any memory layout is accepted (strided slices, transposes, Fortran order,
non-native byte order, read-only buffers); inputs are only ever read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import PageError, PageTypeError

#: OpenCV's BGR -> gray weights (ITU-R BT.601), so results match cv2.cvtColor.
_W_B, _W_G, _W_R = np.float32(0.114), np.float32(0.587), np.float32(0.299)

_SUPPORTED = "uint8, uint16, or float16/float32/float64 with values in [0, 1]"
_SHAPES = "H x W (gray), H x W x 1, H x W x 3 (BGR) or H x W x 4 (BGRA)"
#: Floats this far outside [0, 1] are rounding noise (far below 1/255) and are
#: clipped; anything further out is refused.
FLOAT_TOLERANCE = 1e-6
#: Elements per block when scanning float pages, bounding temporary memory.
_SCAN_BLOCK = 1 << 22


@dataclass(frozen=True)
class PageSpec:
    """What ``check_page`` learnt about a page: enough to convert any row slice."""

    height: int
    width: int
    channels: int  # 1 (gray), 3 (BGR) or 4 (BGRA)
    scale: float  # divide raw values by this to reach [0, 1]
    is_float: bool


def check_page(img: object) -> PageSpec:
    """Validate a page array and describe it.

    Accepts H x W (gray), H x W x 1, H x W x 3 (BGR, OpenCV's order) and H x W x 4
    (BGRA; alpha is composited onto white paper), at least 1 x 1, with dtype
    uint8, uint16 (either byte order) or a float dtype whose values are all
    finite and in [0, 1]. Anything else raises ``TypeError`` (not an array, or
    an unsupported dtype: bool, signed or wide ints, complex, object, strings...)
    or ``ValueError`` (wrong rank or channel count, empty, NaN/inf, floats
    outside [0, 1]), naming what was expected and what was given. Float pages
    are scanned in blocks of rows, so checking needs no page-sized temporary.
    """
    if img is None:
        raise PageTypeError(f"expected a page as a numpy array ({_SHAPES}), got None")
    if not isinstance(img, np.ndarray):
        raise PageTypeError(
            f"expected a page as a numpy array ({_SHAPES}), got {type(img).__name__}; "
            "convert it with numpy.asarray first"
        )
    img = np.asarray(img)  # a view: drops subclasses such as np.matrix
    dt = img.dtype
    if dt.kind == "u" and dt.itemsize == 1:
        scale, is_float = 255.0, False
    elif dt.kind == "u" and dt.itemsize == 2:
        scale, is_float = 65535.0, False
    elif dt.kind == "f":
        scale, is_float = 1.0, True
    else:
        hint = ""
        if dt.kind == "b":
            hint = " (for a mask, pass mask.astype(numpy.uint8) * 255)"
        elif dt.kind in "iu":
            hint = " (convert 0..255 data with .astype(numpy.uint8))"
        raise PageTypeError(f"unsupported page dtype {dt}{hint}; expected {_SUPPORTED}")
    if img.ndim == 2:
        channels = 1
    elif img.ndim == 3 and img.shape[2] in (1, 3, 4):
        channels = img.shape[2]
    elif img.ndim == 3:
        raise PageError(
            f"unsupported number of channels {img.shape[2]} in page of shape "
            f"{img.shape}; expected 1 (gray), 3 (BGR) or 4 (BGRA)"
        )
    else:
        raise PageError(
            f"unsupported page shape {img.shape} ({img.ndim}-D); expected {_SHAPES}"
        )
    h, w = img.shape[:2]
    if h < 1 or w < 1:
        raise PageError(f"empty page of shape {img.shape}; expected at least 1 x 1 pixels")
    if is_float:
        _check_float_values(img)
    return PageSpec(h, w, channels, scale, is_float)


def _check_float_values(img: np.ndarray) -> None:
    """``ValueError`` unless every value is finite and within [0, 1] (+- tolerance).

    NaN and infinities are reported before the range, with their counts. Floats
    outside [0, 1] nearly always mean 0..255 data passed as float, which
    clipping would silently turn into a blank page, so they are refused.
    """
    rows = max(1, _SCAN_BLOCK // max(1, img[0].size))
    n_nan = n_inf = 0
    lo, hi = np.inf, -np.inf
    for y0 in range(0, img.shape[0], rows):
        block = img[y0 : y0 + rows]
        if not np.isfinite(block).all():
            n_nan += int(np.count_nonzero(np.isnan(block)))
            n_inf += int(np.count_nonzero(np.isinf(block)))
            continue
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    if n_nan or n_inf:
        raise PageError(
            f"float page contains {n_nan} NaN and {n_inf} infinite values; expected "
            "finite values in [0, 1]"
        )
    if lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE:
        raise PageError(
            f"float page has values in [{lo:g}, {hi:g}]; expected values in [0, 1] "
            "(divide 0..255 data by 255, or pass uint8)"
        )


def to_gray_float(rows: np.ndarray, spec: PageSpec) -> np.ndarray:
    """Convert a row slice of a page checked by ``check_page`` to float32 gray in [0, 1].

    ``rows`` is ``page[y0:y1]`` (any number of rows, full width, any layout).
    Returns a new C-contiguous (y1 - y0) x W float32 array; the input is never
    modified. Colour is reduced with OpenCV's BT.601 weights as an explicit
    per-pixel sum (not a BLAS call), so the result for a pixel does not depend
    on which rows were converted with it: the same bytes for any band size.
    """
    x = np.asarray(rows)
    if spec.scale != 1.0:  # converted and divided in one pass: the same bytes as in two
        x = np.divide(x, np.float32(spec.scale), dtype=np.float32)
    else:
        x = x.astype(np.float32, copy=True)
    if spec.channels == 1:
        gray = np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1]))
    else:
        gray = x[..., 0] * _W_B
        gray += x[..., 1] * _W_G
        gray += x[..., 2] * _W_R
        if spec.channels == 4:
            alpha = x[..., 3]
            gray *= alpha
            gray += np.float32(1.0) - alpha
    if spec.channels == 1 and not spec.is_float:
        return gray  # integers over their maximum: in [0, 1] already, exactly
    return np.clip(gray, 0.0, 1.0, out=gray)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Map float rows in [0, 1] to uint8 0..255, rounding to nearest (clipping outside)."""
    return np.clip(x * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
