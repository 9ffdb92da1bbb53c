"""How fast is ``denoise_page`` on this machine, against references measured in the same run?

    .venv/bin/python benchmarks/speed.py [--model M.onnx] [--overlap 4] [--batch-size 128]
                                         [--repeat 3] [--skip-a3]

On a generated 300-DPI US-letter page (2550 x 3300, text with noise) it measures,
in one process and one run (machines are noisy; compare within a run only):
  * ``denoise_page`` end to end: array in, array out, blending on, warm session;
  * non-local means (``baselines.nl_means``: OpenCV's, h=10, 7, 21) on the same page;
  * ``denoise_page(..., guard=False)``: what the guard's measurements cost;
  * the machine's fp32 matrix-multiply rate (numpy, 4096^2 product);
  * the model's FLOPs per page (from the ONNX graph's Conv nodes),
and prints pages/s, megapixels/s, the ratio to non-local means and the fraction of
the matmul rate the model achieves. Then, in a fresh subprocess, the peak resident
memory of denoising a 600-DPI A3 page (7016 x 9921).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from baselines import nl_means  # noqa: E402  (benchmarks/, the script's own folder)

from ocr_denoise import Denoiser  # noqa: E402
from ocr_denoise.tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP  # noqa: E402


def letter_page(h: int = 3300, w: int = 2550, seed: int = 0, noise: float = 25.0) -> np.ndarray:
    """A uint8 page of text-like strokes on grey, noisy paper (no fonts needed)."""
    rng = np.random.default_rng(seed)
    page = np.full((h, w), 235, np.uint8)
    for y in range(150, h - 150, 50):  # ~12-pt lines at 300 DPI
        x = 150
        while x < w - 200:
            cw = int(rng.integers(15, 30))
            cv2.putText(page, "".join(rng.choice(list("abcdefghij"), 2)), (x, y),
                        cv2.FONT_HERSHEY_SIMPLEX, 1.0, 30, 2, cv2.LINE_AA)
            x += cw * 2 + int(rng.integers(10, 25))
    grain = rng.normal(0, noise, (h, w)).astype(np.float32)
    return np.clip(page + grain, 0, 255).astype(np.uint8)


def model_flops_per_patch(path: Path) -> float:
    """2 x multiply-adds of every Conv for one patch, with shapes taken from a real run
    (every Conv output is exposed as a graph output, so no shape inference is needed).
    A depthwise Conv whose kernels are one-hot only moves values (the shift of a split
    last convolution, ``train/graph.py``) and is not counted: the figure stays the
    model's arithmetic, whichever way its graph computes it."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    m = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    inits = {k: v.shape for k, v in weights.items()}

    def moves_only(n) -> bool:
        w = weights[n.input[1]]
        return (w.ndim == 4 and w.shape[1] == 1 and bool(np.isin(w, (0.0, 1.0)).all())
                and bool((w.reshape(len(w), -1).sum(axis=1) == 1).all()))

    convs = [n for n in m.graph.node
             if n.op_type == "Conv" and n.input[1] in inits and not moves_only(n)]
    for n in convs:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(n.output[0]))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run([n.output[0] for n in convs], _feed(sess, 1, np.ones))
    return float(sum(2.0 * o.size * np.prod(inits[n.input[1]][1:]) for n, o in zip(convs, outs)))


def _feed(sess: Any, n: int, make: Callable[..., np.ndarray]) -> dict[str, np.ndarray]:
    """A batch of ``n`` for every input of ``sess`` (the patch, and the page
    context of a model that reads it), from ``make(shape, dtype)``."""
    return {i.name: make([n if not isinstance(d, int) else d for d in i.shape], np.float32)
            for i in sess.get_inputs()}


def op_profile(path: Path, batch_size: int, runs: int = 10) -> list[tuple[str, str, float]]:
    """Where onnxruntime's time goes: (op type, node, ms per batch) from its own profiler,
    on ``runs`` batches of ``batch_size`` random patches, slowest first."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(__file__).resolve().parent / ".ort_profile")
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = _feed(sess, batch_size, lambda shape, dtype: rng.random(shape, dtype=dtype))
    sess.run(None, feed)
    for _ in range(runs):
        sess.run(None, feed)
    trace = Path(sess.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    per: dict[tuple[str, str], float] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            key = (e["args"].get("op_name", "?"), e["name"][: -len("_kernel_time")])
            per[key] = per.get(key, 0.0) + e["dur"] / 1000 / (runs + 1)
    return sorted(((op, node, ms) for (op, node), ms in per.items()), key=lambda r: -r[2])


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def gpu_memory_used_mb() -> float | None:
    """GPU memory in use now (MB, first GPU), from nvidia-smi; None without it."""
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=memory.used",
                            "--format=csv,noheader,nounits"], capture_output=True, text=True,
                           timeout=30)
        return float(r.stdout.split()[0]) if r.returncode == 0 and r.stdout.split() else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def a3_peak_rss(args: argparse.Namespace) -> float:
    """Peak RSS (MB) of a child that only builds an A3 page and denoises it (with
    ``upscale="auto"`` and ``args.enlarger`` loaded: a 600-DPI page keeps its size)."""
    code = f"""
import resource, sys, numpy as np
sys.path.insert(0, {str(REPO)!r})
from ocr_denoise import Denoiser
d = Denoiser({args.model!r}, device="cpu", overlap={args.overlap}, batch_size={args.batch_size},
             enlarger={getattr(args, "enlarger", None)!r})
page = np.full((9921, 7016), 235, np.uint8)
page[::40, :] = 20
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = d.denoise(page, upscale={"auto" if getattr(args, "enlarger", None) else None!r})
assert out.shape == page.shape
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, base / 1024)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, before = map(float, r.stdout.split())
    return peak


def enlargement_vs_tesseract(args: argparse.Namespace) -> dict:
    """The learned 2x enlargement of a 90-DPI letter page (the 300-DPI page without
    noise, area-averaged to 765 x 990, x-height about 5 px) against tesseract reading
    the enlarged page, best of ``args.repeat`` each, interleaved (issue "Learned
    enlargement": the enlargement may take at most a third of tesseract's time)."""
    small = cv2.resize(letter_page(noise=0.0), (765, 990), interpolation=cv2.INTER_AREA)
    den = Denoiser(args.model, device=args.device, enlarger=args.enlarger)
    den.denoise(small[:200, :200], upscale=2, guard=False)  # warm both sessions
    big = den.denoise(small, upscale=2, guard=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "enlarged.png"
        cv2.imwrite(str(path), big)
        read = ["tesseract", str(path), "stdout", "--dpi", "180"]
        t_enl = t_tess = float("inf")
        for _ in range(args.repeat):
            t_enl = min(t_enl, best_of(lambda: den.denoise(small, upscale=2, guard=False), 1))
            t_tess = min(t_tess, best_of(
                lambda: subprocess.run(read, capture_output=True, check=True), 1))
    print(f"90-DPI letter page {small.shape[1]}x{small.shape[0]} enlarged 2x by "
          f"{Path(str(den.enlarger.model_path)).name if den.enlarger else 'cubic'}: "
          f"{t_enl:.3f} s; tesseract on the enlarged page {t_tess:.3f} s -> "
          f"{t_enl / t_tess:.2f} of tesseract's time")
    return {"enlarge_s": t_enl, "tesseract_enlarged_s": t_tess,
            "enlarge_share_of_tesseract": t_enl / t_tess}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-a3", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"],
                    help="as for Denoiser; cuda fails without onnxruntime-gpu and a GPU")
    ap.add_argument("--quick", action="store_true",
                    help="a quarter-size page, one repeat, no A3: to check the script runs")
    ap.add_argument("--profile", action="store_true",
                    help="also print onnxruntime's per-operator times for one batch")
    ap.add_argument("--enlarger", default=None,
                    help="an enlargement model (name or path): also time it on a 90-DPI page "
                    "against tesseract, and load it for the A3 page")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.skip_a3 = 1, True

    page = letter_page(1650, 1275) if args.quick else letter_page()
    h, w = page.shape
    mpx = h * w / 1e6
    den = Denoiser(args.model, device=args.device, overlap=args.overlap,
                   batch_size=args.batch_size)
    den.denoise(page[:300, :300])  # warm the session

    # Interleaved, best of each: a busy spell of the machine then slows both alike.
    t_model = t_nlm = t_bare = float("inf")
    for _ in range(args.repeat):
        t_model = min(t_model, best_of(lambda: den.denoise(page), 1))
        t_bare = min(t_bare, best_of(lambda: den.denoise(page, guard=False), 1))
        t_nlm = min(t_nlm, best_of(lambda: nl_means(page), 1))
    # The page must be one the guard lets the model clean, or the guard's cost is moot.
    guarded = bool((den.denoise(page) == den.denoise(page, guard=False)).all())
    a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
    a @ a
    t_mm = best_of(lambda: a @ a, args.repeat)
    mm_rate = 2 * 4096**3 / t_mm

    from ocr_denoise.tiling import TileGrid
    grid = TileGrid(h, w, den.patch_size, args.overlap)
    f_patch = model_flops_per_patch(den.model_path)
    f_page = f_patch * grid.count
    res = {
        "page": f"{w}x{h}", "overlap": args.overlap, "batch_size": args.batch_size,
        "providers": list(den.providers),
        "denoise_s": t_model, "pages_per_s": 1 / t_model, "mpx_per_s": mpx / t_model,
        "nlmeans_s": t_nlm, "speedup_vs_nlmeans": t_nlm / t_model,
        "no_guard_s": t_bare, "guard_share": (t_model - t_bare) / t_model,
        "guard_keeps_model": guarded,
        "matmul_gflops": mm_rate / 1e9, "model_gflop_per_page": f_page / 1e9,
        "patches_per_page": grid.count,
        "model_gflops_achieved": f_page / t_model / 1e9,
        "fraction_of_matmul": f_page / t_model / mm_rate,
    }
    print(f"page {w}x{h} ({mpx:.1f} Mpx), overlap {args.overlap}, batch {args.batch_size}, "
          f"{den.providers[0]}")
    print(f"denoise_page      {t_model:7.3f} s   {1 / t_model:6.2f} pages/s   "
          f"{mpx / t_model:6.1f} Mpx/s")
    print(f"fastNlMeans       {t_nlm:7.3f} s   -> denoise_page is {t_nlm / t_model:.1f}x faster")
    print(f"guard=False       {t_bare:7.3f} s   -> the guard is "
          f"{100 * (t_model - t_bare) / t_model:.1f}% of denoise_page's time"
          f"{'' if guarded else ' (WARNING: the guard left this page, so this is moot)'}")
    print(f"numpy fp32 matmul {mm_rate / 1e9:7.1f} GFLOP/s")
    print(f"model             {f_page / 1e9:7.1f} GFLOP/page ({grid.count} patches, "
          f"{f_patch / 784:.0f} FLOP/px/patch) -> {f_page / t_model / 1e9:.1f} GFLOP/s = "
          f"{100 * f_page / t_model / mm_rate:.0f}% of matmul")
    if args.profile:
        x = np.random.default_rng(1).random((grid.count, den.patch_size, den.patch_size),
                                            dtype=np.float32)
        ctx = x if den.reads_context else None
        # denoise_patches runs den.workers batches at once, as the page's bands run.
        t_ort = best_of(lambda: den.denoise_patches(x, ctx), args.repeat)
        rows = op_profile(den.model_path, args.batch_size)
        total = sum(ms for _, _, ms in rows)
        print(f"onnxruntime alone on the page's {grid.count} patches ({den.workers} thread(s)): "
              f"{t_ort:.3f} s; the other {t_model - t_ort:.3f} s convert, flatten, tile and "
              "stitch")
        print(f"onnxruntime's profiler, share of one batch of {args.batch_size} by operator:")
        for op, node, ms in rows[:12]:
            print(f"  {100 * ms / total:5.1f}%  {op:10s} {node}")
        res["onnxruntime_s"] = t_ort
        res["profile_share"] = {f"{op} {node}": ms / total for op, node, ms in rows}
    gpu_mb = gpu_memory_used_mb() if "CUDAExecutionProvider" in den.providers else None
    if gpu_mb is not None:
        res["gpu_memory_used_mb"] = gpu_mb
        print(f"GPU memory in use after the runs (nvidia-smi) {gpu_mb:.0f} MB")
    if args.enlarger is not None:
        res.update(enlargement_vs_tesseract(args))
    if not args.skip_a3:
        peak = a3_peak_rss(args)
        res["a3_peak_rss_mb"] = peak
        print(f"A3 600 DPI (7016x9921) peak resident memory {peak:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
