"""OCRmyPDF plugin: show OCR a denoised page, keep the PDF's look.

Installed with ``pip install 'ocr-denoise[ocrmypdf]'``, OCRmyPDF finds this
plugin through the ``ocrmypdf`` entry point, but it changes nothing until asked::

    ocrmypdf --denoise scan.pdf out.pdf
    ocrmypdf --plugin ocr_denoise.ocrmypdf_plugin --denoise scan.pdf out.pdf   # same
    ocrmypdf.ocr("scan.pdf", "out.pdf", denoise=True)                          # same

Options (all read with defaults, so ``ocrmypdf.ocr()`` calls that never saw the
command line work too):

``--denoise``
    denoise the image OCR sees (``filter_ocr_image``). The PDF keeps its
    original images; only the invisible text layer changes.
``--denoise-visible``
    also put the denoised (grey) page in the PDF (``filter_page_image``).
    OCRmyPDF only rebuilds whole pages with ``--force-ocr``, ``--deskew``,
    ``--clean-final`` or ``--remove-background``, so it needs one of those.
``--denoise-model PATH``, ``--denoise-device auto|cpu|cuda``
    as for ``Denoiser``.
``--no-denoise-rescale``
    do not denoise pages above 600 DPI at 300 DPI (see ``ocr_denoise.rescale``).
``--no-denoise-guard``
    apply the model to every page (see ``ocr_denoise.guard``).
``--denoise-upscale auto``
    enlarge the OCR image 2x when its text is small (the visible page keeps its
    size). OCRmyPDF's ``--oversample DPI`` rasterises pages at a higher DPI
    before OCR; the text is then large and ``auto`` leaves it: use one or the other.
``--denoise-enlarger NAME|PATH|auto|none``
    the enlargement model ``--denoise-upscale`` uses, as ``Denoiser(enlarger=...)``.

Both image hooks are *wrappers* around OCRmyPDF's first-result hooks: the
built-in Tesseract hook (which shrinks images beyond Tesseract's limits) and any
other plugin's run first, exactly as without this plugin, and the page they
return is denoised at its own size and DPI. So OCR still gets an image Tesseract
accepts, and the text layer stays aligned with the page.

Sessions: ``filter_ocr_image`` and ``filter_page_image`` run in OCRmyPDF's worker
processes (threads with ``use_threads``). Each worker builds one onnxruntime
session on its first page, under a lock, through ``api.get_denoiser`` (which
rebuilds after ``fork``), with ``threads=cores // jobs`` so that the workers
share the cores. Nothing of it is put in OCRmyPDF's options, which are
pickled to the workers: only settings travel.

Logging: quiet in OCRmyPDF's normal output. The session line (model, provider,
bands) is logged at DEBUG, shown with ``ocrmypdf -v 1``; warnings, such as a
CUDA request that runs on the CPU, stay warnings.

Supported OCRmyPDF: 16 and 17 (the ``ocrmypdf`` extra). The hook signatures
used here are unchanged from 12.0 (the first with entry-point discovery) to
17.x; options are an argparse ``Namespace`` up to 16 and a pydantic
``OcrOptions`` from 17, hence ``getattr`` with defaults everywhere.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import types
from argparse import ArgumentParser
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocrmypdf import hookimpl

log = logging.getLogger(__name__)

#: Set in the ``info`` of images this plugin returns, so that a second
#: registration of the hooks (entry point *and* ``--plugin``) does not denoise twice.
_MARK = "ocr_denoise"
_DEVICES = ("auto", "cpu", "cuda")
#: (model, device, enlarger) already checked in this process by ``check_options``.
_checked: set[tuple[str | None, str, str | None]] = set()
_checked_lock = threading.Lock()


@dataclass(frozen=True)
class Settings:
    """This plugin's options as found on OCRmyPDF's options object."""

    enabled: bool = False
    visible: bool = False
    model: str | None = None
    device: str = "auto"
    rescale: bool = True
    guard: bool = True
    upscale: str | None = None
    enlarger: str | None = "auto"
    jobs: int | None = None

    @classmethod
    def of(cls, options: Any) -> Settings:
        """Read from an OCRmyPDF options object (argparse ``Namespace`` up to 16,
        ``OcrOptions`` from 17), with defaults for anything missing."""
        model = getattr(options, "denoise_model", None)
        enlarger = getattr(options, "denoise_enlarger", "auto")
        return cls(
            enabled=bool(getattr(options, "denoise", False)),
            visible=bool(getattr(options, "denoise_visible", False)),
            model=os.fspath(model) if model is not None else None,
            device=str(getattr(options, "denoise_device", None) or "auto"),
            rescale=bool(getattr(options, "denoise_rescale", True)),
            guard=bool(getattr(options, "denoise_guard", True)),
            upscale=_upscale_setting(getattr(options, "denoise_upscale", None)),
            enlarger=None if enlarger in (None, "none") else os.fspath(enlarger),
            jobs=getattr(options, "jobs", None) or None,
        )

    def threads(self) -> int:
        """Cores per worker (``Denoiser(threads=...)``): the worker's share."""
        from .session import available_cores

        cores = available_cores()
        return max(1, cores // max(1, min(self.jobs or cores, cores)))


def _upscale_setting(value: Any) -> str | None:
    return "auto" if value == "auto" else None


@hookimpl
def add_options(parser: ArgumentParser) -> None:
    """Add ``--denoise`` and the ``--denoise-...`` options to OCRmyPDF's parser.

    Called in the main process. Does nothing if they are there already (the
    plugin registered twice: entry point and ``--plugin``).
    """
    if "--denoise" in getattr(parser, "_option_string_actions", {}):
        return
    g = parser.add_argument_group(
        "ocr-denoise", "Learned denoising of the image OCR sees (ocr-denoise plugin)")
    g.add_argument("--denoise", action="store_true",
                   help="Denoise each page before OCR with ocr-denoise's model; the PDF "
                   "keeps its original images unless --denoise-visible is given.")
    g.add_argument("--denoise-visible", action="store_true",
                   help="Also put the denoised grey page in the PDF. Needs --force-ocr, "
                   "--deskew, --clean-final or --remove-background (otherwise OCRmyPDF "
                   "keeps the original page images).")
    g.add_argument("--denoise-model", metavar="PATH", default=None,
                   help="ONNX model to denoise with (default: the one shipped).")
    g.add_argument("--denoise-device", choices=_DEVICES, default="auto",
                   help="auto: CUDA if available, else CPU; cuda fails without a GPU.")
    g.add_argument("--denoise-guard", action=argparse.BooleanOptionalAction, default=True,
                   help="Leave pages the model was measured to make worse (smooth pages, "
                   "text smaller than it learnt) as they are (default: on; "
                   "--no-denoise-guard applies the model to every page).")
    g.add_argument("--denoise-upscale", choices=["off", "auto"], default="off",
                   help="auto: enlarge the OCR image 2x (DPI scaled to match) when its text "
                   "is small, before denoising; tesseract reads small text better enlarged. "
                   "With --oversample, OCRmyPDF rasterises at the higher DPI first and auto "
                   "then leaves the image as it is: use one or the other.")
    g.add_argument("--denoise-enlarger", metavar="NAME|PATH|auto|none", default="auto",
                   help="The enlargement model --denoise-upscale uses: a shipped model's "
                   "name or an ONNX file; auto: the shipped one if there is one; none: "
                   "bicubic enlargement (default: auto).")
    g.add_argument("--denoise-rescale", action=argparse.BooleanOptionalAction, default=True,
                   help="Denoise pages scanned above 600 DPI at 300 DPI, the scale the "
                   "model learnt, then resample back (default: on; --no-denoise-rescale "
                   "turns it off).")


@hookimpl
def check_options(options: Any) -> None:
    """Refuse unusable ``--denoise-...`` options before any page is processed.

    Called in the main process. With ``--denoise``, builds (and drops) one
    session so that a missing, broken or wrong-kind model or enlargement model,
    or ``cuda`` without a GPU, is one clear error now rather than a failure on
    every page; refuses
    ``--denoise-visible`` when OCRmyPDF will not rebuild page images. Raises
    ``ocrmypdf.exceptions.BadArgsError``.
    """
    from ocrmypdf.exceptions import BadArgsError

    s = Settings.of(options)
    if not s.enabled:
        if (s.visible or s.model is not None or s.device != "auto"
                or s.upscale is not None or s.enlarger != "auto"):
            log.warning("--denoise-... options have no effect without --denoise")
        return
    if s.device not in _DEVICES:
        raise BadArgsError(f"--denoise-device must be one of {', '.join(_DEVICES)}, "
                           f"got {s.device!r}")
    if s.visible and _keeps_page_images(options):
        raise BadArgsError(
            "--denoise-visible needs --force-ocr, --deskew, --clean-final or "
            "--remove-background: without them OCRmyPDF keeps the original page "
            "images, so there is no page image to denoise")
    key = (s.model, s.device, s.enlarger)
    with _checked_lock:
        if key in _checked:
            return
        from .session import Denoiser, session_log_level
        from .work import check_denoiser, enlarger_problem

        try:
            with session_log_level(logging.DEBUG):  # built, checked, dropped
                check_denoiser(Denoiser(s.model, device=s.device, threads=1,
                                        enlarger=s.enlarger))
        except Exception as e:  # ModelError, ProviderError, ...
            problem = enlarger_problem(e, s.enlarger)
            if problem is not None:
                raise BadArgsError(f"--denoise-enlarger {s.enlarger}: {problem}") from e
            raise BadArgsError(f"--denoise: {e}") from e
        _checked.add(key)


def _keeps_page_images(options: Any) -> bool:
    """True when OCRmyPDF puts the input's own images in the output (no whole-page
    image exists for ``filter_page_image``)."""
    lossless = getattr(options, "lossless_reconstruction", None)
    if isinstance(lossless, bool):
        return lossless
    force = getattr(options, "force_ocr", False) or getattr(options, "mode", None) == "force"
    return not any([force, getattr(options, "deskew", False),
                    getattr(options, "clean_final", False),
                    getattr(options, "remove_background", False)])


def denoise_image(image: Any, settings: Settings, *, upscale: bool = False) -> Any:
    """Denoise a PIL image (any mode) with this worker's session.

    Returns a mode ``L`` image of the same size whose ``info['dpi']`` is the
    input's, marked as done (so a second registration of this plugin leaves it).
    With ``upscale`` and ``--denoise-upscale auto``, a page of small text comes
    back enlarged 2x with its DPI doubled, which OCRmyPDF allows for the OCR
    image (the text layer is placed by the DPI).
    """
    from .api import denoise_page
    from .session import session_log_level

    with session_log_level(logging.DEBUG):  # OCRmyPDF's INFO output is about the run
        clean = denoise_page(image, model=settings.model, device=settings.device,
                             rescale=settings.rescale, guard=settings.guard,
                             upscale=settings.upscale if upscale else None,
                             threads=settings.threads(), enlarger=settings.enlarger)
    clean.info[_MARK] = True
    return clean


@hookimpl(hookwrapper=True)
def filter_ocr_image(page: Any, image: Any) -> Generator[None, Any, None]:
    """Denoise the image OCR sees, after the other ``filter_ocr_image`` hooks.

    Called in OCRmyPDF's worker processes (or threads), once per page, with the
    page's PIL image (mode 1, L, RGB...; ``info['dpi']`` set). Without
    ``--denoise`` the result of the other hooks (Tesseract's downsampling) is
    left exactly as it is. With it, that result (or ``image``, if no hook
    returned one) is replaced by the denoised mode ``L`` image of the same size
    and DPI (with ``--denoise-upscale auto`` and small text: twice the size and
    DPI).
    """
    outcome = yield
    settings = Settings.of(page.options)
    if not settings.enabled:
        return
    result = outcome.get_result()  # re-raises what an inner hook raised
    img = result if result is not None else image
    if img.info.get(_MARK):
        return
    log.debug("page %s: denoising the %dx%d %s OCR image", _pageno(page), *img.size, img.mode)
    outcome.force_result(denoise_image(img, settings, upscale=True))


@hookimpl(hookwrapper=True)
def filter_page_image(page: Any, image_filename: Path) -> Generator[None, Any, None]:
    """With ``--denoise --denoise-visible``, denoise the whole-page image that goes
    into the PDF, after the other ``filter_page_image`` hooks.

    Called in OCRmyPDF's worker processes. Writes the denoised page (grey, same
    size and DPI, same format as the file it replaces) beside that file, in
    the same folder as OCRmyPDF requires, and returns its path.
    """
    outcome = yield
    settings = Settings.of(page.options)
    if not (settings.enabled and settings.visible):
        return
    result = outcome.get_result()
    src = Path(result if result is not None else image_filename)
    if src.stem.endswith("." + _MARK):
        return
    import numpy as np
    from PIL import Image

    from .images import write_image
    from .rescale import as_dpi

    dst = src.with_name(f"{src.stem}.{_MARK}{src.suffix}")
    with Image.open(src) as im:
        clean = denoise_image(im, settings)
    write_image(dst, np.asarray(clean), dpi=as_dpi(clean.info.get("dpi")))
    outcome.force_result(dst)


def _pageno(page: Any) -> object:
    n = getattr(page, "pageno", None)
    return n + 1 if isinstance(n, int) else "?"


#: What the ``ocrmypdf`` entry point registers: the same hooks held by another
#: object. pluggy refuses to register one object twice, so if the entry point
#: registered this module, ``--plugin ocr_denoise.ocrmypdf_plugin`` would crash
#: OCRmyPDF whenever the package is installed; with two objects both load, and
#: the hooks above are written so that running twice does the work once.
entry_point = types.SimpleNamespace(
    add_options=add_options,
    check_options=check_options,
    filter_ocr_image=filter_ocr_image,
    filter_page_image=filter_page_image,
)
