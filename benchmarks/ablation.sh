#!/usr/bin/env bash
# Architecture ablation at a small, equal training budget (40k synthetic + 10k NoisyOffice
# patches, 3 epochs, seed 1234). Prints each run's held-back RMSE (the noisy patches score
# noisy_val_rmse), its training time, and the exported model's patches/s on this machine.
#   bash benchmarks/ablation.sh [patches] [epochs]
#   CONFIGS='shuffle-pn' bash benchmarks/ablation.sh     # a subset, by name
#   EXTRA='--black-ink true' PREFIX=cap bash benchmarks/ablation.sh 200000 4
#     (EXTRA: fit flags added after every config's own, so a flag in both takes EXTRA's
#     value; PREFIX: runs/PREFIX-NAME, default ablation)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-40000}; E=${2:-3}
PY=.venv/bin/python
declare -A ARGS=(
  [classic]="--width 32"
  [classic-w16]="--width 16"
  [classic-skips]="--width 32 --skips true"
  [classic-w16-skips]="--width 16 --skips true"
  [classic-skips-pn]="--width 32 --skips true --page-norm true"
  [shuffle]="--width 32 --arch shuffle"
  [shuffle-d32]="--width 32 --arch shuffle --decoder-width 32"
  [shuffle-pn]="--width 32 --arch shuffle --page-norm true"
  [shuffle-w64-pn]="--width 64 --arch shuffle --page-norm true"
  [shuffle-l64-pn]="--width 32 --latent-width 64 --arch shuffle --page-norm true"
  [shuffle-o1-pn]="--width 32 --arch shuffle --page-norm true --output-kernel 1"
  [shuffle-r8-pn]="--width 32 --arch shuffle --page-norm true --refine 8"
  [shuffle-ctx-pn]="--width 32 --arch shuffle --page-norm true --context true"
)
ORDER="classic classic-w16 classic-skips classic-w16-skips classic-skips-pn
       shuffle shuffle-d32 shuffle-pn shuffle-w64-pn shuffle-l64-pn
       shuffle-o1-pn shuffle-r8-pn shuffle-ctx-pn"
for name in ${CONFIGS:-$ORDER}; do
  run=runs/${PREFIX:-ablation}-$name
  # shellcheck disable=SC2086
  $PY -m train fit --out "$run" --quiet --synthetic-patches "$N" --real-patches $((N / 4)) \
      --pairs ../shared/data/noisyoffice/train --epochs "$E" ${ARGS[$name]} ${EXTRA:-} \
      | sed "s|^|$name |"
  $PY -m train export "$run" --output "$run/model.onnx" >/dev/null
  $PY - "$run/model.onnx" <<'PYEOF'
import sys, time, numpy as np
from ocr_denoise import Denoiser
d = Denoiser(sys.argv[1], device="cpu")
x = np.random.default_rng(0).random((8192, 28, 28), dtype=np.float32)
c = x if d.reads_context else None  # page-context models
d.denoise_patches(x[:512], None if c is None else c[:512])
t = time.perf_counter(); d.denoise_patches(x, c); dt = time.perf_counter() - t
print(f"  {sys.argv[1]}: {8192 / dt:.0f} patches/s")
PYEOF
done
