"""Which onnxruntime session settings run a page fastest on this CPU? One run.

    .venv/bin/python benchmarks/ort_settings.py [--repeat 5] [--settings a,b,...] [--quick]

Times ``speed.py``'s 300-DPI letter page through the whole page pipeline
(``pipeline.denoise``, the guard off so every patch reaches the model), with the
shipped model in an onnxruntime session built with each setting: intra-op
threads and bands denoised at once, thread spinning, graph optimisation level,
the memory arena, memory patterns, dynamic scheduling and the batch size. Why
the whole page and not a batch alone: some settings (spinning threads, bands at
once) change how onnxruntime shares the cores with the pipeline's own numpy and
OpenCV work.

Rounds are interleaved and the best of ``--repeat`` counts; only one session
exists at a time (an idle session's threads slow another's), built and warmed
before it is timed. Each setting's page is compared with the default's: settings
that change the graph's optimisations may move float rounding, so the largest
difference (grey levels) is printed beside the time. What ``Denoiser`` builds is
the ``default`` row.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from model_view import ModelView  # noqa: E402
from speed import letter_page  # noqa: E402

from ocr_denoise import pipeline, tiling  # noqa: E402
from ocr_denoise.model import default_model_path, read_model_bytes  # noqa: E402
from ocr_denoise.session import Denoiser  # noqa: E402

_B = tiling.DEFAULT_BATCH_SIZE
_ONE = {"intra_op_num_threads": 1}
#: name -> (session option changes, batch size, bands at once; 0: every core).
#: "default" is what Denoiser builds on the CPU: a band per core, each run on one
#: thread. "one-band" is what it built before 0.2.0 (one band at a time through
#: onnxruntime's own threads), and the rows after it vary that.
SETTINGS: dict[str, tuple[dict[str, object], int, int]] = {
    "default": (_ONE, _B, 0),
    "default+batch=64": (_ONE, 64, 0),
    "default+batch=256": (_ONE, 256, 0),
    "one-band": ({}, _B, 1),
    "threads=1": (_ONE, _B, 1),
    "no-spinning": ({"config:session.intra_op.allow_spinning": "0"}, _B, 1),
    "dynamic-block-4": ({"config:session.dynamic_block_base": "4"}, _B, 1),
    "opt=extended": ({"graph_optimization_level": "ORT_ENABLE_EXTENDED"}, _B, 1),
    "opt=basic": ({"graph_optimization_level": "ORT_ENABLE_BASIC"}, _B, 1),
    "no-arena": ({"enable_cpu_mem_arena": False}, _B, 1),
    "no-mem-pattern": ({"enable_mem_pattern": False}, _B, 1),
    "batch=64": ({}, 64, 1),
    "batch=256": ({}, 256, 1),
}


def session_options(changes: dict[str, object]):  # type: ignore[no-untyped-def]
    """``Denoiser``'s session options (inter-op threads 1) with ``changes`` applied:
    attribute names, or ``config:KEY`` for a session config entry."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    for key, value in changes.items():
        if key.startswith("config:"):
            opts.add_session_config_entry(key[len("config:"):], str(value))
        elif key == "graph_optimization_level":
            opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, str(value))
        else:
            setattr(opts, key, value)
    return opts


class Configured(ModelView):
    """What the pipeline needs of a model: the shipped model in an onnxruntime
    session built with the given options, patches in batches of ``batch_size``,
    ``workers`` bands at once (0: one per core), every patch to the model."""

    def __init__(self, reference: Denoiser, changes: dict[str, object],
                 batch_size: int, workers: int = 1) -> None:
        import onnxruntime as ort

        from ocr_denoise.session import available_cores

        super().__init__(reference, skip_white=None, workers=workers or available_cores())
        self.batch_size = batch_size
        self.session = ort.InferenceSession(read_model_bytes(default_model_path()),
                                            session_options(changes),
                                            providers=["CPUExecutionProvider"])
        self.input_name = reference.interface.input_name

    def denoise_patches(self, patches: np.ndarray,
                        context_windows: np.ndarray | None = None) -> np.ndarray:
        n, p, _ = patches.shape
        x = np.ascontiguousarray(patches, dtype=np.float32).reshape(
            self.interface.shape(n))
        return self.session.run(None, {self.input_name: x})[0].reshape(n, p, p)


def measure(page: np.ndarray, names: list[str], repeat: int) -> dict[str, dict[str, float]]:
    """name -> {"seconds": best page time, "max_diff": grey levels from default's page}."""
    reference = Denoiser(device="cpu", skip_white=None)
    reference.interface  # noqa: B018  (builds the reference session once, for its spec)
    best = {n: float("inf") for n in names}
    pages: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for name in names:
            changes, batch, workers = SETTINGS[name]
            model = Configured(reference, changes, batch, workers)
            pipeline.denoise(model, page, guard=False)  # warm: arena, thread pool
            t = time.perf_counter()
            out = pipeline.denoise(model, page, guard=False)
            best[name] = min(best[name], time.perf_counter() - t)
            pages.setdefault(name, out)
            del model
            gc.collect()
    base = pages[names[0]].astype(np.int16)
    return {n: {"seconds": best[n],
                "max_diff": float(np.abs(pages[n].astype(np.int16) - base).max())}
            for n in names}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--settings", default=",".join(SETTINGS),
                    help=f"comma-separated, the first is the reference; from {', '.join(SETTINGS)}")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a quarter-size page (for tests)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    names = args.settings.split(",")
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        ap.error(f"unknown settings {unknown}; known: {', '.join(SETTINGS)}")
    page = letter_page()
    if args.quick:
        page = page[: page.shape[0] // 2, : page.shape[1] // 2]
    res = measure(page, names, args.repeat)
    ref = res[names[0]]["seconds"]
    print(f"page {page.shape[1]}x{page.shape[0]}, guard off, best of {args.repeat}, "
          f"one session at a time; against {names[0]}")
    for n, r in res.items():
        print(f"{n:16s} {r['seconds']:.3f} s/page  {ref / r['seconds']:.2f}x  "
              f"max {r['max_diff']:.0f} grey levels from {names[0]}'s page")
    if args.json:
        Path(args.json).write_text(json.dumps({"page": list(page.shape), "results": res},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
