"""ocr-denoise: clean scanned document pages before OCR.

``denoise_page(img)`` for one page; ``Denoiser`` to keep a session;
``denoise_folder`` / ``denoise_files`` for many files (``RunOptions``,
executors in ``ocr_denoise.executors`` and ``ocr_denoise.cluster``). Every
error the package raises derives from ``OcrDenoiseError``.
"""

from ._version import __version__
from .api import denoise_page, get_denoiser
from .batch import denoise_files, denoise_folder
from .decision import PageRecord
from .errors import (
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    InferenceError,
    MissingDependencyError,
    ModelError,
    ModelNotFoundError,
    OcrDenoiseError,
    PageError,
    PageTypeError,
    ProviderError,
    SettingsError,
    SettingsTypeError,
)
from .report import BatchReport, FileResult
from .session import Denoiser
from .work import RunOptions

__all__ = ["BatchReport", "Denoiser", "FileResult", "ImageReadError", "ImageTooLargeError",
           "ImageWriteError", "InferenceError", "MissingDependencyError", "ModelError",
           "ModelNotFoundError", "OcrDenoiseError", "PageError", "PageRecord", "PageTypeError",
           "ProviderError",
           "RunOptions", "SettingsError", "SettingsTypeError", "__version__", "denoise_files",
           "denoise_folder", "denoise_page", "get_denoiser"]
