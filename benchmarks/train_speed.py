"""How many patches a second does training make on this machine, per architecture?

    .venv/bin/python benchmarks/train_speed.py --arch shuffle --width 32
    .venv/bin/python benchmarks/train_speed.py --arch shuffle --width 64
    .venv/bin/python benchmarks/train_speed.py --arch shuffle --width 32 --policy mixed_bfloat16

Takes ``python -m train fit``'s architecture and optimiser flags, compiles the model
as ``fit`` does (``fit.compile_for_training``: Adam, ``--loss``, the RMSE metric) and
times one epoch of ``--timed-patches`` random patches after 32 warm-up batches.
Data building, the per-epoch validation pass and checkpoints are not counted; v8's
stage 1 (16 epochs of 787,500 patches, 2,135 s with data building) ran at 5,900
patches/s or more, against the 7,900 this prints for its architecture. Why: training
within 60 minutes is a budget of patch passes, and what a wider model costs per pass
on the CPU at hand decides how many it can have; comparing models at equal passes
(``ablation.sh``) hides that.
``--policy mixed_bfloat16`` measures Keras' bfloat16 compute (which oneDNN can run
on AMX where the CPU has it); ``fit`` has no such option. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train.__main__ import add_config_args, config_from  # noqa: E402
from train.fit import compile_for_training, model_from_config, set_seeds  # noqa: E402

#: The fit flags that change what one training pass costs.
MODEL_FLAGS = ("seed", "patch", "width", "skips", "arch", "decoder_width", "latent_width",
               "output_kernel", "refine", "batch_size", "learning_rate", "loss")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timed-patches", type=int, default=40_000,
                    help="random patches in the timed epoch")
    ap.add_argument("--policy", default="float32", choices=["float32", "mixed_bfloat16"])
    add_config_args(ap, only=MODEL_FLAGS)
    args = ap.parse_args(argv)
    cfg = config_from(args)
    import keras

    set_seeds(cfg.seed)
    keras.mixed_precision.set_global_policy(args.policy)
    model = model_from_config(cfg)
    n = args.timed_patches
    compile_for_training(model, cfg, max(1, n // cfg.batch_size))
    rng = np.random.default_rng(cfg.seed)
    x = rng.random((n, cfg.patch, cfg.patch, 1), dtype=np.float32)
    y = (x > 0.5).astype(np.float32)
    warm = min(n, 32 * cfg.batch_size)
    model.fit(x[:warm], y[:warm], batch_size=cfg.batch_size, epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(x, y, batch_size=cfg.batch_size, epochs=1, verbose=0)
    rate = n / (time.perf_counter() - t)
    print(f"{cfg.arch} width {cfg.width} latent {cfg.latent_width or cfg.width} "
          f"refine {cfg.refine} ({model.count_params()} parameters), {args.policy}, "
          f"batch {cfg.batch_size}: {rate:.0f} patches/s "
          f"({rate * 3600 / 1e6:.1f} M patch passes an hour, training steps only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
