"""Where ``denoise_page``'s time goes: inside onnxruntime, and everything around it.

    .venv/bin/python benchmarks/pipeline_speed.py [--band-patches 1,512] [--repeat 5]
                                                  [--models shipped,B.onnx]
                                                  [--quick] [--json OUT.json]

On ``speed.py``'s 300-DPI letter page, in one process, rounds interleaved (the
best of each counts: a busy spell of the machine slows every variant alike):

* ``denoise_page`` with each model given (default: the shipped one), for each
  ``tiling.BAND_PATCHES`` given
  (how many patches a band aims for; 1 gives the rule of the tiler before 0.2.0,
  ``max(1, batch_size // cols)`` patch rows: one row on a letter page), with the
  wall time during which onnxruntime's ``run`` was going on in that same call
  (with bands on several threads, while at least one was): the rest, when no
  ``run`` was, is "outside onnxruntime" (issue 19's must-show 2);
* the same page through the same pipeline with an identity "model" (patches come
  back as they went in): the pipeline's own cost with warm caches and no
  onnxruntime at all, a lower bound of the outside share.

Every variant must return the same bytes (the band size changes only how the page
is cut for the work, never the result); the script fails if one does not.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from model_view import ModelView  # noqa: E402
from speed import letter_page  # noqa: E402

from ocr_denoise import pipeline, tiling  # noqa: E402
from ocr_denoise.session import Denoiser  # noqa: E402


class TimedDenoiser(Denoiser):
    """The shipped ``Denoiser``, recording when its session is in ``run``.

    ``inside`` is the wall time during which at least one ``run`` was going on
    (the union of the calls' intervals): with bands on several threads the
    calls overlap, and their plain sum would count the same second twice."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.intervals: list[tuple[float, float]] = []
        self._record = threading.Lock()

    def __getstate__(self):  # type: ignore[no-untyped-def]
        raise TypeError("TimedDenoiser is for one process")

    @property
    def inside(self) -> float:
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.intervals):
            if b > end:
                total += b - max(a, end)
                end = b
        return total

    def _run(self, loaded, x, c=None):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return super()._run(loaded, x, c)
        finally:
            with self._record:
                self.intervals.append((t, time.perf_counter()))


class Identity(ModelView):
    """What the pipeline needs of a model, with the model taken out: patches come
    back unchanged, so only the pipeline's own work is timed."""

    def denoise_patches(self, patches: np.ndarray,
                        context_windows: np.ndarray | None = None) -> np.ndarray:
        return patches


def measure(page: np.ndarray, band_patches: list[int], repeat: int,
            models: list[str] | None = None) -> dict:
    """Best-of-``repeat`` figures for each model and band size, rounds interleaved.
    ``models``: model paths, "shipped" for the packaged one (the default); the
    identity run uses the first model's interface. Keys: "<model>, band <n>" and
    "identity, band <n>"."""
    names = models or ["shipped"]
    # every model with the shipped model's blank-paper level, so each does the same work
    timed = {m: TimedDenoiser(None if m == "shipped" else m,
                              skip_white=tiling.DEFAULT_SKIP_WHITE) for m in names}
    ident = Identity(timed[names[0]])
    for t in timed.values():
        t.denoise(page)  # warm the sessions
    default = tiling.BAND_PATCHES
    best: dict[str, dict[str, float]] = {}
    outputs: dict[str, np.ndarray] = {}
    runs = [(m, t) for m, t in timed.items()] + [("identity", None)]
    try:
        for _ in range(repeat):
            for n in band_patches:
                tiling.BAND_PATCHES = n
                for label, model in runs:
                    name = f"{label}, band {n}"
                    if model is not None:
                        model.intervals.clear()
                    t0 = time.perf_counter()
                    out = (model.denoise(page) if model is not None
                           else pipeline.denoise(ident, page))
                    total = time.perf_counter() - t0
                    inside = model.inside if model is not None else 0.0
                    if name not in best or total < best[name]["page_s"]:
                        best[name] = {"page_s": total, "onnxruntime_s": inside}
                    outputs.setdefault(label, out)
                    if not np.array_equal(out, outputs[label]):
                        raise SystemExit(f"{name}: different bytes from the first band size")
    finally:
        tiling.BAND_PATCHES = default
    for r in best.values():
        r["outside_s"] = r["page_s"] - r["onnxruntime_s"]
        r["outside_share"] = r["outside_s"] / r["page_s"]
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--band-patches", default=f"1,{tiling.BAND_PATCHES}",
                    help="comma-separated tiling.BAND_PATCHES values to compare")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default="shipped",
                    help="comma-separated model paths, 'shipped' for the packaged model")
    ap.add_argument("--quick", action="store_true", help="a quarter-size page (for tests)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sizes = [int(v) for v in args.band_patches.split(",")]
    page = letter_page(1650, 1275) if args.quick else letter_page()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    res = measure(page, sizes, args.repeat, models)
    h, w = page.shape
    print(f"page {w}x{h}, best of {args.repeat}; outside = page - time inside onnxruntime's run")
    for n in sizes:
        for m in models:
            r = res[f"{m}, band {n}"]
            print(f"{m}, band {n}: page {r['page_s']:.3f} s, in onnxruntime "
                  f"{r['onnxruntime_s']:.3f} s, outside {r['outside_s']:.3f} s = "
                  f"{100 * r['outside_share']:4.1f}%")
        i = res[f"identity, band {n}"]
        i["share_of_model_page"] = i["page_s"] / res[f"{models[0]}, band {n}"]["page_s"]
        print(f"identity model, band {n}: {i['page_s']:.3f} s = "
              f"{100 * i['share_of_model_page']:4.1f}% of {models[0]}'s page")
    if args.json:
        Path(args.json).write_text(json.dumps({"page": f"{w}x{h}", "results": res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
