"""Classical page cleaners users try before a learned model, as the benchmarks' baselines.

Each takes an H x W uint8 gray page (white = 255) and returns an H x W uint8 page.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


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


def nl_means(img: np.ndarray) -> np.ndarray:
    """OpenCV's non-local means, h=10, template 7, search 21 (the usual settings)."""
    return cv2.fastNlMeansDenoising(img, None, 10, 7, 21)


#: name -> cleaner. "tesseract-sauvola" is not here: it is tesseract's own
#: thresholding_method=2 on the damaged page, a tesseract option not a cleaner.
CLEANERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "otsu": otsu,
    "sauvola": sauvola,
    "median+otsu": median_otsu,
    "nlmeans": nl_means,
}
