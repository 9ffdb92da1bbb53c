#!/usr/bin/env bash
# Set up, then denoise the bundled sample page and compare tesseract before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=ocr bash scripts/setup.sh
mkdir -p out
.venv/bin/ocr-denoise examples/sample_noisy.png -o out/sample_denoised.png --overwrite
echo "wrote out/sample_denoised.png"
.venv/bin/python examples/ocr_demo.py examples/sample_noisy.png out/sample_denoised.png \
  --truth examples/sample_text.txt
