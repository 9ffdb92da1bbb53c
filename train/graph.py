"""Rewrites of an exported ONNX graph that compute the same function faster in onnxruntime.

Why. On x86 onnxruntime runs convolutions in a blocked channel layout (NCHWc):
blocks of 8 output channels with AVX2, 16 with AVX-512. The shuffle model's last
convolution has 4 outputs (the 2 x 2 sub-pixels of each P/2 position), so it costs
what 8 or 16 would: a third (AVX2) to a half (AVX-512) of v8's time for a fifth of
its arithmetic (``benchmarks/speed.py --profile``). :func:`split_output_conv` computes that
k x k convolution from C to O channels as

* a 1 x 1 convolution from C to O * k * k channels, channel ``o * k * k + t`` being
  output ``o``'s share from tap ``t`` (the same multiply-adds, in full blocks),
* a depthwise k x k convolution whose one-hot kernels move each channel by its tap,
* a sum over the taps (Reshape + ReduceSum), plus the bias,

which gives the same output up to float rounding (about 1e-6), faster: the figures,
with the commands that print them, are in docs/benchmarks.md ("Speed"). The exporter
applies it to every model whose last convolution is a plain k x k one with k > 1
(:func:`can_split` says which); ``train/restore.py`` folds it back
(:func:`fold_split_output`) before reading the weights into Keras. The metadata key
``graph_rewrites`` lists what was applied, so a reader of the file can tell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto

#: Value recorded in the ``graph_rewrites`` metadata key once the split is applied.
SPLIT_OUTPUT = "split-output-v1"
REWRITES_KEY = "graph_rewrites"
#: Largest |before - after| ``train.export.split_file`` measured, when it split a file.
DIFF_KEY = "graph_rewrites_max_abs_diff"
_PREFIX = "split_output/"
#: ReduceSum takes its axes as an input from this opset on.
MIN_OPSET = 13


def _last_conv(graph) -> tuple[int | None, NodeProto | None]:
    convs = [(i, n) for i, n in enumerate(graph.node) if n.op_type == "Conv"]
    return convs[-1] if convs else (None, None)


def _attr(node: NodeProto, name: str, default: object) -> object:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def rewrites(proto: ModelProto) -> list[str]:
    """The rewrites recorded in ``proto``'s metadata, in the order applied."""
    for p in proto.metadata_props:
        if p.key == REWRITES_KEY:
            return [v for v in p.value.split(",") if v]
    return []


def _record(proto: ModelProto, names: list[str]) -> None:
    """Set ``graph_rewrites`` to ``names``; a measured difference recorded for an
    earlier state of the graph no longer applies, so it goes too."""
    kept = [p for p in proto.metadata_props if p.key not in (REWRITES_KEY, DIFF_KEY)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    if names:
        proto.metadata_props.add(key=REWRITES_KEY, value=",".join(names))


def can_split(proto: ModelProto) -> bool:
    """Whether ``proto``'s last convolution is one :func:`split_output_conv` rewrites:
    k x k with k > 1, stride 1, no dilation or groups, 'same' padding, float32 weight
    and bias that no other node reads, a fixed page size, opset >= 13, and not already
    split."""
    return _split_size(proto) is not None


def _split_size(proto: ModelProto) -> tuple[int, int] | None:
    """(H, W) of the last convolution's input if :func:`can_split` holds, else None."""
    from onnx import TensorProto

    if SPLIT_OUTPUT in rewrites(proto):
        return None
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                default=0)
    _, last = _last_conv(proto.graph)
    if last is None or len(last.input) != 3 or opset < MIN_OPSET:
        return None
    init = {t.name: t for t in proto.graph.initializer}
    if last.input[1] not in init or last.input[2] not in init:
        return None
    if any(init[n].data_type != TensorProto.FLOAT for n in last.input[1:]):
        return None
    readers = [x for x in proto.graph.node for i in x.input if i in last.input[1:]]
    if len(readers) != 2:  # the weight and the bias, each read by this node alone
        return None
    o, _, kh, kw = init[last.input[1]].dims
    same = [kh // 2, kw // 2, kh // 2, kw // 2]
    if not (kh > 1 and kw > 1 and kh % 2 == 1 and kw % 2 == 1
            and _attr(last, "group", 1) == 1
            and list(_attr(last, "strides", [1, 1])) == [1, 1]
            and list(_attr(last, "dilations", [1, 1])) == [1, 1]
            and list(_attr(last, "pads", [0, 0, 0, 0])) == same
            and _attr(last, "auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")):
        return None
    try:
        return _spatial(proto, last.input[0])  # the sum's reshape needs a fixed H x W
    except ValueError:
        return None


def _spatial(proto: ModelProto, tensor: str) -> tuple[int, int]:
    """(H, W) of an NCHW tensor of ``proto``, from ONNX shape inference (the graph's
    patch size is fixed, only the batch is dynamic)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto)
    for vi in [*inferred.graph.value_info, *inferred.graph.input]:
        if vi.name == tensor:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[2:]):
                return int(dims[2].dim_value), int(dims[3].dim_value)
    raise ValueError(f"the spatial size of {tensor!r} is not fixed in the graph")


def split_output_conv(proto: ModelProto) -> ModelProto:
    """A copy of ``proto`` with its last convolution split (module docstring); the
    output tensor keeps its name, so the rest of the graph is untouched. A model
    :func:`can_split` refuses comes back as an unchanged copy."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    size = _split_size(m)
    if size is None:
        return m
    hh, ww = size
    g = m.graph
    init = {t.name: t for t in g.initializer}
    i, last = _last_conv(g)
    w = numpy_helper.to_array(init[last.input[1]]).astype(np.float32)
    b = numpy_helper.to_array(init[last.input[2]]).astype(np.float32)
    o, c, kh, kw = w.shape
    taps = kh * kw
    w1 = w.transpose(0, 2, 3, 1).reshape(o * taps, c, 1, 1)  # channel o * taps + t
    shift = np.zeros((o * taps, 1, kh, kw), np.float32)
    for t in range(taps):
        shift[np.arange(o) * taps + t, 0, t // kw, t % kw] = 1.0
    n = {k: _PREFIX + k for k in ("w1", "shift", "shape", "axes", "bias", "y", "shifted",
                                  "by_tap", "summed")}
    consts = {"w1": w1, "shift": shift, "shape": np.array([0, o, taps, hh, ww], np.int64),
              "axes": np.array([2], np.int64), "bias": b.reshape(1, o, 1, 1)}
    g.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v), n[k])
                         for k, v in consts.items())
    pads = [kh // 2, kw // 2, kh // 2, kw // 2]
    nodes = [
        helper.make_node("Conv", [last.input[0], n["w1"]], [n["y"]], name=n["w1"],
                         kernel_shape=[1, 1]),
        helper.make_node("Conv", [n["y"], n["shift"]], [n["shifted"]], name=n["shift"],
                         kernel_shape=[kh, kw], pads=pads, group=o * taps),
        # (N, O * taps, H, W) -> (N, O, taps, H, W), summed over the taps, plus the bias
        helper.make_node("Reshape", [n["shifted"], n["shape"]], [n["by_tap"]],
                         name=n["by_tap"]),
        helper.make_node("ReduceSum", [n["by_tap"], n["axes"]], [n["summed"]], keepdims=0,
                         name=n["summed"]),
        helper.make_node("Add", [n["summed"], n["bias"]], [last.output[0]], name=n["bias"]),
    ]
    g.node.remove(last)
    for k, node in enumerate(nodes):
        g.node.insert(i + k, node)
    g.initializer.remove(init[last.input[1]])  # read by no other node (can_split)
    g.initializer.remove(init[last.input[2]])
    _record(m, [*rewrites(m), SPLIT_OUTPUT])
    onnx.checker.check_model(m)
    return m


def fold_split_output(proto: ModelProto) -> ModelProto:
    """The inverse of :func:`split_output_conv`: a copy of ``proto`` whose split last
    convolution is one k x k ``Conv`` again (weights exactly as before the split), for
    readers that map convolutions to Keras layers. Other models: an unchanged copy.
    Raises ``ValueError`` if the file says it was split but its graph does not hold the
    split as :func:`split_output_conv` writes it (e.g. after another optimiser)."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    if SPLIT_OUTPUT not in rewrites(m):
        return m
    g = m.graph
    init = {t.name: t for t in g.initializer}
    ours = [k for k, n in enumerate(g.node) if n.name.startswith(_PREFIX)]
    ops = [g.node[k].op_type for k in ours]
    needed = {_PREFIX + k for k in ("w1", "shift", "bias")}
    if (ops != ["Conv", "Conv", "Reshape", "ReduceSum", "Add"]
            or ours != list(range(ours[0], ours[0] + 5)) or not needed <= set(init)):
        raise ValueError(f"the graph records {SPLIT_OUTPUT} but holds {ops} at "
                         f"nodes {ours}, not the split this module writes")
    first, final = g.node[ours[0]], g.node[ours[-1]]
    w1 = numpy_helper.to_array(init[_PREFIX + "w1"])
    kh, kw = numpy_helper.to_array(init[_PREFIX + "shift"]).shape[2:]
    b = numpy_helper.to_array(init[_PREFIX + "bias"]).reshape(-1)
    o = b.shape[0]
    c = w1.shape[1]
    w = w1.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
    wname, bname = _PREFIX + "folded_weight", _PREFIX + "folded_bias"
    conv = helper.make_node("Conv", [first.input[0], wname, bname], [final.output[0]],
                            kernel_shape=[kh, kw], pads=[kh // 2, kw // 2, kh // 2, kw // 2],
                            dilations=[1, 1], strides=[1, 1], group=1)
    for k in reversed(ours):
        del g.node[k]
    g.node.insert(ours[0], conv)
    keep = [t for t in g.initializer if not t.name.startswith(_PREFIX)]
    del g.initializer[:]
    g.initializer.extend(keep)
    g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(w), wname),
                          numpy_helper.from_array(np.ascontiguousarray(b), bname)])
    _record(m, [r for r in rewrites(m) if r != SPLIT_OUTPUT])
    onnx.checker.check_model(m)
    return m
