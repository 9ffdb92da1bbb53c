"""Compare tesseract's character error rate on a noisy page and its denoised version.

    python examples/ocr_demo.py NOISY.png DENOISED.png --truth TEXT.txt
"""

from __future__ import annotations

import argparse
import shutil
import sys

import cv2

from ocr_denoise.ocr import cer, tesseract_text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("noisy")
    ap.add_argument("denoised")
    ap.add_argument("--truth", required=True, help="text file with the page's true text")
    args = ap.parse_args()
    if shutil.which("tesseract") is None:
        print("tesseract is not installed: skipping the OCR comparison")
        return 0
    truth = open(args.truth, encoding="utf-8").read()
    for label, path in (("noisy", args.noisy), ("denoised", args.denoised)):
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            print(f"cannot read {path}", file=sys.stderr)
            return 1
        print(f"tesseract CER {label:>9}: {cer(truth, tesseract_text(img)):6.1%}  ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
