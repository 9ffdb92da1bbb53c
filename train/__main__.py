"""Command line: ``python -m train fit ...`` then ``python -m train export RUN_DIR``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import fields
from pathlib import Path

from . import recipe
from .fit import TrainConfig


def add_config_args(p: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Add a ``--flag`` for each ``TrainConfig`` field (or each one named in ``only``)."""
    for f in fields(TrainConfig):
        if only is not None and f.name not in only:
            continue
        name = "--" + f.name.replace("_", "-")
        if f.name == "pairs":
            p.add_argument(name, nargs="*", default=[],
                           help="folders with noisy/clean or orig/gt pairs (real data)")
        elif f.name == "paper":
            p.add_argument(name, nargs="*", default=[],
                           help="folders of real pages: their selection half gives paper "
                           "textures for --real-fraction pages")
        elif f.name == "teacher_pages":
            p.add_argument(name, nargs="*", default=[],
                           help="folders of real pages: their selection half, with "
                           "--teacher's output as targets, gives --teacher-patches")
        elif isinstance(f.default, bool):
            p.add_argument(name, type=lambda v: v.lower() in ("1", "true", "yes"),
                           default=f.default, help=f"true/false, default {f.default}")
        else:
            typ = type(f.default)
            p.add_argument(name, type=typ, default=f.default, help=f"default {f.default}")


def config_from(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that ``fit``'s parsed command-line arguments describe (fields
    without a flag in ``args`` keep their defaults)."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)
                          if hasattr(args, f.name)})


def fit_parser() -> argparse.ArgumentParser:
    """``python -m train fit``'s arguments, for checking argument lists (tests, recipes)."""
    p = argparse.ArgumentParser(prog="python -m train fit")
    p.add_argument("--out", required=True, help="run folder for checkpoints and logs")
    p.add_argument("--quiet", action="store_true")
    add_config_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fit", help="train a model into --out", parents=[fit_parser()],
                   add_help=False)
    ep = sub.add_parser("export", help="convert a run's best model to ONNX")
    ep.add_argument("run_dir")
    ep.add_argument("--output", default=None, help="default: the package's shipped model")
    ep.add_argument("--model-version", default=None,
                    help="the model's own version to record (metadata model_version, e.g. v9)")
    ep.add_argument("--lighten", type=float, default=1.0,
                    help="residual models: scale the correction where it lightens (default 1)")
    ep.add_argument("--darken", type=float, default=1.0,
                    help="residual models: scale the correction where it darkens (default 1)")
    vp = sub.add_parser("set-version", help="record model_version in an exported model's "
                        "metadata (no re-export; the checksum is rewritten)")
    vp.add_argument("model", help="the .onnx file")
    vp.add_argument("version", help="e.g. v8")
    sp = sub.add_parser("split-output", help="rewrite an exported model's last convolution "
                        "as 1x1 + depthwise shift + sum (same function, faster; train/graph.py)")
    sp.add_argument("model", help="the .onnx file, rewritten in place with its checksum")
    ip = sub.add_parser("import-onnx", help="rebuild an exported model as a Keras checkpoint "
                        "(OUT/model.keras + config.json) to fine-tune it")
    ip.add_argument("model", help="the .onnx file (e.g. ocr_denoise/models/denoiser.onnx)")
    ip.add_argument("--out", required=True, help="run folder to write")
    rp = sub.add_parser("recipe", help="the shipped model's two stages (train/recipe.py)")
    rp.add_argument("--out", required=True,
                    help="run folder: stage 1 goes to OUT/base, stage 2 to OUT")
    rp.add_argument("--data", default=None, help="the shared data folder (default ../shared/data)")
    rp.add_argument("--init", default=None,
                    help="a stage-1 checkpoint: run stage 2 only, from it")
    rp.add_argument("--hold-out", default=None, choices=recipe.DIBCO_YEARS,
                    help="stage 2 without this DIBCO year (cross-validation)")
    rp.add_argument("--stage2-args", default="",
                    help="more fit flags for stage 2, one quoted string; they override the "
                    "recipe's (to cross-validate a candidate: benchmarks/dibco_folds.py)")
    rp.add_argument("--quiet", action="store_true")
    enp = sub.add_parser("enlarge", help="train the learned 2x enlargement model "
                         "(train/enlarge.py) into --out; resumable")
    enp.add_argument("--out", required=True, help="run folder for checkpoints and logs")
    enp.add_argument("--quiet", action="store_true")
    from .enlarge import EnlargeConfig
    for f in fields(EnlargeConfig):
        enp.add_argument("--" + f.name.replace("_", "-"), type=type(f.default),
                         default=f.default, help=f"default {f.default}")
    eep = sub.add_parser("export-enlarge", help="convert an enlarge run's best model to ONNX")
    eep.add_argument("run_dir")
    eep.add_argument("--output", required=True, help="e.g. ocr_denoise/models/enlarger.onnx")
    eep.add_argument("--model-version", default=None)
    eep.add_argument("--checkpoint", default="model.keras",
                     help="which of the run's models: model.keras (best by validation "
                     "loss, the default), last.keras or epochNN.keras")
    mp = sub.add_parser("mnist", help="sanity row: the classic denoiser on MNIST digits")
    mp.add_argument("--data", default="../shared/data/mnist",
                    help="folder with t10k-images-idx3-ubyte.gz")
    mp.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args(argv)

    if args.cmd == "fit":
        from .fit import fit
        cfg = config_from(args)
        # Keras' live bar on a terminal, one line per epoch in logs and CI.
        verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
        _, hist = fit(cfg, args.out, verbose=verbose)
        print(json.dumps({"val_rmse": hist["val_rmse"][-1],
                          "best_val_rmse": min(hist["val_rmse"]),
                          "noisy_val_rmse": hist["noisy_val_rmse"],
                          "seconds": round(hist["seconds"], 1)}))
        return 0
    if args.cmd == "enlarge":
        from .enlarge import fit_enlarger
        ecfg = EnlargeConfig(**{f.name: getattr(args, f.name) for f in fields(EnlargeConfig)})
        _, hist = fit_enlarger(ecfg, args.out,
                               verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2))
        print(json.dumps({"val_rmse": hist["val_rmse"][-1], "best_val_rmse":
                          min(hist["val_rmse"]), "cubic_val_rmse": hist["cubic_val_rmse"],
                          "seconds": round(hist["seconds"], 1)}))
        return 0
    if args.cmd == "export-enlarge":
        import keras

        from .export import export, load_config
        model = keras.models.load_model(Path(args.run_dir) / args.checkpoint)
        diff = export(model, args.output, load_config(args.run_dir),
                      model_version=args.model_version)
        print(f"wrote {args.output} (max |keras - onnx| = {diff:.3g})")
        return 0
    if args.cmd == "recipe":
        data = Path(args.data) if args.data else recipe.DEFAULT_DATA
        quiet = ["--quiet"] if args.quiet else []
        init = args.init
        if init is None:
            base = f"{args.out}/base"
            if main(["fit", "--out", base, *quiet, *recipe.stage1(data)]):
                return 1
            init = f"{base}/model.keras"
        return main(["fit", "--out", args.out, *quiet,
                     *recipe.stage2(init, data, args.hold_out,
                                    shlex.split(args.stage2_args))])
    if args.cmd == "export":
        import keras

        from .export import DEFAULT_OUTPUT, export, init_configs, load_config
        model = keras.models.load_model(f"{args.run_dir}/model.keras")
        out = args.output or DEFAULT_OUTPUT
        config = load_config(args.run_dir)
        extra = init_configs(config)
        if (args.lighten, args.darken) != (1.0, 1.0):
            from .model import scale_correction
            model = scale_correction(model, args.lighten, args.darken)
            extra["correction_scale"] = f"lighten {args.lighten:g} darken {args.darken:g}"
        diff = export(model, out, config, extra=extra, model_version=args.model_version)
        print(f"wrote {out} (max |keras - onnx| = {diff:.3g})")
        return 0
    if args.cmd == "import-onnx":
        from google.protobuf.message import DecodeError

        from .restore import RestoreError, restore
        try:
            print(f"wrote {restore(args.model, args.out)}")
        except (RestoreError, OSError, ValueError, TypeError, DecodeError) as e:
            # a model it cannot rebuild, or no model at all: say which file, and why
            print(f"train import-onnx: {args.model}: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "split-output":
        from google.protobuf.message import DecodeError

        from .export import ExportMismatch, split_file
        try:
            diff = split_file(args.model)
        except (ExportMismatch, OSError, ValueError, DecodeError) as e:
            print(f"train split-output: {args.model}: {e}", file=sys.stderr)
            return 1
        print(f"{args.model}: nothing to split (already split, or no k x k last convolution)"
              if diff is None else f"{args.model}: split (max |before - after| = {diff:.3g})")
        return 0
    if args.cmd == "set-version":
        from .export import set_model_version
        set_model_version(args.model, args.version)
        print(f"{args.model}: model_version = {args.version}")
        return 0
    if args.cmd == "mnist":
        from .mnist import run
        print(json.dumps(run(args.data, args.epochs, verbose=1 if sys.stdout.isatty() else 2)))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
