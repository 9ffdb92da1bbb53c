"""ocr-denoise: clean scanned document pages before OCR."""

from ._version import __version__
from .api import denoise_page, get_denoiser
from .batch import BatchReport, FileResult, denoise_folder
from .model import ModelError, ModelNotFoundError
from .session import Denoiser, InferenceError, ProviderError

__all__ = ["BatchReport", "Denoiser", "FileResult", "InferenceError", "ModelError",
           "ModelNotFoundError", "ProviderError", "__version__", "denoise_folder",
           "denoise_page", "get_denoiser"]
