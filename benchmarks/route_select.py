"""Two models, one page each: what routing pages by their noise would give, on selection
pages, from two ``guard_select.py`` caches (no tesseract run).

    .venv/bin/python benchmarks/guard_select.py --model runs/res4/model.onnx --out runs/gs_res4.json
    .venv/bin/python benchmarks/route_select.py runs/gs_res4.json runs/guard_select.json

``light`` is a cache measured with the model for ordinary pages (e.g. a residual
candidate), ``heavy`` one measured with the model for heavily damaged pages (e.g. the
shipped v8) on the same pages (the same selection seed and ``--pages``). A page whose
``noise`` (``ocr_denoise.guard``'s, before any model) is at least ``--noise`` goes to
``heavy`` behind the guard as it is now; every other page to ``light``, either on every
page (``everywhere``) or behind the guard as it is now (``guard``), or, third, to
``light`` only where the page is sharp (``detail`` at least ``--detail``) and to
``heavy`` behind the guard where it is not. Printed for each:
every real source's mean ΔCER against raw with its 95% bootstrap interval (and pages
changed), the damage kinds' and scan kinds' mean CER (as ``ocr_quality`` reports them),
NoisyOffice's train RMSE and the clean pages' CER, then each kind's CER.

Why: a residual model trained on soft targets helps forms and archive pages and keeps
clean text as it is, but has learnt no heavy noise (gaussian, salt and pepper, fax:
left as they came), while adding those kinds to its training made real pages read worse
(docs/model-history.md); the guard's noise measure separates those kinds from real scans.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import guard_select as gs  # noqa: E402
import real_scans  # noqa: E402

EVERYWHERE = gs.EVERYWHERE


def _key(row: dict) -> tuple[str, str, str]:
    return row["set"], row["kind"], str(row["page"])


def tables(light_rows: list[dict], heavy_rows: list[dict]) -> tuple[gs.Table, gs.Table]:
    """The two caches as tables over the pages both hold, in one order. ``ValueError``
    when a shared page's raw CER differs (the caches are of different pages)."""
    heavy = {_key(r): r for r in heavy_rows}
    light = [r for r in light_rows if _key(r) in heavy]
    a, b = gs.Table(light), gs.Table([heavy[_key(r)] for r in light])
    if not np.allclose(a.raw, b.raw):
        raise ValueError("the two caches' pages differ (raw CER): measure both with the "
                         "same selection seed and --pages")
    return a, b


def route(light: gs.Table, heavy: gs.Table, light_rule: gs.Rule, noise: float,
          rest_to_heavy: bool = False) -> dict:
    """Figures of: pages with ``noise`` >= ``noise`` to ``heavy`` behind the current
    guard, the others to ``light`` under ``light_rule``; those ``light_rule`` leaves
    stay as they are, or with ``rest_to_heavy`` go to ``heavy`` behind the guard too."""
    loud = light.noise >= noise
    k_light = light.keeps(light_rule) & ~loud
    k_heavy = heavy.keeps(gs.Rule()) & (~k_light if rest_to_heavy else loud)
    cer = np.where(k_light, light.model, np.where(k_heavy, heavy.model, light.raw))
    sq = np.where(k_light, light.model_sq, np.where(k_heavy, heavy.model_sq, light.raw_sq))
    per_kind = {k: float(cer[m].mean()) for k, m in light.kind_masks.items()}
    return {
        "real": {name: real_scans.bootstrap((cer - light.raw)[m])
                 for name, m in light.real.items()},
        "changed": {name: int((k_light | k_heavy)[m].sum()) for name, m in light.real.items()},
        **{g: float(np.mean([per_kind[k] for k in ks])) if ks else float("nan")
           for g, ks in light.groups.items()},
        "noisyoffice": float(np.sqrt(sq[light.office].sum() / light.pixels)),
        "clean": float(cer[light.clean].mean()) if light.clean.any() else float("nan"),
        "per_kind": per_kind,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("light", help="guard_select cache of the model for ordinary pages")
    ap.add_argument("heavy", help="guard_select cache of the model for heavy damage")
    ap.add_argument("--noise", type=float, default=gs.guard.NOISE,
                    help="pages at least this noisy go to the heavy model (default: the "
                    "guard's NOISE)")
    ap.add_argument("--detail", type=float, default=1.0,
                    help="the third row: light only on pages at least this sharp (the "
                    "guard's detail), every other page to heavy behind the guard")
    args = ap.parse_args(argv)
    light, heavy = tables(json.loads(Path(args.light).read_text()),
                          json.loads(Path(args.heavy).read_text()))
    rows = {"everywhere": route(light, heavy, EVERYWHERE, args.noise),
            "guard": route(light, heavy, gs.Rule(), args.noise),
            f"detail >= {args.detail:g}": route(
                light, heavy, dataclasses.replace(EVERYWHERE, smooth=args.detail), args.noise,
                rest_to_heavy=True),
            "heavy model only": route(light, heavy, EVERYWHERE, 0.0)}
    print(f"pages with noise >= {args.noise:g} to {args.heavy} (guard now), the others to "
          f"{args.light}")
    for name, r in rows.items():
        real = " | ".join(f"{s} {m:+.2f} [{lo:+.2f}, {hi:+.2f}] ({r['changed'][s]})"
                          for s, (m, lo, hi) in r["real"].items())
        print(f"{name:17s} {real} | damage kinds {r['synthetic']:.2f} scan kinds "
              f"{r['scan']:.2f} NoisyOffice {r['noisyoffice']:.4f} clean {r['clean']:.2f}")
    print("\nper kind:", "  ".join(f"{k} " + "/".join(f"{r['per_kind'][k]:.2f}"
                                                      for r in rows.values())
                                   for k in rows["everywhere"]["per_kind"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
