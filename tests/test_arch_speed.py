"""benchmarks/arch_speed.py: random-weight variants exported with tf2onnx, timed in onnxruntime."""

from __future__ import annotations

import sys

import pytest
from helpers import REPO

pytest.importorskip("tensorflow")  # the 'train' extra; installed by scripts/setup.sh
sys.path.insert(0, str(REPO / "benchmarks"))
import arch_speed  # noqa: E402  (a plain import: a broken script fails here, not skips)


def test_a_one_by_one_last_convolution_has_fewer_parameters_and_the_patch_shape():
    (v8, n8), (ok1, n1) = (arch_speed.onnx_bytes(arch_speed.VARIANTS[v]) for v in ("v8", "ok1"))
    assert n8 - n1 == 32 * 4 * (9 - 1)  # the last convolution's kernel, 3x3 -> 1x1
    shipped, n_shipped = arch_speed.onnx_bytes(None)
    assert n_shipped == n8  # the shipped file is the v8 architecture
    for sess in map(arch_speed.session, (v8, ok1)):
        x = arch_speed.random_batch(sess, 3)
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert y.shape == x.shape and ((y > 0) & (y < 1)).all()  # sigmoid output


def test_timing_runs_and_unknown_variants_are_named(capsys):
    assert arch_speed.main(["--variants", "ok1", "--repeat", "1", "--runs", "1",
                            "--batch-size", "4"]) == 0
    assert "ok1" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        arch_speed.main(["--variants", "ok1,nope"])
    assert "nope" in capsys.readouterr().err


def test_the_unsplit_shipped_graph_computes_what_the_shipped_one_does():
    import onnx

    shipped, _ = arch_speed.onnx_bytes(None)
    unsplit, _ = arch_speed.onnx_bytes(arch_speed.VARIANTS["shipped-unsplit"])
    ops = [n.op_type for n in onnx.load_from_string(shipped).graph.node]
    assert "ReduceSum" in ops  # the shipped graph is split ...
    assert "ReduceSum" not in [n.op_type for n in onnx.load_from_string(unsplit).graph.node]
    a, b = arch_speed.session(shipped), arch_speed.session(unsplit)
    x = arch_speed.random_batch(a, 16)
    ya = a.run(None, {a.get_inputs()[0].name: x})[0]
    yb = b.run(None, {b.get_inputs()[0].name: x})[0]
    assert ya.shape == yb.shape
    assert float(abs(ya - yb).max()) < 1e-5  # ... and computes what the unsplit one does


@pytest.mark.parametrize("variant", ["shipped-d2s", "shipped-deconv"])
def test_rewritten_shipped_heads_compute_what_the_shipped_one_does(variant):
    import onnx

    shipped, _ = arch_speed.onnx_bytes(None)
    other, _ = arch_speed.onnx_bytes(arch_speed.VARIANTS[variant])
    ops = {n.op_type for n in onnx.load_from_string(other).graph.node}
    assert ("DepthToSpace" if variant.endswith("d2s") else "ConvTranspose") in ops
    assert "Transpose" not in ops  # the shuffle's transposes are gone
    a, b = arch_speed.session(shipped), arch_speed.session(other)
    x = arch_speed.random_batch(a, 16)
    ya = a.run(None, {a.get_inputs()[0].name: x})[0]
    yb = b.run(None, {b.get_inputs()[0].name: x})[0]
    assert ya.shape == yb.shape
    assert float(abs(ya - yb).max()) < 1e-5


def test_saved_variants_run_as_pages_through_the_runtime(tmp_path):
    """--save writes files the runtime feeds like the shipped model (flattened pages),
    so speed.py --model can time a variant on a page."""
    import numpy as np

    from ocr_denoise import Denoiser
    assert arch_speed.main(["--variants", "ok1", "--repeat", "1", "--runs", "1",
                            "--batch-size", "4", "--save", str(tmp_path)]) == 0
    d = Denoiser(tmp_path / "ok1.onnx", device="cpu")
    assert d.interface.preprocess == Denoiser(device="cpu").interface.preprocess
    out = d.denoise(np.full((60, 70), 200, np.uint8), guard=False)
    assert out.shape == (60, 70) and out.dtype == np.uint8
