"""ocr-denoise: clean scanned document pages before OCR."""

from ._version import __version__
from .api import denoise_page, get_denoiser
from .model import ModelError, ModelNotFoundError
from .session import Denoiser, InferenceError, ProviderError

__all__ = ["Denoiser", "InferenceError", "ModelError", "ModelNotFoundError", "ProviderError",
           "__version__", "denoise_page", "get_denoiser"]
