"""Classical page cleaners users try before a learned model, as the benchmarks' baselines.

Each takes an H x W uint8 gray page (white = 255) and returns an H x W uint8 page.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

# Non-local means: one definition for this baseline and for the training teacher
# (``python -m train fit --teacher-pages``) that learns it. Needs the repository root
# on sys.path, as every benchmark that imports this module puts it.
from train.data import nl_means


def otsu(img: np.ndarray) -> np.ndarray:
    """Global Otsu threshold."""
    return cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]


def sauvola(img: np.ndarray, window: int = 25, k: float = 0.2, r: float = 128.0) -> np.ndarray:
    """Sauvola's local threshold T = m (1 + k (s / R - 1)) over a window x window box."""
    x = img.astype(np.float64)
    mean = cv2.boxFilter(x, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    sq = cv2.boxFilter(x * x, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    std = np.sqrt(np.maximum(sq - mean * mean, 0))
    t = mean * (1 + k * (std / r - 1))
    return np.where(x > t, 255, 0).astype(np.uint8)


def median_otsu(img: np.ndarray) -> np.ndarray:
    """3x3 median filter (speckle), then Otsu."""
    return otsu(cv2.medianBlur(img, 3))


#: name -> cleaner. "tesseract-sauvola" is not here: it is tesseract's own
#: thresholding_method=2 on the damaged page, a tesseract option not a cleaner.
CLEANERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "otsu": otsu,
    "sauvola": sauvola,
    "median+otsu": median_otsu,
    "nlmeans": nl_means,
}


#: What OCRmyPDF's ``--clean`` passes to unpaper (ocrmypdf/_exec/unpaper.py,
#: OCRmyPDF 16-17): no layout detection, no filters, no deskew, no re-centring.
UNPAPER_ARGS = ["--layout", "none", "--mask-scan-size", "100", "--no-border-align",
                "--no-mask-center", "--no-grayfilter", "--no-blackfilter", "--no-deskew"]


def unpaper(img: np.ndarray, dpi: float = 300.0) -> np.ndarray:
    """The page through the real unpaper program (Debian package ``unpaper``) with
    the arguments OCRmyPDF's ``--clean`` uses, at ``dpi``."""
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.pgm", Path(tmp) / "out.pgm"
        cv2.imwrite(str(src), img)
        subprocess.run(["unpaper", "-q", "--dpi", str(round(dpi, 6)), *UNPAPER_ARGS,
                        str(src), str(dst)], check=True, capture_output=True, cwd=tmp)
        out = cv2.imread(str(dst), cv2.IMREAD_GRAYSCALE)
    if out is None or out.shape != img.shape:
        raise RuntimeError(f"unpaper returned {None if out is None else out.shape} for "
                           f"a page of {img.shape}")
    return out


def cubic2x(img: np.ndarray) -> np.ndarray:
    """A plain 2x bicubic enlargement (what OCRmyPDF's --oversample does for small text)."""
    return cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
