"""benchmarks/compare_models.py: pixel differences between two models, real onnxruntime."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import compare_models  # noqa: E402

from ocr_denoise.model import default_model_path, seal_model, write_checksum  # noqa: E402

onnx = pytest.importorskip("onnx")


def _pages(rng):
    return [("a", rng.integers(0, 256, (70, 90), dtype=np.uint8)),
            ("b", rng.integers(0, 256, (40, 130, 3), dtype=np.uint8))]


def test_a_model_against_itself_differs_nowhere(rng):
    res = compare_models.compare(default_model_path(), default_model_path(), _pages(rng))
    assert res["all"]["differing"] == 0 and res["all"]["max_levels"] == 0
    assert res["all"]["pixels"] == 70 * 90 + 40 * 130


def test_a_model_with_shifted_biases_is_seen_to_differ(rng, tmp_path):
    from onnx import numpy_helper

    proto = onnx.load(str(default_model_path()))
    biases = {n.input[2] for n in proto.graph.node if n.op_type == "Conv" and len(n.input) > 2}
    assert biases
    for t in proto.graph.initializer:
        if t.name in biases:  # every convolution's bias, a little higher
            a = numpy_helper.to_array(t)
            t.CopyFrom(numpy_helper.from_array(a + np.float32(0.3), t.name))
    path = tmp_path / "shifted.onnx"
    onnx.save(proto, str(path))
    seal_model(path)  # changed weights need the seal rewritten, as export does
    write_checksum(path)
    res = compare_models.compare(default_model_path(), path, _pages(rng))
    assert res["all"]["differing"] > 0 and res["all"]["max_levels"] > 0
    assert [r["page"] for r in res["pages"]] == ["a", "b"]


def test_folders_add_their_images_and_name_unreadable_ones(rng, tmp_path, capsys):
    import cv2

    cv2.imwrite(str(tmp_path / "p.png"), rng.integers(0, 256, (30, 40), dtype=np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    got = compare_models.pages([tmp_path], limit=5)
    names = [n for n, _ in got]
    assert names[:2] == ["letter page (generated)", "examples/sample_noisy.png"]
    assert names[2:] == [str(tmp_path / "p.png")]
    assert "broken.png" in capsys.readouterr().err
