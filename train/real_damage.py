"""Damage that real scans have, for the residual denoiser (issue "A denoiser that helps
real pages").

``synth`` and ``scans`` draw damage from formulas. Real pages (forms, receipts,
typewritten archive pages) show other things: typewriter ribbon ink of uneven
density, letters filled in or broken, carbon-copy blur and double strikes; bitonal
office scans downsampled to grey; and paper whose grain, fibres and JPEG noise no
formula draws. This module draws such pages, and takes the paper from the text-free
areas of real pages (:class:`PaperBank`) when it is given some.

Every kind returns ``(clean Page, damaged page)``, float32 in [0, 1], white = 1. The
target is the page as printed: strokes as wide as the font draws them, anti-aliased
grey edges kept, paper white; never bolder than the print and never binarised.

Real pages are used only from the benchmark's *selection* half (:func:`split_of`,
the rule ``benchmarks/real_scans.py`` uses), so report pages stay unseen.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from . import scans, synth
from .synth import Page

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
#: Side of the paper tiles cut from real pages (px) and how far apart they are laid.
TILE, STEP = 64, 48


def split_of(page_id: str) -> str:
    """``selection`` or ``report``: the benchmark's fixed rule, by the parity of the
    SHA-256 of the page's bare id (its file stem)."""
    return "selection" if int(hashlib.sha256(page_id.encode()).hexdigest(), 16) % 2 == 0 \
        else "report"


def selection_images(folders: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Image files under ``folders`` (at any depth) that are selection pages."""
    out: list[Path] = []
    for f in folders:
        root = Path(f)
        if not root.is_dir():
            raise FileNotFoundError(f"paper folder not found: {root}")
        out += [p for p in sorted(root.rglob("*")) if p.suffix.lower() in _IMAGE_EXT
                and split_of(p.stem) == "selection"]
    return out


def paper_tiles(page: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Up to ``n`` ``TILE`` x ``TILE`` text-free tiles of ``page`` (float32, white = 1),
    each divided by its median: the paper's texture around 1. A tile is text-free when
    no pixel is more than 0.12 darker than the tile's median and its spread is modest
    (no edge of the page, no rule, no stain rim)."""
    h, w = page.shape
    if h < TILE or w < TILE:
        return []
    out: list[np.ndarray] = []
    for _ in range(40 * n):
        y, x = int(rng.integers(0, h - TILE + 1)), int(rng.integers(0, w - TILE + 1))
        t = page[y:y + TILE, x:x + TILE]
        med = float(np.median(t))
        if med < 0.45 or float(t.min()) < med - 0.12 or float(t.std()) > 0.04:
            continue
        out.append((t / med).astype(np.float32))
        if len(out) == n:
            break
    return out


class PaperBank:
    """Paper textures cut from real pages (``paper_tiles``), laid into fields of any size."""

    def __init__(self, tiles: list[np.ndarray]):
        if not tiles:
            raise ValueError("a paper bank needs at least one tile")
        self.tiles = tiles

    @classmethod
    def from_folders(cls, folders: Sequence[str | os.PathLike[str]], rng: np.random.Generator,
                     per_page: int = 12, max_side: int = 1400) -> PaperBank:
        """Tiles from every selection page under ``folders``. Pages larger than
        ``max_side`` are shrunk to it first (INTER_AREA), as such scans are before OCR
        at the sizes the model sees; raises ``ValueError`` when no tile is found."""
        tiles: list[np.ndarray] = []
        for p in selection_images(folders):
            img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if img is None:
                continue
            s = max_side / max(img.shape)
            if s < 1:
                img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            tiles += paper_tiles(img.astype(np.float32) / 255, rng, per_page)
        if not tiles:
            raise ValueError(f"no text-free paper found in {', '.join(map(str, folders))}")
        return cls(tiles)

    def field(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        """(h, w) float32 texture around 1: random tiles, flipped and turned at random,
        laid ``STEP`` apart and cross-faded over their overlap (no seams)."""
        acc = np.zeros((h + TILE, w + TILE), np.float32)
        wsum = np.zeros_like(acc)
        ramp = np.minimum(np.arange(TILE) + 1, TILE - np.arange(TILE)).astype(np.float32)
        win = np.minimum(np.minimum(ramp, TILE - STEP)[:, None], ramp[None, :])
        for y in range(0, h + 1, STEP):
            for x in range(0, w + 1, STEP):
                t = self.tiles[int(rng.integers(len(self.tiles)))]
                t = np.rot90(t, int(rng.integers(4)))
                if rng.random() < 0.5:
                    t = t[:, ::-1]
                acc[y:y + TILE, x:x + TILE] += t * win
                wsum[y:y + TILE, x:x + TILE] += win
        return (acc / np.maximum(wsum, 1e-6))[:h, :w]


def _paper(rng: np.random.Generator, bank: PaperBank | None, h: int, w: int,
           level: float) -> np.ndarray:
    """The paper under the ink: a real texture from ``bank`` (or, without one, smooth
    mottling and grain) at brightness ``level``."""
    if bank is not None:
        tex = bank.field(rng, h, w)
        return level * (1.0 + float(rng.uniform(0.6, 1.4)) * (tex - 1.0))
    mottle = 0.03 * synth._smooth_noise(rng, (h, w), float(rng.uniform(20, 80)))
    grain = 0.015 * rng.standard_normal((h, w)).astype(np.float32)
    return level * (1.0 + mottle + grain)


def _scanner(x: np.ndarray, rng: np.random.Generator, s: float,
             optics: list[float] | None = None) -> np.ndarray:
    """Optical blur, sensor noise and (mostly) JPEG, as archive scans are delivered.
    The blur's sigma (px) is appended to ``optics`` when given (soft targets)."""
    sigma = float(rng.uniform(0.3, 0.7))
    if optics is not None:
        optics.append(sigma)
    y = cv2.GaussianBlur(x.astype(np.float32), (0, 0), sigma)
    y = y + float(rng.uniform(0.5, 2.0) + 2.0 * s) / 255 * rng.standard_normal(
        y.shape).astype(np.float32)
    if rng.random() < 0.75:
        y = synth._jpeg(np.clip(y, 0, 1), int(rng.integers(35, 90)))
    return y


def _seen(x: np.ndarray, optics: list[float]) -> np.ndarray:
    """``x`` (white paper = 1) through the scanner's optics only: the soft target."""
    return cv2.GaussianBlur(x.astype(np.float32), (0, 0), optics[-1])


def typewriter(rng: np.random.Generator, s: float, height: int, width: int,
               bank: PaperBank | None = None, soft: bool = False) -> tuple[Page, np.ndarray]:
    """A typewritten page: monospaced text (x-height 7-14 px) whose ribbon ink varies
    letter by letter, breaks inside strokes, fills some letters in, sometimes struck
    twice or blurred as a carbon copy, on real (or mottled) paper, scanned."""
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(7, 14)),
                             family="mono", ink=0.0, margin=scans._margin(width))
    ink = 1.0 - page.clean
    n, labels = cv2.connectedComponents((ink > 0.3).astype(np.uint8), connectivity=8)
    # Each letter its own strike: 35-100% of full darkness (fainter with strength).
    density = rng.uniform(0.35 + 0.4 * (1 - s), 1.0, n).astype(np.float32)
    density[0] = 0.0
    per = cv2.dilate(density[labels], np.ones((3, 3), np.uint8))
    ink = ink * np.where(per > 0, per, 1.0)
    # Ribbon texture: fine blotches that thin and break strokes.
    fine = cv2.GaussianBlur(rng.standard_normal(ink.shape).astype(np.float32), (0, 0), 0.8)
    fine /= max(1e-6, float(fine.std()))
    ink = ink * np.clip(1.0 + (0.15 + 0.35 * s) * fine, 0.0, 1.0)
    if rng.random() < 0.4:  # over-inked ribbon: counters fill in on the heavy letters
        heavy = (per > 0.85).astype(np.float32)
        grown = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        ink = np.maximum(ink, heavy * grown * float(rng.uniform(0.5, 0.9)))
    if rng.random() < 0.25:  # a double strike, a pixel or two off
        dy, dx = (int(v) for v in rng.integers(-1, 2, 2))
        ink = np.maximum(ink, np.roll(ink, (dy, dx), (0, 1)) * float(rng.uniform(0.4, 0.8)))
    if rng.random() < 0.3:  # a carbon copy: soft, lighter
        ink = cv2.GaussianBlur(ink, (0, 0), float(rng.uniform(0.6, 1.3))) * float(
            rng.uniform(0.6, 0.9))
    paper = _paper(rng, bank, height, width, float(rng.uniform(0.7, 0.93)))
    darkness = float(rng.uniform(0.55, 0.92))
    struck = 1.0 - np.clip(ink, 0, 1) * darkness
    optics: list[float] = []
    noisy = _scanner(paper * struck, rng, s, optics)
    if soft:
        page = Page(_seen(struck, optics), page.text, page.ink)
    return page, noisy


def bitonal(rng: np.random.Generator, s: float, height: int, width: int,
            bank: PaperBank | None = None, soft: bool = False) -> tuple[Page, np.ndarray]:
    """An office scan made bitonal at 2-3x the size, then shrunk to ``height`` x
    ``width`` (archive forms): stair-stepped grey edges, speckle, broken thin strokes.
    The target is the same text rendered at the final size."""
    k = float(rng.uniform(2.0, 3.0))
    big_h, big_w = int(height * k), int(width * k)
    xh = float(rng.uniform(6, 12))
    family = str(rng.choice(["serif", "sans", "mono"]))
    if rng.random() < 0.5:
        big = scans.render_form(rng, big_h, big_w, x_height=xh * k)
    else:
        big = synth.render_page(rng, big_h, big_w, x_height=xh * k, family=family, ink=0.0,
                                margin=scans._margin(big_w))
    clean = cv2.resize(big.clean, (width, height), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(big.clean, (0, 0), float(rng.uniform(0.5, 1.2)))
    noise = (0.08 + 0.2 * s) * rng.standard_normal(blurred.shape).astype(np.float32)
    binary = (blurred + noise > float(rng.uniform(0.4, 0.65))).astype(np.float32)
    if soft:  # the scan as binarised, shrunk, without speckle, paper or JPEG
        clean = cv2.resize(binary, (width, height), interpolation=cv2.INTER_AREA)
    speck = rng.random(binary.shape) < (0.0005 + 0.003 * s)
    binary[speck] = 0.0
    small = cv2.resize(binary, (width, height), interpolation=cv2.INTER_AREA)
    paper = _paper(rng, bank, height, width, float(rng.uniform(0.85, 1.0))) \
        if rng.random() < 0.3 else np.ones_like(small)
    noisy = small * paper
    if rng.random() < 0.5:
        noisy = synth._jpeg(np.clip(noisy, 0, 1), int(rng.integers(40, 90)))
    return Page(clean.astype(np.float32), big.text, 0.0), noisy


def on_paper(kind: str) -> Callable[..., tuple[Page, np.ndarray]]:
    """``scans``' page kind ``kind`` with its paper replaced by real paper: the
    damaged page is multiplied by a texture field from the bank (or returned as it
    is without a bank)."""
    def draw(rng: np.random.Generator, s: float, height: int, width: int,
             bank: PaperBank | None = None) -> tuple[Page, np.ndarray]:
        page, noisy = scans.make(kind, rng, s, height, width)
        if bank is not None:
            h, w = noisy.shape
            noisy = noisy * (1.0 + float(rng.uniform(0.6, 1.2)) * (bank.field(rng, h, w) - 1))
        return page, noisy
    return draw


def plain(rng: np.random.Generator, s: float, height: int, width: int,
          bank: PaperBank | None = None, soft: bool = False) -> tuple[Page, np.ndarray]:
    """The commonest real page: good print on real paper, scanned, nothing else wrong.
    What the model must learn to leave alone (but for whitening the paper)."""
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(7, 24)),
                             ink=float(rng.uniform(0.0, 0.2)), margin=scans._margin(width))
    paper = _paper(rng, bank, height, width, float(rng.uniform(0.75, 0.97)))
    optics: list[float] = []
    noisy = _scanner(paper * page.clean, rng, 0.5 * s, optics)
    if soft:
        page = Page(_seen(page.clean, optics), page.text, page.ink)
    return page, noisy


def faint(rng: np.random.Generator, s: float, height: int, width: int,
          bank: PaperBank | None = None, soft: bool = False) -> tuple[Page, np.ndarray]:
    """Faint print on near-white paper (a thermal receipt scanned with the paper
    clipped to white, a light photocopy): ink at 35-75% of the paper's darkness. The
    target is the text in dark ink: faint letters are text to keep, never noise to
    remove (the first residual model, taught otherwise by bleed-through, erased
    them)."""
    family = str(rng.choice(["mono", "sans", "serif"]))
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(6, 16)),
                             family=family, ink=0.0, margin=scans._margin(width))
    level = float(rng.uniform(0.25, 0.65)) * (1.0 - 0.4 * s)  # how dark the ink is
    paper = float(rng.uniform(0.93, 1.0))
    printed = 1.0 - (1.0 - page.clean) * level
    if rng.random() < 0.5:
        printed = cv2.GaussianBlur(printed.astype(np.float32), (0, 0),
                                   float(rng.uniform(0.3, 0.8)))
    optics: list[float] = []
    noisy = _scanner(paper * printed, rng, 0.3 * s, optics)
    if soft:  # faint it stays: darkening is the model's riskiest move
        page = Page(_seen(printed, optics), page.text, page.ink)
    return page, noisy


def clean(rng: np.random.Generator, s: float, height: int, width: int,
          bank: PaperBank | None = None, soft: bool = False) -> tuple[Page, np.ndarray]:
    """A good page as it is: clean in, clean out (at most a little sensor noise)."""
    page = synth.render_page(rng, height, width, x_height=float(rng.uniform(6, 30)),
                             ink=float(rng.uniform(0.0, 0.3)), margin=scans._margin(width))
    noise = float(rng.uniform(0.0, 2.0)) / 255
    return page, page.clean + noise * rng.standard_normal(page.clean.shape).astype(np.float32)


#: Page kinds, each ``(rng, strength, height, width, bank) -> (clean Page, damaged)``,
#: and how often each is drawn.
KINDS: dict[str, tuple[Callable[..., tuple[Page, np.ndarray]], float]] = {
    "typewriter": (typewriter, 3.0),
    "bitonal": (bitonal, 1.5),
    "plain": (plain, 2.0),
    "thermal": (on_paper("thermal"), 1.5),
    "photocopy": (on_paper("photocopy"), 1.0),
    "phone": (on_paper("phone"), 1.0),
    "form": (on_paper("form"), 1.0),
    "small_serif": (on_paper("small_serif"), 0.5),
    "faint": (faint, 1.5),
    "clean": (clean, 0.5),
}


def match_ink(noisy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``clean`` with its ink as dark, relative to the paper, as the ink of ``noisy``:
    1 - (1 - clean) * d, d the median darkness (1 - ink / paper) of ``noisy`` where
    ``clean`` is solid ink, in [0.3, 1]. Why: a target in black ink teaches the model
    to darken grey strokes, and on small print a darkened grey edge is a wider stroke
    (the second residual model made low-resolution typewritten pages bolder and read
    worse). With the ink matched the model removes what is not ink, whitens the
    paper, and leaves the ink's weight to the print."""
    solid, paper = clean < 0.15, clean > 0.95
    if solid.sum() < 10 or paper.sum() < 10:
        return clean
    p = float(np.median(noisy[paper]))
    d = 1.0 - float(np.median(noisy[solid])) / max(p, 1e-3)
    d = min(1.0, max(0.3, d))
    return (1.0 - (1.0 - clean) * d).astype(np.float32)


#: Kinds that can give a soft target (``make(soft=True)``).
SOFT_KINDS = ("typewriter", "bitonal", "plain", "faint", "clean")


def make(rng: np.random.Generator, height: int, width: int,
         bank: PaperBank | None = None, kind: str | None = None,
         keep_ink: bool = False, soft: bool = False,
         keep_paper: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(damaged page, target) of ``kind`` (default: drawn by ``KINDS``' weights), both
    (height, width) float32 in [0, 1]; a receipt is padded to the width with paper.
    ``keep_ink``: the target's ink as dark as the damaged page's (``match_ink``).

    ``soft``: the target is the page as the scanner's optics saw it, ink as the
    ribbon or printer left it (faint stays faint, grey edges as blurred), with the
    paper divided out to white and the speckle, grain, sensor noise and JPEG gone;
    only :data:`SOFT_KINDS` are drawn. Why: a sharp black target asks the model to
    darken and sharpen, and on real pages both read worse (the darkened halo is a
    bolder stroke; the lightened edge a thinner one); a soft target asks only for
    what non-local means does, removing what is not ink, which tesseract rewards.
    ``keep_paper`` (soft only): the soft target times the damaged paper's median
    level, so the page keeps its brightness and only grain and noise go. Measured
    worse than dividing the paper out: archive pages read much worse with it
    (docs/model-history.md, res5)."""
    if keep_ink and soft:
        raise ValueError("keep_ink and soft targets exclude each other (soft keeps the ink)")
    if keep_paper and not soft:
        raise ValueError("keep_paper needs soft targets")
    names = list(SOFT_KINDS if soft else KINDS)
    if kind is None:
        w = np.array([KINDS[k][1] for k in names])
        kind = names[int(rng.choice(len(names), p=w / w.sum()))]
    elif kind not in names:
        raise KeyError(f"unknown {'soft ' if soft else ''}real-damage kind {kind!r}; "
                       f"known: {', '.join(names)}")
    draw = KINDS[kind][0]
    strength = float(rng.uniform(0.2, 1.0))
    page, noisy = (draw(rng, strength, height, width, bank, soft=True) if soft
                   else draw(rng, strength, height, width, bank))
    noisy = np.clip(noisy, 0.0, 1.0).astype(np.float32)
    clean = np.clip(page.clean, 0.0, 1.0).astype(np.float32)
    if keep_ink:
        clean = match_ink(noisy, clean)
    if keep_paper:
        paper = clean > 0.999
        if paper.any():
            clean = (clean * float(np.median(noisy[paper]))).astype(np.float32)
    if noisy.shape != (height, width):  # a receipt narrower than the page
        pad = ((0, height - noisy.shape[0]), (0, width - noisy.shape[1]))
        noisy = np.pad(noisy, pad, mode="edge")
        clean = np.pad(clean, pad, constant_values=1.0)
    return noisy, clean
