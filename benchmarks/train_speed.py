"""How many patches a second does training make on this machine, per architecture?

    .venv/bin/python benchmarks/train_speed.py --arch shuffle --width 32 --skips true
    .venv/bin/python benchmarks/train_speed.py --arch shuffle --width 64 --skips true
    .venv/bin/python benchmarks/train_speed.py --policy mixed_bfloat16 --arch shuffle --width 32

Takes ``python -m train fit``'s model flags and times one epoch of Keras training
(Adam, binary cross-entropy, ``--batch-size``) on random patches after a warm-up
epoch, so data building is not counted. Why: training within 60 minutes is a budget
of patch passes, and what a wider model costs per pass on the CPU at hand decides
whether it can have as many (a capacity comparison at equal passes hides that).
``--policy mixed_bfloat16`` measures Keras' bfloat16 compute, which uses AMX where
the CPU has it. Run it on an idle machine: two runs at once share the cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train.__main__ import _add_config_args, config_from  # noqa: E402
from train.fit import model_from_config, set_seeds  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patches", type=int, default=40_000, help="patches in the timed epoch")
    ap.add_argument("--policy", default="float32", choices=["float32", "mixed_bfloat16"])
    _add_config_args(ap)
    args = ap.parse_args(argv)
    cfg = replace(config_from(args), context=False)
    import keras

    set_seeds(cfg.seed)
    keras.mixed_precision.set_global_policy(args.policy)
    model = model_from_config(cfg)
    model.compile(keras.optimizers.Adam(cfg.learning_rate), cfg.loss)
    rng = np.random.default_rng(cfg.seed)
    x = rng.random((args.patches, cfg.patch, cfg.patch, 1), dtype=np.float32)
    y = (x > 0.5).astype(np.float32)
    warm = min(len(x), 32 * cfg.batch_size)
    model.fit(x[:warm], y[:warm], batch_size=cfg.batch_size, epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(x, y, batch_size=cfg.batch_size, epochs=1, verbose=0)
    dt = time.perf_counter() - t
    print(f"{cfg.arch} width {cfg.width} latent {cfg.latent_width or cfg.width} "
          f"refine {cfg.refine} ({model.count_params()} parameters), {args.policy}, "
          f"batch {cfg.batch_size}: {len(x) / dt:.0f} patches/s "
          f"({len(x) / dt * 3600 / 1e6:.1f} M patch passes an hour)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
