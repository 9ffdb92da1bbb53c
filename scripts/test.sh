#!/usr/bin/env bash
# Set up, then check the habits (lint and import order, types, the docs site) and
# run the whole test suite (real onnxruntime, TensorFlow, tesseract, OCRmyPDF, Dask).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
.venv/bin/mkdocs build --strict --quiet --site-dir "$site"
.venv/bin/python -m pytest "$@"
