"""Turn the pages users hand us into the one form the model reads, and back.

The model sees grey float32 in [0, 1] with white paper = 1. Users hand us whatever
their scanner or library produced, so this module owns every conversion:

* ``check_page`` validates an array once, up front, and says precisely what is
  wrong (dtype, rank, channels) before any work is done.
* ``to_gray_float`` converts a block of rows of a checked page. It works on row
  slices so a page can be converted band by band and never exists as a whole
  float32 copy (a 600-DPI A3 page is 69 Mpx: 277 MB as float32).
* ``to_uint8`` maps float rows back to the H x W uint8 page we return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: OpenCV's BGR -> gray weights (ITU-R BT.601), so results match cv2.cvtColor.
_BGR_WEIGHTS = np.array([0.114, 0.587, 0.299], dtype=np.float32)

_SUPPORTED = "uint8, uint16, float16/float32/float64 in [0, 1]"


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
    (BGRA; alpha is composited onto white paper), with dtype uint8, uint16 or a
    float dtype holding values in [0, 1]. Anything else raises ``TypeError``
    (wrong kind of object or dtype) or ``ValueError`` (wrong shape), naming what
    was expected and what was given. Float values are range-checked later, per
    band, by ``to_gray_float``.
    """
    if img is None:
        raise TypeError("expected a page as a numpy array, got None")
    if not isinstance(img, np.ndarray):
        raise TypeError(
            f"expected a page as a numpy array, got {type(img).__name__}"
        )
    dt = img.dtype
    if dt == np.uint8:
        scale, is_float = 255.0, False
    elif dt == np.uint16:
        scale, is_float = 65535.0, False
    elif dt.kind == "f":
        scale, is_float = 1.0, True
    else:
        raise TypeError(f"unsupported page dtype {dt}; expected {_SUPPORTED}")
    if img.ndim == 2:
        channels = 1
    elif img.ndim == 3 and img.shape[2] in (1, 3, 4):
        channels = img.shape[2]
    elif img.ndim == 3:
        raise ValueError(
            f"unsupported number of channels {img.shape[2]} in page of shape "
            f"{img.shape}; expected 1 (gray), 3 (BGR) or 4 (BGRA)"
        )
    else:
        raise ValueError(
            f"unsupported page shape {img.shape} ({img.ndim}-D); expected "
            "H x W, H x W x 1, H x W x 3 or H x W x 4"
        )
    h, w = img.shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"empty page of shape {img.shape}; need at least 1 x 1")
    return PageSpec(h, w, channels, scale, is_float)


def to_gray_float(rows: np.ndarray, spec: PageSpec) -> np.ndarray:
    """Convert a row slice of a checked page to float32 gray in [0, 1].

    ``rows`` is ``page[y0:y1]`` (any number of rows, full width). Returns a new
    C-contiguous (y1 - y0) x W float32 array; the input is never modified.
    Floats that are NaN, infinite or outside [0, 1] raise ``ValueError``: such a
    page is almost always 0..255 floats or a failed computation, and clipping it
    would silently return a blank page.
    """
    x = rows.astype(np.float32, copy=True)
    if spec.is_float:
        if not np.isfinite(x).all():
            raise ValueError("page contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float page values must lie in [0, 1], found [{lo:g}, {hi:g}]; "
                "divide 0..255 data by 255 or pass uint8"
            )
    elif spec.scale != 1.0:
        x *= np.float32(1.0 / spec.scale)
    if spec.channels == 1:
        return np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1]))
    gray = x[..., :3] @ _BGR_WEIGHTS
    if spec.channels == 4:
        alpha = x[..., 3]
        gray = gray * alpha + (1.0 - alpha)
    return np.clip(gray, 0.0, 1.0, out=gray)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Map float rows in [0, 1] to uint8 0..255, rounding to nearest."""
    return np.clip(x * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
