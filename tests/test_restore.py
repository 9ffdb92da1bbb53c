"""Real TensorFlow and onnxruntime: the shipped ONNX model rebuilt as a Keras checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ocr_denoise import Denoiser
from ocr_denoise.model import default_model_path

pytest.importorskip("tensorflow")  # the 'train' extra; installed by scripts/setup.sh
onnx = pytest.importorskip("onnx")
SHIPPED = default_model_path()


def _with_config(tmp_path, change):
    """A copy of the shipped model whose training_config ``change`` rewrote."""
    proto = onnx.load(str(SHIPPED))
    for p in proto.metadata_props:
        if p.key == "training_config":
            cfg = json.loads(p.value)
            change(cfg)
            p.value = json.dumps(cfg)
    path = tmp_path / "changed.onnx"
    onnx.save(proto, str(path))
    return path


def test_shipped_model_rebuilt_in_keras_computes_what_the_runtime_does(tmp_path, rng):
    import keras

    from train.__main__ import main

    assert main(["import-onnx", str(SHIPPED), "--out", str(tmp_path)]) == 0
    model = keras.models.load_model(tmp_path / "model.keras")
    # Patches cut from a page, not the random ones restore checked itself on.
    den = Denoiser(device="cpu")
    page = np.full((56, 84), 0.9, np.float32)
    page[20:26, 5:70] = 0.1
    page += rng.normal(0, 0.1, page.shape).astype(np.float32)
    x = np.clip(page, 0, 1).reshape(2, 28, 3, 28).transpose(0, 2, 1, 3).reshape(6, 28, 28)
    want = den.denoise_patches(x)
    got = model.predict(x[..., None], verbose=0)[..., 0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["arch"] == "shuffle" and recorded["page_norm"] is True


def test_restored_checkpoint_fine_tunes_and_the_export_names_it_as_init(tmp_path):
    from train.__main__ import main
    from train.export import metadata_of
    from train.fit import TrainConfig, fit
    from train.restore import restore

    ckpt = restore(SHIPPED, tmp_path / "base")
    base = json.loads((tmp_path / "base" / "config.json").read_text())
    cfg = TrainConfig(**{**base, "init": str(ckpt), "synthetic_patches": 300, "pairs": [],
                         "real_patches": 0, "epochs": 1})
    fit(cfg, tmp_path / "tuned", verbose=0)
    assert main(["export", str(tmp_path / "tuned"), "--output", str(tmp_path / "t.onnx")]) == 0
    assert json.loads(metadata_of(tmp_path / "t.onnx")["init_training_config"]) == base


def test_a_model_whose_recorded_width_is_not_its_own_is_refused(tmp_path):
    from train.restore import RestoreError, from_onnx

    path = _with_config(tmp_path, lambda c: c.update(width=16))
    with pytest.raises(RestoreError, match="Keras .* != ONNX"):
        from_onnx(path)


def test_a_graph_the_recorded_architecture_does_not_compute_is_refused(tmp_path):
    from train.restore import RestoreError, from_onnx

    # Every weight fits its layer, but the graph ends in tanh, not the sigmoid the
    # recorded architecture has: only the comparison with onnxruntime can tell.
    proto = onnx.load(str(SHIPPED))
    (node,) = [n for n in proto.graph.node if n.op_type == "Sigmoid"]
    node.op_type = "Tanh"
    onnx.save(proto, str(tmp_path / "tanh.onnx"))
    with pytest.raises(RestoreError, match="differs from"):
        from_onnx(tmp_path / "tanh.onnx")


def test_a_model_with_no_recorded_settings_is_refused(tmp_path):
    from train.restore import RestoreError, from_onnx

    proto = onnx.load(str(SHIPPED))
    kept = [p for p in proto.metadata_props if p.key != "training_config"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(RestoreError, match="no training_config"):
        from_onnx(tmp_path / "bare.onnx")


def test_import_onnx_names_the_file_and_the_reason_instead_of_a_traceback(tmp_path, capsys):
    from train.__main__ import main

    path = _with_config(tmp_path, lambda c: c.update(separable_output=True))
    assert main(["import-onnx", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "SeparableConv2D" in err
    assert not (tmp_path / "run" / "model.keras").exists()
    assert main(["import-onnx", str(tmp_path / "missing.onnx"), "--out",
                 str(tmp_path / "run")]) == 1
    assert "missing.onnx" in capsys.readouterr().err
