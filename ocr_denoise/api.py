"""The function most users call: ``denoise_page(img)``.

It reuses one ``Denoiser`` per (model, device, settings) for the life of the
process, so calling it page after page costs one session build, not one per page.
A ``Denoiser`` whose model or settings are refused is not cached: the next call
tries again and fails the same clear way.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from .model import default_model_path
from .session import Denoiser, Device, device_key

_cache: dict[tuple, Denoiser] = {}
_cache_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # Another thread may have held the lock (building a session) at fork time;
    # the child would wait for it forever. The cached Denoisers rebuild their
    # own sessions in the child (see session.py).
    global _cache_lock
    _cache_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_denoiser(
    model: str | os.PathLike[str] | None = None,
    *,
    device: Device = "auto",
    batch_size: int = 512,
    overlap: int = 6,
) -> Denoiser:
    """The process-wide ``Denoiser`` for these settings, built on first request.

    Raises what ``Denoiser`` raises (``ModelError``, ``ProviderError``,
    ``TypeError``/``ValueError`` for bad settings).
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a path (str or os.PathLike) or None, "
                        f"got {type(model).__name__}")
    path = Path(model).resolve() if model is not None else default_model_path()
    # The types are in the key so that batch_size=True (refused) cannot hit the
    # entry of batch_size=1 (True == 1 and they hash alike).
    key = (str(path), device_key(device), type(batch_size), batch_size,
           type(overlap), overlap)
    with _cache_lock:
        d = _cache.get(key)
        if d is None:
            d = Denoiser(path, device=device, batch_size=batch_size, overlap=overlap)
            _cache[key] = d
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
    array; uint8, uint16, or float in [0, 1]; any size from 1 x 1; any memory
    layout (strided, transposed, Fortran order, read-only). Alpha is composited
    onto white paper.

    Returns an H x W uint8 gray page, white paper = 255, ready for tesseract.
    The input is never modified. Unsupported input raises ``TypeError`` (not an
    array, wrong dtype) or ``ValueError`` (wrong shape, NaN/inf, floats outside
    [0, 1]) naming what was expected and what was given.
    """
    return get_denoiser(model, device=device, batch_size=batch_size,
                        overlap=overlap).denoise(img)
