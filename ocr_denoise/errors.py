"""Every error ocr-denoise raises on purpose, under one base class.

``except OcrDenoiseError`` catches anything the package raises about a page, a
file, a model, a device, a setting or a missing optional part. Each class also
keeps the built-in base it had before this module existed (``ValueError``,
``TypeError``, ``FileNotFoundError``, ``RuntimeError``), so no caller's
``except`` clause stops matching.

========================  =====================================  ==============================
class                     raised when                            also a
========================  =====================================  ==============================
``PageError``             a page has an unusable shape, dtype    ``ValueError``
                          or values (NaN, floats outside [0, 1])
``PageTypeError``         a page is not an array / image / path  ``TypeError``
                          or has an unsupported dtype
``SettingsError``         a setting is out of range              ``ValueError``
                          (``batch_size=0``, unknown device...)
``SettingsTypeError``     a setting has the wrong type           ``TypeError``
``ImageReadError``        an image file cannot be read           ``ValueError``
``ImageTooLargeError``    its header declares too many pixels    ``ImageReadError``
``ImageWriteError``       a page cannot be written as asked      ``ValueError``
``ModelError``            a model file is missing, damaged or    ``ValueError``
                          does not fit the denoiser
``ModelNotFoundError``    the model path does not exist          ``ModelError``,
                                                                 ``FileNotFoundError``
``ProviderError``         the requested device cannot be had     ``RuntimeError``
``InferenceError``        onnxruntime failed on a batch          ``RuntimeError``
``MissingDependencyError``  an optional part (pytesseract,       ``RuntimeError``
                          tesseract, dask) is not installed
========================  =====================================  ==============================
"""

from __future__ import annotations

import os
from pathlib import Path


class OcrDenoiseError(Exception):
    """Base of every error ocr-denoise raises on purpose."""


class PageError(OcrDenoiseError, ValueError):
    """A page (array or image) has an unusable shape, dtype or values."""


class PageTypeError(OcrDenoiseError, TypeError):
    """A page is of a type or dtype ocr-denoise does not take (a ``TypeError``,
    not a ``ValueError``: an ``except ValueError`` meant for bad values does not
    catch it)."""


class SettingsError(OcrDenoiseError, ValueError):
    """A setting (batch size, overlap, device, output format, jobs...) is out of range."""


class SettingsTypeError(OcrDenoiseError, TypeError):
    """A setting has the wrong type."""


class ImageReadError(OcrDenoiseError, ValueError):
    """A file could not be read as a page image.

    ``path`` is the file, ``reason`` what is wrong with it; ``str(e)`` is
    ``"PATH: REASON"``.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[Path, str], dict]:
        # keep both fields (and any notes) across processes (multiprocessing, Dask)
        return (type(self), (self.path, self.reason), self.__dict__)


class ImageTooLargeError(ImageReadError):
    """A page's header declares more pixels than the limit; nothing was decoded."""


class ImageWriteError(OcrDenoiseError, ValueError):
    """A page cannot be written as asked: an extension we do not write, an array
    the format cannot hold, several pages for a one-page format. Names the file."""


class ModelError(OcrDenoiseError, ValueError):
    """A model file is missing, unreadable, damaged or does not fit the denoiser.

    The message always names the file and what is wrong with it.
    """


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The model path does not exist (also a ``FileNotFoundError``)."""


class ProviderError(OcrDenoiseError, RuntimeError):
    """An explicitly requested execution provider cannot be used."""


class InferenceError(OcrDenoiseError, RuntimeError):
    """onnxruntime failed while running a batch, or the model returned garbage
    (wrong shape, NaN or infinity) for it. The message names the model."""


class MissingDependencyError(OcrDenoiseError, RuntimeError):
    """An optional part a run asked for is not installed (pytesseract or the
    tesseract program for OCR, ``distributed`` for a Dask cluster). The message
    says what to install."""


__all__ = ["ImageReadError", "ImageTooLargeError", "ImageWriteError", "InferenceError",
           "MissingDependencyError", "ModelError", "ModelNotFoundError", "OcrDenoiseError",
           "PageError", "PageTypeError", "ProviderError", "SettingsError", "SettingsTypeError"]
