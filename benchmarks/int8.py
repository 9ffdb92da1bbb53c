"""Is an int8 model faster on this CPU? Static QDQ quantisation against the fp32 model, one run.

    .venv/bin/python benchmarks/int8.py [--model M.onnx] [--calibration 2048] [--repeat 3]

Quantises the model with onnxruntime's static QDQ quantisation (per-channel int8
weights; activations uint8 and int8), calibrated on training patches as the
model sees them (``train.data.synthetic_patches``, flattened pages: needs the
``train`` extra), then times ``Denoiser.denoise`` on ``speed.py``'s 300-DPI letter
page for each model, interleaved, best of ``--repeat``, and prints each one's
time, its speed against fp32 and how far its output page is from fp32's (gray
levels). It prints the CPU's int8 features (VNNI, AMX), on which onnxruntime's
int8 kernels depend. No model is shipped from here: a variant would also have to
pass ``ocr_quality.py`` and ``real_scans.py`` (issue "Ten times non-local means").
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
from ocr_denoise.model import default_model_path  # noqa: E402


def cpu_features() -> str:
    """The int8-relevant flags of /proc/cpuinfo (empty where there is none)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    want = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"]
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
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="fp32 ONNX model (default: the shipped one)")
    ap.add_argument("--calibration", type=int, default=2048, help="calibration patches")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    src = Path(args.model) if args.model else default_model_path()
    page = letter_page()
    with tempfile.TemporaryDirectory() as tmp:
        models: dict[str, Path | None] = {"fp32": None,
                                          **quantise(src, Path(tmp),
                                                     calibration_patches(args.calibration))}
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
    print(f"CPU int8 features: {cpu_features()}")
    print(f"page {page.shape[1]}x{page.shape[0]}, best of {args.repeat}, one process")
    for k in dens:
        diff = np.abs(outs[k].astype(np.int16) - outs["fp32"]).astype(np.float64)
        print(f"{k:5s} {best[k]:.3f} s/page  {best['fp32'] / best[k]:.2f}x fp32's speed  "
              f"|page - fp32 page|: mean {diff.mean():.2f}, max {diff.max():.0f} gray levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
