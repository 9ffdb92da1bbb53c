"""The function most users call: ``denoise_page(img)``.

It reuses one ``Denoiser`` per (model, device, settings) for the life of the
process, so calling it page after page costs one session build, not one per page.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from .model import default_model_path
from .session import Denoiser, Device

_cache: dict[tuple, Denoiser] = {}
_cache_lock = threading.Lock()


def get_denoiser(
    model: str | os.PathLike[str] | None = None,
    *,
    device: Device = "auto",
    batch_size: int = 512,
    overlap: int = 6,
) -> Denoiser:
    """The process-wide ``Denoiser`` for these settings, built on first request."""
    path = Path(model).resolve() if model is not None else default_model_path()
    dev = device if isinstance(device, str) else tuple(device)
    key = (str(path), dev, batch_size, overlap)
    with _cache_lock:
        d = _cache.get(key)
        if d is None:
            d = _cache[key] = Denoiser(path, device=device, batch_size=batch_size,
                                       overlap=overlap)
        return d


def denoise_page(
    img: np.ndarray,
    *,
    model: str | os.PathLike[str] | None = None,
    device: Device = "auto",
    batch_size: int = 512,
    overlap: int = 6,
) -> np.ndarray:
    """Denoise one scanned page before OCR.

    ``img``: an H x W gray, H x W x 3 BGR (OpenCV order) or H x W x 4 BGRA numpy
    array; uint8, uint16, or float in [0, 1]; any size from 1 x 1. Alpha is
    composited onto white paper.

    Returns an H x W uint8 gray page, white paper = 255, ready for tesseract.
    The input is never modified.
    """
    return get_denoiser(model, device=device, batch_size=batch_size,
                        overlap=overlap).denoise(img)
