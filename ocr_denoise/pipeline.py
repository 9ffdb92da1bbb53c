"""The page pipeline: the one path from a page array to the denoised uint8 page.

Every entry point ends here: ``denoise_page``, ``Denoiser.denoise``, folder runs
(command line, ``denoise_folder``, Dask) and the OCRmyPDF plugin. So the same
page at the same DPI gives the same bytes whichever of them is used. Loading
(files, PIL images) happens before, saving after; this module sees arrays.

The stages, in order, one function each:

1. ``normalise``: check the page (shape, dtype, values) before any work.
2. ``rescale``: a page scanned above 600 DPI is resampled to 300 DPI, the scale
   the model learnt (``ocr_denoise.rescale`` says why and what was measured).
3. ``gray_rows``: the page as float32 gray in [0, 1], white = 1, produced one
   band of rows at a time, so no page-sized float copy is ever held.
4. ``flatten``: when the model asks (metadata ``preprocess=flatten-v1``), the
   paper background is divided out and the ink stretched (``ocr_denoise.flatten``).
5. ``context``: when the model reads the page around each patch (metadata
   ``context=quarter-v1``), a 4 x 4 block-mean map of the page (``ocr_denoise.context``).
6. ``tile_infer_stitch``: overlapping P x P patches, denoised in batches by the
   ``Denoiser``'s session, blended back without seams (``ocr_denoise.tiling``).
7. ``restore``: back to the page's own size, as uint8 (white paper = 255).

Later per-page decisions (which model, whether and where to denoise) belong
here, between these stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import context as page_context
from . import flatten as page_flatten
from . import rescale as page_rescale
from .model import ModelSpec
from .normalize import PageSpec, check_page, to_gray_float, to_uint8
from .tiling import TileGrid, apply_tiled

#: (y0, y1) -> float32 rows y0..y1-1 of the page, full width, in [0, 1].
RowSource = Callable[[int, int], np.ndarray]
#: (patch rows, patch columns) of patch corners -> (N, P, P) context windows.
ContextFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Denoiser(Protocol):
    """What the pipeline needs of a model. ``session.Denoiser`` is the one that
    runs onnxruntime; the pipeline itself knows nothing of sessions or files."""

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


def denoise(denoiser: Denoiser, img: np.ndarray, dpi: object = None) -> np.ndarray:
    """Denoise one page array with ``denoiser``'s model.

    ``img``: H x W gray, H x W x 3 BGR or H x W x 4 BGRA (alpha composited onto
    white); uint8, uint16 or float in [0, 1]; any size from 1 x 1, any memory
    layout; never modified. ``dpi``: the page's resolution (one number or
    (x, y); see ``rescale.as_dpi``), or None to denoise the page at its own
    scale whatever it is. Returns an H x W uint8 page, white paper = 255.

    Raises ``PageError`` / ``PageTypeError`` for an unusable page (before any
    work), ``InferenceError`` if onnxruntime fails.
    """
    page = normalise(img)
    work, work_spec = rescale(img, page, dpi)
    rows = gray_rows(work, work_spec)
    rows = flatten(rows, denoiser)
    windows = context(rows, denoiser)
    out = tile_infer_stitch(rows, windows, denoiser)
    return restore(out, page)


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


def flatten(rows: Rows, denoiser: Denoiser) -> Rows:
    """Stage 4: the flattened page, if the model was trained on flattened pages.

    Measuring the page's background and ink level reads it once more, band by
    band, into a 1/16-size copy (``flatten.measure``); flattening then happens
    per band as the tiler reads.
    """
    if denoiser.interface.preprocess != page_flatten.NAME:
        return rows
    levels = page_flatten.measure(rows.read, rows.height, rows.width)
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


def tile_infer_stitch(rows: Rows, windows: ContextFn | None, denoiser: Denoiser) -> np.ndarray:
    """Stage 6: overlapping patches through the model, blended back into an
    H x W uint8 page. Memory beyond the output stays bounded by the batch size
    and the page width (``tiling.apply_tiled`` works one band at a time)."""
    grid = TileGrid(rows.height, rows.width, denoiser.patch_size, denoiser.overlap)
    out = np.empty((rows.height, rows.width), dtype=np.uint8)

    def sink(y0: int, y1: int, clean: np.ndarray) -> None:
        out[y0:y1] = to_uint8(clean)

    apply_tiled(rows.read, sink, grid, denoiser.denoise_patches,
                batch_size=denoiser.batch_size, context=windows)
    return out


def restore(out: np.ndarray, page: PageSpec) -> np.ndarray:
    """Stage 7: the denoised page at the input's own size (bicubic, if stage 2
    shrank it), uint8."""
    return page_rescale.to_size(out, page.width, page.height)
