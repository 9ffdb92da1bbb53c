"""benchmarks/int8.py's quantisation: real onnxruntime quantisation of the shipped model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO

from ocr_denoise import Denoiser
from ocr_denoise.model import default_model_path

pytest.importorskip("onnxruntime.quantization")
sys.path.insert(0, str(REPO / "benchmarks"))
import int8  # noqa: E402  (a plain import: a broken script fails here, not skips)


def test_quantised_models_are_int8_graphs_that_denoise_like_the_fp32_model(tmp_path):
    import onnx

    patches = int8.calibration_patches(256)
    models = int8.quantise(default_model_path(), tmp_path, patches)
    fp32 = Denoiser(device="cpu").denoise_patches(patches[:64, 0])
    for path in models.values():
        ops = {n.op_type for n in onnx.load(str(path)).graph.node}
        assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
        got = Denoiser(path, device="cpu").denoise_patches(patches[:64, 0])
        # Close to the fp32 model on the patches it was calibrated on, but not the same.
        assert 0 < np.abs(got - fp32).mean() < 0.02
