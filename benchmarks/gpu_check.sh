#!/usr/bin/env bash
# The GPU check, prepared to run once, as it is, on a machine with an NVIDIA GPU
# (a few minutes; nothing is downloaded):
#
#   bash benchmarks/gpu_check.sh [OUTDIR]        # default: $OUT, else out/gpu_check
#
# 1. the gpu extra: onnxruntime-gpu as installed (pip install ".[gpu]"), or, on a
#    machine that reaches no registry, from wheels put in .whl/ beforehand, whole or in
#    parts (benchmarks/gpu_parts.py; see docs/benchmarks.md); stops with exit status 3
#    and says so when onnxruntime offers no CUDA provider;
# 2. the CUDA-provider tests (tests/test_cuda.py, and the provider tests of
#    tests/test_session.py);
# 3. benchmarks/speed.py --device cuda with large batches (fixed shapes: the last batch
#    is padded), pages/s of the shipped model and the GPU memory in use;
# 4. benchmarks/gpu_throughput.py: the model alone with onnxruntime I/O binding (data on
#    the GPU, and with the host copies), then whole letter pages from 1, 8 and 15
#    processes sharing the GPU: pages/s, and the GPU memory of one session.
# Outputs (logs, speed_cuda.json, throughput_cuda.json, nvidia-smi.txt) go to OUTDIR.
#
# GPU_CHECK_DEVICE=cpu runs steps 2 and 3 on the CPU with a small page: how the tests
# check this script on machines without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-out/gpu_check}}
mkdir -p "$out"
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && py=.venv/bin/python
device=${GPU_CHECK_DEVICE:-cuda}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [ "$device" = cuda ]; then
  # Wheels carried in parts (benchmarks/gpu_parts.py; .whl/ and $GPU_CHECK_PARTS, by
  # default /tmp/gpu-parts) are joined and checked first; a missing part stops here.
  parts=""
  for d in .whl "${GPU_CHECK_PARTS:-/tmp/gpu-parts}"; do
    ls "$d"/*.parts >/dev/null 2>&1 && parts="$parts $d"
  done
  if [ -n "$parts" ]; then
    # shellcheck disable=SC2086
    "$py" benchmarks/gpu_parts.py join $parts --out /tmp/gpu-wheels || exit 3
  fi
  wheels=$(ls .whl/*.whl /tmp/gpu-wheels/*.whl 2>/dev/null)
  if [ -n "$wheels" ]; then
    # shellcheck disable=SC2086
    "$py" -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/gpu-site \
      $wheels || exit 3
    export PYTHONPATH="/tmp/gpu-site:$PYTHONPATH"
  fi
  # onnxruntime-gpu loads CUDA, cuDNN and cuBLAS from the library path: add the lib
  # folders of the nvidia-* Python packages where the machine has them (PyTorch's).
  nvlibs=$("$py" -c 'import glob, os, nvidia; print(":".join(sorted({os.path.dirname(f) for d in nvidia.__path__ for f in glob.glob(os.path.join(d, "*", "lib", "*.so*"))})))' 2>/dev/null)
  [ -n "$nvlibs" ] && export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "$py" - <<'PY' 2>&1 | tee "$out/providers.txt"
import sys
import onnxruntime as ort
providers = ort.get_available_providers()
print("onnxruntime", ort.__version__, providers)
if "CUDAExecutionProvider" not in providers:
    print("gpu_check: this onnxruntime offers no CUDAExecutionProvider: install the gpu "
          "extra (pip install '.[gpu]', onnxruntime-gpu), or on a machine that reaches no "
          "registry put onnxruntime-gpu's wheel in .whl/ first")
    sys.exit(3)
PY
  status=${PIPESTATUS[0]}
  [ "$status" -eq 0 ] || exit "$status"
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
  batch=4096
  quick=""
  jobs="1,8,15"
  seconds=10
else
  batch=128
  quick="--quick"
  jobs="1,2"
  seconds=1
fi

failed=0
"$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_session.py -k \
  "cuda or provider" 2>&1 | tee "$out/pytest.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
"$py" benchmarks/speed.py --device "$device" --batch-size "$batch" --skip-a3 $quick \
  --json "$out/speed_$device.json" 2>&1 | tee "$out/speed.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
"$py" benchmarks/gpu_throughput.py --device "$device" --batch-size "$batch" --jobs "$jobs" \
  --seconds "$seconds" $quick --json "$out/throughput_$device.json" 2>&1 \
  | tee "$out/throughput.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed=1
echo "gpu_check: device $device, outputs in $out, $([ $failed = 0 ] && echo ok || echo FAILED)"
exit $failed
