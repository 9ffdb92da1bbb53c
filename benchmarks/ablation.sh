#!/usr/bin/env bash
# Architecture ablation at a small, equal training budget: classic width 32 vs width 16,
# with and without skip connections. Prints validation RMSE (held-back patches) and
# patches/s of the exported ONNX model on this machine, then the OCR benchmark per model.
#   bash benchmarks/ablation.sh [patches] [epochs]
#   CONFIGS='32 true,16 true' bash benchmarks/ablation.sh   # a subset: 'width skips' pairs
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-40000}; E=${2:-3}
PY=.venv/bin/python
IFS=, read -ra CONFIGS <<< "${CONFIGS:-32 false,16 false,32 true,16 true}"
for cfg in "${CONFIGS[@]}"; do
  set -- $cfg
  run=runs/ablation-w$1-skips$2
  $PY -m train fit --out "$run" --quiet --synthetic-patches "$N" --real-patches $((N / 4)) \
      --pairs ../shared/data/noisyoffice/train --epochs "$E" --width "$1" --skips "$2" \
      | sed "s|^|w=$1 skips=$2 |"
  $PY -m train export "$run" --output "$run/model.onnx" >/dev/null
  $PY - "$run/model.onnx" <<'PYEOF'
import sys, time, numpy as np
from ocr_denoise import Denoiser
d = Denoiser(sys.argv[1], device="cpu")
x = np.random.default_rng(0).random((8192, 28, 28), dtype=np.float32)
d.denoise_patches(x[:512])
t = time.perf_counter(); d.denoise_patches(x); dt = time.perf_counter() - t
print(f"  {sys.argv[1]}: {8192 / dt:.0f} patches/s")
PYEOF
done
