"""Real TensorFlow: a tiny training run and export round trip, and the export's safety check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ocr_denoise import Denoiser

tf = pytest.importorskip("tensorflow")  # the 'train' extra; installed by scripts/setup.sh


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from train.fit import TrainConfig, fit
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(synthetic_patches=1500, epochs=2, width=8, batch_size=64, seed=7)
    model, hist = fit(cfg, out, verbose=0)
    return out, model, hist


def test_fit_writes_checkpoint_config_and_history(tiny_run):
    out, _, hist = tiny_run
    assert (out / "model.keras").is_file() and (out / "last.keras").is_file()
    assert json.loads((out / "config.json").read_text())["width"] == 8
    assert len(hist["val_loss"]) == 2 and hist["noisy_val_rmse"] > 0


def test_export_round_trip_runs_in_the_runtime(tiny_run, tmp_path, rng):
    from train.export import export, metadata_of
    out, model, _ = tiny_run
    path = tmp_path / "m.onnx"
    diff = export(model, path, (out / "config.json").read_text())
    assert diff <= 1e-4
    meta = metadata_of(path)
    assert meta["patch_size"] == "28" and json.loads(meta["training_config"])["seed"] == 7
    den = Denoiser(path, device="cpu")
    page = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    assert den.denoise(page).shape == page.shape
    # Patch for patch, the runtime computes what Keras computes.
    x = rng.random((5, 28, 28), dtype=np.float32)
    want = model.predict(x[..., None], verbose=0)[..., 0]
    np.testing.assert_allclose(den.denoise_patches(x), want, atol=1e-4)


def test_export_refuses_a_graph_that_does_not_match_keras(tiny_run):
    from train.export import ExportMismatch, to_onnx, verify
    from train.model import build_model
    _, model, _ = tiny_run
    other = build_model(28, 8)  # same architecture, different (random) weights
    with pytest.raises(ExportMismatch, match="differs from Keras"):
        verify(model, to_onnx(other, {}))


def test_skip_connection_model_exports_to_plain_onnx_ops(tmp_path):
    import onnx

    from train.export import export
    from train.model import build_model
    model = build_model(28, 8, skips=True)
    assert export(model, tmp_path / "s.onnx") <= 1e-4  # export verifies against Keras
    ops = {n.op_type for n in onnx.load(str(tmp_path / "s.onnx")).graph.node}
    assert {"Conv", "Add", "Resize"} <= ops
    assert not ops & {"Tile", "Transpose"}  # upsampling is one Resize, no layout shuffles


def test_shuffle_model_has_no_full_resolution_convolution_and_exports(tmp_path, rng):
    import onnx

    from train.export import export
    from train.model import build_model
    model = build_model(28, 8, arch="shuffle", decoder_width=4)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert convs and all(c.output.shape[1] <= 14 for c in convs)
    assert export(model, tmp_path / "f.onnx") <= 1e-4  # export verifies against Keras
    assert "Conv" in {n.op_type for n in onnx.load(str(tmp_path / "f.onnx")).graph.node}
    # Depth-to-space must put outputs back where their inputs were: one changed pixel
    # near a corner changes the output there, within the receptive field (+-18 px),
    # and not at the opposite corner.
    x = np.ones((2, 28, 28), np.float32)
    x[1, 3, 2] = 0.0
    y = Denoiser(tmp_path / "f.onnx", device="cpu").denoise_patches(x)
    changed = np.argwhere(np.abs(y[1] - y[0]) > 1e-6)
    assert len(changed) and np.abs(changed - [3, 2]).max() <= 18


def test_page_norm_run_exports_a_model_that_asks_for_flattened_pages(tmp_path):
    from ocr_denoise import flatten
    from train.export import export, metadata_of
    from train.fit import TrainConfig, fit
    cfg = TrainConfig(synthetic_patches=400, epochs=1, width=8, batch_size=64, seed=3,
                      arch="shuffle", page_norm=True)
    model, _ = fit(cfg, tmp_path / "run", verbose=0)
    export(model, tmp_path / "p.onnx", (tmp_path / "run" / "config.json").read_text())
    assert metadata_of(tmp_path / "p.onnx")["preprocess"] == flatten.NAME
    assert Denoiser(tmp_path / "p.onnx", device="cpu").metadata["preprocess"] == flatten.NAME


def test_shuffle_model_with_refinement_head_exports(tmp_path):
    from train.export import export
    from train.model import build_model
    model = build_model(28, 8, arch="shuffle", refine=2)
    assert model.output_shape == (None, 28, 28, 1)
    assert export(model, tmp_path / "r.onnx") <= 1e-4  # export verifies against Keras


def test_fine_tuned_export_records_the_base_runs_settings_too(tiny_run, tmp_path):
    from train.__main__ import main
    from train.export import metadata_of
    from train.fit import TrainConfig, fit
    base, _, _ = tiny_run
    cfg = TrainConfig(synthetic_patches=300, epochs=1, width=8, batch_size=64, seed=8,
                      init=str(base / "model.keras"))
    fit(cfg, tmp_path / "tuned", verbose=0)
    assert main(["export", str(tmp_path / "tuned"), "--output", str(tmp_path / "t.onnx")]) == 0
    meta = metadata_of(tmp_path / "t.onnx")
    assert json.loads(meta["training_config"])["init"] == str(base / "model.keras")
    recorded = json.loads(meta["init_training_config"])
    assert recorded == json.loads((base / "config.json").read_text())


def test_context_run_exports_a_model_the_runtime_feeds_page_context(tmp_path, rng):
    """Train (real TensorFlow) a tiny model that reads page context, export it, and
    check the runtime computes what Keras computes for the same patches and windows,
    and denoises whole pages with it."""
    from ocr_denoise import context
    from train.export import export, metadata_of
    from train.fit import TrainConfig, fit
    cfg = TrainConfig(synthetic_patches=400, epochs=1, width=8, batch_size=64, seed=5,
                      arch="shuffle", page_norm=True, context=True, context_width=4)
    model, hist = fit(cfg, tmp_path / "run", verbose=0)
    assert [i.name for i in model.inputs] == ["noisy", "context"] and hist["noisy_val_rmse"] > 0
    config = (tmp_path / "run" / "config.json").read_text()
    assert export(model, tmp_path / "c.onnx", config) <= 1e-4
    assert metadata_of(tmp_path / "c.onnx")["context"] == context.NAME
    den = Denoiser(tmp_path / "c.onnx", device="cpu")
    x, c = rng.random((2, 5, 28, 28), dtype=np.float32)
    want = model.predict([x[..., None], c[..., None]], verbose=0)[..., 0]
    np.testing.assert_allclose(den.denoise_patches(x, c), want, atol=1e-4)
    page = rng.integers(0, 256, (70, 50), dtype=np.uint8)
    assert den.denoise(page).shape == page.shape


def test_grown_context_model_starts_as_the_model_it_grew_from(rng):
    """Whatever the context says, the grown model computes the old model's output
    until training teaches it to use the context; then it differs."""
    from train.model import build_model, grow_context
    old = build_model(28, 8, arch="shuffle", skips=True)
    x, c = rng.random((2, 16, 28, 28, 1), dtype=np.float32)
    new = grow_context(old, context_width=4)
    np.testing.assert_allclose(new.predict([x, c], verbose=0), old.predict(x, verbose=0),
                               atol=1e-6)
    latent = [l for l in new.layers
              if getattr(l, "kernel", None) is not None and l.kernel.shape[2] == 8 + 4][0]
    k, b = latent.get_weights()
    k[:, :, 8:] = 0.5  # what training would do: give the context channels weight
    latent.set_weights([k, b])
    assert np.abs(new.predict([x, c], verbose=0) - old.predict(x, verbose=0)).max() > 1e-3


@pytest.mark.parametrize("kwargs", [dict(arch="classic", skips=True),
                                    dict(arch="shuffle", refine=2),
                                    dict(arch="shuffle", separable_output=True)])
def test_only_the_plain_shuffle_model_can_grow_a_context_branch(kwargs):
    from train.model import build_model, grow_context
    with pytest.raises(ValueError, match="only the plain shuffle model"):
        grow_context(build_model(28, 8, **kwargs))


def test_fine_tuning_refuses_to_drop_a_checkpoints_context(tmp_path):
    from train.fit import TrainConfig, fit
    from train.model import build_model
    build_model(28, 8, arch="shuffle", context_width=4).save(tmp_path / "ctx.keras")
    cfg = TrainConfig(synthetic_patches=300, epochs=1, width=8, batch_size=64, seed=8,
                      arch="shuffle", init=str(tmp_path / "ctx.keras"))
    with pytest.raises(ValueError, match="reads page context, but the config says"):
        fit(cfg, tmp_path / "tuned", verbose=0)


def test_fine_tuning_a_plain_checkpoint_with_context_grows_the_branch(tmp_path):
    from train.fit import TrainConfig, fit
    from train.model import build_model
    build_model(28, 8, arch="shuffle", skips=True).save(tmp_path / "plain.keras")
    cfg = TrainConfig(synthetic_patches=300, epochs=1, width=8, batch_size=64, seed=8,
                      arch="shuffle", page_norm=True, init=str(tmp_path / "plain.keras"),
                      context=True, context_width=4)
    model, _ = fit(cfg, tmp_path / "tuned", verbose=0)
    assert [i.name for i in model.inputs] == ["noisy", "context"]


def test_context_settings_that_cannot_work_are_refused_by_flag(tmp_path):
    from train.fit import TrainConfig, fit
    from train.model import build_model
    with pytest.raises(ValueError, match="--context true needs --arch shuffle"):
        fit(TrainConfig(arch="classic", context=True), tmp_path / "a", verbose=0)
    build_model(28, 8, arch="shuffle", context_width=4).save(tmp_path / "ctx.keras")
    cfg = TrainConfig(synthetic_patches=300, epochs=1, width=8, batch_size=64, arch="shuffle",
                      init=str(tmp_path / "ctx.keras"), context=True, context_width=16)
    with pytest.raises(ValueError, match="4 wide, but the config says --context-width 16"):
        fit(cfg, tmp_path / "b", verbose=0)


def test_context_data_set_is_float16_and_holds_the_plain_runs_patches():
    """A context run stores its patches in float16 (stage 1 would not fit in memory
    otherwise): the same draws as the plain run's, within float16's step on [0, 1]."""
    from train.fit import TrainConfig, build_dataset

    kw = dict(synthetic_patches=450, real_patches=0, arch="shuffle", page_norm=True)
    X, Y = build_dataset(TrainConfig(**kw, context=True))
    X32, Y32 = build_dataset(TrainConfig(**kw))
    assert X.dtype == Y.dtype == np.float16 and X.shape == (450, 28, 28, 2)
    assert X32.dtype == np.float32 and X32.shape == (450, 28, 28, 1)
    assert np.abs(X[..., :1].astype(np.float32) - X32).max() <= 2.0 ** -11
    assert np.abs(Y.astype(np.float32) - Y32).max() <= 2.0 ** -11
    assert X[..., 1].std() > 0.01  # the windows are there, not a blank channel


def test_context_batches_cover_every_training_row_once_per_epoch_in_a_new_order():
    """_tensor_batches: validation is rows :n_val in order; each training epoch is
    rows n_val: exactly once (last batch short), reshuffled; patch and window come
    apart as float32."""
    from train.fit import _tensor_batches

    n, n_val = 23, 5
    X = np.zeros((n, 28, 28, 2), np.float16)
    X[:, 0, 0, 0] = np.arange(n)  # the row number, in the patch
    X[:, 0, 0, 1] = -np.arange(n)  # and (negated) in its window
    Y = X[..., :1] * 2
    train, val = _tensor_batches(X, Y, n_val, 4, seed=7)

    def rows(ds):
        out = []
        for (p, c), y in ds:
            assert p.dtype == c.dtype == y.dtype == "float32" and p.shape[1:] == (28, 28, 1)
            np.testing.assert_array_equal(c.numpy()[:, 0, 0, 0], -p.numpy()[:, 0, 0, 0])
            np.testing.assert_array_equal(y.numpy(), 2 * p.numpy())
            out.append(p.numpy()[:, 0, 0, 0].astype(int).tolist())
        return out

    assert sum(rows(val), []) == list(range(n_val))
    first, second = rows(train), rows(train)
    assert [len(b) for b in first] == [4, 4, 4, 4, 2]
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(n_val, n))
    assert sum(first, []) != sum(second, [])


def test_synthetic_pages_smaller_than_two_patches_are_refused():
    from train.fit import TrainConfig, build_dataset

    with pytest.raises(ValueError, match="--page-size 40 is below two patches"):
        build_dataset(TrainConfig(synthetic_patches=10, page_size=40))


def test_a_wrong_kind_weights_spec_is_refused_on_a_run_without_synthetic_pages(tmp_path):
    import cv2

    from train.fit import TrainConfig, build_dataset

    for side in ("noisy", "clean"):
        (tmp_path / side).mkdir()
        page = np.full((64, 64), 255, np.uint8)
        page[20:40, 10:50] = 0
        cv2.imwrite(str(tmp_path / side / "p.png"), page)
    real = dict(synthetic_patches=0, real_patches=8, pairs=[str(tmp_path)])
    assert len(build_dataset(TrainConfig(**real))[0]) == 8
    with pytest.raises(ValueError, match="no_such_kind"):
        build_dataset(TrainConfig(**real, kind_weights="no_such_kind=2"))


def test_a_separable_last_convolution_is_one_filter_per_channel_then_a_mix():
    from train.model import build_model
    plain = build_model(28, 8, arch="shuffle", skips=True)
    sep = build_model(28, 8, arch="shuffle", skips=True, separable_output=True)
    # 3x3x8x4 weights become 3x3x8 (depthwise) + 8x4 (pointwise); biases stay 4.
    assert plain.count_params() - sep.count_params() == 3 * 3 * 8 * 4 - (3 * 3 * 8 + 8 * 4)
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    y = sep.predict(x, verbose=0)
    assert y.shape == x.shape and ((y > 0) & (y < 1)).all()


def test_untrained_residual_model_returns_its_input_through_onnxruntime(tmp_path, rng):
    """The residual model starts as the identity: exported and run by onnxruntime, an
    untrained one gives back every patch it is given (the issue's check, to 1e-6)."""
    from train.export import export
    from train.model import CORRECTION, build_model

    model = build_model(28, 16, 32, arch="residual")
    assert not np.any(model.get_layer(CORRECTION).get_weights()[0])
    path = tmp_path / "identity.onnx"
    export(model, path)
    x = rng.random((9, 28, 28), dtype=np.float32)
    x[0] = 1.0  # white paper stays white, black ink black
    x[1] = 0.0
    got = Denoiser(path, device="cpu").denoise_patches(x)
    np.testing.assert_allclose(got, x, atol=1e-6)
    # A trained correction is added: nudging the last layer moves the output off the input.
    k, b = model.get_layer(CORRECTION).get_weights()
    model.get_layer(CORRECTION).set_weights([k, b - 0.1])
    export(model, path)
    assert np.abs(Denoiser(path, device="cpu").denoise_patches(x[2:]) - x[2:]).max() > 0.05


def test_a_residual_models_correction_scaled_by_sign_only_lightens_or_only_darkens(rng):
    """``scale_correction``: (1, 1) is the model itself; lightening only never makes
    a pixel darker than the input, darkening only never lighter, (0, 0) the input."""
    from train.model import CORRECTION, build_model, scale_correction

    model = build_model(28, 8, 16, arch="residual")
    layer = model.get_layer(CORRECTION)
    k, b = layer.get_weights()
    layer.set_weights([rng.normal(0, 0.05, k.shape).astype("float32"), b])
    x = (0.2 + 0.6 * rng.random((4, 28, 28, 1))).astype("float32")
    y = model.predict(x, verbose=0)
    assert (y > x + 1e-3).any() and (y < x - 1e-3).any()  # it does both
    np.testing.assert_allclose(scale_correction(model).predict(x, verbose=0), y, atol=1e-6)
    up = scale_correction(model, 1.0, 0.0).predict(x, verbose=0)
    down = scale_correction(model, 0.0, 1.0).predict(x, verbose=0)
    assert (up >= x - 1e-6).all() and (down <= x + 1e-6).all()
    np.testing.assert_allclose(up + down - x, y, atol=1e-5)  # the two parts are the whole
    np.testing.assert_allclose(scale_correction(model, 0.0, 0.0).predict(x, verbose=0), x,
                               atol=1e-6)


def test_residual_model_keeps_every_pixel_no_pooling():
    """No pooling and no strided step on the main path: the patch is rearranged
    losslessly (space-to-depth), so letters never pass a bottleneck."""
    from keras import layers

    from train.model import build_model

    model = build_model(28, 16, 32, arch="residual")
    assert not [lay for lay in model.layers if isinstance(lay, layers.MaxPooling2D)]
    strided = [lay for lay in model.layers
               if isinstance(lay, layers.Conv2D) and lay.strides != (1, 1)]
    assert len(strided) == 1  # the side path's, and its output is added back, not the trunk


def _fit_argv(out, epochs: int = 3) -> list[str]:
    return ["-m", "train", "fit", "--out", str(out), "--arch", "residual", "--width", "8",
            "--latent-width", "8", "--synthetic-patches", "3000", "--real-fraction", "0.5",
            "--batch-size", "64", "--epochs", str(epochs), "--seed", "5",
            "--loss", "mean_absolute_error"]


def test_a_killed_training_run_continues_where_it_stopped(tmp_path):
    """kill -9 after the first epoch's checkpoint; the same command again goes on from
    epoch 2 (it says so), and the run ends with every epoch's history once."""
    import os
    import signal
    import subprocess
    import sys

    from helpers import wait_for

    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [sys.executable, *_fit_argv(out, epochs=3)]
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (out / "progress.json").exists()
                 and json.loads((out / "progress.json").read_text())["epochs"] >= 1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = json.loads((out / "progress.json").read_text())["epochs"]
    if done == 3:
        pytest.skip("the run finished before it could be killed")
    again = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming {out} after epoch {done} of 3" in again.stdout
    progress = json.loads((out / "progress.json").read_text())
    assert progress["epochs"] == 3 and len(progress["history"]["val_loss"]) == 3
    assert len(json.loads((out / "history.json").read_text())["val_loss"]) == 3


def test_a_run_folder_refuses_to_resume_with_another_config(tmp_path):
    from train.fit import TrainConfig, fit

    cfg = TrainConfig(arch="residual", width=8, latent_width=8, synthetic_patches=600,
                      epochs=1, batch_size=64)
    fit(cfg, tmp_path, verbose=0)
    with pytest.raises(ValueError, match="another config"):
        fit(TrainConfig(**{**cfg.__dict__, "learning_rate": 0.01}), tmp_path, verbose=0)


def test_a_run_started_before_a_setting_existed_resumes_with_that_setting_at_its_default(
        tmp_path):
    # A run's progress.json records its config; a field added to TrainConfig since
    # (teacher_route_only, say) is missing there and counts as its default.
    from train.fit import TrainConfig, fit

    cfg = TrainConfig(arch="residual", width=8, latent_width=8, synthetic_patches=600,
                      epochs=1, batch_size=64)
    fit(cfg, tmp_path, verbose=0)
    path = tmp_path / "progress.json"
    progress = json.loads(path.read_text())
    del progress["config"]["teacher_route_only"]
    path.write_text(json.dumps(progress))
    _, hist = fit(cfg, tmp_path, verbose=0)  # resumes: nothing left to do
    assert len(hist["val_loss"]) == 1
    # Missing and not at its default in the new config: another config.
    with pytest.raises(ValueError, match="another config"):
        fit(TrainConfig(**{**cfg.__dict__, "teacher_route_only": True}), tmp_path, verbose=0)
