"""The guard: whether the model's output replaces the page.

A denoiser that makes a user's pages read worse is dropped after the first try,
so the page is measured, cheaply, and the model's output is kept only where the
model was measured to help; otherwise the page comes out as it came in (as
8-bit grey). Measured on the page at the scale the model sees it:

``noise`` (``PageStats``, before the model runs)
    Immerkær's estimate of the standard deviation of pixel noise (gray levels
    0..255), the mean absolute response to the 3 x 3 kernel
    [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] times sqrt(pi / 2) / 6, taken over
    paper only (pixels whose 5 x 5 medians around them are all paper): text
    edges are not noise. Sensor noise, salt and pepper and fax dither give
    20-60; real 90-DPI forms, stains, crumples and clean prose below 1.5; very
    small dense print up to about 7.
``detail`` (before)
    the same response over the whole page, text edges included: how sharp the
    page is. Sharp prose gives about 3, real 90-DPI forms 1.3-7, blurred,
    faded or resampled pages 0.2-1.3.
``background`` (before)
    how uneven the paper is: the 99th minus the 1st percentile of the
    background ``flatten`` measures (0..1). Stains, shadows and uneven light
    give 0.1-0.6; clean paper and real office scans about 0.
``grey`` (before)
    the share of pixels between ink and paper: darkness (1 - pixel /
    background) between 0.15 and 0.65. Crumpled paper and text showing through
    from the back give 0.08-0.2; clean prose and real office scans 0.02-0.06.
``text_height`` (of the model's output)
    the median height (px) of letter-like connected components of the page
    binarised with a local mean threshold (after a 3 x 3 median): about the
    x-height of body text. Measured on the output because on the input noise
    specks are components too (a noisy 15-px page reads as 4 px); the output
    has none. None when fewer than 20 components qualify.

The rule, with thresholds chosen on selection pages only
(``benchmarks/guard_select.py``; docs/benchmarks.md has the figures):

1. ``before``: a very smooth page (``detail < SMOOTH``: the strongest blur) is
   left as it is: the model sharpens nothing and made such pages read worse.
   So is a page with none of the damage the model removes (``noise <
   NOISE``, even paper, little grey): on such pages, real scans above all, it
   only erodes letters. The model does not even run on them;
2. ``after``: a very noisy page (``noise >= NOISY``) keeps the model's output,
   this is what the model is for; otherwise text smaller than ``MIN_TEXT`` is
   left as it is: the model learnt x-heights of 10-40 px and erases the hairlines of
   smaller letters; ``upscale="auto"`` enlarges such pages first.

Cost: the noise, detail, grey and text-height measurements read at most about
``SAMPLE_PIXELS`` pixels (bands of rows spread over a larger page), and the
background is the one ``flatten`` measures (from the whole page) for the model
anyway: measured on 2 cores, the share of ``denoise_page``'s
time on a 300-DPI letter page: 4.6%; at 150 DPI 6.4%; on a 90-DPI one 10.5%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import flatten
from .tiling import RowSource

#: Name of this rule, for logs and benchmarks.
NAME = "guard-v1"
# The thresholds: chosen on selection pages by benchmarks/guard_select.py (FUNSD's
# selection forms and ocr_quality's selection seed, 20 pages per damage kind).
#: Paper noise (gray levels) at or above which a page has noise the model removes.
NOISE = 3.5
#: Paper noise at or above which the model's output is kept whatever the text size.
NOISY = 20.0
#: Background unevenness (0..1) at or above which the paper is damaged.
BACKGROUND = 0.025
#: Share of grey pixels at or above which a page is damaged (crumples, bleed-through).
GREY = 0.08
#: A pixel is paper, for the noise estimate, where its 5 x 5 median is at least
#: this share of the background.
PAPER = 0.9
#: Darkness range (1 - pixel / background) counted as grey.
GREY_RANGE = (0.15, 0.65)
#: Detail (``PageStats.detail``) below which a page is smooth (strongly blurred): left as it is.
SMOOTH = 0.4
#: Text height (px) below which the model's output is not kept (not noisy pages).
MIN_TEXT = 9.0
#: ``upscale="auto"`` enlarges pages whose text (px, on the input) is smaller than
#: this, 2x. On FUNSD's selection forms a 2x enlargement read better at every text
#: height measured there (6-13 px; benchmarks/real_scans.py --split selection
#: --methods raw,cubic2x); larger text was not measured, so it keeps its size.
UPSCALE_BELOW = 14.0
#: Pixels ``upscale="auto"`` reads for its text height (more than the guard's: it
#: decides the output's size, and was chosen on whole 0.8-Mpx pages).
UPSCALE_SAMPLE_PIXELS = 2_000_000
#: Most pixels the measurements read; a larger page is sampled in bands of rows.
SAMPLE_PIXELS = 400_000
#: Rows per sampled band.
BAND = 192
#: Fewest letter-like components for a text height.
MIN_COMPONENTS = 20

_SQUARE3 = np.ones((3, 3), np.uint8)
_LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)



@dataclass(frozen=True)
class PageStats:
    """What the guard measures before the model runs (see the module docstring)."""

    noise: float
    detail: float
    background: float
    grey: float


@dataclass(frozen=True)
class Decision:
    """Whether to keep the model's output, and why."""

    apply: bool
    reason: str


def bands(height: int, width: int, budget: int | None = None) -> list[tuple[int, int]]:
    """The row bands the measurements read: the whole page if it has at most
    ``budget`` (default ``SAMPLE_PIXELS``) pixels, else bands of ``BAND`` rows
    (tall enough for whole letters) centred in equal slices of the page, so that
    margins are not what is sampled; at least two, even where two exceed the
    budget (a very wide page)."""
    budget = SAMPLE_PIXELS if budget is None else budget
    if height * width <= budget or height <= 2 * BAND:
        return [(0, height)]
    n = max(2, min(height // BAND, budget // (BAND * width)))
    centres = (np.arange(n) + 0.5) * height / n
    starts = np.clip(np.round(centres - BAND / 2), 0, height - BAND).astype(int)
    return [(int(y), int(y) + BAND) for y in starts]


def _u8(rows: np.ndarray) -> np.ndarray:
    return np.clip(rows * np.float32(255.0) + np.float32(0.5), 0, 255).astype(np.uint8)


def measure(read: RowSource, height: int, width: int,
            levels: flatten.PageLevels | None = None) -> PageStats:
    """Measure a page read through ``read(y0, y1)`` (float32 gray rows in [0, 1]);
    ``levels``: its ``flatten.measure``, if already known."""
    if levels is None:
        levels = flatten.measure(read, height, width)
    total, count = 0.0, 0
    detail, detail_count = 0.0, 0
    grey, pixels = 0, 0
    lo, hi = GREY_RANGE
    for y0, y1 in bands(height, width):
        rows = read(y0, y1)
        g = _u8(rows)
        background = flatten.background_rows(y0, y1, levels)
        if g.shape[0] >= 5 and g.shape[1] >= 5:
            # Paper only: where the 5 x 5 medians of the pixel and its 3 x 3
            # neighbours all reach PAPER of the background. Text edges are not
            # noise (dense small print would read as noisy); the median keeps
            # noise itself from hiding the paper.
            paper = cv2.erode(cv2.medianBlur(g, 5), _SQUARE3) >= _u8(background * PAPER)
            r = np.abs(cv2.filter2D(g.astype(np.float32), -1, _LAPLACE))[1:-1, 1:-1]
            inner = paper[1:-1, 1:-1]
            total += float(r[inner].sum())
            count += int(np.count_nonzero(inner))
            detail += float(r.sum())
            detail_count += r.size
        dark = 1.0 - rows / background
        grey += int(np.count_nonzero((dark > lo) & (dark < hi)))
        pixels += dark.size
    p1, p99 = np.percentile(levels.background, [1, 99])
    scale = math.sqrt(math.pi / 2) / 6
    return PageStats(
        noise=scale * total / count if count else 0.0,
        detail=scale * detail / detail_count if detail_count else 0.0,
        background=float(p99 - p1),
        grey=grey / pixels if pixels else 0.0,
    )


def text_height(page: np.ndarray | RowSource, height: int | None = None,
                width: int | None = None, budget: int | None = None) -> float | None:
    """Median height (px) of the letter-like components of a page, or None when
    fewer than ``MIN_COMPONENTS`` qualify. ``page``: an H x W uint8 array, or a
    ``read(y0, y1)`` of float32 gray rows in [0, 1] with ``height`` and ``width``."""
    if isinstance(page, np.ndarray):
        arr = page
        height, width = arr.shape

        def read_u8(y0: int, y1: int) -> np.ndarray:
            return arr[y0:y1]
    else:
        source = page

        def read_u8(y0: int, y1: int) -> np.ndarray:
            return _u8(source(y0, y1))
    assert height is not None and width is not None
    heights = [_component_heights(read_u8(y0, y1))
               for y0, y1 in bands(height, width, budget)]
    all_h = np.concatenate(heights) if heights else np.empty(0)
    return float(np.median(all_h)) if len(all_h) >= MIN_COMPONENTS else None


def _component_heights(g: np.ndarray) -> np.ndarray:
    """Heights of the letter-like dark components of a uint8 band, leaving out
    those the band's top or bottom edge cuts."""
    if min(g.shape) < 3:
        return np.empty(0)
    smooth = cv2.medianBlur(np.ascontiguousarray(g), 3)
    ink = cv2.adaptiveThreshold(smooth, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                                31, 15)
    _, _, st, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    st = st[1:]
    top, h = st[:, cv2.CC_STAT_TOP], st[:, cv2.CC_STAT_HEIGHT]
    w, a = st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_AREA]
    whole = (top > 0) & (top + h < g.shape[0])
    # 5 px and 10 pixels at least: specks a model leaves on a degraded page would
    # otherwise outnumber the letters (DIBCO's pages measured 4 px).
    letter = (h >= 5) & (h <= 80) & (w <= 3 * h) & (a >= 10)
    return h[whole & letter].astype(np.float64)


def upscale_factor(page_noise: float, input_text_height: float | None) -> int:
    """``upscale="auto"``: 2 when the page's text is smaller than ``UPSCALE_BELOW``
    px, else 1 (the page keeps its size). Very noisy pages (``noise >= NOISY``)
    are not enlarged: noise fakes small letters in the text height, and
    enlarging smears each noisy pixel into a blob (measured: 100-DPI pages under
    Gaussian or salt-and-pepper noise read far worse enlarged; ``ocr_denoise.rescale``)."""
    if page_noise >= NOISY or input_text_height is None:
        return 1
    return 2 if input_text_height < UPSCALE_BELOW else 1


def before(stats: PageStats) -> Decision:
    """Whether to run the model at all."""
    if stats.detail < SMOOTH:
        return Decision(False, f"smooth page (detail {stats.detail:.2f} < {SMOOTH})")
    if stats.noise >= NOISE:
        return Decision(True, f"noise on the paper ({stats.noise:.1f} >= {NOISE})")
    if stats.background >= BACKGROUND:
        return Decision(True, f"uneven paper (background {stats.background:.2f})")
    if stats.grey >= GREY:
        return Decision(True, f"grey damage ({stats.grey:.3f} of the page)")
    return Decision(False, f"no damage the model removes (noise {stats.noise:.1f}, "
                           f"background {stats.background:.2f}, grey {stats.grey:.3f})")


def after(stats: PageStats, output_text_height: float | None) -> Decision:
    """Whether to keep the model's output, from the input's measurements and the
    text height of the output."""
    if stats.noise >= NOISY:
        return Decision(True, f"noisy page (noise {stats.noise:.1f} >= {NOISY})")
    if output_text_height is not None and output_text_height < MIN_TEXT:
        return Decision(False, f"small text ({output_text_height:.0f} px < {MIN_TEXT:.0f})")
    return Decision(True, "text the size the model learnt")
