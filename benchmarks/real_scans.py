"""Does a method make tesseract read *real* scans better? FUNSD's scanned forms, box by box.

    .venv/bin/python benchmarks/real_scans.py                      # report pages, every method
    .venv/bin/python benchmarks/real_scans.py --split selection    # choose settings here
    .venv/bin/python benchmarks/real_scans.py --methods raw,denoised --pages 10
    .venv/bin/python benchmarks/real_scans.py --model runs/X/model.onnx --json runs/X/real.json

The pages: ``../shared/data/funsd-train`` (149 real forms from the RVL-CDIP tobacco
collection, about 762 x 1000 px, a US-letter page at about 90 DPI: x-heights of
6-8 px), with every text segment's box and transcription. There are no clean
targets, so OCR is the measure: every annotated segment is cut from the
*processed* page (its box scaled with the page), padded with a few pixels of the
page's paper level, and read by tesseract as one line (``--psm 7``); the edit
distances of all segments of a page, over their characters, give its CER.

The split, fixed once: a page whose id's SHA-256 is even is a *selection* page
(choose models, thresholds and settings there), odd a *report* page (report only
there). About half each. Nothing is ever tuned on ``--split report``.

Methods (``--methods``): ``raw`` (the page as scanned); ``denoised``
(``denoise_page``, with its defaults); ``denoised-noguard`` (the model on every
page, no guard; once the guard exists); ``upscale`` (``denoise_page(...,
upscale="auto")``, once it exists); ``upscale-model`` (the same with every enlarged
page sent to the model, ``guard.ENLARGED`` on: can the model beat the enlargement
alone?); ``unpaper`` (the real unpaper with the
arguments OCRmyPDF's ``--clean`` passes); ``nlmeans`` (OpenCV's non-local means,
h=10); ``tess-sauvola`` (tesseract's own Sauvola, ``thresholding_method=2``, on
the raw page); ``cubic2x`` (a plain 2x bicubic enlargement, boxes doubled).

Printed per method: mean page CER and word accuracy; the paired difference in CER
against raw (mean over pages, with a 95% bootstrap interval over pages, 10 000
resamples) and how many pages got better / worse; and the same difference by text
height (the box's height in the raw page). A difference whose interval holds 0 is
no result.
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
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract: one thread per process

import baselines  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "funsd-train"
#: A FUNSD page is US letter (8.5 in wide) scanned to about 762 px: about 90 DPI.
LETTER_WIDTH_IN = 8.5
#: Text-height bands (box height in the raw page, px) for the by-height table.
BANDS = [(0, 12), (12, 16), (16, 24), (24, 10_000)]
#: Paper padding around each crop, in raw-page pixels (scaled with the page).
PAD = 6
METHODS = ["raw", "denoised", "denoised-noguard", "upscale", "upscale-model", "unpaper",
           "nlmeans", "tess-sauvola", "cubic2x"]
DEFAULT_METHODS = ["raw", "denoised", "unpaper", "nlmeans", "tess-sauvola", "cubic2x"]


# -- the pages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the raw page
    text: str

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def split_of(page_id: str) -> str:
    """``selection`` or ``report``: the fixed rule, by the parity of the id's SHA-256."""
    return "selection" if int(hashlib.sha256(page_id.encode()).hexdigest(), 16) % 2 == 0 \
        else "report"


def page_ids(data: Path, split: str) -> list[str]:
    ids = sorted(p.stem for p in (data / "images").glob("*.png"))
    return ids if split == "all" else [i for i in ids if split_of(i) == split]


def segments(data: Path, page_id: str) -> list[Segment]:
    """The page's annotated segments with text (empty ones say nothing about OCR)."""
    form = json.loads((data / "annotations" / f"{page_id}.json").read_text())["form"]
    out = []
    for s in form:
        text = " ".join(s["text"].split())
        x0, y0, x1, y1 = (int(v) for v in s["box"])
        if text and x1 > x0 and y1 > y0:
            out.append(Segment((x0, y0, x1, y1), text))
    return out


# -- the methods ---------------------------------------------------------------------

_denoise_cache: dict[str, Callable[..., np.ndarray]] = {}


def _denoiser(model: str | None):
    from ocr_denoise import Denoiser

    key = model or ""
    if key not in _denoise_cache:
        _denoise_cache[key] = Denoiser(model, device="cpu", threads=1)
    return _denoise_cache[key]


def process(method: str, img: np.ndarray, model: str | None) -> np.ndarray:
    """The page as ``method`` hands it to OCR (uint8 gray; maybe enlarged)."""
    from ocr_denoise import denoise_page

    dpi = img.shape[1] / LETTER_WIDTH_IN
    if method in ("raw", "tess-sauvola"):
        return img
    if method == "denoised":
        return denoise_page(img, denoiser=_denoiser(model))
    if method == "denoised-noguard":
        return denoise_page(img, denoiser=_denoiser(model), guard=False)
    if method == "upscale":
        return denoise_page(img, denoiser=_denoiser(model), upscale="auto", dpi=dpi)
    if method == "upscale-model":
        from ocr_denoise import guard

        was, guard.ENLARGED = guard.ENLARGED, True
        try:
            return denoise_page(img, denoiser=_denoiser(model), upscale="auto", dpi=dpi)
        finally:
            guard.ENLARGED = was
    if method == "unpaper":
        return baselines.unpaper(img, dpi)
    if method == "nlmeans":
        return baselines.nl_means(img)
    if method == "cubic2x":
        return baselines.cubic2x(img)
    raise ValueError(f"unknown method {method!r}")


# -- reading the segments ------------------------------------------------------------


def crops(page: np.ndarray, raw_shape: tuple[int, int], segs: list[Segment]) -> list[np.ndarray]:
    """Each segment cut from ``page`` (boxes scaled from the raw page's size to this
    one's), padded with the page's paper level."""
    sy, sx = page.shape[0] / raw_shape[0], page.shape[1] / raw_shape[1]
    paper = int(np.percentile(page, 90))
    pad = max(1, round(PAD * (sx + sy) / 2))
    out = []
    for s in segs:
        x0, y0, x1, y1 = s.box
        c = page[int(y0 * sy):max(int(y0 * sy) + 1, round(y1 * sy)),
                 int(x0 * sx):max(int(x0 * sx) + 1, round(x1 * sx))]
        out.append(cv2.copyMakeBorder(c, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=paper))
    return out


def tesseract_lines(images: list[np.ndarray], extra: Sequence[str] = ()) -> list[str]:
    """Each image read as one text line by one tesseract process (a list file of
    images; its TSV output says which page each word belongs to)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, im in enumerate(images):
            p = os.path.join(tmp, f"{i:05d}.png")
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


@dataclass
class PageScore:
    page: str
    edits: list[int]   # per segment: character edit distance
    chars: list[int]   # per segment: characters in the truth
    word_edits: list[int]
    words: list[int]
    heights: list[int]
    seconds: float

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


def score_page(args: tuple[str, str, str, str | None]) -> PageScore:
    """OCR every segment of one page after ``method``; runs in a worker process."""
    data, page_id, method, model = args
    data_dir = Path(data)
    img = cv2.imread(str(data_dir / "images" / f"{page_id}.png"), cv2.IMREAD_GRAYSCALE)
    segs = segments(data_dir, page_id)
    t0 = time.perf_counter()
    page = process(method, img, model)
    seconds = time.perf_counter() - t0
    extra = ["-c", "thresholding_method=2"] if method == "tess-sauvola" else []
    return score(page_id, page, img.shape, segs, extra, seconds)


def score(page_id: str, page: np.ndarray, raw_shape: tuple[int, int], segs: list[Segment],
          extra: Sequence[str] = (), seconds: float = 0.0) -> PageScore:
    """Every segment of ``page`` (a processed version of a raw page of ``raw_shape``)
    read by tesseract and scored against its transcription."""
    from rapidfuzz.distance import Levenshtein

    got = tesseract_lines(crops(page, raw_shape, segs), extra)
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


def compare(scores: dict[str, list[PageScore]], base: str = "raw") -> dict[str, dict]:
    """Per method: CER, word accuracy, ΔCER against ``base`` with its interval, and by band."""
    ref = {s.page: s for s in scores[base]}
    out: dict[str, dict] = {}
    for method, rows in scores.items():
        paired = [(s, ref[s.page]) for s in rows if s.page in ref]
        d = np.array([s.cer - r.cer for s, r in paired])
        mean, lo, hi = bootstrap(d)
        bands = {}
        for b0, b1 in BANDS:
            bd = [(s.band_cer(b0, b1), r.band_cer(b0, b1)) for s, r in paired]
            bd = [x - y for x, y in bd if x is not None and y is not None]
            bands[f"{b0}-{b1 if b1 < 10_000 else ''}"] = (*bootstrap(np.array(bd)), len(bd))
        out[method] = {
            "pages": len(rows),
            "cer": float(np.mean([s.cer for s in rows])),
            "word_accuracy": float(np.mean([s.word_accuracy for s in rows])),
            "delta": (mean, lo, hi),
            "better": int((d < 0).sum()),
            "worse": int((d > 0).sum()),
            "bands": bands,
            "seconds_per_page": float(np.mean([s.seconds for s in rows])),
        }
    return out


def print_tables(summary: dict[str, dict], split: str) -> None:
    print(f"\nFUNSD {split} pages: tesseract --psm 7 on every annotated segment "
          f"(mean page CER %, word accuracy %, ΔCER vs raw with 95% bootstrap interval)\n")
    print("| method | pages | CER | words | ΔCER vs raw [95% CI] | better / worse | s/page |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for m, s in summary.items():
        mean, lo, hi = s["delta"]
        print(f"| {m} | {s['pages']} | {s['cer']:.1f} | {s['word_accuracy']:.1f} | "
              f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}] | {s['better']} / {s['worse']} | "
              f"{s['seconds_per_page']:.2f} |")
    bands = list(next(iter(summary.values()))["bands"])
    print("\nΔCER vs raw by text height (box height in the raw page, px) [95% CI] (pages)\n")
    print("| method | " + " | ".join(f"{b} px" for b in bands) + " |")
    print("|---|" + "---|" * len(bands))
    for m, s in summary.items():
        cells = [f"{v[0]:+.2f} [{v[1]:+.2f}, {v[2]:+.2f}] ({v[3]})" for v in s["bands"].values()]
        print(f"| {m} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA), help="the funsd-train folder")
    ap.add_argument("--split", default="report", choices=["report", "selection", "all"])
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help=f"comma-separated, from {', '.join(METHODS)} (raw is always run)")
    ap.add_argument("--pages", type=int, default=0, help="first N pages of the split (0: all)")
    ap.add_argument("--model", default=None, help="ONNX model for the denoised methods")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=None, help="write every page's scores here")
    args = ap.parse_args(argv)

    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; use {', '.join(METHODS)}")
    if "raw" not in methods:
        methods.insert(0, "raw")
    data = Path(args.data)
    ids = page_ids(data, args.split)
    if args.pages:
        ids = ids[: args.pages]
    if not ids:
        ap.error(f"no pages in {data / 'images'}")
    t0 = time.perf_counter()
    scores: dict[str, list[PageScore]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for m in methods:
            scores[m] = list(pool.map(score_page, [(str(data), i, m, args.model) for i in ids]))
            print(f"{m}: {len(ids)} pages, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    summary = compare(scores)
    print_tables(summary, args.split)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"split": args.split, "model": args.model, "summary": summary,
             "pages": {m: [vars(s) for s in rows] for m, rows in scores.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
