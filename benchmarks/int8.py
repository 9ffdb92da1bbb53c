"""Is a reduced-precision model faster on this CPU? int8 and fp16 against fp32, one run.

    .venv/bin/python benchmarks/int8.py [--model M.onnx] [--calibration 2048] [--repeat 3]
                                        [--save DIR]

Quantises the model with onnxruntime's static QDQ quantisation (per-channel int8
weights; activations uint8 and int8), calibrated on training patches as the
model sees them (``train.data.synthetic_patches``, flattened pages: needs the
``train`` extra), and makes an fp16 copy (weights and activations in float16,
float32 in and out), then times ``Denoiser.denoise`` on ``speed.py``'s 300-DPI
letter page for each model, interleaved, best of ``--repeat``, and prints each
one's time, its speed against fp32 and how far its output page is from fp32's
(gray levels). It prints the CPU's int8 and fp16 features (VNNI, AMX,
AVX-512 FP16), on which onnxruntime's kernels depend. ``--save DIR`` keeps the
models (``u8s8.onnx``, ``s8s8.onnx``, ``fp16.onnx``), e.g. for ``ocr_quality.py
--model``. No model is shipped from here: a variant would also have to pass
``ocr_quality.py`` and ``real_scans.py`` (issue "Ten times non-local means").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from speed import letter_page  # noqa: E402

from ocr_denoise import Denoiser  # noqa: E402
from ocr_denoise.model import default_model_path, seal_model  # noqa: E402


def cpu_features() -> str:
    """The int8-relevant flags of /proc/cpuinfo (empty where there is none)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    want = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_fp16",
            "avx512_bf16", "amx_bf16"]
    return " ".join(f for f in want if f in flags) or "none of " + ", ".join(want)


def calibration_patches(n: int, seed: int = 5) -> np.ndarray:
    """(n, 1, 28, 28) float32 flattened training patches (the v8 recipe's mix)."""
    from train import data

    rng = np.random.default_rng(seed)
    x, _ = data.synthetic_patches(n, rng, 28, ink_fraction=0.5, page_norm=True,
                                  black_ink=True, damage_fraction=0.2)
    return x.reshape(-1, 1, 28, 28).astype(np.float32)


def quantise(src: Path, out_dir: Path, patches: np.ndarray) -> dict[str, Path]:
    """Static QDQ int8 copies of ``src``: {"u8s8": ..., "s8s8": ...}."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self):
            if self.i >= len(patches):
                return None
            self.i += 128
            return {"noisy": patches[self.i - 128 : self.i]}

    pre = out_dir / "pre.onnx"
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    out = {}
    for name, act in (("u8s8", QuantType.QUInt8), ("s8s8", QuantType.QInt8)):
        out[name] = out_dir / f"{name}.onnx"
        quantize_static(str(pre), str(out[name]), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=act, weight_type=QuantType.QInt8)
        seal_model(out[name])  # the copied metadata's seal is the fp32 file's: rewrite it
    return out


#: Inputs that stay float32 in the fp16 copy: Resize's roi and scales are read as
#: float32 whatever the data's type.
_KEEP_FLOAT32 = {"Resize": (1, 2)}


def half(src: Path, out: Path) -> Path:
    """An fp16 copy of ``src`` at ``out``: every float32 weight in float16, a Cast to
    float16 after the input and back to float32 before the output, so it takes and
    gives what the fp32 model does. Raises ``ValueError`` for a graph with more
    than one input or output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    if len(g.input) != 1 or len(g.output) != 1:
        raise ValueError(f"{src}: fp16 copy needs one input and one output")
    keep = {n.input[i] for n in g.node for i in _KEEP_FLOAT32.get(n.op_type, ())
            if i < len(n.input)}
    for k, t in enumerate(g.initializer):
        if t.data_type == TensorProto.FLOAT and t.name not in keep:
            g.initializer[k].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(t).astype(np.float16), t.name))
    x, y = g.input[0].name, g.output[0].name
    for n in g.node:
        n.input[:] = [x + "/fp16" if i == x else i for i in n.input]
        n.output[:] = [y + "/fp16" if o == y else o for o in n.output]
    g.node.insert(0, helper.make_node("Cast", [x], [x + "/fp16"], to=TensorProto.FLOAT16))
    g.node.append(helper.make_node("Cast", [y + "/fp16"], [y], to=TensorProto.FLOAT))
    del g.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, str(out))
    seal_model(out)  # the copied metadata's seal is the fp32 file's: rewrite it
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="fp32 ONNX model (default: the shipped one)")
    ap.add_argument("--calibration", type=int, default=2048, help="calibration patches")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--save", help="keep the reduced-precision models in this folder")
    args = ap.parse_args(argv)
    src = Path(args.model) if args.model else default_model_path()
    page = letter_page()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.save) if args.save else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        models: dict[str, Path | None] = {
            "fp32": None, **quantise(src, where, calibration_patches(args.calibration)),
            "fp16": half(src, where / "fp16.onnx")}
        # skip_white=None: every model on every patch, so each does the same work
        dens = {k: Denoiser(p if p is not None else src, device="cpu", skip_white=None)
                for k, p in models.items()}
        outs = {k: d.denoise(page) for k, d in dens.items()}  # warm, and the outputs
        best = {k: float("inf") for k in dens}
        for _ in range(args.repeat):
            for k, d in dens.items():
                t = time.perf_counter()
                d.denoise(page)
                best[k] = min(best[k], time.perf_counter() - t)
    print(f"CPU int8 and fp16 features: {cpu_features()}")
    print(f"page {page.shape[1]}x{page.shape[0]}, best of {args.repeat}, one process")
    for k in dens:
        diff = np.abs(outs[k].astype(np.int16) - outs["fp32"]).astype(np.float64)
        print(f"{k:5s} {best[k]:.3f} s/page  {best['fp32'] / best[k]:.2f}x fp32's speed  "
              f"|page - fp32 page|: mean {diff.mean():.2f}, max {diff.max():.0f} gray levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
