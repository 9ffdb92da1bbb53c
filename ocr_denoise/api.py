"""The function most users call: ``denoise_page(img)``.

It reuses one ``Denoiser`` per (model, device, settings) for the life of the
process, so calling it page after page costs one session build, not one per page.
A ``Denoiser`` whose model or settings are refused is not cached: the next call
tries again and fails the same clear way.

It takes numpy arrays, Pillow images (``pil.py`` says what each mode means) and
image file paths (read by ``images.py``, with its pixel limit), and brings pages
scanned above 600 DPI down to the model's scale (``rescale.py``), all through
the one page pipeline (``pipeline.py``).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Literal, Union, overload

import numpy as np

from . import pil, pipeline
from .decision import PageRecord
from .errors import PageError, SettingsError, SettingsTypeError
from .images import DEFAULT_MAX_PIXELS, open_image
from .model import resolve_model
from .pipeline import Upscale
from .rescale import scaled_dpi
from .session import Denoiser, Device, device_key, enlarger_arg, model_arg
from .tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP

if TYPE_CHECKING:
    from PIL import Image

#: A resolution: one number for both axes, or (x, y) dots per inch.
DpiLike = Union[float, "tuple[float, float]"]

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
    batch_size: int = DEFAULT_BATCH_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    threads: int | None = None,
    skip_white: float | str | None = "auto",
    enlarger: str | os.PathLike[str] | None = "auto",
) -> Denoiser:
    """The process-wide ``Denoiser`` for these settings, built on first request.

    Built under a lock, so threads asking at once share one session; safe
    across ``fork`` (the child builds its own session on first use). ``threads``
    is the cores the ``Denoiser`` uses (None: all; see ``Denoiser``), for callers
    that run one session per worker process and must not oversubscribe the cores.
    ``enlarger``: as for ``Denoiser``; a name or path is one entry whichever way
    it is spelt (the file it resolves to).

    Raises what ``Denoiser`` raises (``ModelError``, ``ProviderError``,
    ``TypeError``/``ValueError`` for bad settings).
    """
    model = model_arg(model)
    path = resolve_model(model).resolve()
    which = enlarger_arg(enlarger)  # "auto" resolved: the shipped one or None
    enlarge = None if which is None else str(resolve_model(which).resolve())
    # The types are in the key so that batch_size=True (refused) cannot hit the
    # entry of batch_size=1 (True == 1 and they hash alike).
    key = (str(path), device_key(device), type(batch_size), batch_size,
           type(overlap), overlap, type(threads), threads, type(skip_white), skip_white,
           enlarge)
    with _cache_lock:
        d = _cache.get(key)
        if d is None:
            d = Denoiser(path, device=device, batch_size=batch_size, overlap=overlap,
                         threads=threads, skip_white=skip_white, enlarger=enlarger)
            _cache[key] = d
        return d


@overload
def denoise_page(img: Image.Image, *,
                 dpi: DpiLike | None = ..., rescale: bool = ...,
                 max_pixels: int | None = ..., guard: bool = ...,
                 upscale: Upscale = ..., denoiser: Denoiser | None = ...,
                 model: str | os.PathLike[str] | None = ..., device: Device = ...,
                 batch_size: int = ..., overlap: int = ...,
                 threads: int | None = ...,
                 skip_white: float | str | None = ...,
                 enlarger: str | os.PathLike[str] | None = ...,
                 explain: Literal[False] = ...) -> Image.Image: ...
@overload
def denoise_page(img: np.ndarray | str | os.PathLike[str], *,
                 dpi: DpiLike | None = ..., rescale: bool = ...,
                 max_pixels: int | None = ..., guard: bool = ...,
                 upscale: Upscale = ..., denoiser: Denoiser | None = ...,
                 model: str | os.PathLike[str] | None = ..., device: Device = ...,
                 batch_size: int = ..., overlap: int = ...,
                 threads: int | None = ...,
                 skip_white: float | str | None = ...,
                 enlarger: str | os.PathLike[str] | None = ...,
                 explain: Literal[False] = ...) -> np.ndarray: ...
@overload
def denoise_page(img: Image.Image, *,
                 dpi: DpiLike | None = ..., rescale: bool = ...,
                 max_pixels: int | None = ..., guard: bool = ...,
                 upscale: Upscale = ..., denoiser: Denoiser | None = ...,
                 model: str | os.PathLike[str] | None = ..., device: Device = ...,
                 batch_size: int = ..., overlap: int = ...,
                 threads: int | None = ...,
                 skip_white: float | str | None = ...,
                 enlarger: str | os.PathLike[str] | None = ...,
                 explain: Literal[True]) -> tuple[Image.Image, PageRecord]: ...
@overload
def denoise_page(img: np.ndarray | str | os.PathLike[str], *,
                 dpi: DpiLike | None = ..., rescale: bool = ...,
                 max_pixels: int | None = ..., guard: bool = ...,
                 upscale: Upscale = ..., denoiser: Denoiser | None = ...,
                 model: str | os.PathLike[str] | None = ..., device: Device = ...,
                 batch_size: int = ..., overlap: int = ...,
                 threads: int | None = ...,
                 skip_white: float | str | None = ...,
                 enlarger: str | os.PathLike[str] | None = ...,
                 explain: Literal[True]) -> tuple[np.ndarray, PageRecord]: ...


def denoise_page(
    img: np.ndarray | Image.Image | str | os.PathLike[str],
    *,
    dpi: DpiLike | None = None,
    rescale: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    guard: bool = True,
    upscale: Upscale = None,
    denoiser: Denoiser | None = None,
    model: str | os.PathLike[str] | None = None,
    device: Device = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    threads: int | None = None,
    skip_white: float | str | None = "auto",
    enlarger: str | os.PathLike[str] | None = "auto",
    explain: bool = False,
) -> np.ndarray | Image.Image | tuple[np.ndarray | Image.Image, PageRecord]:
    """Denoise one scanned page before OCR.

    ``img`` is one of:

    * a numpy array: H x W gray, H x W x 3 BGR (OpenCV order) or H x W x 4
      BGRA; uint8, uint16, or float in [0, 1]; any size from 1 x 1; any memory
      layout (strided, transposed, Fortran order, read-only). Alpha is
      composited onto white paper. Returns an H x W uint8 array.
    * a ``PIL.Image`` of any mode (1, L, LA, P, RGB, RGBA, I;16, I, F...; see
      ``ocr_denoise.pil`` for what each mode's values mean). Returns a mode
      ``L`` image of the same size with the input's ``info['dpi']``, so
      pytesseract and OCRmyPDF still see the resolution.
    * the path (str or ``os.PathLike``) of a PNG, JPEG, TIFF, BMP or WebP
      file, read as ``ocr_denoise.images.read_image`` reads it: pages whose
      header declares more than ``max_pixels`` pixels are refused before
      decoding (``ImageTooLargeError``), and a file that cannot be read raises
      ``ImageReadError`` (a ``ValueError``) naming it. A multi-page file is
      refused (use ``denoise_folder``). Returns an H x W uint8 array.

    ``dpi``: the page's resolution, one number or (x, y); by default the one
    the image or file records, if any. When ``rescale`` is true and an axis is
    above 600 DPI (finer than the scale the model was trained at), the page is
    denoised at 300 DPI and resampled back; this rule never enlarges a page. See
    ``ocr_denoise.rescale`` for the rule and the measurements behind it.

    ``guard``: measure the page first (noise, text size) and leave it as it is
    where the model was measured to make OCR worse: smooth (blurred, faded)
    pages and text smaller than the model learnt (``ocr_denoise.guard``).
    ``guard=False`` applies the model to every page.

    ``upscale``: None (default: the page keeps its size), ``"auto"``, or an int
    factor. ``"auto"`` measures the page's text (DPI is often missing or wrong)
    and enlarges pages whose letters are under about 14 px tall 2x (bicubic)
    before denoising: tesseract, like the model, reads such text badly (real
    90-DPI forms read clearly better enlarged). The result is then the enlarged
    page (so every "H x W" above becomes kH x kW); a PIL image gets its DPI
    scaled to match. An explicit int factor replaces the above-600-DPI rule
    (the page is enlarged from its own size), and the result may exceed
    ``max_pixels``, which is checked on the input.

    ``denoiser``: a ``Denoiser`` the caller keeps (its model and settings are
    used). Otherwise ``model``, ``device``, ``batch_size``, ``overlap``,
    ``threads``, ``skip_white`` and ``enlarger`` are as for ``Denoiser``
    (``skip_white=None``: the model on every patch, blank ones too;
    ``enlarger``: the enlargement model a 2x ``upscale`` uses, ``"auto"`` the
    shipped one if any, None cubic), and one is built per distinct set and kept
    (``get_denoiser``); giving both is a ``SettingsError``.

    ``explain``: return ``(page, record)`` instead of the page alone, where
    ``record`` is a frozen ``PageRecord``: what was done to the page
    (``record.action``: ``"denoised"``, ``"left"`` as it came, ``"enlarged"``
    or ``"enlarged+denoised"``), why (``record.rule``, a stable name, and
    ``record.reason`` in words with the values measured) and the guard's
    measurements. The page is the same bytes either way.

    Returns white paper = 255, ready for tesseract. The input is never
    modified. Every page takes the same path (``ocr_denoise.pipeline``), so an
    array, a file and an image of the same pixels and DPI give the same bytes.
    Unsupported input raises ``PageTypeError`` (a ``TypeError``: not an array,
    image or path; wrong dtype) or ``PageError`` (a ``ValueError``: wrong shape,
    NaN/inf, floats outside [0, 1]) naming what was expected and what was given.
    """
    d = _denoiser_for(denoiser, model, device, batch_size, overlap, threads, skip_white,
                      enlarger)
    result: np.ndarray | Image.Image
    if pil.is_pil_image(img):
        own = pil.image_dpi(img)  # type: ignore[arg-type]
        page = pil.to_array(img)  # type: ignore[arg-type]
        out, rec = pipeline.explain(d, page, _dpi(dpi, own, rescale), guard=guard,
                                    upscale=upscale)
        factor = out.shape[1] / page.shape[1]
        result = pil.to_image(out, own if factor == 1 else scaled_dpi(own, factor))
    elif isinstance(img, (str, os.PathLike)):
        src = open_image(img, max_pixels=max_pixels)
        if src.pages > 1:
            raise PageError(f"{src.path}: has {src.pages} pages; denoise_page takes one "
                            "(use denoise_folder, which writes multi-page TIFFs)")
        result, rec = pipeline.explain(d, src.read(0), _dpi(dpi, src.dpi[0], rescale),
                                       guard=guard, upscale=upscale)
    else:
        result, rec = pipeline.explain(d, img, _dpi(dpi, None, rescale),  # type: ignore[arg-type]
                                       guard=guard, upscale=upscale)
    return (result, rec) if explain else result


def _denoiser_for(denoiser: Denoiser | None, model: str | os.PathLike[str] | None,
                  device: Device, batch_size: int, overlap: int,
                  threads: int | None, skip_white: float | str | None,
                  enlarger: str | os.PathLike[str] | None) -> Denoiser:
    """The caller's ``denoiser``, or the cached one for these settings."""
    if denoiser is None:
        return get_denoiser(model, device=device, batch_size=batch_size, overlap=overlap,
                            threads=threads, skip_white=skip_white, enlarger=enlarger)
    if not isinstance(denoiser, Denoiser):
        raise SettingsTypeError(f"denoiser must be a Denoiser, got {type(denoiser).__name__}")
    given = (model is not None, not (isinstance(device, str) and device == "auto"),
             batch_size != DEFAULT_BATCH_SIZE, overlap != DEFAULT_OVERLAP, threads is not None,
             not (isinstance(skip_white, str) and skip_white == "auto"),
             not (isinstance(enlarger, str) and enlarger == "auto"))
    if any(given):
        raise SettingsError("pass either denoiser= or the settings to build one (model, "
                            "device, batch_size, overlap, threads, skip_white, enlarger), "
                            "not both: the Denoiser's own settings would silently win")
    return denoiser


def _dpi(given: object, recorded: object, rescale: bool) -> object:
    """The DPI that decides resampling: None (never resample) unless ``rescale``."""
    if not rescale:
        return None
    return given if given is not None else recorded
