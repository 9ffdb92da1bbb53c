"""Does a method make tesseract read *real* scans better? Forms, receipts, archive pages.

    .venv/bin/python benchmarks/real_scans.py                      # report pages, every method
    .venv/bin/python benchmarks/real_scans.py --split selection    # choose settings here
    .venv/bin/python benchmarks/real_scans.py --methods raw,denoised --pages 10 --sources ehri
    .venv/bin/python benchmarks/real_scans.py --model runs/X/model.onnx --json runs/X/real.json

Three sources of real pages under ``../shared/data`` (``--data``), chosen with
``--sources`` (all three by default). Every page is read as 8-bit grey
(``cv2.IMREAD_GRAYSCALE``); each has text segments with a box and a transcription:

* ``funsd``: ``funsd-train/images/<id>.png`` (149 scanned forms from the RVL-CDIP
  tobacco collection, about 762 x 1000 px, a US-letter page at about 90 DPI:
  x-heights of 6-8 px) with ``annotations/<id>.json``: every ``form`` entry with
  text is a segment (its ``box``). Tesseract ``-l eng``; the DPI handed to the
  ``upscale`` methods and unpaper is the width / 8.5 in.
* ``sroie``: ``sroie-dev/img/<NNN>.jpg`` (100 receipts, mostly faded thermal
  paper, colour or grey JPEG, 461 to 4961 px wide: some are receipts on an A4
  sheet at 600 DPI) with ``box/<NNN>.csv``: one
  line a row, ``x1,y1,...,x4,y4,text`` (split on the first eight commas: the text
  may hold more); the segment is the quadrilateral's bounding box. ``-l eng``;
  no DPI (the files' own are often wrong).
* ``ehri``: ``ehri-dev/<id>.jpg`` (56 German typewritten and printed archive
  pages of the 1930s-40s, 785 to 2493 px wide) with ``<id>.xml`` (ALTO v4): one
  segment per ``TextLine`` with text, its box from ``HPOS``/``VPOS``/``WIDTH``/
  ``HEIGHT``, its outline from ``Shape/Polygon POINTS``, its text the line's
  ``String CONTENT`` joined with spaces. ALTO coordinates are in the frame of the
  ``Page`` element's ``WIDTH``/``HEIGHT`` and are scaled to the image's pixels
  (image size / ALTO page size). These line boxes overlap the lines above and
  below, so each crop is masked to the line's polygon grown by ``GROW`` px; the
  rest of the crop is paper. ``-l deu``; no DPI (the files' own are unreliable).

There are no clean targets, so OCR is the measure: every segment is cut from the
*processed* page (its box, and polygon, scaled from the raw page's size to the
processed page's), padded with ``PAD`` px of the page's paper level (both scaled
with the page), and read by tesseract as one line (``--psm 7``). A page's CER
is the edit distances of its segments over their characters. The work runs as
one task per page (all methods; the largest pages first) on ``--jobs``
processes; a page's crops for all methods that share tesseract's arguments go to
one tesseract process, and identical crops (a method that left the page as it
was) are read once: tesseract reads each image on its own, so nothing measured
changes.

The split, fixed once: a page whose bare id's SHA-256 is even is a *selection*
page (choose models, thresholds and settings there), odd a *report* page (report
only there). About half each, in every source. Nothing is ever tuned on
``--split report``. ``--pages N`` takes the first N pages of the split of each
source. In the output page ids carry their source (``sroie/003``).

Methods (``--methods``): ``raw`` (the page as scanned); ``denoised``
(``denoise_page``, with its defaults); ``denoised-noguard`` (the model on every
page, no guard); ``upscale`` (``denoise_page(..., upscale="auto")`` with the
source's DPI; ``--auto-factor 3`` or ``4``: enlarged that many times where auto
enlarges 2 times); ``upscale-model`` (the same with every enlarged page sent to the
model, ``guard.ENLARGED`` on: can the model beat the enlargement alone?);
``upscale-learned`` (``upscale="auto"`` with the enlargement model ``--enlarger``,
issue 32: enlarged pages enlarged by it in place of cubic-then-denoise); and the
classical baselines: ``unpaper`` (the real unpaper with the arguments OCRmyPDF's
``--clean`` passes, at the source's DPI or else 300); ``nlmeans``
(OpenCV's non-local means, h=10); ``tess-sauvola`` (tesseract's own Sauvola,
``thresholding_method=2``, on the raw page); ``cubic2x`` (a plain 2x bicubic
enlargement, boxes doubled).

Printed per source (``## funsd report pages`` ...) and pooled over the sources
(``## pooled report pages``), per method: pages; CER over all characters (summed
edit distances over summed characters: long lines weigh more); the mean of page
CERs; word accuracy (over all words); the paired difference in page CER against
raw (mean over pages, with a 95% bootstrap interval over pages, 10 000
resamples) and how many pages got better / worse; the same against the best
classical baseline run (of unpaper, nlmeans, tess-sauvola, cubic2x: the lowest
mean page CER on that source's pages; pooled, each page against its source's
best); and, per source, the difference against raw by text height (the box's
height in the raw page). A difference whose interval holds 0 is no result. The
total wall time goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract: one thread per process

import baselines  # noqa: E402

# The split rule, one function for the benchmark and for training's paper bank (which
# may cut paper only from selection pages): ``selection`` or ``report`` by the parity
# of the page id's SHA-256.
from train.real_damage import split_of  # noqa: E402

if TYPE_CHECKING:
    from ocr_denoise import Denoiser

SHARED = REPO.parent / "shared" / "data"
#: The FUNSD folder (``page_ids``, ``segments``; other benchmarks read FUNSD through these).
DATA = SHARED / "funsd-train"
#: A FUNSD page is US letter (8.5 in wide) scanned to about 762 px: about 90 DPI.
LETTER_WIDTH_IN = 8.5
#: Text-height bands (box height in the raw page, px) for the by-height table.
BANDS = [(0, 12), (12, 16), (16, 24), (24, 10_000)]
#: Paper padding around each crop, in raw-page pixels (scaled with the page).
PAD = 6
#: How far a line's polygon is grown before masking its crop, in raw-page pixels
#: (scaled with the page).
GROW = 2
METHODS = ["raw", "denoised", "denoised-noguard", "upscale", "upscale-model",
           "upscale-learned", "unpaper", "nlmeans", "tess-sauvola", "cubic2x"]
#: Where ``upscale-learned`` finds its enlargement model (``--enlarger``), read in the
#: workers: the environment reaches them however the pool starts them.
ENLARGER_ENV = "REAL_SCANS_ENLARGER"
#: Where the denoised methods find the light model (``--light``), likewise.
LIGHT_ENV = "REAL_SCANS_LIGHT"
#: How many times ``upscale`` enlarges where ``upscale="auto"`` enlarges (``--auto-factor``).
AUTO_FACTOR_ENV = "REAL_SCANS_AUTO_FACTOR"
DEFAULT_METHODS = ["raw", "denoised", "unpaper", "nlmeans", "tess-sauvola", "cubic2x"]
#: The classical baselines, against the best of which (per source) a method is compared.
CLASSICAL = ["unpaper", "nlmeans", "tess-sauvola", "cubic2x"]
ALTO_NS = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}


# -- the pages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the raw page
    text: str
    #: The line's outline in the raw page, (x, y) points; None: the box is the line.
    polygon: tuple[tuple[float, float], ...] | None = None

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Source:
    """One kind of real page: where its pages are and how to read them."""

    name: str
    root: Path          # the source's folder
    pattern: str        # the pages' images, relative to ``root``, e.g. ``img/*.jpg``
    lang: str           # tesseract's language

    @property
    def tesseract_args(self) -> list[str]:
        return ["-l", self.lang, "--psm", "7"]

    def page_ids(self, split: str) -> list[str]:
        """Bare ids of the split's pages (the split hashes the bare id), sorted."""
        ids = sorted(p.stem for p in self.root.glob(self.pattern))
        return ids if split == "all" else [i for i in ids if split_of(i) == split]

    def image(self, page_id: str) -> Path:
        return self.root / self.pattern.replace("*", page_id)

    def read(self, page_id: str) -> np.ndarray:
        img = cv2.imread(str(self.image(page_id)), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise RuntimeError(f"cannot read {self.image(page_id)}")
        return img

    def segments(self, page_id: str, shape: tuple[int, int]) -> list[Segment]:
        """The page's segments with text, in the pixels of its image of ``shape`` (H, W)."""
        raise NotImplementedError

    def dpi(self, img: np.ndarray) -> float | None:
        """The DPI handed to ``upscale`` and unpaper; None: unknown."""
        return None


class Funsd(Source):
    def segments(self, page_id: str, shape: tuple[int, int]) -> list[Segment]:
        return segments(self.root, page_id)

    def dpi(self, img: np.ndarray) -> float | None:
        return img.shape[1] / LETTER_WIDTH_IN


class Sroie(Source):
    def segments(self, page_id: str, shape: tuple[int, int]) -> list[Segment]:
        return sroie_segments(self.root / "box" / f"{page_id}.csv")


class Ehri(Source):
    def segments(self, page_id: str, shape: tuple[int, int]) -> list[Segment]:
        return alto_segments(self.root / f"{page_id}.xml", shape)


def sources(data: Path = SHARED) -> dict[str, Source]:
    """Every source, by name, under the shared data folder ``data``."""
    return {
        "funsd": Funsd("funsd", data / "funsd-train", "images/*.png", "eng"),
        "sroie": Sroie("sroie", data / "sroie-dev", "img/*.jpg", "eng"),
        "ehri": Ehri("ehri", data / "ehri-dev", "*.jpg", "deu"),
    }


def _segment(x0: int, y0: int, x1: int, y1: int, text: str,
             polygon: tuple[tuple[float, float], ...] | None = None) -> Segment | None:
    text = " ".join(text.split())
    return Segment((x0, y0, x1, y1), text, polygon) if text and x1 > x0 and y1 > y0 else None


def page_ids(data: Path, split: str) -> list[str]:
    """The split's FUNSD page ids in the funsd-train folder ``data``."""
    return Funsd("funsd", data, "images/*.png", "eng").page_ids(split)


def segments(data: Path, page_id: str) -> list[Segment]:
    """A FUNSD page's segments with text (empty ones say nothing about OCR)."""
    form = json.loads((data / "annotations" / f"{page_id}.json").read_text())["form"]
    segs = []
    for s in form:
        x0, y0, x1, y1 = (int(v) for v in s["box"])
        segs.append(_segment(x0, y0, x1, y1, s["text"]))
    return [s for s in segs if s is not None]


def sroie_segments(path: Path) -> list[Segment]:
    """A SROIE box file's lines: ``x1,y1,...,x4,y4,text`` (the text may hold commas),
    each the bounding box of its quadrilateral."""
    out = []
    for row in path.read_text(encoding="utf-8", errors="replace").splitlines():
        f = row.split(",", 8)
        if len(f) < 9:
            continue
        xs, ys = [int(v) for v in f[0:8:2]], [int(v) for v in f[1:8:2]]
        s = _segment(max(0, min(xs)), max(0, min(ys)), max(xs), max(ys), f[8])
        if s is not None:
            out.append(s)
    return out


def alto_segments(path: Path, shape: tuple[int, int]) -> list[Segment]:
    """An ALTO v4 file's ``TextLine`` elements with text, box and polygon scaled from
    the ALTO ``Page``'s WIDTH x HEIGHT to an image of ``shape`` (H, W)."""
    root = ET.parse(path).getroot()
    page = root.find(".//a:Layout/a:Page", ALTO_NS)
    if page is None:
        raise ValueError(f"{path}: no ALTO v4 Layout/Page")
    sx = shape[1] / float(page.get("WIDTH") or shape[1])
    sy = shape[0] / float(page.get("HEIGHT") or shape[0])
    out = []
    for line in page.iter(f"{{{ALTO_NS['a']}}}TextLine"):
        text = " ".join(s.get("CONTENT", "") for s in line.findall("a:String", ALTO_NS))
        x, y = float(line.get("HPOS", 0)) * sx, float(line.get("VPOS", 0)) * sy
        w, h = float(line.get("WIDTH", 0)) * sx, float(line.get("HEIGHT", 0)) * sy
        poly = line.find("a:Shape/a:Polygon", ALTO_NS)
        points = None
        if poly is not None:
            v = [float(p) for p in (poly.get("POINTS") or "").replace(",", " ").split()]
            if len(v) >= 6:
                points = tuple((px * sx, py * sy) for px, py in zip(v[0::2], v[1::2]))
        s = _segment(int(x), int(y), round(x + w), round(y + h), text, points)
        if s is not None:
            out.append(s)
    return out


# -- the methods ---------------------------------------------------------------------

_denoise_cache: dict[str, Denoiser] = {}


def _denoiser(model: str | None) -> Denoiser:
    from ocr_denoise import Denoiser

    light = os.environ.get(LIGHT_ENV, "auto")
    key = f"{model or ''}|{light}"
    if key not in _denoise_cache:
        _denoise_cache[key] = Denoiser(model, device="cpu", threads=1,
                                       light=None if light == "none" else light)
    return _denoise_cache[key]


def process(method: str, img: np.ndarray, model: str | None,
            dpi: float | None = None) -> np.ndarray:
    """The page as ``method`` hands it to OCR (uint8 gray; maybe enlarged). ``dpi``:
    the page's resolution for ``upscale`` and unpaper, None if unknown."""
    from ocr_denoise import denoise_page

    if method in ("raw", "tess-sauvola"):
        return img
    if method == "denoised":
        return denoise_page(img, denoiser=_denoiser(model))
    if method == "denoised-noguard":
        return denoise_page(img, denoiser=_denoiser(model), guard=False)
    if method == "upscale":
        from ocr_denoise import guard

        factor = int(os.environ.get(AUTO_FACTOR_ENV, "2"))
        was = guard.upscale_factor
        if factor != 2:  # enlarge ``factor`` times wherever auto enlarges 2 times
            guard.upscale_factor = lambda noise, height: (
                factor if was(noise, height) == 2 else was(noise, height))
        try:
            return denoise_page(img, denoiser=_denoiser(model), upscale="auto", dpi=dpi)
        finally:
            guard.upscale_factor = was
    if method == "upscale-model":
        from ocr_denoise import guard

        was, guard.ENLARGED = guard.ENLARGED, True
        try:
            return denoise_page(img, denoiser=_denoiser(model), upscale="auto", dpi=dpi)
        finally:
            guard.ENLARGED = was
    if method == "upscale-learned":
        import os as _os

        from ocr_denoise import Denoiser as _Denoiser

        key = "enlarger:" + _os.environ.get(ENLARGER_ENV, "auto")
        if key not in _denoise_cache:
            _denoise_cache[key] = _Denoiser(model, device="cpu", threads=1,
                                            enlarger=_os.environ.get(ENLARGER_ENV, "auto"))
        return denoise_page(img, denoiser=_denoise_cache[key], upscale="auto", dpi=dpi)
    if method == "unpaper":
        return baselines.unpaper(img) if dpi is None else baselines.unpaper(img, dpi)
    if method == "nlmeans":
        return baselines.nl_means(img)
    if method == "cubic2x":
        return baselines.cubic2x(img)
    raise ValueError(f"unknown method {method!r}")


# -- reading the segments ------------------------------------------------------------


def crops(page: np.ndarray, raw_shape: tuple[int, int], segs: list[Segment]) -> list[np.ndarray]:
    """Each segment cut from ``page`` (boxes and polygons scaled from the raw page's
    size to this one's), padded with the page's paper level. A segment with a
    polygon is cut a little wider than its box and everything outside its polygon
    grown by ``GROW`` px is paper."""
    sy, sx = page.shape[0] / raw_shape[0], page.shape[1] / raw_shape[1]
    paper = int(np.percentile(page, 90))
    pad = max(1, round(PAD * (sx + sy) / 2))
    grow = max(1, round(GROW * (sx + sy) / 2))
    out = []
    for s in segs:
        x0, y0, x1, y1 = s.box
        cx0, cy0 = int(x0 * sx), int(y0 * sy)
        cx1, cy1 = max(cx0 + 1, round(x1 * sx)), max(cy0 + 1, round(y1 * sy))
        if s.polygon is not None:
            cx0, cy0 = max(0, cx0 - grow), max(0, cy0 - grow)
            cx1, cy1 = min(page.shape[1], cx1 + grow), min(page.shape[0], cy1 + grow)
        c = page[cy0:cy1, cx0:cx1]
        if s.polygon is not None and c.size:
            c = mask_polygon(c, [(x * sx - cx0, y * sy - cy0) for x, y in s.polygon],
                             grow, paper)
        out.append(cv2.copyMakeBorder(c, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=paper))
    return out


def mask_polygon(crop: np.ndarray, polygon: Sequence[tuple[float, float]], grow: int,
                 paper: int) -> np.ndarray:
    """``crop`` with every pixel farther than ``grow`` px outside ``polygon`` (in the
    crop's coordinates) set to ``paper``."""
    inside: np.ndarray = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(np.asarray(polygon, np.float64)).astype(np.int32)], 255)
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        inside = cv2.dilate(inside, kernel)
    out = crop.copy()
    out[inside == 0] = paper
    return out


def tesseract_lines(images: list[np.ndarray], extra: Sequence[str] = ()) -> list[str]:
    """Each image read as one text line (``--psm 7``, then ``extra``, which may
    override it) by one tesseract process (a list file of images; its TSV output
    says which page each word belongs to). The images go as BMP: lossless like PNG,
    and tesseract reads large ones much faster."""
    if not images:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, im in enumerate(images):
            p = os.path.join(tmp, f"{i:05d}.bmp")
            cv2.imwrite(p, im)
            paths.append(p)
        listing = os.path.join(tmp, "list.txt")
        Path(listing).write_text("\n".join(paths) + "\n")
        r = subprocess.run(["tesseract", listing, "stdout", "--psm", "7", *extra, "tsv"],
                           capture_output=True, text=True, check=True)
    words: list[list[str]] = [[] for _ in images]
    for line in r.stdout.splitlines()[1:]:
        f = line.split("\t")
        if len(f) == 12 and f[0] == "5" and f[11].strip():
            words[int(f[1]) - 1].append(f[11].strip())
    return [" ".join(w) for w in words]


def read_batches(batches: Sequence[tuple[Sequence[np.ndarray], Sequence[str]]]) -> list[list[str]]:
    """``tesseract_lines`` of every (images, extra) batch, with one tesseract process
    per distinct ``extra`` and every distinct image read once (a method that leaves
    a page as it was costs no OCR: tesseract reads each image on its own)."""
    out: list[list[str]] = [[""] * len(images) for images, _ in batches]
    groups: dict[tuple[str, ...], dict[tuple, list[tuple[int, int]]]] = {}
    unique: dict[tuple[str, ...], list[np.ndarray]] = {}
    for b, (images, extra) in enumerate(batches):
        seen = groups.setdefault(tuple(extra), {})
        for i, im in enumerate(images):
            key = (im.shape, hashlib.sha1(np.ascontiguousarray(im).data).digest())
            if key not in seen:
                seen[key] = []
                unique.setdefault(tuple(extra), []).append(im)
            seen[key].append((b, i))
    for extra, seen in groups.items():
        for text, where in zip(tesseract_lines(unique.get(extra, []), extra), seen.values()):
            for b, i in where:
                out[b][i] = text
    return out


@dataclass
class PageScore:
    page: str          # namespaced: "<source>/<id>"
    edits: list[int]   # per segment: character edit distance
    chars: list[int]   # per segment: characters in the truth
    word_edits: list[int]
    words: list[int]
    heights: list[int]
    seconds: float

    @property
    def source(self) -> str:
        return self.page.split("/", 1)[0]

    @property
    def cer(self) -> float:
        return 100.0 * sum(self.edits) / max(1, sum(self.chars))

    @property
    def word_accuracy(self) -> float:
        return 100.0 * (1 - sum(self.word_edits) / max(1, sum(self.words)))

    def band_cer(self, lo: int, hi: int) -> float | None:
        idx = [i for i, h in enumerate(self.heights) if lo <= h < hi]
        chars = sum(self.chars[i] for i in idx)
        return 100.0 * sum(self.edits[i] for i in idx) / chars if chars else None


def score_page(args: tuple[Source, str, Sequence[str], str | None]) -> list[PageScore]:
    """One page of a source after each of ``methods``, every segment read by
    tesseract (one process for all the methods that share its arguments); runs in a
    worker."""
    source, page_id, methods, model = args
    img = source.read(page_id)
    segs = source.segments(page_id, img.shape[:2])
    dpi = source.dpi(img)
    batches, seconds = [], []
    for method in methods:
        t0 = time.perf_counter()
        page = process(method, img, model, dpi)
        seconds.append(time.perf_counter() - t0)
        extra = list(source.tesseract_args)
        if method == "tess-sauvola":
            extra += ["-c", "thresholding_method=2"]
        batches.append((crops(page, img.shape[:2], segs), extra))
        del page
    got = read_batches(batches)
    return [page_score(f"{source.name}/{page_id}", segs, g, sec) for g, sec in zip(got, seconds)]


def score(page_id: str, page: np.ndarray, raw_shape: tuple[int, int], segs: list[Segment],
          extra: Sequence[str] = (), seconds: float = 0.0) -> PageScore:
    """Every segment of ``page`` (a processed version of a raw page of ``raw_shape``)
    read by tesseract and scored against its transcription."""
    return page_score(page_id, segs, tesseract_lines(crops(page, raw_shape, segs), extra),
                      seconds)


def page_score(page_id: str, segs: list[Segment], got: list[str],
               seconds: float = 0.0) -> PageScore:
    """The scores of tesseract's reading ``got`` of each segment of ``segs``."""
    from rapidfuzz.distance import Levenshtein

    return PageScore(
        page_id,
        [Levenshtein.distance(g, s.text) for g, s in zip(got, segs)],
        [len(s.text) for s in segs],
        [Levenshtein.distance(g.split(), s.text.split()) for g, s in zip(got, segs)],
        [len(s.text.split()) for s in segs],
        [s.height for s in segs],
        seconds,
    )


# -- statistics ----------------------------------------------------------------------


def bootstrap(diffs: np.ndarray, n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of paired per-page differences and its 95% percentile bootstrap interval."""
    d = np.asarray(diffs, dtype=np.float64)
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(d), (n, len(d)))
    means = d[idx].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def best_classical(scores: dict[str, list[PageScore]]) -> str | None:
    """The classical baseline run with the lowest mean page CER on these pages."""
    run = [m for m in CLASSICAL if scores.get(m)]
    return min(run, key=lambda m: float(np.mean([s.cer for s in scores[m]]))) if run else None


def compare(scores: dict[str, list[PageScore]], base: str = "raw",
            best: dict[str, str | None] | None = None) -> dict[str, dict]:
    """Per method: CER over all characters, mean page CER, word accuracy, ΔCER against
    ``base`` and against the best classical baseline with their intervals, and ΔCER
    against ``base`` by band. ``best``: source -> its best classical method (by
    default found from ``scores``, one for all the pages)."""
    if best is None:
        one = best_classical(scores)
        best = {s.source: one for rows in scores.values() for s in rows}
    by_method = {m: {s.page: s for s in rows} for m, rows in scores.items()}
    ref = by_method[base]
    out: dict[str, dict] = {}
    for method, rows in scores.items():
        paired = [(s, ref[s.page]) for s in rows if s.page in ref]
        d = np.array([s.cer - r.cer for s, r in paired])
        mean, lo, hi = bootstrap(d)
        vs_best = [(s.cer - by_method[b][s.page].cer) for s in rows
                   if (b := best.get(s.source)) and s.page in by_method.get(b, {})]
        db = np.array(vs_best)
        bands = {}
        for b0, b1 in BANDS:
            both = [(s.band_cer(b0, b1), r.band_cer(b0, b1)) for s, r in paired]
            bd = [x - y for x, y in both if x is not None and y is not None]
            bands[f"{b0}-{b1 if b1 < 10_000 else ''}"] = (*bootstrap(np.array(bd)), len(bd))
        out[method] = {
            "pages": len(rows),
            "segments": sum(len(s.chars) for s in rows),
            "cer": 100.0 * sum(sum(s.edits) for s in rows) / max(1, sum(sum(s.chars)
                                                                         for s in rows)),
            "page_cer": float(np.mean([s.cer for s in rows])),
            "word_accuracy": 100.0 * (1 - sum(sum(s.word_edits) for s in rows)
                                      / max(1, sum(sum(s.words) for s in rows))),
            "delta": (mean, lo, hi),
            "better": int((d < 0).sum()),
            "worse": int((d > 0).sum()),
            "delta_best": bootstrap(db),
            "better_best": int((db < 0).sum()),
            "worse_best": int((db > 0).sum()),
            "bands": bands,
            "seconds_per_page": float(np.mean([s.seconds for s in rows])),
        }
    return out


def _ci(v: Sequence[float]) -> str:
    return f"{v[0]:+.2f} [{v[1]:+.2f}, {v[2]:+.2f}]"


def print_tables(summary: dict[str, dict], title: str, best: str, bands: bool = True) -> None:
    """One section: the method table and (``bands``) the by-height table."""
    print(f"\n## {title}\n")
    print("Tesseract --psm 7 on every segment. CER: summed edit distances over summed "
          "characters, %; page CER: mean over pages, %; words: word accuracy over all "
          f"words, %; Δ: paired difference in page CER (mean, 95% bootstrap interval over "
          f"pages); best classical: {best}.\n")
    print("| method | pages | CER | page CER | words | ΔCER vs raw [95% CI] | better / worse "
          "| ΔCER vs best classical [95% CI] | better / worse | s/page |")
    print("|---|---:|---:|---:|---:|---|---:|---|---:|---:|")
    for m, s in summary.items():
        print(f"| {m} | {s['pages']} | {s['cer']:.1f} | {s['page_cer']:.1f} | "
              f"{s['word_accuracy']:.1f} | {_ci(s['delta'])} | {s['better']} / {s['worse']} | "
              f"{_ci(s['delta_best'])} | {s['better_best']} / {s['worse_best']} | "
              f"{s['seconds_per_page']:.2f} |")
    if not bands:
        return
    names = list(next(iter(summary.values()))["bands"])
    print("\nΔCER vs raw by text height (box height in the raw page, px) [95% CI] (pages)\n")
    print("| method | " + " | ".join(f"{b} px" for b in names) + " |")
    print("|---|" + "---|" * len(names))
    for m, s in summary.items():
        cells = [f"{_ci(v)} ({v[3]})" for v in s["bands"].values()]
        print(f"| {m} | " + " | ".join(cells) + " |")


def _pixels(source: Source, page_id: str) -> int:
    """The page's pixel count, from its file's header (to start the large pages first)."""
    from PIL import Image

    with Image.open(source.image(page_id)) as im:
        return im.size[0] * im.size[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(SHARED), help="the shared data folder")
    ap.add_argument("--sources", default="funsd,sroie,ehri",
                    help="comma-separated, from funsd, sroie, ehri")
    ap.add_argument("--split", default="report", choices=["report", "selection", "all"])
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help=f"comma-separated, from {', '.join(METHODS)} (raw is always run)")
    ap.add_argument("--pages", type=int, default=0,
                    help="first N pages of the split, per source (0: all)")
    ap.add_argument("--model", default=None, help="ONNX model for the denoised methods")
    ap.add_argument("--enlarger", default="auto",
                    help="enlargement model (name or path) for upscale-learned")
    ap.add_argument("--light", default="auto",
                    help="light model (name, path, auto or none) the denoised methods route "
                    "quiet pages to (Denoiser(light=...))")
    ap.add_argument("--auto-factor", type=int, default=2, choices=[2, 3, 4],
                    help="upscale: enlarge this many times where upscale='auto' enlarges "
                    "(2, the runtime's choice): does more than 2x pay?")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=None, help="write the summaries and every page's scores")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    methods = list(dict.fromkeys(m for m in args.methods.split(",") if m))
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; use {', '.join(METHODS)}")
    if "raw" not in methods:
        methods.insert(0, "raw")
    os.environ[ENLARGER_ENV] = args.enlarger
    os.environ[LIGHT_ENV] = args.light
    os.environ[AUTO_FACTOR_ENV] = str(args.auto_factor)
    known = sources(Path(args.data))
    names = list(dict.fromkeys(n for n in args.sources.split(",") if n))
    if not names or set(names) - set(known):
        ap.error(f"--sources: from {', '.join(known)}")
    ids: dict[str, list[str]] = {}
    for n in names:
        ids[n] = known[n].page_ids(args.split)[: args.pages or None]
        if not ids[n]:
            ap.error(f"no {args.split} pages of {n} in {known[n].root}")

    # One task per (source, page), all methods, the largest pages first: both cores
    # stay busy, and a page is read, and its crops OCRed, once for all methods.
    tasks = [(known[n], i, methods, args.model) for n in names for i in ids[n]]
    tasks.sort(key=lambda t: -_pixels(t[0], t[1]))
    done: dict[tuple[str, str], list[PageScore]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(score_page, t): t for t in tasks}
        for k, f in enumerate(as_completed(futures), 1):
            source, page_id, _, _ = futures[f]
            done[(source.name, page_id)] = f.result()
            if k % 20 == 0 or k == len(tasks):
                print(f"{k} / {len(tasks)} pages, {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr)

    scores = {n: {m: [done[(n, i)][j] for i in ids[n]] for j, m in enumerate(methods)}
              for n in names}
    best = {n: best_classical(scores[n]) for n in names}
    summary: dict[str, dict] = {}
    for n in names:
        summary[n] = compare(scores[n], best=best)
        print_tables(summary[n], f"{n} {args.split} pages ({known[n].root.name}, "
                     f"tesseract -l {known[n].lang})", best[n] or "none run")
    pooled = {m: [s for n in names for s in scores[n][m]] for m in methods}
    summary["pooled"] = compare(pooled, best=best)
    print_tables(summary["pooled"], f"pooled {args.split} pages ({', '.join(names)})",
                 ", ".join(f"{n}: {best[n]}" for n in names), bands=False)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"split": args.split, "model": args.model, "enlarger": args.enlarger,
             "light": args.light, "auto_factor": args.auto_factor,
             "sources": names, "methods": methods,
             "best_classical": best, "summary": summary,
             "pages": {m: [vars(s) for s in pooled[m]] for m in methods}}, indent=1))
    print(f"real_scans: {len(tasks)} pages x {len(methods)} methods in "
          f"{time.perf_counter() - t0:.0f} s wall "
          f"({args.jobs} jobs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
