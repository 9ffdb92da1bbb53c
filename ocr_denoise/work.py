"""What a folder run does with one file: ``process_file(task, denoiser, options)``.

It reads the input (``images``), denoises each page through the page pipeline
(``pipeline``, with the DPI the file records), writes the output atomically
(``images`` / ``atomic``) and, with ``ocr``, tesseract's text beside it. It
never raises for a problem with the file: the problem becomes a failed
``FileResult`` with its reason, so one bad file never stops the others.

``RunOptions`` are the settings every file of a run shares; small, frozen and
picklable, they travel to worker processes and Dask workers instead of a session.
How files are spread over processes or machines is the executors' business
(``executors``, ``cluster``), not this module's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from . import images, pipeline, rescale
from .decision import PageRecord, describe
from .errors import (
    ImageReadError,
    MissingDependencyError,
    ModelError,
    SettingsError,
    SettingsTypeError,
)
from .model import resolve_model
from .plan import Task, same_file, text_path
from .report import FileResult
from .session import Denoiser, Device, device_key, enlarger_arg, model_arg

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """The settings of a folder run, shared by every file.

    ``model``: ONNX model path (None: the shipped one; stored as a str); workers
    must be able to read it. ``device``: ``"auto"``, ``"cpu"``, ``"cuda"`` or a
    list of onnxruntime provider names, as for ``Denoiser``. ``overwrite``:
    redo outputs that exist (default: skip them, which resumes a run).
    ``ocr`` / ``ocr_lang``: also write tesseract's text (``.txt``, pages
    separated by form feeds); with ``ocr``, a language tesseract lacks
    (``"eng+xyz"``) is a ``SettingsError`` when the options are made, naming
    the languages it has. ``max_pixels``: refuse pages whose header
    declares more pixels (None: no limit). ``rescale``: denoise pages above
    600 DPI at 300 DPI, as ``denoise_page`` does (``ocr_denoise.rescale``).
    ``guard``: leave pages the model was measured to make worse as they are
    (``ocr_denoise.guard``); False applies the model to every page.
    ``upscale``: None, ``"auto"`` or an int factor, as for ``denoise_page``: an
    enlarged page is written enlarged, with its DPI scaled to match.
    ``enlarger``: the enlargement model a 2x ``upscale`` uses, as for
    ``Denoiser``: ``"auto"`` (the shipped one, if any; resolved where the
    session is built), a shipped model's name or a path (stored as a str;
    workers must be able to read it), or None (cubic enlargement).
    """

    model: str | os.PathLike[str] | None = None
    device: Device = "auto"
    overwrite: bool = False
    ocr: bool = False
    ocr_lang: str = "eng"
    max_pixels: int | None = images.DEFAULT_MAX_PIXELS
    rescale: bool = True
    guard: bool = True
    upscale: str | int | None = None
    enlarger: str | os.PathLike[str] | None = "auto"

    def __post_init__(self) -> None:
        model = model_arg(self.model)
        if model is not None:
            object.__setattr__(self, "model", os.fspath(model))
        enlarger_arg(self.enlarger)  # the type checked here; "auto" stays "auto"
        if self.enlarger is not None:
            object.__setattr__(self, "enlarger", os.fspath(self.enlarger))
        # "auto", "cpu", "cuda" or provider names (kept as a tuple: hashable, picklable)
        object.__setattr__(self, "device", device_key(self.device))
        # a bad upscale is one error for the run, not a failure of every file
        object.__setattr__(self, "upscale", pipeline.check_upscale(self.upscale))
        if not isinstance(self.ocr_lang, str):
            raise SettingsTypeError(f"ocr_lang must be a str such as 'eng' or 'eng+deu', "
                                    f"got {type(self.ocr_lang).__name__}")
        if self.ocr:
            _check_languages_here(self.ocr_lang)

    @classmethod
    def of(cls, options: RunOptions | None = None, **settings: Any) -> RunOptions:
        """``options`` (default: all defaults) with ``settings`` replaced; an
        unknown setting name is a ``SettingsTypeError`` naming the known ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise SettingsTypeError(f"unknown run setting(s) {', '.join(unknown)}; "
                                    f"expected {', '.join(sorted(names))}")
        if options is not None and not isinstance(options, RunOptions):
            raise SettingsTypeError(f"options must be RunOptions, got {type(options).__name__}")
        return dataclasses.replace(options or cls(), **settings)


def check_denoiser(denoiser: Denoiser) -> Denoiser:
    """``denoiser``, if its model denoises: an enlargement model given as the
    model is one ``SettingsError`` for the run, naming the file, rather than a
    failure of every file."""
    scale = denoiser.interface.scale
    if scale != 1:
        raise SettingsError(f"{denoiser.model_path} is an enlargement model (metadata "
                            f"scale={scale}), not a denoiser; give it as the enlarger "
                            "(enlarger=..., --enlarger, --denoise-enlarger)")
    return denoiser


def enlarger_problem(error: Exception, enlarger: object) -> str | None:
    """What ``error`` (from building a ``Denoiser``) says about its enlargement
    model ``enlarger`` (as given: a name or path), for the option that named it
    to show; None when the error is about something else, or no enlargement
    model was named."""
    if enlarger is None or enlarger == "auto" or not isinstance(enlarger, (str, os.PathLike)):
        return None
    said = str(error)
    own = f"enlarger={enlarger!r}: "  # Denoiser's words: not an enlargement model
    if said.startswith(own):
        return said[len(own):]
    if isinstance(error, ModelError) and said.startswith(f"{resolve_model(enlarger)}:"):
        return said  # missing, damaged or does not fit: it names the file
    return None


def check_ocr(lang: str | None = None) -> None:
    """``MissingDependencyError`` unless pytesseract and the tesseract program
    are there, and with ``lang`` a ``SettingsError`` unless tesseract has its
    languages: checked once per run (on a Dask worker: once per run on that
    machine), not discovered on every file."""
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
    except ImportError as e:
        raise MissingDependencyError(
            "--ocr needs pytesseract: pip install 'ocr-denoise[ocr]'") from e
    except Exception as e:
        raise MissingDependencyError(f"--ocr needs the tesseract program (Debian: apt install "
                                     f"tesseract-ocr): {e}") from e
    if lang is not None:
        from .ocr import check_languages

        check_languages(lang)


def _check_languages_here(lang: str) -> None:
    """A language tesseract lacks is one ``SettingsError`` when the options are
    made, before any page, not a ``TesseractError`` for every file afterwards.
    Where tesseract cannot be run here (a Dask client: OCR runs on the workers),
    ``check_ocr`` reports it where OCR runs instead."""
    from .ocr import available_languages, check_languages

    try:
        have = available_languages()
    except MissingDependencyError:
        return
    check_languages(lang, have)


def _ocr(page: np.ndarray, options: RunOptions) -> str:
    from .ocr import tesseract_text

    return tesseract_text(page, lang=options.ocr_lang)


def _denoise(denoiser: Denoiser, src: images.SourceImage, index: int,
             options: RunOptions) -> tuple[np.ndarray, images.Dpi | None, PageRecord]:
    """Page ``index`` denoised, the DPI to record with it (scaled if enlarged),
    and what was done to it."""
    dpi = src.dpi[index]
    page, rec = pipeline.explain(denoiser, src.read(index), dpi if options.rescale else None,
                                 guard=options.guard, upscale=options.upscale)
    factor = page.shape[1] / src.sizes[index][0]
    return page, dpi if factor == 1 else rescale.scaled_dpi(dpi, factor), rec


def process_file(task: Task, denoiser: Denoiser, options: RunOptions) -> FileResult:
    """Denoise one file into ``task.dst`` (and its text with ``options.ocr``).

    Outputs are H x W uint8 grey pages with the input's DPI (with ``upscale``,
    enlarged pages with their DPI scaled to match); a multi-page TIFF
    becomes a multi-page TIFF (``.tif``) whatever the output format, since PNG
    and JPEG hold one page. Never raises for a problem with the file: returns
    a failed ``FileResult`` with the reason instead. KeyboardInterrupt passes
    through (nothing partial is left: writes are atomic).
    """
    dst = task.dst
    writing: Path | None = None  # the output being written: an OSError names it
    try:
        src = images.open_image(task.src, max_pixels=options.max_pixels)
        if src.pages > 1 and dst.suffix.lower() not in (".tif", ".tiff"):
            if task.fixed_name:
                return FileResult(task.src, "failed", dst, reason=(
                    f"has {src.pages} pages and only a TIFF holds several; name the "
                    "output .tif"))
            dst = dst.with_suffix(".tif")
        text = text_path(dst) if options.ocr else None
        if dst.exists() and not options.overwrite:
            if text is None or text.exists():
                return FileResult(task.src, "skipped", dst)
            # An earlier run wrote the image but not its text: OCR that image.
            texts = [_ocr(p, options) for p in images.open_image(dst, max_pixels=None)]
            writing = text
            images.write_text(text, "\f".join(texts))
            return FileResult(task.src, "done", dst, 0, "text only: image already there",
                              text)
        if same_file(task.src, dst):
            return FileResult(task.src, "failed", dst,
                              reason=f"output {dst} would overwrite the input")
        texts = []
        records = []
        if src.pages == 1:
            page, dpi, rec = _denoise(denoiser, src, 0, options)
            records.append(rec)
            writing = dst
            images.write_image(dst, page, dpi=dpi)
            writing = None
            if text is not None:
                texts.append(_ocr(page, options))
        else:
            with images.TiffPagesWriter(dst) as w:
                for i in range(src.pages):
                    page, dpi, rec = _denoise(denoiser, src, i, options)
                    records.append(rec)
                    writing = dst
                    w.add(page, dpi=dpi)
                    writing = None
                    if text is not None:
                        texts.append(_ocr(page, options))
                writing = dst  # closing publishes the file
        writing = None
        if text is not None:
            writing = text
            images.write_text(text, "\f".join(texts))  # form feed between pages, as tesseract
        return FileResult(task.src, "done", dst, src.pages, describe(records), text,
                          tuple(records))
    except ImageReadError as e:
        return FileResult(task.src, "failed", task.dst, reason=e.reason)
    except OSError as e:
        if writing is not None:  # a full disk, a read-only folder: name the output
            where = f" writing {writing}"
        else:
            where = f" ({e.filename})" if e.filename else ""
        return FileResult(task.src, "failed", dst,
                          reason=f"{type(e).__name__}: {e.strerror or e}{where}",
                          errno=e.errno)
    except Exception as e:  # one bad file must not stop the others
        logger.debug("failure on %s", task.src, exc_info=True)
        return FileResult(task.src, "failed", task.dst, reason=f"{type(e).__name__}: {e}")
