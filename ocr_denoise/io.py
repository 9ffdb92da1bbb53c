"""Reading and writing page image files. The only module that touches the filesystem
for images; everything it returns is a plain numpy array for ``normalize`` to check."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np


def _default_file_mode() -> int:
    """0666 less the process umask: the mode ``open()`` would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class ImageReadError(ValueError):
    """A file could not be read as a page image; the message names the file."""


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as uint8/uint16, gray/BGR/BGRA, exactly as stored."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ImageReadError(f"{p}: cannot read file: {e.strerror or e}") from e
    if not data:
        raise ImageReadError(f"{p}: file is empty (0 bytes)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{p}: not a readable image (corrupt, truncated or unsupported format)")
    return img


def write_image(path: str | os.PathLike[str], img: np.ndarray) -> None:
    """Write ``img`` to ``path`` atomically: a temporary file in the same folder,
    flushed, then renamed, so no partial file ever carries the final name."""
    p = Path(path)
    ext = p.suffix or ".png"
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise ValueError(f"{p}: cannot encode image as {ext}")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
