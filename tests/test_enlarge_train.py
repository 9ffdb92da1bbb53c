"""The learned 2x enlargement's Keras side (train/enlarge.py): the untrained model is
the cubic enlargement through onnxruntime, the export, the training pairs, resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ocr_denoise import Denoiser
from ocr_denoise import rescale as page_rescale

tf = pytest.importorskip("tensorflow")  # the 'train' extra


@pytest.fixture(scope="module")
def zero_export(tmp_path_factory):
    from train.enlarge import build_enlarger
    from train.export import export

    model = build_enlarger()
    path = tmp_path_factory.mktemp("m") / "enlarger.onnx"
    export(model, path, json.dumps({"seed": 1}), model_version="e0")
    return model, path


def test_the_untrained_model_is_its_base_through_onnxruntime(zero_export, rng):
    _, path = zero_export
    d = Denoiser(path, device="cpu")
    x = rng.random((9, 28, 28), dtype=np.float32)
    base = rng.random((9, 56, 56), dtype=np.float32)
    np.testing.assert_allclose(d.denoise_patches(x, base), base, atol=1e-5, rtol=0)


def test_the_export_records_the_scale_and_the_base_input(zero_export):
    import onnx

    from train.export import metadata_of

    _, path = zero_export
    meta = metadata_of(path)
    assert (meta["scale"], meta["base"], meta["patch_size"]) == ("2", page_rescale.CUBIC, "28")
    assert "context" not in meta and meta["model_version"] == "e0"
    graph = onnx.load(str(path)).graph
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim][1:] for i in graph.input}
    assert dims == {"noisy": [1, 28, 28], "base": [1, 56, 56]}


def test_a_trained_correction_reaches_onnxruntime_as_keras_computes_it(rng, tmp_path):
    from train.enlarge import CORRECTION, build_enlarger
    from train.export import export

    model = build_enlarger()
    layer = model.get_layer(CORRECTION)
    layer.set_weights([w + rng.normal(0, 0.05, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    path = tmp_path / "e.onnx"
    export(model, path, "{}")
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    b = rng.random((4, 56, 56, 1), dtype=np.float32)
    want = model.predict([x, b], verbose=0)[..., 0]
    got = Denoiser(path, device="cpu").denoise_patches(x[..., 0], b[..., 0])
    assert np.abs(want - b[..., 0]).max() > 0.01  # the correction is not zero
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_training_pairs_base_is_the_runtimes_cubic_of_the_8_bit_input():
    from train.enlarge import page_pair, sample_patches

    rng = np.random.default_rng(3)
    for _ in range(4):
        x, b, y = page_pair(rng, 64)
        assert x.shape == (64, 64) and b.shape == y.shape == (128, 128)
        x8 = np.rint(x * 255).astype(np.uint8)
        np.testing.assert_array_equal(x8.astype(np.float32) / 255, x)  # 8-bit input
        np.testing.assert_array_equal(np.rint(b * 255).astype(np.uint8),
                                      page_rescale.enlarged(x8, 2))
        assert y.min() < 0.5 < y.max()  # text on paper
    X, B, Y = sample_patches(50, np.random.default_rng(4), 28, 64, per_page=10)
    assert X.shape == (50, 28, 28) and B.shape == Y.shape == (50, 56, 56)
    # B is the cubic of X where the window lies inside it (away from X's borders)
    x8 = np.rint(X[0] * 255).astype(np.uint8)
    inner = page_rescale.enlarged(x8, 2)[4:-4, 4:-4]
    np.testing.assert_array_equal(np.rint(B[0, 4:-4, 4:-4] * 255).astype(np.uint8), inner)


def test_an_enlarge_run_resumes_from_its_progress_and_refuses_another_config(tmp_path):
    from train.enlarge import EnlargeConfig, fit_enlarger

    cfg = EnlargeConfig(patches=300, page_size=64, per_page=30, epochs=1, batch_size=32)
    fit_enlarger(cfg, tmp_path, verbose=0)
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["epochs"] == 1
    with pytest.raises(ValueError, match="another config"):
        fit_enlarger(EnlargeConfig(patches=300, page_size=64, per_page=30, epochs=1,
                                   batch_size=16), tmp_path, verbose=0)
    cfg2 = EnlargeConfig(patches=300, page_size=64, per_page=30, epochs=1, batch_size=32)
    _, hist = fit_enlarger(cfg2, tmp_path, verbose=0)  # nothing left to do
    assert len(hist["val_loss"]) == 1 and hist["cubic_val_rmse"] > 0


def test_an_enlarge_run_keeps_each_epochs_model_and_exports_the_one_chosen(tmp_path, rng):
    # Issue 32: checkpoints are chosen by tesseract on real selection pages, so every
    # epoch's model is kept and any of them can be exported.
    import keras

    from train.__main__ import main
    from train.enlarge import EnlargeConfig, fit_enlarger

    run = tmp_path / "run"
    cfg = EnlargeConfig(patches=300, page_size=64, per_page=30, epochs=2, batch_size=32,
                        learning_rate=0.01)
    fit_enlarger(cfg, run, verbose=0)
    first, second = (keras.models.load_model(run / f"epoch0{e}.keras") for e in (1, 2))
    last = keras.models.load_model(run / "last.keras")
    for a, b in zip(second.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b)
               for a, b in zip(first.get_weights(), second.get_weights()))

    out = tmp_path / "e1.onnx"
    assert main(["export-enlarge", str(run), "--output", str(out),
                 "--checkpoint", "epoch01.keras"]) == 0
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    b = rng.random((4, 56, 56, 1), dtype=np.float32)
    got = Denoiser(out, device="cpu").denoise_patches(x[..., 0], b[..., 0])
    np.testing.assert_allclose(got, first.predict([x, b], verbose=0)[..., 0], atol=1e-4)
    assert np.abs(got - second.predict([x, b], verbose=0)[..., 0]).max() > 1e-3
