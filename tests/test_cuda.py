"""The CUDA provider, where onnxruntime offers it (benchmarks/gpu_check.sh runs these on a
GPU machine); skipped elsewhere."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from helpers import text_page

from ocr_denoise import Denoiser
from ocr_denoise.session import CUDA

pytestmark = pytest.mark.skipif(CUDA not in ort.get_available_providers(),
                                reason="this onnxruntime offers no CUDA provider")


def test_cuda_session_really_runs_on_cuda():
    assert Denoiser(device="cuda").providers[0] == CUDA


@pytest.mark.parametrize("batch_size", [7, 128, 4096])
def test_cuda_gives_the_cpu_page_within_a_grey_level(rng, batch_size):
    page = (text_page(rng, 300, 410) * 255).astype(np.uint8)
    noisy = np.clip(page + rng.normal(0, 40, page.shape), 0, 255).astype(np.uint8)
    cpu = Denoiser(device="cpu").denoise(noisy, guard=False)
    gpu = Denoiser(device="cuda", batch_size=batch_size).denoise(noisy, guard=False)
    assert np.abs(cpu.astype(int) - gpu.astype(int)).max() <= 1
