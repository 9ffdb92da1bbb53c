"""benchmarks/gpu_check.sh, on the parts a machine without a GPU can run: it refuses
clearly without a CUDA provider, and its tests and speed run go through on the CPU."""

from __future__ import annotations

import json
import os
import subprocess

import onnxruntime as ort
import pytest
from helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(),
                    reason="this machine has CUDA: the script would run for real")
def test_without_a_cuda_provider_it_stops_with_status_3_and_says_what_to_install(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "GPU_CHECK_DEVICE": "cuda"})
    assert r.returncode == 3, r.stdout + r.stderr
    assert "no CUDAExecutionProvider" in r.stdout and "onnxruntime-gpu" in r.stdout
    assert (tmp_path / "providers.txt").exists()


def test_on_the_cpu_its_tests_and_speed_run_complete(tmp_path):
    r = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                       timeout=600, env={**os.environ, "GPU_CHECK_DEVICE": "cpu"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "gpu_check: device cpu" in r.stdout and "ok" in r.stdout.splitlines()[-1]
    speed = json.loads((tmp_path / "speed_cpu.json").read_text())
    assert speed["pages_per_s"] > 0 and speed["providers"][0] == "CPUExecutionProvider"
    assert "passed" in (tmp_path / "pytest.log").read_text()
    rates = json.loads((tmp_path / "throughput_cpu.json").read_text())
    assert set(rates["pages_per_s_by_jobs"]) == {"1", "2"}
    assert all(v > 0 for v in rates["pages_per_s_by_jobs"].values())
    assert set(rates["model_pages_per_s"]) == {"on_device", "with_copies"}
