"""Rebuild a trainable Keras model from an exported ONNX model.

Why: a shipped model's Keras checkpoint lives in a run folder (``runs/``), which is
not in the repository and does not outlive the machine it was trained on; the
ONNX file ships. To fine-tune the shipped model (a new recipe stage on top of it)
without re-running the hours of training that made it, its weights are read back
from the ONNX graph into the architecture its ``training_config`` metadata names.
The rebuilt model is then checked against onnxruntime on the original graph with
``export.verify`` (export's own check and bound), so a wrong mapping fails loudly
instead of training from scrambled weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .export import ExportMismatch, verify
from .fit import TrainConfig, model_from_config


class RestoreError(RuntimeError):
    """The ONNX model cannot be rebuilt as a Keras model of its recorded architecture."""


def training_config(proto) -> TrainConfig:
    """The ``TrainConfig`` recorded in an exported model's ``training_config`` metadata
    (unknown keys, from a later version of ``train``, are an error, not dropped)."""
    meta = {p.key: p.value for p in proto.metadata_props}
    if "training_config" not in meta:
        raise RestoreError("the model records no training_config: its architecture is unknown")
    raw = json.loads(meta["training_config"])
    known = TrainConfig.__dataclass_fields__
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise RestoreError(f"training_config has settings this train does not know: {unknown}")
    return TrainConfig(**raw)


def conv_weights(proto) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel HWIO, bias) of each ONNX ``Conv`` in graph order (ONNX keeps nodes
    topologically sorted, as Keras keeps its layers)."""
    from onnx import numpy_helper

    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    out = []
    for node in proto.graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) != 3 or node.input[1] not in init or node.input[2] not in init:
            raise RestoreError(f"Conv {node.name!r} has no constant weight and bias")
        w, b = init[node.input[1]], init[node.input[2]]
        out.append((np.ascontiguousarray(w.transpose(2, 3, 1, 0)), b.reshape(-1)))
    return out


def from_onnx(path: str | os.PathLike[str]):
    """(Keras model, TrainConfig) with the weights of the ONNX model at ``path``.

    Only models whose every trainable layer is a ``Conv2D`` (the shipped
    architectures without page context) are supported; anything else raises
    ``RestoreError``, as does a rebuilt model that differs from onnxruntime on the
    file by more than ``export.MAX_ABS_DIFF`` on random patches (``export.verify``)."""
    import keras
    import onnx

    from .graph import fold_split_output

    proto = onnx.load(str(path))
    cfg = training_config(proto)
    if cfg.context:
        raise RestoreError("models that read page context are not supported")
    model = model_from_config(cfg)
    layers = [la for la in model.layers if la.weights]
    other = sorted({type(la).__name__ for la in layers
                    if not isinstance(la, keras.layers.Conv2D)})
    if other:
        raise RestoreError(f"only models made of Conv2D layers are supported; this "
                           f"architecture has {', '.join(other)}")
    try:
        folded = fold_split_output(proto)  # the convolutions Keras has
    except ValueError as e:
        raise RestoreError(str(e)) from e
    convs = conv_weights(folded)
    if len(convs) != len(layers):
        raise RestoreError(f"{len(convs)} ONNX convolutions for {len(layers)} Keras layers")
    for layer, (kernel, bias) in zip(layers, convs):
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [kernel.shape, bias.shape]:
            raise RestoreError(f"layer {layer.name}: Keras {shapes} != ONNX "
                               f"{[kernel.shape, bias.shape]}")
        layer.set_weights([kernel, bias])
    try:
        verify(model, proto)
    except ExportMismatch as e:
        raise RestoreError(f"rebuilt model differs from {path}: {e}") from e
    return model, cfg


def restore(path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/model.keras`` and ``out_dir/config.json`` (the recorded settings)
    for the ONNX model at ``path``, so ``fit --init out_dir/model.keras`` fine-tunes
    it and ``export`` records its settings as the init's. Returns the checkpoint."""
    model, cfg = from_onnx(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "model.keras"
    model.save(ckpt)
    (out / "config.json").write_text(cfg.to_json())
    return ckpt
