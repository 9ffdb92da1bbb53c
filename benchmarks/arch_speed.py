"""How fast would an architecture run in onnxruntime, before anyone trains it?

    .venv/bin/python benchmarks/arch_speed.py                     # the variants below
    .venv/bin/python benchmarks/arch_speed.py --variants v8,ok1 --repeat 7

"shipped" is the shipped ONNX file (its graph as exported then, trained weights), so
a fresh export of the same architecture ("v8") can be checked against it.

Builds each variant of ``train.model.build_model`` with random weights, exports it
the way ``train.export`` exports a trained model (tf2onnx), and times one batch of
28 x 28 patches in onnxruntime on the CPU, interleaved (each round times every
variant once, one session at a time; the best round counts), in a child process
that never imports TensorFlow, so the ratios are comparable within a run. Weights
do not change the time of these graphs; training decides only whether a variant is
good enough.

Why: on AVX-512 onnxruntime runs convolutions in a blocked layout of 16 channels
(NCHWc); the shipped model's last convolution has 4 output channels (the 2 x 2
sub-pixels of each P/2 position), padded to 16, and ``speed.py --profile`` puts it
at about half of onnxruntime's time for a fifth of the model's arithmetic. A
1 x 1 last convolution (``output_kernel=1``) does a ninth of that work.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_BASE = {"arch": "shuffle", "width": 32, "skips": True}
#: name -> build_model arguments. "v8" is the shipped model's architecture.
VARIANTS: dict[str, dict | str | None] = {
    "shipped": None,  # the shipped ONNX file itself, as exported when it was trained
    "shipped-unsplit": "unsplit",  # the same weights, last convolution not split (train.graph)
    "shipped-d2s": "d2s",  # the split file, its sub-pixel shuffle as one DepthToSpace
    "shipped-deconv": "deconv",  # last convolution + shuffle as one ConvTranspose
    "v8": dict(_BASE),
    "ok1": {**_BASE, "output_kernel": 1},
    "ok1+dec16": {**_BASE, "output_kernel": 1, "decoder_width": 16},
    "sep": {**_BASE, "separable_output": True},
    "sep-dec32": {**_BASE, "separable_output": True, "decoder_width": 32},
    "ok1-lat64": {**_BASE, "output_kernel": 1, "latent_width": 64},
    "ok1-w24": {**_BASE, "output_kernel": 1, "width": 24},
    "v8-w24": {**_BASE, "width": 24},
}


#: The ops tf2onnx writes for the shuffle model's tail (sub-pixel shuffle, sigmoid).
_TAIL_OPS = {"Transpose", "Shape", "Gather", "Cast", "Slice", "Concat", "Reshape", "Sigmoid"}


def _replace_tail(proto, start: int, nodes: list, inits: list):  # type: ignore[no-untyped-def]
    """``proto`` with its nodes from ``start`` on replaced by ``nodes`` (which must
    write the graph's output) and ``inits`` added; unused initialisers dropped."""
    import onnx

    g = proto.graph
    rest = {n.op_type for n in g.node[start:]}
    if not rest <= _TAIL_OPS | {"Conv"}:
        raise ValueError(f"the graph's tail holds {sorted(rest - _TAIL_OPS)}, not the "
                         "shuffle model's sub-pixel shuffle")
    kept = list(g.node[:start]) + nodes
    del g.node[:]
    g.node.extend(kept)
    g.initializer.extend(inits)
    used = {i for n in g.node for i in n.input}
    live = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    onnx.checker.check_model(proto)
    return proto


def depth_to_space_tail(proto):  # type: ignore[no-untyped-def]
    """The split shipped graph with everything after its head (Transpose, Reshape,
    Transpose, Reshape, Sigmoid) as Sigmoid + ``DepthToSpace`` (DCR): the same
    function, since channel 2a + b of the head is sub-pixel (a, b)."""
    from onnx import helper

    g = proto.graph
    k = max(i for i, n in enumerate(g.node) if n.name.startswith("split_output/")) + 1
    head = g.node[k - 1].output[0]
    out = g.output[0].name
    return _replace_tail(proto, k, [
        helper.make_node("Sigmoid", [head], ["d2s/sigmoid"]),
        helper.make_node("DepthToSpace", ["d2s/sigmoid"], [out], blocksize=2, mode="DCR")], [])


def conv_transpose_head(proto):  # type: ignore[no-untyped-def]
    """The unsplit shipped graph with its last convolution (C -> 4, 3 x 3, at P/2)
    and the shuffle as one ``ConvTranspose`` (C -> 1, kernel 6, stride 2, pads 2)
    plus a P x P map of the four sub-pixel biases, then Sigmoid: the same function
    (kernel tap m = a + 4 - 2 ky for sub-pixel row a and kernel row ky)."""
    from onnx import helper, numpy_helper

    g = proto.graph
    k = max(i for i, n in enumerate(g.node) if n.op_type == "Conv")
    conv = g.node[k]
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    w, b = init[conv.input[1]], init[conv.input[2]]
    if w.shape[0] != 4 or w.shape[2:] != (3, 3):
        raise ValueError(f"last convolution has kernel {w.shape}, not (4, C, 3, 3)")
    p = g.input[0].type.tensor_type.shape.dim[-1].dim_value
    wt = np.zeros((w.shape[1], 1, 6, 6), np.float32)
    bias = np.zeros((1, 1, p, p), np.float32)
    for a in range(2):
        for c in range(2):
            bias[0, 0, a::2, c::2] = b[2 * a + c]
            for ky in range(3):
                for kx in range(3):
                    wt[:, 0, a + 4 - 2 * ky, c + 4 - 2 * kx] = w[2 * a + c, :, ky, kx]
    out = g.output[0].name
    return _replace_tail(proto, k, [
        helper.make_node("ConvTranspose", [conv.input[0], "deconv/w"], ["deconv/y"],
                         kernel_shape=[6, 6], strides=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("Add", ["deconv/y", "deconv/bias"], ["deconv/z"]),
        helper.make_node("Sigmoid", ["deconv/z"], [out])],
        [numpy_helper.from_array(wt, "deconv/w"), numpy_helper.from_array(bias, "deconv/bias")])


#: The shipped model's metadata a runtime reads to feed a model (``ocr_denoise.model``).
INTERFACE_KEYS = ("patch_size", "layout", "value_range", "preprocess")


def with_interface(data: bytes) -> bytes:
    """ONNX ``data`` with the shipped model's interface metadata (patch size, layout,
    value range, preprocessing) where it has none, so the runtime feeds it pages as
    it feeds the shipped model."""
    import onnx

    from ocr_denoise.model import default_model_path

    m = onnx.load_from_string(data)
    shipped = {p.key: p.value for p in onnx.load(str(default_model_path())).metadata_props}
    have = {p.key for p in m.metadata_props}
    for key in INTERFACE_KEYS:
        if key in shipped and key not in have:
            m.metadata_props.add(key=key, value=shipped[key])
    return m.SerializeToString()


def onnx_bytes(kwargs: dict | str | None) -> tuple[bytes, int]:
    """The ONNX bytes of a random-weight model built with ``kwargs`` (exported as
    ``train.export`` does, so with its last convolution split), or of the shipped
    model (None; "unsplit": its last convolution folded back into one k x k ``Conv``,
    ``train.graph.fold_split_output``; "d2s": ``depth_to_space_tail``; "deconv":
    ``conv_transpose_head``), and its number of parameters as trained."""
    import onnx

    from ocr_denoise.model import default_model_path
    from train.graph import fold_split_output

    if kwargs is None or kwargs in ("unsplit", "d2s", "deconv"):
        data = default_model_path().read_bytes()
        proto = fold_split_output(onnx.load_from_string(data))
        dims = {t.name: t.dims for t in proto.graph.initializer}
        count = sum(int(np.prod(dims[i])) for n in proto.graph.node if n.op_type == "Conv"
                    for i in n.input[1:] if i in dims)  # every convolution's kernel and bias
        if kwargs == "unsplit":
            data = proto.SerializeToString()
        elif kwargs == "deconv":
            data = conv_transpose_head(proto).SerializeToString()
        elif kwargs == "d2s":
            data = depth_to_space_tail(onnx.load_from_string(data)).SerializeToString()
        return data, count
    assert isinstance(kwargs, dict)
    from train.export import to_onnx
    from train.model import build_model

    model = build_model(**kwargs)
    return to_onnx(model, {}).SerializeToString(), model.count_params()


def session(data: bytes):
    """An onnxruntime CPU session of ONNX ``data`` with onnxruntime's own intra-op
    threads, as ``Denoiser`` built it before 0.2.0's bands on threads (now one
    intra-op thread per run, two runs at once): the ratios between variants are
    those of one batch on all cores, not exactly a page's."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def random_batch(sess, batch: int) -> np.ndarray:
    """``batch`` random patches in the layout ``sess``'s input asks for (N x 28 x 28 x 1
    or N x 1 x 28 x 28: exports differ), float32 in [0, 1)."""
    shape = [batch, *(d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape[1:])]
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def time_batch(sess, batch: int, runs: int = 20) -> float:
    """Seconds per run of one batch of random patches (mean over ``runs``)."""
    inp = sess.get_inputs()[0]
    x = random_batch(sess, batch)
    for _ in range(5):  # warm: the arena grows and the thread pool wakes on the first runs
        sess.run(None, {inp.name: x})
    t = time.perf_counter()
    for _ in range(runs):
        sess.run(None, {inp.name: x})
    return (time.perf_counter() - t) / runs


def time_files(paths: list[Path], batch: int, repeat: int, runs: int) -> list[float]:
    """Best seconds per batch of each ONNX file, interleaved over ``repeat`` rounds.
    One session at a time: an idle session's thread pool spins for a while after
    each run and would slow the next one's."""
    best = [float("inf")] * len(paths)
    for _ in range(repeat):
        for i, p in enumerate(paths):
            sess = session(p.read_bytes())
            best[i] = min(best[i], time_batch(sess, batch, runs))
            del sess
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds; best counts")
    ap.add_argument("--runs", type=int, default=20, help="batches per timing")
    ap.add_argument("--save", type=Path, default=None,
                    help="also keep each variant as DIR/NAME.onnx, with the shipped model's "
                         "interface metadata, so speed.py --model times it on a page "
                         "(random weights: for timing only)")
    ap.add_argument("--time-files", nargs="+", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.time_files:  # the child: time these files, print seconds per batch
        print(" ".join(f"{t:.9f}" for t in time_files([Path(p) for p in args.time_files],
                                                        args.batch_size, args.repeat, args.runs)))
        return 0
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        ap.error(f"unknown variant(s) {', '.join(unknown) or '(none)'}; "
                 f"known: {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory() as tmp:
        paths, params = [], []
        for n in names:
            data, count = onnx_bytes(VARIANTS[n])
            paths.append(Path(tmp) / f"{n}.onnx")
            paths[-1].write_bytes(data)
            params.append(count)
            if args.save is not None:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{n}.onnx").write_bytes(with_interface(data))
        # Timed in a fresh process: TensorFlow's thread pools, once started by building
        # the models, keep spinning and would slow onnxruntime beside them.
        r = subprocess.run([sys.executable, __file__, "--time-files", *map(str, paths),
                            "--batch-size", str(args.batch_size), "--repeat", str(args.repeat),
                            "--runs", str(args.runs)], capture_output=True, text=True, check=True)
        best = [float(v) for v in r.stdout.split()]
    ref = best[0]
    print(f"one batch of {args.batch_size} patches, onnxruntime CPU, best of {args.repeat}")
    for n, b, count in zip(names, best, params):
        print(f"{n:14s} {1000 * b:7.3f} ms  {ref / b:5.2f}x {names[0]}'s speed  "
              f"{count:6d} parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
