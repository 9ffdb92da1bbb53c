#!/usr/bin/env bash
# Set up a fresh machine: system packages (tesseract, fonts, ghostscript) and a
# project virtualenv in .venv with the extras named in $EXTRAS.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-dev,train,ocr,ocrmypdf,dask}

need=()
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr tesseract-ocr-eng)
# German: the archive pages benchmarks/real_scans.py reads (ehri, -l deu)
[ -n "$(find /usr/share/tesseract-ocr -name deu.traineddata 2>/dev/null | head -1)" ] || need+=(tesseract-ocr-deu)
[ -e /usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf ] || need+=(fonts-liberation)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v gs >/dev/null 2>&1 || need+=(ghostscript)
# unpaper: the classical baseline benchmarks/real_scans.py compares with (OCRmyPDF --clean)
command -v unpaper >/dev/null 2>&1 || need+=(unpaper)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing system packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
