"""ocr-denoise: clean scanned document pages before OCR.

``denoise_page(img)`` for one page; ``Denoiser`` to keep a session;
``denoise_folder`` / ``denoise_files`` for many files (``RunOptions``,
executors in ``ocr_denoise.executors`` and ``ocr_denoise.cluster``). Every
error the package raises derives from ``OcrDenoiseError``.
"""

# The names below are loaded on first use (PEP 562), not when the package is
# imported: ``import ocr_denoise`` (and so ``import ocr_denoise.cli``, which the
# ``ocr-denoise`` command starts with) must not load numpy, OpenCV or
# onnxruntime. That takes about half a second, during which the command has not
# yet installed its Ctrl-C handler, so a Ctrl-C there would print a traceback.
# ``from ocr_denoise import Denoiser`` works as before; type checkers and IDEs
# read the imports under TYPE_CHECKING.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
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

# Each public name -> the module that defines it (keep in step with the imports above).
_LAZY = {
    "denoise_page": "api", "get_denoiser": "api",
    "denoise_files": "batch", "denoise_folder": "batch",
    "PageRecord": "decision",
    **dict.fromkeys([
        "ImageReadError", "ImageTooLargeError", "ImageWriteError", "InferenceError",
        "MissingDependencyError", "ModelError", "ModelNotFoundError", "OcrDenoiseError",
        "PageError", "PageTypeError", "ProviderError", "SettingsError", "SettingsTypeError",
    ], "errors"),
    "BatchReport": "report", "FileResult": "report",
    "Denoiser": "session",
    "RunOptions": "work",
}

__all__ = ["BatchReport", "Denoiser", "FileResult", "ImageReadError", "ImageTooLargeError",
           "ImageWriteError", "InferenceError", "MissingDependencyError", "ModelError",
           "ModelNotFoundError", "OcrDenoiseError", "PageError", "PageRecord", "PageTypeError",
           "ProviderError",
           "RunOptions", "SettingsError", "SettingsTypeError", "__version__", "denoise_files",
           "denoise_folder", "denoise_page", "get_denoiser"]


# Hidden from type checkers: a module __getattr__ would make them accept any
# name, ocr_denoise.no_such_thing included.
if not TYPE_CHECKING:
    def __getattr__(name: str) -> Any:
        """A public name, imported from its module on first use; or a submodule
        (``ocr_denoise.images`` after a bare ``import ocr_denoise``, which worked when
        the package imported everything eagerly)."""
        module = _LAZY.get(name)
        if module is not None:
            value = getattr(importlib.import_module(f".{module}", __name__), name)
            globals()[name] = value  # later lookups do not come here
            return value
        if not name.startswith("__"):
            try:
                return importlib.import_module(f".{name}", __name__)
            except ModuleNotFoundError as e:
                if e.name != f"{__name__}.{name}":
                    raise  # the submodule exists but something it imports is missing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
