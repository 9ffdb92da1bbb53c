"""How many letter pages a second can one GPU (or the CPU) take? The model alone, then whole pages.

    .venv/bin/python benchmarks/gpu_throughput.py --device cuda [--batch-size 4096]
                                                  [--jobs 1,8,15] [--seconds 10] [--json OUT]

For the shipped model (or ``--model``), on ``speed.py``'s 300-DPI letter page
(14,766 patches at overlap 4):

* **model alone, data on the device**: one batch bound once with onnxruntime's
  I/O binding (input and output ``OrtValue`` on the device), run again and again:
  what the device itself does, in patches/s and letter pages/s;
* **model with the host copies**: the same batch copied host -> device and back
  on every run (I/O binding with a host input and ``copy_outputs_to_cpu``), the
  part of it a page pipeline on the host pays;
* **whole pages**: for each N of ``--jobs``, N worker processes, each with its own
  ``Denoiser`` (its own session, fixed batch shape on CUDA), run ``denoise_page``
  on the letter page for ``--seconds``; pages/s of all of them together. The
  pipeline around the model runs on the host's cores, so this says how many
  cores one GPU needs to be kept busy.

And the GPU memory in use (``nvidia-smi``) with the model-alone session alive
(one session, batch ``--batch-size``). ``--device cuda`` refuses to run on
anything but the CUDA provider (no silent CPU fallback); ``--device cpu`` runs
the same steps on the CPU, which is how the tests check the script without a
GPU. ``--quick``: a quarter-size page.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from speed import gpu_memory_used_mb, letter_page  # noqa: E402

from ocr_denoise.model import default_model_path, read_model_bytes  # noqa: E402
from ocr_denoise.session import CUDA  # noqa: E402
from ocr_denoise.tiling import DEFAULT_OVERLAP, TileGrid  # noqa: E402

PROVIDERS = {"cuda": [CUDA, "CPUExecutionProvider"], "cpu": ["CPUExecutionProvider"]}


def session(model: Path, device: str):  # type: ignore[no-untyped-def]
    """An onnxruntime session on ``device``; SystemExit if it did not get that provider."""
    import onnxruntime as ort

    s = ort.InferenceSession(read_model_bytes(model), providers=PROVIDERS[device])
    if s.get_providers()[0] != PROVIDERS[device][0]:
        raise SystemExit(f"asked for {PROVIDERS[device][0]}, onnxruntime gave "
                         f"{s.get_providers()}: no figures for {device}")
    return s


def model_rates(model: Path, device: str, batch: int, seconds: float) -> dict[str, float]:
    """Patches/s of the model alone: "on_device" (data bound on the device) and
    "with_copies"; on CUDA also "gpu_memory_used_mb" while the session lives."""
    import onnxruntime as ort

    s = session(model, device)
    inp, out = s.get_inputs()[0], s.get_outputs()[0]
    p = int(inp.shape[-1])
    x = np.random.default_rng(0).random((batch, 1, p, p), dtype=np.float32)
    rates = {}

    on_device = s.io_binding()
    on_device.bind_ortvalue_input(inp.name, ort.OrtValue.ortvalue_from_numpy(x, device, 0))
    on_device.bind_ortvalue_output(out.name, ort.OrtValue.ortvalue_from_shape_and_type(
        x.shape, np.float32, device, 0))

    def copies() -> None:
        io = s.io_binding()
        io.bind_cpu_input(inp.name, x)
        io.bind_output(out.name, device)
        s.run_with_iobinding(io)
        io.copy_outputs_to_cpu()

    for name, step in (("on_device", lambda: s.run_with_iobinding(on_device)),
                       ("with_copies", copies)):
        step()
        step()  # warm: kernels chosen, memory arena grown
        n, t0 = 0, time.perf_counter()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds:
                break
        rates[name] = n * batch / dt
    if device == "cuda":  # while this session and its buffers are alive
        mb = gpu_memory_used_mb()
        if mb is not None:
            rates["gpu_memory_used_mb"] = mb
    return rates


def _worker(args: tuple) -> tuple[int, float]:  # type: ignore[type-arg]
    """One process: pages denoised and seconds taken, after the shared start."""
    model, device, batch, threads, quick, seconds, start = args
    import cv2

    cv2.setNumThreads(1)  # each process is one core's worth of pipeline
    from ocr_denoise import Denoiser

    page = letter_page(1650, 1275) if quick else letter_page()
    d = Denoiser(model, device=device, batch_size=batch, threads=threads)
    d.denoise(page)  # warm
    start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        d.denoise(page)
        n += 1
    return n, time.perf_counter() - t0


def page_rate(model: Path, device: str, batch: int, jobs: int, quick: bool,
              seconds: float) -> float:
    """Letter pages/s of ``jobs`` processes together, each denoising pages for ``seconds``."""
    ctx = mp.get_context("spawn")  # no CUDA context or session is inherited
    threads = max(1, (os.cpu_count() or 1) // jobs) if device == "cpu" else 1
    with ctx.Manager() as manager:
        start = manager.Barrier(jobs)
        with ctx.Pool(jobs) as pool:
            res = pool.map(_worker, [(str(model), device, batch, threads, quick, seconds,
                                      start)] * jobs)
    return sum(n for n, _ in res) / max(t for _, t in res)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    ap.add_argument("--device", default="cuda", choices=sorted(PROVIDERS))
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--jobs", default="1,8,15",
                    help="comma-separated worker-process counts for the whole-page runs")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each timed run")
    ap.add_argument("--quick", action="store_true", help="a quarter-size page (for tests)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    model = Path(args.model) if args.model else default_model_path()
    jobs = [int(j) for j in args.jobs.split(",")]
    if args.batch_size < 1 or min(jobs) < 1 or args.seconds <= 0:
        ap.error("--batch-size, --jobs and --seconds must be positive")
    h, w = (1650, 1275) if args.quick else (3300, 2550)
    per_page = TileGrid(h, w, 28, DEFAULT_OVERLAP).count

    rates = model_rates(model, args.device, args.batch_size, args.seconds)
    pages = {str(j): page_rate(model, args.device, args.batch_size, j, args.quick,
                               args.seconds) for j in jobs}
    gpu_mb = rates.pop("gpu_memory_used_mb", None)
    res = {"device": args.device, "model": str(model), "batch_size": args.batch_size,
           "page": f"{w}x{h}", "patches_per_page": per_page,
           "model_patches_per_s": rates,
           "model_pages_per_s": {k: v / per_page for k, v in rates.items()},
           "pages_per_s_by_jobs": pages, "gpu_memory_used_mb": gpu_mb}
    print(f"{args.device}, batch {args.batch_size}, page {w}x{h} = {per_page} patches, "
          f"{args.seconds:g} s per run")
    for k, v in rates.items():
        print(f"model alone, {k.replace('_', ' '):12s} {v:12.0f} patches/s = "
              f"{v / per_page:8.1f} pages/s")
    for j, v in pages.items():
        print(f"whole pages, {j:>3s} processes    {v:8.1f} pages/s")
    if gpu_mb is not None:
        print(f"GPU memory in use with one session of batch {args.batch_size} "
              f"(nvidia-smi) {gpu_mb:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
