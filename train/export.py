"""Convert a trained Keras model to ONNX with tf2onnx, verify it, write it atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "ocr_denoise" / "models" / "denoiser.onnx"
MAX_ABS_DIFF = 1e-4


class ExportMismatch(RuntimeError):
    """The ONNX graph does not reproduce the Keras model within tolerance."""


def to_onnx(model, metadata: dict[str, str], opset: int = 17, split_output: bool = True):
    """Convert to an ONNX ModelProto: NCHW (N, 1, P, P) in and out, dynamic batch.

    ``split_output``: compute a k x k last convolution as a 1 x 1 one, a depthwise
    shift and a sum (``train.graph.split_output_conv``: the same function, faster in
    onnxruntime), recorded in the metadata key ``graph_rewrites``.

    Why not convert the model as it is: tf2onnx renders Keras' UpSampling2D as a
    chain of Tile/Transpose/Reshape on 32-channel tensors, which costs as much as
    a convolution. Instead a weight-sharing twin of the model with each
    UpSampling2D swapped for a nearest-neighbour ``Resizing`` to the same size is
    converted (one ONNX ``Resize``), and the graph takes NCHW; with one
    channel, NCHW and NHWC are the same bytes, so the runtime reshapes for free.
    ``verify`` then proves the graph equals the Keras model. A model that reads
    page context (two Keras inputs) becomes a graph with inputs ``noisy`` and
    ``context``, both (N, 1, P, P); an enlargement model (``train.enlarge``: a second
    input k times the patch) one with inputs ``noisy`` (N, 1, P, P) and ``base``
    (N, 1, kP, kP) and output (N, 1, kP, kP). Every other model converts exactly as
    before this case existed (the same graph, weights and metadata; tf2onnx's node
    names carry a per-process counter, so no two conversions are byte-equal anyway).
    """
    import keras
    import tensorflow as tf
    import tf2onnx

    names = _input_names(model)
    spec = tuple(tf.TensorSpec((None, *_side(t), 1), tf.float32, name=n)
                 for n, t in zip(names, model.inputs))

    def swap_upsampling(layer):
        if isinstance(layer, keras.layers.UpSampling2D):
            h, w = layer.output.shape[1:3]
            return keras.layers.Resizing(int(h), int(w), interpolation="nearest",
                                         name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=swap_upsampling)
    twin.set_weights(model.get_weights())

    @tf.function(input_signature=spec)
    def serve(*x):
        return {"clean": twin(list(x) if len(x) > 1 else x[0], training=False)}

    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=spec, opset=opset,
        inputs_as_nchw=list(names), outputs_as_nchw=["clean"])
    for node in proto.graph.node:
        if node.op_type == "Resize":
            # tf2onnx writes TF's deprecated 'tf_half_pixel_for_nn' (onnxruntime warns on
            # every load). For integer upscaling, floor((i + 0.5) / k) == floor(i / k):
            # 'asymmetric' + 'floor' is the same map, in the current vocabulary.
            for a in node.attribute:
                if a.name == "coordinate_transformation_mode":
                    a.s = b"asymmetric"
                if a.name == "nearest_mode":
                    a.s = b"floor"
    for k, v in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, str(v)
    if split_output:
        from .graph import split_output_conv
        proto = split_output_conv(proto)
    return proto


def _side(t) -> tuple[int, int]:
    """(height, width) of a Keras input."""
    return int(t.shape[1]), int(t.shape[2])


def is_enlarger(model) -> bool:
    """Whether ``model`` is an enlargement model (``train.enlarge``): a second input
    larger than its patch (``base``), and an output that size."""
    return len(model.inputs) == 2 and _side(model.inputs[1]) != _side(model.inputs[0])


def _input_names(model) -> tuple[str, ...]:
    """ONNX input names: ``noisy``, and ``context`` for a model that reads it, or
    ``base`` for an enlargement model."""
    from ocr_denoise.model import BASE_INPUT, CONTEXT_INPUT

    if is_enlarger(model):
        return ("noisy", BASE_INPUT)
    return ("noisy", CONTEXT_INPUT)[: len(model.inputs)]


def verify(model, proto, n: int = 64, seed: int = 0) -> float:
    """Max |keras - onnxruntime| on random patches; raises ExportMismatch above 1e-4."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    xs = [rng.random((n, *_side(t), 1), dtype=np.float32) for t in model.inputs]
    named = dict(zip(_input_names(model), xs))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {i.name: named[i.name].reshape([n, *i.shape[1:]]) for i in sess.get_inputs()}
    got = sess.run(None, feed)[0].reshape(xs[-1].shape if is_enlarger(model) else xs[0].shape)
    want = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    diff = float(np.abs(got - want).max())
    if not diff <= MAX_ABS_DIFF:
        raise ExportMismatch(f"ONNX differs from Keras by {diff:.3g} > {MAX_ABS_DIFF}")
    return diff


def export(model, output: str | os.PathLike[str] = DEFAULT_OUTPUT,
           config_json: str = "{}", extra: dict[str, str] | None = None,
           model_version: str | None = None) -> float:
    """Convert, verify, and atomically write ``output``. Returns the max abs difference.

    ``model_version`` (e.g. ``"v9"``) is recorded as the metadata key of that
    name: the model's own version, independent of the package's, so a package
    release never needs a re-export (``Denoiser.model_version`` reads it).
    """
    from ocr_denoise import context, flatten, rescale
    from ocr_denoise._version import __version__

    meta = {
        "ocr_denoise_version": __version__,
        "patch_size": str(int(model.inputs[0].shape[1])),
        "layout": "NCHW",
        "value_range": "[0,1] white=1",
        "training_config": config_json,
        # A model trained on flattened pages must be fed flattened pages: the
        # runtime reads this key and applies ocr_denoise.flatten before tiling.
        "preprocess": flatten.NAME if json.loads(config_json).get("page_norm") else "none",
        # A model with a second input reads the page around each patch (the key is
        # written only then, so models without it keep their metadata as it was).
        **({"context": context.NAME} if len(model.inputs) > 1 and not is_enlarger(model)
           else {}),
        # An enlargement model: its output is `scale` times its patch, and it adds
        # its correction to the cubic enlargement it reads in its input `base`.
        **({"scale": str(_side(model.inputs[1])[0] // _side(model.inputs[0])[0]),
            "base": rescale.CUBIC} if is_enlarger(model) else {}),
        **({"model_version": model_version} if model_version else {}),
        **(extra or {}),
    }
    proto = to_onnx(model, meta)
    diff = verify(model, proto)
    proto.metadata_props.add(key="export_max_abs_diff", value=f"{diff:.3g}")
    _write(proto, output)
    return diff


def _write(proto, output: str | os.PathLike[str]) -> Path:
    """Write the model atomically (0644: package data everyone reads), seal it (the
    checksum of its own bytes in its metadata, replacing a stale one, so a copy
    without its .sha256 is still verified), then write its checksum, without
    which the runtime would refuse the new bytes."""
    from ocr_denoise.atomic import atomic_write
    from ocr_denoise.model import seal_model, write_checksum

    out = Path(output).resolve()  # write through a link such as exported/denoiser.onnx
    atomic_write(out, proto.SerializeToString(), mode=0o644)
    seal_model(out)
    write_checksum(out)
    return out


def set_model_version(path: str | os.PathLike[str], version: str) -> None:
    """Record ``model_version`` in an exported model's metadata (replacing any
    earlier value) and rewrite its checksum. The graph and weights are
    untouched: only the metadata changes, so the model's outputs do not."""
    import onnx

    if not version.strip():
        raise ValueError("model_version must not be empty")
    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != "model_version"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key="model_version", value=version.strip())
    _write(proto, path)


def split_file(path: str | os.PathLike[str], n: int = 64, seed: int = 0) -> float | None:
    """Apply ``train.graph.split_output_conv`` to an exported model file in place (the
    weights and metadata kept, ``graph_rewrites`` added, the checksum rewritten), after
    checking with onnxruntime that the split graph computes what the file did, within
    ``MAX_ABS_DIFF`` on random patches. Returns that difference; None, and no write,
    for a model that is already split or has no k x k last convolution."""
    import onnx
    import onnxruntime as ort

    from .graph import DIFF_KEY, rewrites, split_output_conv

    proto = onnx.load(str(path))
    split = split_output_conv(proto)
    if rewrites(split) == rewrites(proto):  # nothing it could split
        return None
    sessions = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
                for m in (proto, split)]
    rng = np.random.default_rng(seed)
    feed = {i.name: rng.random((n, *i.shape[1:]), dtype=np.float32)
            for i in sessions[0].get_inputs()}
    before, after = (s.run(None, feed)[0] for s in sessions)
    diff = float(np.abs(before - after).max())
    if not diff <= MAX_ABS_DIFF:
        raise ExportMismatch(f"{path}: the split graph differs by {diff:.3g} > {MAX_ABS_DIFF}")
    split.metadata_props.add(key=DIFF_KEY, value=f"{diff:.3g}")
    onnx.checker.check_model(split)
    _write(split, path)
    return diff


def load_config(run_dir: str | os.PathLike[str]) -> str:
    p = Path(run_dir) / "config.json"
    return p.read_text() if p.exists() else "{}"


def init_configs(config_json: str) -> dict[str, str]:
    """Metadata for a fine-tuned run: ``init_training_config``, the settings of the
    run its ``init`` checkpoint came from (read from that run's config.json), so the
    shipped model records both stages. Empty when there is no init or no record."""
    init = json.loads(config_json).get("init")
    if not init:
        return {}
    base = Path(init).parent / "config.json"
    return {"init_training_config": base.read_text()} if base.is_file() else {}


def metadata_of(path: str | os.PathLike[str]) -> dict[str, str]:
    import onnx
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(metadata_of(DEFAULT_OUTPUT), indent=1))
