"""The page pipeline: the one path from a page array to the denoised uint8 page.

Every entry point ends here: ``denoise_page``, ``Denoiser.denoise``, folder runs
(command line, ``denoise_folder``, Dask) and the OCRmyPDF plugin. So the same
page at the same DPI gives the same bytes whichever of them is used. Loading
(files, PIL images) happens before, saving after; this module sees arrays.

The decisions come first, as a value; then the work carries them out. In order,
one function each:

1. ``normalise``: check the page (shape, dtype, values) before any work.
2. The decisions (``ocr_denoise.decision.Plan``): the scale the page comes
   out at, whether the model runs, and why.

   - ``enlargement``: with ``upscale``, a page of small text is enlarged, and
     stays enlarged: the caller gets the bigger page and scales its DPI.
   - ``learned_enlarger``: when the ``Denoiser`` has an enlargement model
     (``Denoiser(enlarger=...)``, issue 32) of that factor, the page is
     enlarged by it (``enlarge_by_model``) in place of the cubic enlargement
     and the denoiser: its plan says so (action ``enlarged``, rule
     ``enlarged``, the reason naming the model) and no stage below runs.
   - ``working_page``: that enlargement, or ``rescale``: a page scanned above
     600 DPI is resampled to 300 DPI, the scale the model learnt
     (``ocr_denoise.rescale`` says why).
   - ``plan``: the guard (``ocr_denoise.guard``) measures the page (noise,
     stains, grey damage, ink) and decides whether the model runs
     (``guard.before``); a page it leaves comes out as it came in, as 8-bit
     grey (``passthrough``).
   - ``light_route``, asked first where the ``Denoiser`` has a light model
     (``Denoiser(light=...)``): a page with grainy paper that is not noisy
     (``guard.light``) goes to the light model instead (v8 erodes the letters
     of such pages; a model taught non-local means on real pages helped
     archive pages). The stages below then run with the light model (its own
     flattening and context) and no after-check; the record says ``denoised``,
     rule ``light``.
3. ``gray_rows``: the page as float32 gray in [0, 1], white = 1, produced one
   band of rows at a time, so no page-sized float copy is ever held.
4. ``flatten``: when the model asks (metadata ``preprocess=flatten-v1``), the
   paper background is divided out and the ink stretched (``ocr_denoise.flatten``).
5. ``context``: when the model reads the page around each patch (metadata
   ``context=quarter-v1``), a 4 x 4 block-mean map of the page (``ocr_denoise.context``).
6. ``tile_infer_stitch``: overlapping P x P patches, denoised in batches by the
   ``Denoiser``'s session, blended back without seams (``ocr_denoise.tiling``);
   patches of blank paper come out white without the model (``skip_white``).
   ``check``: the guard's after-check may still hand the page back (``guard.after``).
7. ``restore``: back to the page's own size, as uint8 (white paper = 255).

``explain`` returns the page with its ``decision.PageRecord`` (the plan plus
what the after-check concluded); ``denoise`` the page alone. A new per-page
choice (another model, another scale) is a field of the plan, decided in
``plan``, not another branch among the stages.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Protocol, Union

import numpy as np

from . import context as page_context
from . import flatten as page_flatten
from . import guard as page_guard
from . import rescale as page_rescale
from .decision import PageRecord, Plan, record
from .errors import SettingsError
from .model import ModelSpec
from .normalize import PageSpec, check_page, to_gray_float, to_uint8
from .tiling import ContextFn, RowSource, TileGrid, apply_tiled

logger = logging.getLogger(__name__)

#: ``upscale``: None or "off" (keep the size), "auto", or an int factor >= 1.
Upscale = Union[None, str, int]

#: The guard's measurements of a page and the flatten levels they were taken with.
Measured = tuple[page_guard.PageStats, page_flatten.PageLevels]



class Denoiser(Protocol):
    """What the pipeline needs of a model. ``session.Denoiser`` is the one that
    runs onnxruntime; the pipeline itself knows nothing of sessions or files.
    Two optional attributes, read with ``getattr`` so that older stand-ins
    still work: ``skip_white`` (float or None): patches at least this white
    everywhere skip the model (``tiling.apply_tiled``), absent or None none do;
    ``workers`` (int, default 1): bands denoised at once, in threads, so
    ``denoise_patches`` must then be safe to call from several at once."""

    overlap: int
    batch_size: int

    @property
    def interface(self) -> ModelSpec: ...

    @property
    def patch_size(self) -> int: ...

    def denoise_patches(self, patches: np.ndarray,
                        context_windows: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class Rows:
    """A page as the model will see it, read band by band through ``read``."""

    read: RowSource
    height: int
    width: int


def denoise(denoiser: Denoiser, img: np.ndarray, dpi: object = None, *,
            guard: bool = True, upscale: Upscale = None) -> np.ndarray:
    """Denoise one page array with ``denoiser``'s model: ``explain``'s page alone."""
    return explain(denoiser, img, dpi, guard=guard, upscale=upscale)[0]


def explain(denoiser: Denoiser, img: np.ndarray, dpi: object = None, *,
            guard: bool = True, upscale: Upscale = None) -> tuple[np.ndarray, PageRecord]:
    """Denoise one page array with ``denoiser``'s model, and say what was done.

    ``img``: H x W gray, H x W x 3 BGR or H x W x 4 BGRA (alpha composited onto
    white); uint8, uint16 or float in [0, 1]; any size from 1 x 1, any memory
    layout; never modified. ``dpi``: the page's resolution (one number or
    (x, y); see ``rescale.as_dpi``), or None to denoise the page at its own
    scale whatever it is. ``guard``: leave pages the model was measured to make
    worse as they are (``ocr_denoise.guard``); False applies the model to every
    page. ``upscale``: None (the page keeps its size), ``"auto"`` (a page whose
    text is smaller than the model and tesseract read well is enlarged 2x first,
    see ``guard.upscale_factor``) or an int factor >= 1.

    Returns the page, H x W uint8, white paper = 255, or (enlarged) kH x kW
    (the caller scales the DPI), and its ``decision.PageRecord``: what was done
    (denoised, left as it came, enlarged) and why.

    With a light model (``Denoiser(light=...)``, read with ``getattr``), a page
    with grainy paper that is not noisy is denoised by that model instead
    (``light_route``; the record's rule ``light``).

    The decisions come first, as a ``decision.Plan`` (``plan``); the stages
    after it carry the plan out, and one check after the model may still hand
    the page back (``check``). Raises ``PageError`` / ``PageTypeError`` for an
    unusable page (before any work), ``InferenceError`` if onnxruntime fails.
    """
    t0 = time.perf_counter()
    if denoiser.interface.scale != 1:
        raise SettingsError("this model enlarges (metadata scale="
                            f"{denoiser.interface.scale}): it is not a denoiser; give it as "
                            "Denoiser(enlarger=...)")
    page = normalise(img)
    factor, scanned = enlargement(img, page, upscale)
    enlarger = learned_enlarger(denoiser, factor)
    if enlarger is not None:
        the_plan = learned_plan(enlarger, img, page, factor, scanned, guard)
        out = np.empty((factor * page.height, factor * page.width), dtype=np.uint8)
        enlarge_by_model(enlarger, img, page, out)
        return out, record(the_plan, kept=False, guard=page_guard.NAME if guard else None,
                           seconds=time.perf_counter() - t0)
    work, work_spec = working_page(img, page, dpi, factor)
    # The output first: a page too large for the memory left fails here, with a
    # MemoryError, before any work (not inside OpenCV with one of its own errors).
    out = np.empty((work_spec.height, work_spec.width), dtype=np.uint8)
    light = light_model(denoiser)
    the_plan, levels = plan(img, page, work, work_spec, factor, scanned, guard, light)
    guard_name = page_guard.NAME if guard else None
    # A page handed back comes out as it came in: enlarged when the plan enlarged
    # it, else at its own size (not the rescaled work).
    back, back_spec = (work, work_spec) if the_plan.scale > 1 else (img, page)
    if not the_plan.model:
        result = passthrough(back, back_spec, out)
        return result, record(the_plan, kept=False, guard=guard_name,
                              seconds=time.perf_counter() - t0)
    runner = denoiser
    if the_plan.light:
        if light is None:  # plan() routes only to a light model it was given
            raise RuntimeError("a page was routed to a light model the Denoiser does not have")
        runner = light
    source = gray_rows(work, work_spec)
    if levels is None:
        levels = page_levels(source, runner, guard)
    rows = flatten(source, runner, levels)
    windows = context(rows, runner)
    tile_infer_stitch(rows, windows, runner, out)
    # The after-check judges the main model; the light model's output is kept.
    verdict = check(the_plan, source, out) if guard and not the_plan.light else None
    kept = verdict is None or verdict.apply
    result = restore(out, work_spec if the_plan.scale > 1 else page) if kept \
        else passthrough(back, back_spec, out)
    return result, record(the_plan, kept=kept, guard=guard_name,
                          seconds=time.perf_counter() - t0,
                          after=(verdict.rule, verdict.reason) if verdict else None)


def learned_enlarger(denoiser: Denoiser, factor: int) -> Denoiser | None:
    """Stage 2a': the enlargement model that enlarges this page ``factor`` times:
    the ``Denoiser``'s ``enlarger`` (read with ``getattr``, absent: None) when it
    enlarges exactly ``factor`` times; None (enlarge by bicubic interpolation)
    otherwise, or when the page keeps its size."""
    enlarger = getattr(denoiser, "enlarger", None)
    if factor < 2 or enlarger is None or enlarger.interface.scale != factor:
        return None
    return enlarger


def learned_plan(enlarger: Denoiser, img: np.ndarray, page: PageSpec, factor: int,
                 scanned: Measured | None, guard: bool) -> Plan:
    """Stage 2b': the plan of a page the enlargement model enlarges: ``factor``
    times, the denoiser not run (the record's action is ``enlarged``, its rule
    ``enlarged``, its reason names the enlargement model), with the guard's
    measurements of the page as scanned (taken here when ``upscale`` was an int and
    the guard is on)."""
    if guard and scanned is None:
        scanned = measure(gray_rows(img, page))
    name = getattr(enlarger, "model_path", "the enlargement model")
    return Plan(factor, False, "enlarged",
                f"small print enlarged {factor}x by the enlargement model {name}, in place "
                "of a cubic enlargement and the denoiser",
                dataclasses.asdict(scanned[0]) if guard and scanned else {})


def gray8_rows(img: np.ndarray, page: PageSpec) -> RowSource:
    """The page as 8-bit grey rows (uint8, white = 255), read per band: the rows
    themselves for a uint8 grey page (no copy), else ``gray_rows`` rounded."""
    if img.dtype == np.uint8 and page.channels == 1:
        flat = img.reshape(img.shape[0], img.shape[1])
        return lambda y0, y1: flat[y0:y1]
    gray = gray_rows(img, page).read
    return lambda y0, y1: to_uint8(gray(y0, y1))


def enlarge_by_model(enlarger: Denoiser, img: np.ndarray, page: PageSpec,
                     out: np.ndarray) -> np.ndarray:
    """Stage 6': the page enlarged by the enlargement model into ``out`` (kH x kW
    uint8), k its ``interface.scale``. The model reads the page as 8-bit grey
    (as it was trained): P x P patches, and the page's bicubic enlargement cut at
    each patch's 2P x 2P output window (``rescale.cubic_windows``, the same bytes
    as ``rescale.enlarged`` of the page, so a model whose correction is zero
    returns exactly the cubic enlargement). The tiler blends its kP x kP outputs
    at k times the grid (``TileGrid.scale``). Neither the enlarged page nor a
    float copy of the page is ever held: memory beyond ``out`` is the tiler's
    bands at the output scale."""
    spec = enlarger.interface
    k, p = spec.scale, spec.patch
    h, w = page.height, page.width
    read8 = gray8_rows(img, page)

    def read(y0: int, y1: int) -> np.ndarray:
        return np.divide(read8(y0, y1), np.float32(255.0), dtype=np.float32)

    def windows(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return page_rescale.cubic_windows(read8, h, w, ys, xs, p, k)

    def sink(y0: int, y1: int, rows: np.ndarray) -> None:
        out[y0:y1] = to_uint8(rows)

    apply_tiled(read, sink, TileGrid(h, w, p, enlarger.overlap, k), enlarger.denoise_patches,
                batch_size=enlarger.batch_size, context=windows, skip_white=None,
                workers=getattr(enlarger, "workers", 1))
    return out


def working_page(img: np.ndarray, page: PageSpec, dpi: object,
                 factor: int) -> tuple[np.ndarray, PageSpec]:
    """Stage 2a: the page the work is done on, and its description: enlarged
    ``factor`` times (``enlargement``), or at the model's scale (``rescale``),
    or the input itself."""
    if factor > 1:
        work = page_rescale.enlarged(img, factor)
        return work, check_page(work)
    return rescale(img, page, dpi)


def plan(img: np.ndarray, page: PageSpec, work: np.ndarray, work_spec: PageSpec, factor: int,
         scanned: Measured | None, guard: bool, light: Denoiser | None = None
         ) -> tuple[Plan, page_flatten.PageLevels | None]:
    """Stage 2b, the decisions: the ``Plan`` for a page (``img``, described by
    ``page``) whose work is done on ``work`` (``working_page``, enlarged
    ``factor`` times or not), and the flatten levels of ``work`` if they were
    measured (the model's flattening reuses them; None: not measured).
    ``scanned``: the guard's measurements of ``img`` if ``enlargement`` took them.

    The guard judges an enlarged page as scanned: interpolation's grey edges
    are not damage (measured: a clean page enlarged read as grey-damaged).
    ``light``: the ``Denoiser``'s light model, if it has one: a page of its own
    size with grainy paper that is not noisy goes to it (``light_route``).
    """
    levels = None
    if factor > 1:
        if guard and scanned is None:
            scanned = measure(gray_rows(img, page))
    else:
        if work is not img:  # rescaled: what auto measured is another page
            scanned = None
        if guard and scanned is None:
            scanned = measure(gray_rows(work, work_spec))
        levels = scanned[1] if scanned else None
    if not guard or scanned is None:
        return Plan(factor, True, "guard-off",
                    "the guard is off: the model runs on every page"), levels
    stats = scanned[0]
    routed = light_route(light is not None, stats, factor)
    if routed is not None and routed.apply:
        name = getattr(light, "model_path", "the light model")
        return Plan(1, True, routed.rule, f"{routed.reason}: denoised by the light model "
                    f"{name}", dataclasses.asdict(stats), light=True), levels
    decision = page_guard.before(stats, enlarged=factor > 1)
    logger.debug("%s on a %dx%d page: %s (%s)", page_guard.NAME, work_spec.width,
                 work_spec.height, "model" if decision.apply else "page left as it is",
                 decision.reason)
    reason = decision.reason
    if routed is not None and decision.rule == "no-damage":
        reason = f"{reason}; {routed.reason}"
    return Plan(factor, decision.apply, decision.rule, reason,
                dataclasses.asdict(stats)), levels


def light_model(denoiser: Denoiser) -> Denoiser | None:
    """The ``Denoiser``'s light model (``Denoiser(light=...)``, read with
    ``getattr``; absent: None)."""
    return getattr(denoiser, "light", None)


def light_route(has_light: bool, stats: page_guard.PageStats,
                factor: int) -> page_guard.Decision | None:
    """Stage 2b, first question: whether the ``Denoiser``'s light model takes the
    page (``guard.light``: grainy paper, not noisy), asked before the main model's
    rules. None where it is not asked: no light model (``has_light`` false), an
    enlarged page (the light model learnt pages as scanned), or a smooth one
    (``detail < guard.SMOOTH``: left, whatever model). Training asks it too
    (``train.data.takes_light_route``: which pages teach a light model)."""
    if not has_light or factor != 1 or stats.detail < page_guard.SMOOTH:
        return None
    decision = page_guard.light(stats)
    logger.debug("%s light route: %s (%s)", page_guard.NAME,
                 "light model" if decision.apply else "not taken", decision.reason)
    return decision


def check(the_plan: Plan, source: Rows, out: np.ndarray) -> page_guard.Decision:
    """Stage 6b, the guard's after-check: whether the model's output (``out``,
    at the work's size) replaces the page. ``source``: the page the model read."""
    stats = page_guard.PageStats(**the_plan.measurements)
    decision = page_guard.after(
        stats, lambda: page_guard.text_height(out),
        lambda: page_guard.text_height(source.read, source.height, source.width))
    logger.debug("%s after the model: %s (%s)", page_guard.NAME,
                 "output kept" if decision.apply else "page left as it is", decision.reason)
    return decision


def measure(rows: Rows) -> Measured:
    """The guard's measurements of a page and the ``flatten`` levels they used."""
    levels = page_flatten.measure(rows.read, rows.height, rows.width)
    return page_guard.measure(rows.read, rows.height, rows.width, levels), levels


def enlargement(img: np.ndarray, page: PageSpec, upscale: Upscale) -> tuple[int, Measured | None]:
    """Stage 1b: how many times to enlarge the page (1: keep its size), and the
    guard's measurements of the page as scanned if they were taken for it (the
    pipeline reuses them rather than measuring the same page again).

    ``"auto"`` measures the input's noise and text height (``ocr_denoise.guard``)
    and enlarges 2x when its text is small; an int is taken as given.
    """
    if upscale is None or upscale == "off":
        return 1, None
    if upscale == "auto":
        rows = gray_rows(img, page)
        scanned = measure(rows)
        height = page_guard.text_height(rows.read, rows.height, rows.width,
                                        page_guard.UPSCALE_SAMPLE_PIXELS)
        factor = page_guard.upscale_factor(scanned[0].noise, height)
        logger.debug("upscale=auto: text height %s px, noise %.1f: enlarging %dx", height,
                     scanned[0].noise, factor)
        return factor, scanned
    return int(check_upscale(upscale) or 1), None


def check_upscale(upscale: object) -> Upscale:
    """``upscale`` checked: None (also for "off" and 1), "auto", or an int >= 2;
    a ``SettingsError`` naming the value otherwise."""
    if upscale is None or upscale == "off":
        return None
    if upscale == "auto":
        return "auto"
    if isinstance(upscale, bool) or not isinstance(upscale, (int, np.integer)) or upscale < 1:
        raise SettingsError(f"upscale must be None, 'off', 'auto' or an int >= 1, "
                            f"got {upscale!r}")
    return None if upscale == 1 else int(upscale)


def normalise(img: np.ndarray) -> PageSpec:
    """Stage 1: check the page; ``PageError`` / ``PageTypeError`` naming what is
    wrong, before anything is resampled or run."""
    return check_page(img)


def rescale(img: np.ndarray, page: PageSpec, dpi: object) -> tuple[np.ndarray, PageSpec]:
    """Stage 2: the page at the scale the model works at, and its description.

    Unchanged (the same array) unless ``dpi`` puts an axis above 600 DPI; then
    that axis is resampled to 300 DPI by area averaging (``rescale.working_page``).
    """
    work = page_rescale.working_page(img, page, dpi)
    if work is img:
        return img, page
    return work, check_page(work)


def gray_rows(img: np.ndarray, page: PageSpec) -> Rows:
    """Stage 3: the page as float32 gray rows in [0, 1] (BT.601 weights, alpha
    onto white), converted per band when read."""

    def read(y0: int, y1: int) -> np.ndarray:
        return to_gray_float(img[y0:y1], page)

    return Rows(read, page.height, page.width)


def passthrough(img: np.ndarray, page: PageSpec, buffer: np.ndarray | None = None) -> np.ndarray:
    """What a page the guard turned away becomes: the input at its own size as
    uint8 gray (a uint8 gray page: the same bytes). ``buffer``: an H x W uint8
    array to write into, when it has the page's size."""
    out = buffer
    if out is None or out.shape != (page.height, page.width):
        out = np.empty((page.height, page.width), dtype=np.uint8)
    if img.dtype == np.uint8 and page.channels == 1 and img.ndim == 2:
        out[...] = img
        return out
    step = max(1, (1 << 20) // max(1, page.width))
    for y0 in range(0, page.height, step):
        out[y0 : y0 + step] = to_uint8(to_gray_float(img[y0 : y0 + step], page))
    return out


def page_levels(rows: Rows, denoiser: Denoiser, guard: bool) -> page_flatten.PageLevels | None:
    """Stage 4a: the page's background and ink level (``flatten.measure``), when
    the model is fed flattened pages or the guard measures the paper: read once,
    band by band, into a 1/16-size copy. None when neither needs them."""
    if not guard and denoiser.interface.preprocess != page_flatten.NAME:
        return None
    return page_flatten.measure(rows.read, rows.height, rows.width)


def flatten(rows: Rows, denoiser: Denoiser, levels: page_flatten.PageLevels | None) -> Rows:
    """Stage 4: the flattened page, if the model was trained on flattened pages
    (metadata ``preprocess=flatten-v1``), flattened per band as the tiler reads it."""
    if levels is None or denoiser.interface.preprocess != page_flatten.NAME:
        return rows
    gray = rows.read

    def read(y0: int, y1: int) -> np.ndarray:
        return page_flatten.flatten_rows(gray(y0, y1), y0, levels)

    return Rows(read, rows.height, rows.width)


def context(rows: Rows, denoiser: Denoiser) -> ContextFn | None:
    """Stage 5: each patch's view of the page around it, for models that read it.

    The page (as the model sees it) is read once more and averaged over 4 x 4
    blocks; that map (a sixteenth of the page, float32) stays in memory and
    each batch of patches gets its windows of it. None for other models.
    """
    spec = denoiser.interface
    if spec.context != page_context.NAME:
        return None
    quarter = page_context.quarter_page(rows.read, rows.height, rows.width, spec.patch)

    def windows(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return page_context.windows(quarter, ys, xs, spec.patch)

    return windows


def tile_infer_stitch(rows: Rows, windows: ContextFn | None, denoiser: Denoiser,
                      out: np.ndarray) -> np.ndarray:
    """Stage 6: overlapping patches through the model, blended back into ``out``,
    an H x W uint8 page. Memory beyond the output stays bounded by the band
    (about ``tiling.BAND_PATCHES`` patches, or a batch if that is larger), the
    denoiser's ``workers`` (bands at once) and the page width."""
    grid = TileGrid(rows.height, rows.width, denoiser.patch_size, denoiser.overlap)

    def sink(y0: int, y1: int, clean: np.ndarray) -> None:
        out[y0:y1] = to_uint8(clean)

    apply_tiled(rows.read, sink, grid, denoiser.denoise_patches,
                batch_size=denoiser.batch_size, context=windows,
                skip_white=getattr(denoiser, "skip_white", None),
                workers=getattr(denoiser, "workers", 1))
    return out


def restore(out: np.ndarray, page: PageSpec) -> np.ndarray:
    """Stage 7: the denoised page at the input's own size (bicubic, if stage 2
    shrank it), uint8."""
    return page_rescale.to_size(out, page.width, page.height)
