"""train/graph.py: the split last convolution, with the real onnxruntime, on small graphs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")  # the 'train' extra; installed by scripts/setup.sh
import onnxruntime as ort  # noqa: E402
from helpers import make_onnx_graph_model, node  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402

from ocr_denoise.model import default_model_path  # noqa: E402
from train import graph  # noqa: E402


@pytest.fixture
def conv_model(tmp_path):
    """A factory of real ONNX models (written by ``helpers.make_onnx_graph_model``, read
    back): Conv(c -> 8, 3x3, relu) then the convolution under test (8 -> o, k x k), NCHW."""
    def make(rng, c=5, o=3, k=3, size=10, **attrs):
        w0 = rng.standard_normal((8, c, 3, 3)).astype(np.float32)
        w = rng.standard_normal((o, 8, k, k)).astype(np.float32)
        b = rng.standard_normal(o).astype(np.float32)
        attrs = {"kernel_shape": [k, k], "pads": [k // 2] * 4, **attrs}
        nodes = [node("Conv", ["x", "w0"], ["h"], kernel_shape=[3, 3], pads=[1] * 4),
                 node("Relu", ["h"], ["r"]),
                 node("Conv", ["r", "w", "b"], ["y"], **attrs)]
        inits = [numpy_helper.from_array(v, n) for n, v in (("w0", w0), ("w", w), ("b", b))]
        path = make_onnx_graph_model(tmp_path / "conv.onnx", nodes, ["n", c, size, size],
                                     ["n", o, None, None], initializers=inits)
        return onnx.load(str(path))
    return make


def run(m, x):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("c,o,k,size", [(5, 3, 3, 10), (1, 4, 5, 12), (2, 1, 3, 7)])
def test_split_computes_what_the_convolution_did_and_folds_back_exactly(rng, c, o, k, size,
                                                                         conv_model):
    m = conv_model(rng, c, o, k, size)
    s = graph.split_output_conv(m)
    assert graph.rewrites(s) == [graph.SPLIT_OUTPUT] and graph.rewrites(m) == []
    assert [n.op_type for n in s.graph.node].count("Conv") == 3  # 1x1 and the shift
    x = rng.random((4, c, size, size), dtype=np.float32)
    want = run(m, x)
    np.testing.assert_allclose(run(s, x), want, atol=1e-5, rtol=1e-5)  # float rounding
    f = graph.fold_split_output(s)
    assert graph.rewrites(f) == []
    last = [n for n in f.graph.node if n.op_type == "Conv"][-1]
    init = {t.name: numpy_helper.to_array(t) for t in f.graph.initializer}
    orig = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    np.testing.assert_array_equal(init[last.input[1]], orig["w"])  # the weights, bit for bit
    np.testing.assert_array_equal(init[last.input[2]], orig["b"])
    np.testing.assert_array_equal(run(f, x), want)


@pytest.mark.parametrize("attrs", [{"kernel_shape": [1, 1], "pads": [0] * 4},
                                   {"strides": [2, 2]}, {"dilations": [2, 2], "pads": [2] * 4},
                                   {"pads": [0] * 4}])
def test_convolutions_it_cannot_split_are_left_as_they_are(rng, attrs, conv_model):
    k = attrs.get("kernel_shape", [3, 3])[0]
    m = conv_model(rng, k=k, **attrs)
    assert not graph.can_split(m)
    assert graph.split_output_conv(m).SerializeToString() == m.SerializeToString()


def test_a_graph_of_unknown_page_size_is_not_split(rng, conv_model):
    m = conv_model(rng)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "h", "w"  # any size: the reshape cannot be fixed
    assert not graph.can_split(m)
    assert graph.split_output_conv(m).SerializeToString() == m.SerializeToString()


def test_splitting_twice_is_splitting_once_and_folding_an_unsplit_model_changes_nothing(
        rng, conv_model):
    m = conv_model(rng)
    once = graph.split_output_conv(m)
    assert graph.split_output_conv(once).SerializeToString() == once.SerializeToString()
    assert graph.fold_split_output(m).SerializeToString() == m.SerializeToString()


def test_the_shipped_model_is_split_and_folds_to_the_same_function(rng):
    shipped = onnx.load(str(default_model_path()))
    assert graph.rewrites(shipped) == [graph.SPLIT_OUTPUT]
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(run(graph.fold_split_output(shipped), x), run(shipped, x),
                               atol=1e-5, rtol=0)


def _unsplit_copy(tmp_path):
    from ocr_denoise.model import seal_model, write_checksum

    path = tmp_path / "unsplit.onnx"
    onnx.save(graph.fold_split_output(onnx.load(str(default_model_path()))), str(path))
    seal_model(path)  # a changed graph needs its seal rewritten, as export does
    write_checksum(path)
    return path


def test_split_file_rewrites_a_model_in_place_that_the_runtime_loads(tmp_path, rng):
    from ocr_denoise import Denoiser
    from train.export import split_file

    path = _unsplit_copy(tmp_path)
    page = rng.integers(0, 256, (90, 120), dtype=np.uint8)
    before = Denoiser(path).denoise(page, guard=False)
    diff = split_file(path)
    assert diff is not None and 0 <= diff <= 1e-5
    written = onnx.load(str(path))
    onnx.checker.check_model(written)  # e.g. no metadata key twice
    keys = [p.key for p in written.metadata_props]
    assert len(keys) == len(set(keys))
    meta = {p.key: p.value for p in written.metadata_props}
    assert meta["graph_rewrites"] == graph.SPLIT_OUTPUT
    assert meta["model_version"] == "v8"  # the rest of the metadata is kept
    after = Denoiser(path).denoise(page, guard=False)  # the checksum was rewritten too
    assert np.abs(before.astype(int) - after.astype(int)).max() <= 1
    assert split_file(path) is None  # already split: nothing written


def test_a_split_that_changed_the_function_is_refused_and_the_file_kept(tmp_path, monkeypatch):
    from train.export import ExportMismatch, split_file

    path = _unsplit_copy(tmp_path)
    keep = tmp_path / "kept.onnx"
    shutil.copy(path, keep)
    real = graph.split_output_conv

    def wrong(proto):
        m = real(proto)
        for t in m.graph.initializer:
            if t.name.endswith("bias"):
                t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) + 0.5, t.name))
        return m

    monkeypatch.setattr(graph, "split_output_conv", wrong)
    with pytest.raises(ExportMismatch, match="differs"):
        split_file(path)
    assert path.read_bytes() == keep.read_bytes()


def test_graphs_it_cannot_split_whole_are_refused_before_any_change(rng, conv_model):
    m = conv_model(rng)
    old = onnx.ModelProto()
    old.CopyFrom(m)
    del old.opset_import[:]
    old.opset_import.extend([helper.make_opsetid("", 12)])  # ReduceSum's axes an attribute
    assert not graph.can_split(old)
    shared = conv_model(rng)
    last = [n for n in shared.graph.node if n.op_type == "Conv"][-1]
    shared.graph.node.append(node("Conv", ["r", last.input[1]], ["z"],
                                  kernel_shape=[3, 3], pads=[1] * 4))
    assert not graph.can_split(shared)  # its weight is read by another node too


def test_a_file_that_says_split_but_is_not_is_a_value_error(rng, conv_model):
    m = graph.split_output_conv(conv_model(rng))
    (add,) = [n for n in m.graph.node if n.op_type == "Add"]
    add.name = "renamed by an optimiser"
    with pytest.raises(ValueError, match="split-output-v1"):
        graph.fold_split_output(m)


def test_cli_names_the_file_it_cannot_read(tmp_path, capsys):
    pytest.importorskip("tensorflow")  # import-onnx builds Keras models
    from train.__main__ import main

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    assert main(["split-output", str(bad)]) == 1
    assert main(["import-onnx", str(bad), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count(str(bad)) == 2 and "Traceback" not in err
