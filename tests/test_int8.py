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


def test_fp16_copy_keeps_float32_at_its_ends_and_denoises_like_the_fp32_model(tmp_path):
    import onnx
    from onnx import TensorProto

    path = int8.half(default_model_path(), tmp_path / "fp16.onnx")
    g = onnx.load(str(path)).graph
    assert [t.type.tensor_type.elem_type for t in (*g.input, *g.output)] == [TensorProto.FLOAT] * 2
    weights = [t for t in g.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert any(t.data_type == TensorProto.FLOAT16 for t in weights)
    resize = {n.input[i] for n in g.node if n.op_type == "Resize" for i in (1, 2)
              if i < len(n.input)}
    assert all(t.data_type == TensorProto.FLOAT for t in weights if t.name in resize)
    patches = int8.calibration_patches(64)[:, 0]
    fp32 = Denoiser(device="cpu").denoise_patches(patches)
    got = Denoiser(path, device="cpu").denoise_patches(patches)
    assert got.dtype == np.float32
    assert 0 < np.abs(got - fp32).max() < 0.02  # float16 rounding, nothing worse
