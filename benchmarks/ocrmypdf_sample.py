"""OCRmyPDF with and without ``--denoise`` on the bundled sample page: text-layer CER.

    .venv/bin/python benchmarks/ocrmypdf_sample.py

Wraps ``examples/sample_noisy.png`` (stains, crumpling, blur and noise stacked; no DPI
recorded, so 300 DPI is declared) in a one-page PDF, runs the real OCRmyPDF twice
(plain PDF output, no optimisation) and scores each sidecar text against
``examples/sample_text.txt``. The README quotes its output; ``tests/test_ocrmypdf_plugin.py``
covers the plugin's behaviour on generated pages.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import ocrmypdf  # noqa: E402
from PIL import Image  # noqa: E402

from ocr_denoise.ocr import cer  # noqa: E402


def main() -> int:
    truth = (REPO / "examples" / "sample_text.txt").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "sample.pdf"
        with Image.open(REPO / "examples" / "sample_noisy.png") as im:
            im.save(src, resolution=float((im.info.get("dpi") or (300, 300))[0]))
        lines = []
        for denoise in (False, True):
            side = d / f"text-{denoise}.txt"
            ocrmypdf.ocr(src, d / f"out-{denoise}.pdf", denoise=denoise, sidecar=side,
                         progress_bar=False, optimize=0, output_type="pdf")
            label = "with --denoise" if denoise else "without       "
            lines.append(f"OCRmyPDF {label}: text-layer CER {cer(truth, side.read_text()):.3f}")
    # After both runs, on lines of their own: OCRmyPDF's log goes to the same terminal
    # and would otherwise run into them.
    sys.stderr.flush()
    print("\n" + "\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
