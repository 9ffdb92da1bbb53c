"""Pillow images in and out: what each mode means, as an array ``normalize`` accepts.

Pillow's own ``convert("L")`` clips 16-bit and 32-bit pixels to 0..255, which
turns a 16-bit scan white, so every mode is mapped here by what its values mean:

=================================  ==============================================
mode                               read as
=================================  ==============================================
``1``                              0 black, 1 white
``L``                              0..255 grey
``LA``, ``La``                     grey + alpha (composited onto white paper)
``P``, ``PA``                      the palette's colours (+ transparency), via RGB(A)
``RGB``, ``RGBA``, ``RGBa``        colour (+ alpha), reduced to grey with BT.601
``RGBX``, ``CMYK``, ``YCbCr``,     converted to RGB by Pillow
``LAB``, ``HSV``
``I;16``, ``I;16L/B/N``            0..65535 grey (16-bit scans)
``I`` (32-bit integers)            0..65535 grey: what older Pillow gives for
                                   16-bit PNGs and ``I;16`` images convert to;
                                   values outside are refused
``F`` (32-bit floats)              0.0..255.0 grey, Pillow's scale for ``F``
                                   (``convert("F")`` of an ``L`` image, and back);
                                   NaN, infinities and values outside are refused
=================================  ==============================================

The result goes back as a mode ``L`` image with the input's ``info['dpi']``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import PageError

if TYPE_CHECKING:
    from PIL import Image

#: Modes Pillow converts for us, and to what.
_VIA = {"La": "LA", "P": "RGB", "PA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB",
        "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}
_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def is_pil_image(obj: object) -> bool:
    """True for a ``PIL.Image.Image``. Never imports Pillow: if it is not loaded,
    ``obj`` cannot be one of its images."""
    mod = sys.modules.get("PIL.Image")
    return mod is not None and isinstance(obj, mod.Image)


def image_dpi(im: Image.Image) -> Any:
    """The image's ``info['dpi']`` as Pillow holds it, or None."""
    return im.info.get("dpi")


def to_array(im: Image.Image) -> np.ndarray:
    """A Pillow image as a page for ``denoise``: H x W uint8 / uint16 grey, H x W x 4
    uint8 BGRA, H x W x 3 uint8 BGR, or H x W float32 in [0, 1] (mode ``F``).

    Raises ``ValueError`` for mode ``I`` values outside 0..65535 and mode ``F``
    values outside 0..255 (or NaN, infinite), and for modes not in the table
    above, naming the mode and what was expected. The image is not modified.
    """
    mode = im.mode
    if mode == "P" and ("transparency" in im.info or im.palette and im.palette.mode == "RGBA"):
        im, mode = im.convert("RGBA"), "RGBA"
    elif mode in _VIA:
        im, mode = im.convert(_VIA[mode]), _VIA[mode]
    if mode == "1":
        return np.asarray(im.convert("L"))  # 0 / 255
    if mode == "L" or mode in _16BIT:
        return np.asarray(im)
    if mode == "LA":
        a = np.asarray(im)
        g = a[..., 0]
        return np.dstack([g, g, g, a[..., 1]])
    if mode == "RGB":
        return np.asarray(im)[..., ::-1]
    if mode == "RGBA":
        return np.asarray(im)[..., [2, 1, 0, 3]]
    if mode == "I":
        a = np.asarray(im)
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 65535:
            raise PageError(
                f"mode I image has values in [{lo}, {hi}]; expected 16-bit grey in "
                "[0, 65535] (for 0..255 data, pass im.convert('L'))"
            )
        return a.astype(np.uint16)
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        finite = np.isfinite(a)
        if not finite.all():
            raise PageError(f"mode F image contains {int(a.size - finite.sum())} NaN or "
                             "infinite values; expected finite grey values in [0, 255]")
        flo, fhi = float(a.min()), float(a.max())
        if flo < 0 or fhi > 255:
            raise PageError(
                f"mode F image has values in [{flo:g}, {fhi:g}]; expected Pillow's 0..255 "
                "grey scale (for floats in [0, 1], pass the numpy array instead)"
            )
        return a / np.float32(255.0)
    raise PageError(
        f"unsupported Pillow image mode {im.mode!r}; expected 1, L, LA, La, P, PA, RGB, "
        "RGBA, RGBa, RGBX, CMYK, YCbCr, LAB, HSV, I;16 (L/B/N), I or F"
    )


def to_image(page: np.ndarray, dpi: Any = None) -> Image.Image:
    """An H x W uint8 page as a mode ``L`` Pillow image; ``dpi`` (as found in the
    input's ``info['dpi']``) is set in its ``info`` when not None, so that
    ``save`` through pytesseract or OCRmyPDF passes it on."""
    from PIL import Image

    out = Image.fromarray(np.ascontiguousarray(page), "L")
    if dpi is not None:
        out.info["dpi"] = dpi
    return out
