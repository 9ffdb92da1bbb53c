"""Where the shipped model lives and what its metadata says.

The ONNX file ships inside the package (``ocr_denoise/models/denoiser.onnx``) so a
wheel installed into a fresh environment works with no checkout around it.
``exported/denoiser.onnx`` in the repository is a link to the same file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL_NAME = "denoiser.onnx"


def default_model_path() -> Path:
    """Filesystem path of the model shipped with the package."""
    return Path(str(resources.files("ocr_denoise") / "models" / DEFAULT_MODEL_NAME))
