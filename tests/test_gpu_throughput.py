"""benchmarks/gpu_throughput.py on the CPU path: I/O binding, worker processes, real onnxruntime."""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_throughput  # noqa: E402

from ocr_denoise.model import default_model_path  # noqa: E402


def test_io_bound_runs_compute_what_a_plain_run_does():
    """The rates are only worth having if the bound run really runs the model."""
    s = gpu_throughput.session(default_model_path(), "cpu")
    inp, out = s.get_inputs()[0], s.get_outputs()[0]
    x = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
    io = s.io_binding()
    io.bind_ortvalue_input(inp.name, ort.OrtValue.ortvalue_from_numpy(x, "cpu", 0))
    y = ort.OrtValue.ortvalue_from_shape_and_type(x.shape, np.float32, "cpu", 0)
    io.bind_ortvalue_output(out.name, y)
    s.run_with_iobinding(io)
    np.testing.assert_allclose(y.numpy(), s.run(None, {inp.name: x})[0], atol=1e-6)


def test_model_rates_and_page_rates_are_measured(capsys):
    rates = gpu_throughput.model_rates(default_model_path(), "cpu", 16, 0.05)
    assert set(rates) == {"on_device", "with_copies"} and min(rates.values()) > 0
    assert gpu_throughput.page_rate(default_model_path(), "cpu", 64, 2, True, 0.2) > 0


@pytest.mark.skipif(gpu_throughput.CUDA in ort.get_available_providers(),
                    reason="this machine has CUDA")
def test_cuda_without_the_provider_is_refused_not_timed_on_the_cpu():
    with pytest.raises(SystemExit, match="CUDAExecutionProvider"):
        gpu_throughput.session(default_model_path(), "cuda")


def test_bad_counts_are_refused():
    with pytest.raises(SystemExit):
        gpu_throughput.main(["--device", "cpu", "--jobs", "0"])
