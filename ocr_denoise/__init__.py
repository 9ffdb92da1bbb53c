"""ocr-denoise: clean scanned document pages before OCR."""

from ._version import __version__
from .api import denoise_page, get_denoiser
from .session import Denoiser, ProviderError

__all__ = ["Denoiser", "ProviderError", "__version__", "denoise_page", "get_denoiser"]
