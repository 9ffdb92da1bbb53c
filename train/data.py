"""Training patches: sampled from synthetic pages and from real paired folders.

Patch sampling does not drown text in blank paper: a set fraction of patches is
drawn where the clean page has ink.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from ocr_denoise import context as page_context
from ocr_denoise import pipeline
from ocr_denoise.flatten import flatten_page

from . import real_damage, scans, synth


def nl_means(img: np.ndarray) -> np.ndarray:
    """OpenCV's non-local means, h=10, template 7, search 21 (the usual settings), of an
    H x W uint8 gray page: the benchmarks' ``nlmeans`` baseline (benchmarks/baselines.py
    runs this one) and the teacher that made real archive pages read better."""
    return cv2.fastNlMeansDenoising(img, None, 10, 7, 21)


#: Teachers for :func:`teacher_patches`: name -> what it makes of a uint8 page.
TEACHERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"nlmeans": nl_means}

T = TypeVar("T")
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
_PAIR_LAYOUTS = [("noisy", "clean"), ("orig", "gt")]


def sample_patches(noisy: np.ndarray, clean: np.ndarray, n: int, rng: np.random.Generator,
                   patch: int = 28, ink_fraction: float = 0.7,
                   damage_fraction: float = 0.0,
                   mark_fraction: float = 0.0,
                   context: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` aligned (noisy, clean) patch pairs: ``ink_fraction`` of them centred on
    ink of the clean page, ``damage_fraction`` on false ink (paper in the clean page,
    at least 0.25 darker in the noisy one: stain rims, specks, streaks, text showing
    through from the back), ``mark_fraction`` on marks of the clean page (connected
    pieces of ink, each equally likely, so a full stop or a quote is practised as
    often as an ``m``, not in proportion to its few pixels), the rest anywhere.
    Pages without such pixels give uniformly placed patches instead. With
    ``mark_fraction`` 0 the random draws are those of earlier models.

    X and Y are (n, P, P) float32; with ``context``, X is (n, P, P, 2): each patch
    and its page-context window (``ocr_denoise.context``, cut from ``noisy``, which
    is the page as the model sees it), as the runtime feeds a model that reads one."""
    h, w = clean.shape
    if h < patch or w < patch:
        pad = ((0, max(0, patch - h)), (0, max(0, patch - w)))
        noisy = np.pad(noisy, pad, constant_values=1.0)
        clean = np.pad(clean, pad, constant_values=1.0)
        h, w = clean.shape
    ys = rng.integers(0, h - patch + 1, n)
    xs = rng.integers(0, w - patch + 1, n)
    start = 0
    rows = h - patch + 1 + patch // 2  # (v5 was sampled so; kept for reproducibility)
    ink = clean[:rows] < 0.5
    for frac, centres_for in ((ink_fraction, lambda k: np.argwhere(ink)),
                              (damage_fraction,
                               lambda k: np.argwhere((clean > 0.75) & (noisy < clean - 0.25))),
                              (mark_fraction, lambda k: _mark_pixels(ink, k, rng))):
        k = int(round(n * frac))
        centres = centres_for(k) if k else None
        if k and len(centres):
            pick = centres[rng.integers(0, len(centres), min(k, n - start))]
            stop = start + len(pick)
            ys[start:stop] = np.clip(pick[:, 0] - patch // 2, 0, h - patch)
            xs[start:stop] = np.clip(pick[:, 1] - patch // 2, 0, w - patch)
            start = stop
    idx_y = ys[:, None] + np.arange(patch)[None, :]
    idx_x = xs[:, None] + np.arange(patch)[None, :]
    X = noisy[idx_y[:, :, None], idx_x[:, None, :]].astype(np.float32)
    Y = clean[idx_y[:, :, None], idx_x[:, None, :]]
    if context:
        quarter = page_context.quarter_page(lambda a, b: noisy[a:b], h, w, patch)
        X = np.stack([X, page_context.windows(quarter, ys, xs, patch)], axis=-1)
    return X, Y.astype(np.float32)


def _mark_pixels(ink: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, 2) pixel coordinates of ``ink`` (a bool mask): a mark (8-connected piece)
    drawn uniformly for each, then one of its pixels; (0, 2) if there is no ink."""
    n, labels = cv2.connectedComponents(ink.astype(np.uint8), connectivity=8)
    if n < 2:
        return np.empty((0, 2), np.intp)
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(n + 1))  # label j: order[starts[j]:starts[j+1]]
    marks = rng.integers(1, n, k)
    sizes = starts[marks + 1] - starts[marks]
    pick = order[starts[marks] + (rng.random(k) * sizes).astype(np.intp)]
    return np.stack(np.unravel_index(pick, ink.shape), axis=1)


def synthetic_patches(n: int, rng: np.random.Generator, patch: int = 28,
                      per_page: int = 200, page_size: int = 256,
                      ink_fraction: float = 0.7,
                      max_damages: int = 3,
                      page_norm: bool = False,
                      black_ink: bool = False,
                      damage_fraction: float = 0.0,
                      kind_weights: dict[str, float] | None = None,
                      mark_fraction: float = 0.0,
                      context: bool = False,
                      scan_fraction: float = 0.0,
                      real_fraction: float = 0.0,
                      paper: list[str] | None = None,
                      keep_ink: bool = False,
                      soft_targets: bool = False,
                      keep_paper: bool = False,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patch pairs from freshly rendered pages, each with 1..max_damages damages
    (chosen as ``synth.make_pair``'s ``kind_weights`` say), or, with probability
    ``scan_fraction``, a page of one of ``train.scans``' kinds (small print, forms,
    receipts, photocopies, phone captures, mixes) at the same size: the kinds of page
    real scans have. At 0 (the default) no draw is made for it, so earlier recipes'
    data is unchanged.
    ``page_norm``: the noisy page goes through ``ocr_denoise.flatten`` first, as the
    runtime does for a model exported with that setting. ``black_ink``: targets drawn
    in black (see ``synth.Page.black_ink``). ``damage_fraction``, ``mark_fraction``,
    ``context``: see :func:`sample_patches`.
    ``real_fraction``: the share of pages drawn from ``train.real_damage``'s kinds
    (damage real scans have), on paper cut from the selection pages of the ``paper``
    folders (none given: mottled paper); at 0 no draw is made for it. ``keep_ink``:
    their targets' ink as dark as the damaged page's (``real_damage.match_ink``);
    ``soft_targets``: the page as the scanner saw it, noise and paper removed
    (``real_damage.make(soft=True)``), at the paper's own level with ``keep_paper``."""
    bank = real_damage.PaperBank.from_folders(paper, rng) if paper and real_fraction else None
    Xs, Ys, got = [], [], 0
    while got < n:
        if real_fraction > 0 and rng.random() < real_fraction:
            noisy, clean = real_damage.make(rng, page_size, page_size, bank,
                                            keep_ink=keep_ink, soft=soft_targets,
                                            keep_paper=keep_paper)
        elif scan_fraction > 0 and rng.random() < scan_fraction:
            kind = str(rng.choice(list(scans.KINDS)))
            page, noisy = scans.make(kind, rng, float(rng.uniform(0.3, 1.0)), page_size,
                                     page_size)
            clean = page.black_ink() if black_ink else page.clean
        else:
            noisy, clean = synth.make_pair(rng, page_size, page_size, max_damages=max_damages,
                                           black_ink=black_ink, kind_weights=kind_weights)
        if page_norm:
            noisy = flatten_page(noisy)
        k = min(per_page, n - got)
        X, Y = sample_patches(noisy, clean, k, rng, patch, ink_fraction, damage_fraction,
                              mark_fraction, context)
        Xs.append(X)
        Ys.append(Y)
        got += k
    return np.concatenate(Xs), np.concatenate(Ys)


def read_gray(path: str | os.PathLike[str]) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img.astype(np.float32) / 255.0


def find_pairs(folder: str | os.PathLike[str]) -> list[tuple[Path, Path]]:
    """(noisy, clean) file pairs under ``folder``.

    Looks for sibling folders ``noisy``/``clean`` (NoisyOffice) or ``orig``/``gt``
    (DIBCO) at any depth and matches files by stem. Raises if none are found, so
    a mistyped path is not silently ignored.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"pair folder not found: {root}")
    pairs: list[tuple[Path, Path]] = []
    for a, b in _PAIR_LAYOUTS:
        for d in sorted([root, *root.rglob("*")]):
            if d.is_dir() and (d / a).is_dir() and (d / b).is_dir():
                clean = {p.stem: p for p in (d / b).iterdir() if p.suffix.lower() in _IMAGE_EXT}
                for p in sorted((d / a).iterdir()):
                    if p.suffix.lower() in _IMAGE_EXT and p.stem in clean:
                        pairs.append((p, clean[p.stem]))
    if not pairs:
        raise ValueError(f"{root}: no noisy/clean or orig/gt image pairs found")
    return pairs


def folder_patches(folders: list[str], n: int, rng: np.random.Generator, patch: int = 28,
                   ink_fraction: float = 0.7,
                   page_norm: bool = False,
                   damage_fraction: float = 0.0,
                   mark_fraction: float = 0.0,
                   context: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patch pairs spread evenly over the real pairs found in ``folders``
    (``page_norm`` as for :func:`synthetic_patches`)."""
    pairs = [p for f in folders for p in find_pairs(f)]

    def pair_patches(pair: tuple[Path, Path], k: int) -> tuple[np.ndarray, np.ndarray]:
        noisy_p, clean_p = pair
        noisy, clean = read_gray(noisy_p), read_gray(clean_p)
        if noisy.shape != clean.shape:
            raise ValueError(f"{noisy_p} and {clean_p} differ in size")
        if page_norm:
            noisy = flatten_page(noisy)
        return sample_patches(noisy, clean, k, rng, patch, ink_fraction, damage_fraction,
                              mark_fraction, context)

    return _spread(pairs, n, rng, pair_patches)


def _spread(items: Sequence[T], n: int, rng: np.random.Generator,
            patches_of: Callable[[T, int], tuple[np.ndarray, np.ndarray]]
            ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patch pairs spread evenly over ``items``: ``patches_of(item, k)`` gives
    ``k`` pairs of each, ceil(n / len(items)), and ``n`` of them are kept at random."""
    per = max(1, -(-n // len(items)))
    parts = [patches_of(item, per) for item in items]
    X, Y = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
    keep = rng.permutation(len(X))[:n]
    return X[keep], Y[keep]


def takes_light_route(img: np.ndarray) -> bool:
    """Whether the runtime's light route takes an H x W uint8 gray page kept at its
    own size (guard on, no enlargement, no downscaling of pages over 600 DPI): the
    pipeline's own measurements and question (``pipeline.light_route``)."""
    stats = pipeline.measure(pipeline.gray_rows(img, pipeline.normalise(img)))[0]
    decision = pipeline.light_route(True, stats, 1)
    return decision is not None and decision.apply


def teacher_patches(folders: list[str], n: int, rng: np.random.Generator, patch: int = 28,
                    ink_fraction: float = 0.7, teacher: str = "nlmeans",
                    route_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``n`` patch pairs (real page, what ``teacher`` makes of it) spread evenly over
    the *selection* pages under ``folders`` (``real_damage.split_of``: report pages are
    never read). X and Y are (n, P, P) float32 in [0, 1], white = 1.

    Why: real pages have no clean targets, but a filter measured to make them read
    better (``TEACHERS``) gives a target for each; a model taught it on the pages
    themselves learns their damage, not a formula of it, and runs at the model's cost
    rather than the filter's. Ink centres (``ink_fraction``) are the teacher's dark
    pixels.

    ``route_only``: only the selection pages the light route takes
    (:func:`takes_light_route`), the only pages a light model ever sees. Why: spread
    over every page, the grainy pages where the filter does most are a few percent of
    the patches. (Measured: a closer copy of the filter on those pages, read no better
    by tesseract; docs/model-history.md, tch4.)"""
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}; known: {', '.join(TEACHERS)}")
    pages = real_damage.selection_images(folders)
    if route_only:
        pages = [p for p in pages if takes_light_route(_read_u8(p))]
    if not pages:
        raise ValueError(f"no selection pages{' the light route takes' if route_only else ''}"
                         f" in {', '.join(map(str, folders))}")

    def page_patches(path: Path, k: int) -> tuple[np.ndarray, np.ndarray]:
        img = _read_u8(path)
        target = TEACHERS[teacher](img).astype(np.float32) / 255.0
        return sample_patches(img.astype(np.float32) / 255.0, target, k, rng, patch,
                              ink_fraction)

    return _spread(pages, n, rng, page_patches)


def _read_u8(path: Path) -> np.ndarray:
    """The image file as H x W uint8 gray; ``ValueError`` naming it if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img
