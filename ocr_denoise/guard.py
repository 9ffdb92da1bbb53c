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
    20-60; NoisyOffice's pages 2-3; real 90-DPI forms 0.3-1.5 (10th to 90th
    percentile), stains, crumples and clean prose below 1.5; very small dense
    print up to about 5.
``fine_noise`` (before)
    the same estimate over paper with no dark pixel within 1 px either (none
    darker than ``FINE_PAPER`` of the background): grain, sensor noise and
    paper texture, without the edges of hairlines and tiny letters, which a
    5 x 5 median removes and ``noise`` then counts (sharp 6-px print: ``noise``
    3-7), and without impulses (specks, salt and pepper, fax dither), which
    only ``noise`` sees. NoisyOffice's train pages 1.5-2.0 (10th to 90th
    percentile); real 90-DPI forms 0.04-0.18 (at most 0.8); scanned 5-8 px
    print 0.6-0.9 (at most 1.0).
``detail`` (before)
    the same response over the whole page, text edges included: how sharp the
    page is. Sharp prose gives about 3, real 90-DPI forms 1.3-7, blurred,
    faded or resampled pages 0.2-1.3.
``stain`` (before)
    how much of the page is discoloured paper: the share of the page whose
    background (``flatten``'s) is between ``STAIN_RANGE`` of the paper level
    (the background's 99th percentile). A stain, a shadow or a gradient of
    light covers much of a page at such levels (0.15-0.9). guard-v1 measured
    unevenness as the background's 99th minus 1st percentile instead, but a
    real form's black scan border, inverted banner or halftone bar gives that
    0.4-0.95 (FUNSD), and the model made those forms read worse: such areas
    are darker than paper, and their edges thin strips (forms: under 0.08).
``grey`` (before)
    the share of pixels between ink and paper away from ink: darkness (1 -
    pixel / background, stretched by ``flatten``'s ink gain) between 0.15 and
    0.65, more than 2 px from ink (darker than that). Text showing through
    from the back and crumpled paper give 0.06-0.17; clean, small, blurred or
    faded print, whose grey is the edges of its letters, under 0.01.
    (guard-v1 counted the grey edges too, and sent small and blurred print,
    where the model hurts most, to the model.)
``ink`` (before)
    how dark the darkest ink is (``flatten``'s ink level, 0.25..1): faded
    print and thermal receipts 0.25-0.3, dark print 0.5-1.
``text_height`` (of the model's output, and of its input where that is small)
    the median height (px) of letter-like connected components of the page
    binarised with a local mean threshold (after a 3 x 3 median): about the
    x-height of body text. Measured on the output because on the input noise
    specks are components too (a noisy 15-px page reads as 4 px); the output
    has none. But on degraded handwriting the output's fragments and specks
    read as 6-8 px where the page's letters are 12-21 (DIBCO), so where the
    output's is below ``MIN_TEXT`` the input's is taken too, and the larger
    decides: noise makes the input's smaller, fragments the output's, neither
    makes text look larger than it is. None when fewer than 20 components
    qualify.

The rule, with thresholds chosen on selection pages only
(``benchmarks/guard_select.py``; docs/benchmarks.md has the figures):

1. ``before``: a very smooth page (``detail < SMOOTH``: the strongest blur) is
   left as it is: the model sharpens nothing and made such pages read worse. So
   is a page with none of the damage the model removes (``noise < NOISE``,
   ``fine_noise < FINE_NOISE``, ``stain < STAIN``, ``grey < GREY`` or ``detail
   < GREY_SHARP``, ``ink >= FAINT``): on such pages, real scans above all, it
   only erodes letters. The model does not even run on them. Nor on faint print
   that is also blurred (``ink < FAINT`` with ``grey >= FAINT_BLUR`` and no
   noise nor stain: photocopies, soft low-contrast scans), whose letters it
   erases (guard-v3). guard-v4, chosen so that no real source (forms, receipts,
   archive pages) reads worse than raw on its selection pages, asks for more:
   fine noise alone no longer counts (on real scans it is JPEG ringing and
   paper grain), discoloured paper must cover ``STAIN`` (0.3) of the page, and
   grey away from ink counts only on a page sharp enough (``detail >=
   GREY_SHARP``): on a soft page, a phone capture of a receipt, the grey is the
   blur of the letters, which the model turned into blotches;
2. ``after``: a very noisy page (``noise >= NOISY``) keeps the model's output,
   this is what the model is for; otherwise text smaller than ``MIN_TEXT`` is
   left as it is: the model learnt x-heights of 10-40 px and erases the
   hairlines of smaller letters; ``upscale="auto"`` enlarges such pages first.
3. ``light``: where the ``Denoiser`` has a light model (``Denoiser(light=...)``),
   a page that is not smooth goes to it, before any of rule 1's damage is
   looked at, when its paper is grainy but not noisy (``LIGHT_FINE_NOISE <=
   fine_noise`` and ``noise < LIGHT_MAX_NOISE``): the paper texture, ribbon ink
   and JPEG grain of real archive pages and phone captures, where a model taught
   non-local means on real pages made archive pages read better and v8 eroded
   letters. Very noisy pages stay v8's. Chosen on the selection pages of every
   real source (docs/model-history.md, "Teaching non-local means").

Cost: the noise, detail, grey and text-height measurements read at most about
``SAMPLE_PIXELS`` pixels (bands of rows spread over a larger page), and the
background and ink level are the ones ``flatten`` measures (from the whole
page) for the model anyway (docs/benchmarks.md has the share of
``denoise_page``'s time, from ``benchmarks/speed.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from . import flatten
from .tiling import RowSource

#: Name of this rule, for logs and benchmarks.
NAME = "guard-v4"
# The thresholds: chosen on selection pages by benchmarks/guard_select.py (the
# selection pages of every real source: FUNSD's forms, SROIE's receipts, EHRI's
# archive pages; NoisyOffice's train pairs and ocr_quality's selection seed, 20 pages
# per kind), no real source read worse than raw first.
#: Paper noise (gray levels) at or above which a page has noise the model removes
#: (specks and heavy noise; fine noise has its own threshold, below).
NOISE = 6.0
#: Fine paper noise (``PageStats.fine_noise``) at or above which a page has noise the
#: model removes; inf: the rule is off (guard-v4). On real receipts and archive pages
#: fine noise is JPEG ringing and paper grain (1.1-3.1), and the model made 8 of the
#: 13 such selection pages read worse (low-resolution typewriting most: +3 to +11
#: points); kept in the measurements for the record.
FINE_NOISE = float("inf")
#: Paper noise at or above which the model's output is kept whatever the text size.
NOISY = 20.0
#: Ink level (``PageStats.ink``) below which the ink is faint: the model restores it.
FAINT = 0.3
#: Share of grey pixels (``PageStats.grey``) at or above which faint ink is faint
#: *blurred* print (photocopies, soft low-contrast scans): letters whose cores never
#: reach ink darkness even stretched, so grey is the letters themselves. The model
#: erased and blotted such print (synthetic photocopies: 6.5% CER as they came in,
#: 8.0% behind guard-v2); left as it is. guard-v3; inf turns the rule off.
FAINT_BLUR = 0.02
#: Share of the page whose paper is discoloured at or above which the paper is damaged.
STAIN = 0.3
#: Background levels, as shares of the paper level, counted as discoloured paper:
#: darker is not paper (a black border, a banner), lighter is paper's own variation.
STAIN_RANGE = (0.35, 0.9)
#: Share of grey pixels away from ink at or above which a page is damaged
#: (crumples, bleed-through).
GREY = 0.05
#: Detail (``PageStats.detail``) a page needs for its grey to count as damage: on a
#: soft page (phone captures of receipts) the grey away from ink is the blur of its
#: letters, and the model turned those letters into blotches (guard-v4).
GREY_SHARP = 0.7
#: A pixel is paper, for the noise estimate, where its 5 x 5 median is at least
#: this share of the background.
PAPER = 0.9
#: ... and, for the fine-noise estimate, where no pixel within 1 px is darker than
#: this share of the background.
FINE_PAPER = 0.7
#: Darkness range (1 - pixel / background, stretched by the ink gain) counted as
#: grey; darker is ink.
GREY_RANGE = (0.15, 0.65)
#: Detail (``PageStats.detail``) below which a page is smooth (strongly blurred): left as it is.
SMOOTH = 0.2
#: Text height (px) below which the model's output is not kept (not noisy pages);
#: 0: never. guard-v1 had 9, but with the damage measures of guard-v2 no text height
#: left out helped on the selection pages (small print no longer reaches the model
#: undamaged, and damaged small print read better cleaned).
MIN_TEXT = 0.0
#: ``upscale="auto"`` enlarges pages whose text (px, on the input) is smaller than
#: this, 2x. On FUNSD's selection forms a 2x enlargement read better at every text
#: height measured there (6-13 px; benchmarks/real_scans.py --split selection
#: --methods raw,cubic2x); larger text was not measured, so it keeps its size.
UPSCALE_BELOW = 14.0
#: Whether a page ``upscale`` enlarged goes to the model even when it shows no damage
#: the model removes (the model then sharpens the interpolated small print).
ENLARGED = False
# The light route (``Denoiser(light=...)``): which pages go to the light model, a
# residual model that starts as the identity, before rule 1 looks at their damage.
# Chosen on the selection pages of every real source: with the light model asked
# first, no source read worse and archive pages read better (docs/model-history.md).
#: Paper noise (gray levels) below which a page may go to the light model; noisier
#: pages (specks, heavy noise, dither) are the main model's.
LIGHT_MAX_NOISE = 6.0
#: Fine paper noise (``PageStats.fine_noise``: grain, ribbon and JPEG texture) at or
#: above which a page goes to the light model. Real 90-DPI forms 0.04-0.18 (none
#: taken); grainy typewritten archive pages 1.3-5.9; clean rendered text 0.
LIGHT_FINE_NOISE = 1.5
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
_SQUARE5 = np.ones((5, 5), np.uint8)
_LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


@dataclass(frozen=True)
class PageStats:
    """What the guard measures before the model runs (see the module docstring)."""

    noise: float
    detail: float
    stain: float
    fine_noise: float
    grey: float
    ink: float


@dataclass(frozen=True)
class Decision:
    """Whether to keep the model's output, and why: ``rule`` names the rule that
    decided (a ``decision.RULES`` name, stable for programs), ``reason`` says it
    in words with the values measured."""

    apply: bool
    reason: str
    rule: str = ""


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
    fine_total, fine_count = 0.0, 0
    detail, detail_count = 0.0, 0
    grey, pixels = 0, 0
    lo, hi = GREY_RANGE
    gain = np.float32(levels.gain)
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
            # Paper with no dark pixel within 1 px either: fine noise (grain, sensor
            # noise, paper texture) without the edges of hairlines and tiny letters
            # that a 5 x 5 median removes, and without impulses (specks, salt and
            # pepper), which ``noise`` counts.
            fine = inner & (cv2.erode(g, _SQUARE3) >= _u8(background * FINE_PAPER))[1:-1, 1:-1]
            fine_total += float(r[fine].sum())
            fine_count += int(np.count_nonzero(fine))
            detail += float(r.sum())
            detail_count += r.size
        # Grey away from ink (more than 2 px from it), the darkness stretched as
        # flatten stretches it: bleed-through and crumples, not the anti-aliased
        # or blurred edges of letters, nor faded ink.
        dark = (1.0 - rows / background) * gain
        near = cv2.dilate((dark >= hi).astype(np.uint8), _SQUARE5) > 0
        grey += int(np.count_nonzero((dark > lo) & (dark < hi) & ~near))
        pixels += dark.size
    rel = levels.background / max(float(np.percentile(levels.background, 99)), 1e-6)
    s0, s1 = STAIN_RANGE
    scale = math.sqrt(math.pi / 2) / 6
    return PageStats(
        noise=scale * total / count if count else 0.0,
        fine_noise=scale * fine_total / fine_count if fine_count else 0.0,
        detail=scale * detail / detail_count if detail_count else 0.0,
        stain=float(np.count_nonzero((rel > s0) & (rel < s1))) / rel.size,
        grey=grey / pixels if pixels else 0.0,
        ink=1.0 / float(gain),
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


def before(stats: PageStats, enlarged: bool = False) -> Decision:
    """Whether to run the model at all, from the measurements of the page as scanned;
    ``enlarged``: the pipeline enlarged it (``upscale``) before the model."""
    if stats.detail < SMOOTH:
        return Decision(False, f"smooth page (detail {stats.detail:.2f} < {SMOOTH})", "smooth")
    if enlarged and ENLARGED:
        return Decision(True, "small print enlarged", "enlarged")
    if stats.noise >= NOISE:
        return Decision(True, f"noise on the paper ({stats.noise:.1f} >= {NOISE})", "noise")
    if stats.fine_noise >= FINE_NOISE:
        return Decision(True, f"fine noise on the paper ({stats.fine_noise:.1f} >= "
                              f"{FINE_NOISE})", "fine-noise")
    if stats.stain >= STAIN:
        return Decision(True, f"discoloured paper ({stats.stain:.2f} of the page)", "stain")
    if stats.ink < FAINT and stats.grey >= FAINT_BLUR:
        return Decision(False, f"faint blurred print (ink level {stats.ink:.2f}, grey "
                               f"{stats.grey:.3f} >= {FAINT_BLUR})", "faint-blurred")
    if stats.grey >= GREY and stats.detail >= GREY_SHARP:
        return Decision(True, f"grey damage ({stats.grey:.3f} of the page)", "grey")
    if stats.ink < FAINT:
        return Decision(True, f"faint ink (ink level {stats.ink:.2f} < {FAINT})", "faint")
    return Decision(False, f"no damage the model removes (noise {stats.noise:.1f}, "
                           f"stain {stats.stain:.2f}, grey {stats.grey:.3f}, "
                           f"ink {stats.ink:.2f})", "no-damage")


def light(stats: PageStats) -> Decision:
    """Whether a page goes to the light model (``Denoiser(light=...)``) rather than
    to ``before``'s rules: grainy paper (``fine_noise >= LIGHT_FINE_NOISE``) that
    is not noisy (``noise < LIGHT_MAX_NOISE``). Rule ``light`` where it goes,
    ``light-no`` otherwise; the reason gives the values measured. The pipeline
    asks only about pages that are not smooth (``detail >= SMOOTH``)."""
    if stats.noise >= LIGHT_MAX_NOISE:
        why = f"noise {stats.noise:.1f} >= {LIGHT_MAX_NOISE}"
    elif stats.fine_noise < LIGHT_FINE_NOISE:
        why = f"fine noise {stats.fine_noise:.2f} < {LIGHT_FINE_NOISE}"
    else:
        return Decision(True, f"grainy paper for the light model (fine noise "
                              f"{stats.fine_noise:.2f}, noise {stats.noise:.1f})", "light")
    return Decision(False, f"not for the light model ({why})", "light-no")


def after(stats: PageStats, output_text_height: Callable[[], float | None],
          input_text_height: Callable[[], float | None] | None = None) -> Decision:
    """Whether to keep the model's output, from the input's measurements and the
    text heights of the output and, where the output's is below ``MIN_TEXT``, of
    the input (the larger decides). Both are functions, called only where needed:
    with ``MIN_TEXT`` 0 or on a noisy page, neither is measured."""
    if stats.noise >= NOISY:
        return Decision(True, f"noisy page (noise {stats.noise:.1f} >= {NOISY})", "noisy")
    if MIN_TEXT <= 0:
        return Decision(True, "no text-size rule", "no-text-rule")
    height = output_text_height()
    if height is not None and height < MIN_TEXT and input_text_height is not None:
        before_height = input_text_height()
        if before_height is not None:
            height = max(height, before_height)
    if height is not None and height < MIN_TEXT:
        return Decision(False, f"small text ({height:.0f} px < {MIN_TEXT:.0f})", "small-text")
    return Decision(True, "text the size the model learnt", "text-size")
