"""How fast would an architecture run in onnxruntime, before anyone trains it?

    .venv/bin/python benchmarks/arch_speed.py                     # the variants below
    .venv/bin/python benchmarks/arch_speed.py --variants v8,ok1 --repeat 7

"shipped" is the shipped ONNX file (its graph as exported then, trained weights), so
a fresh export of the same architecture ("v8") can be checked against it.

Builds each variant of ``train.model.build_model`` with random weights, exports it
the way ``train.export`` exports a trained model (tf2onnx), and times one batch of
28 x 28 patches in onnxruntime on the CPU, interleaved (each round times every
variant once; the best round counts), in one process, so the ratios are
comparable within a run. Weights do not change the time of these graphs; training
decides only whether a variant is good enough.

Why: on AVX-512 onnxruntime runs convolutions in a blocked layout of 16 channels
(NCHWc); the shipped model's last convolution has 4 output channels (the 2 x 2
sub-pixels of each P/2 position), padded to 16, and ``speed.py --profile`` puts it
at about half of onnxruntime's time for a fifth of the model's arithmetic. A
1 x 1 last convolution (``output_kernel=1``) does a ninth of that work.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_BASE = {"arch": "shuffle", "width": 32, "skips": True}
#: name -> build_model arguments. "v8" is the shipped model's architecture.
VARIANTS: dict[str, dict | None] = {
    "shipped": None,  # the shipped ONNX file itself, as exported when it was trained
    "v8": dict(_BASE),
    "ok1": {**_BASE, "output_kernel": 1},
    "ok1+dec16": {**_BASE, "output_kernel": 1, "decoder_width": 16},
    "ok1-w24": {**_BASE, "output_kernel": 1, "width": 24},
    "v8-w24": {**_BASE, "width": 24},
}


def session_for(kwargs: dict | None):
    """An onnxruntime CPU session of a random-weight model built with ``kwargs``
    (None: the shipped model, trained weights), and the number of its parameters."""
    import onnx
    import onnxruntime as ort

    from ocr_denoise.model import default_model_path
    from train.export import to_onnx
    from train.model import build_model

    if kwargs is None:
        data = default_model_path().read_bytes()
        params = sum(int(np.prod(t.dims)) for t in onnx.load_from_string(data).graph.initializer
                     if len(t.dims) == 4 or len(t.dims) == 1 and t.name.endswith("Squeeze:0"))
    else:
        model = build_model(**kwargs)
        data, params = to_onnx(model, {}).SerializeToString(), model.count_params()
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return sess, params


def time_batch(sess, batch: int, runs: int = 20) -> float:
    """Seconds per run of one batch of random patches (mean over ``runs``)."""
    inp = sess.get_inputs()[0]
    shape = [batch, *(d if isinstance(d, int) else 1 for d in inp.shape[1:])]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    sess.run(None, {inp.name: x})
    t = time.perf_counter()
    for _ in range(runs):
        sess.run(None, {inp.name: x})
    return (time.perf_counter() - t) / runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds; best counts")
    ap.add_argument("--runs", type=int, default=20, help="batches per timing")
    args = ap.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        ap.error(f"unknown variant(s) {', '.join(unknown) or '(none)'}; "
                 f"known: {', '.join(VARIANTS)}")
    built = {n: session_for(VARIANTS[n]) for n in names}
    best = {n: float("inf") for n in names}
    for _ in range(args.repeat):
        for n, (sess, _) in built.items():
            best[n] = min(best[n], time_batch(sess, args.batch_size, args.runs))
    ref = best[names[0]]
    print(f"one batch of {args.batch_size} patches, onnxruntime CPU, best of {args.repeat}")
    for n in names:
        print(f"{n:10s} {1000 * best[n]:7.3f} ms  {ref / best[n]:5.2f}x {names[0]}'s speed  "
              f"{built[n][1]:6d} parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
