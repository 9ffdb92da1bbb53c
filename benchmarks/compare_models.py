"""Do two model files give the same pages? Pixel differences of ``denoise_page`` outputs.

    .venv/bin/python benchmarks/compare_models.py A.onnx B.onnx [--folders DIR ...]
                                                  [--limit 20] [--json OUT.json]

Each page goes through ``Denoiser(A, skip_white=None).denoise(page, guard=False)``
and the same with B (the model on every patch of every page, so no page hides
behind the guard and no patch behind blank-paper skipping), and the uint8
results are compared: how many pixels differ, and by how many grey levels at most.
Pages: ``speed.py``'s generated 300-DPI letter page, the bundled sample
(``examples/sample_noisy.png``), and the first ``--limit`` images of each folder
given (e.g. ``../shared/data/funsd-train``, ``../shared/data/noisyoffice/val``).

Why: a graph rewrite that computes the same function (``train/graph.py``) changes
float rounding, as running on another CPU does; this says how much that reaches the
page, without an OCR run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from speed import letter_page  # noqa: E402

from ocr_denoise import Denoiser, OcrDenoiseError  # noqa: E402
from ocr_denoise.images import INPUT_EXTENSIONS, read_image  # noqa: E402


def pages(folders: list[Path], limit: int) -> list[tuple[str, np.ndarray]]:
    """(name, page) pairs: the letter page, the bundled sample, then each folder's first
    ``limit`` images in name order (unreadable files are named and skipped)."""
    out = [("letter page (generated)", letter_page()),
           ("examples/sample_noisy.png", read_image(REPO / "examples" / "sample_noisy.png"))]
    for folder in folders:
        files = sorted(p for p in folder.rglob("*")
                       if p.suffix.lower() in INPUT_EXTENSIONS)[:limit]
        for f in files:
            try:  # the package's own reader, as the command line reads pages
                out.append((str(f), read_image(f)))
            except OcrDenoiseError as e:
                print(f"skipped {f}: {e}", file=sys.stderr)
    return out


def compare(a: Path | str, b: Path | str, items: list[tuple[str, np.ndarray]]) -> dict:
    """Per page and in all: pixels whose uint8 values differ, and the largest difference."""
    # skip_white=None: both models on every patch (blank-paper skipping is the
    # runtime's, on for the shipped model only, and would differ between A and B)
    da, db = Denoiser(a, skip_white=None), Denoiser(b, skip_white=None)
    rows, differ, total, worst = [], 0, 0, 0
    for name, img in items:
        x = da.denoise(img, guard=False).astype(np.int16)
        y = db.denoise(img, guard=False).astype(np.int16)
        d = np.abs(x - y)
        n, m = int(np.count_nonzero(d)), int(d.max())
        rows.append({"page": name, "pixels": int(d.size), "differing": n, "max_levels": m})
        differ, total, worst = differ + n, total + int(d.size), max(worst, m)
    return {"a": str(a), "b": str(b), "pages": rows,
            "all": {"pages": len(rows), "pixels": total, "differing": differ,
                    "max_levels": worst}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--folders", nargs="*", default=[], type=Path)
    ap.add_argument("--limit", type=int, default=20, help="images per folder")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = compare(args.a, args.b, pages(args.folders, args.limit))
    for r in res["pages"]:
        print(f"{r['differing']:8d} of {r['pixels']:9d} pixels differ, at most "
              f"{r['max_levels']} grey levels  {r['page']}")
    t = res["all"]
    print(f"all {t['pages']} pages: {t['differing']} of {t['pixels']} pixels differ "
          f"({100 * t['differing'] / t['pixels']:.4f}%), at most {t['max_levels']} grey levels")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
