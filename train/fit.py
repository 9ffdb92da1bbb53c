"""Fit the denoiser: build patches, train with a fixed seed, checkpoint every epoch."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import data, synth


@dataclass
class TrainConfig:
    seed: int = 1234
    patch: int = 28
    width: int = 32
    skips: bool = False
    arch: str = "classic"  # or "shuffle": no full-resolution layers, ~4x faster
    decoder_width: int = 0
    latent_width: int = 0  # 0: same as width
    output_kernel: int = 3  # shuffle arch: kernel of the last convolution
    separable_output: bool = False  # shuffle arch: that convolution depthwise-separable
    refine: int = 0  # shuffle arch: width of a full-resolution refinement head (0: none)
    # shuffle arch: also read the page around each patch (ocr_denoise.context); with init
    # of a model that does not, the branch is grown onto it (model.grow_context)
    context: bool = False
    context_width: int = 16  # channels of the context branch's two convolutions
    page_norm: bool = False  # flatten the background and stretch contrast first
    # side of the synthetic pages; patches per page grow with the area (200 at 256)
    page_size: int = 256
    synthetic_patches: int = 20000
    real_patches: int = 0
    pairs: list[str] = field(default_factory=list)
    ink_fraction: float = 0.7
    damage_fraction: float = 0.0  # share of patches centred on false ink (see data.sample_patches)
    # share centred on marks drawn uniformly: punctuation as often as letters
    mark_fraction: float = 0.0
    # synthetic targets drawn in black ink, like the real pairs' clean sides
    black_ink: bool = False
    val_fraction: float = 0.1
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 1e-3
    loss: str = "binary_crossentropy"
    init: str = ""  # a .keras checkpoint to start from (fine-tuning); empty: random init
    max_damages: int = 3
    kind_weights: str = ""  # e.g. "bleed_through=3,salt_pepper=2"; empty: uniform (synth.make_pair)
    # share of synthetic pages drawn from train.scans' kinds (small print, forms, receipts,
    # photocopies, phone captures); 0: none, as every recipe up to v8
    scan_fraction: float = 0.0
    # share of synthetic pages drawn from train.real_damage's kinds (typewriter ribbon,
    # bitonal office scans, receipts and copies on real paper); 0: none, as up to v8
    real_fraction: float = 0.0
    # folders of real pages whose selection half gives paper textures (real_damage.PaperBank)
    paper: list[str] = field(default_factory=list)
    # real-damage targets keep the damaged page's ink darkness (real_damage.match_ink)
    keep_ink: bool = False
    # real-damage targets are the page as the scanner saw it, noise and paper removed,
    # ink and blur kept (real_damage.make(soft=True))
    soft_targets: bool = False
    # soft targets keep the damaged paper's level: grain and noise go, brightness stays
    keep_paper: bool = False
    # real pages (their selection half) taught by a classical filter (data.TEACHERS):
    # patches of the page in, the filter's output as the target
    teacher: str = "nlmeans"
    teacher_pages: list[str] = field(default_factory=list)
    teacher_patches: int = 0
    # only the teacher pages the runtime's light route takes (data.takes_light_route)
    teacher_route_only: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def set_seeds(seed: int) -> None:
    import keras
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    keras.utils.set_random_seed(seed)


def build_dataset(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y) float32 arrays of shape (N, P, P, 1), shuffled with the config's seed.

    With ``context``, X is (N, P, P, 2), the patch then its context window, and X
    and Y are float16. Why: the second channel makes stage 1's 875k patches 8.2 GB
    in float32, and Keras copies its inputs into tensors, so float32 would not fit
    in 24 GB; float16 rounds values in [0.5, 1] by at most 2**-12 (finer than the
    1/255 of a scan), and less below 0.5."""
    if cfg.synthetic_patches and cfg.page_size < 2 * cfg.patch:
        raise ValueError(f"--page-size {cfg.page_size} is below two patches "
                         f"({2 * cfg.patch} px): a synthetic page must hold a line of text")
    # Parsed whatever the mix, so a wrong spec fails now even on a run with no
    # synthetic pages, not silently when it is later reused with them.
    kind_weights = synth.parse_kind_weights(cfg.kind_weights)
    rng = np.random.default_rng(cfg.seed)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if cfg.synthetic_patches:
        parts.append(data.synthetic_patches(cfg.synthetic_patches, rng, cfg.patch,
                                            ink_fraction=cfg.ink_fraction,
                                            max_damages=cfg.max_damages,
                                            page_norm=cfg.page_norm,
                                            black_ink=cfg.black_ink,
                                            damage_fraction=cfg.damage_fraction,
                                            kind_weights=kind_weights,
                                            mark_fraction=cfg.mark_fraction,
                                            context=cfg.context,
                                            scan_fraction=cfg.scan_fraction,
                                            real_fraction=cfg.real_fraction,
                                            paper=cfg.paper,
                                            keep_ink=cfg.keep_ink,
                                            soft_targets=cfg.soft_targets,
                                            keep_paper=cfg.keep_paper,
                                            page_size=cfg.page_size,
                                            per_page=round(200 * (cfg.page_size / 256) ** 2)))
    if cfg.pairs and cfg.real_patches:
        parts.append(data.folder_patches(cfg.pairs, cfg.real_patches, rng, cfg.patch,
                                         cfg.ink_fraction, page_norm=cfg.page_norm,
                                         damage_fraction=cfg.damage_fraction,
                                         mark_fraction=cfg.mark_fraction,
                                         context=cfg.context))
    if cfg.teacher_pages and cfg.teacher_patches:
        parts.append(data.teacher_patches(cfg.teacher_pages, cfg.teacher_patches, rng,
                                          cfg.patch, cfg.ink_fraction, cfg.teacher,
                                          cfg.teacher_route_only))
    if not parts:
        raise ValueError("no training data: set synthetic_patches or pairs with real_patches")
    # Shuffled as concatenate-then-permute would, but each part is scattered straight
    # into its place and dropped: peak memory twice the data set, not three times
    # (the shipped stage 1 holds 5.5 GB of patches; a context run's parts are float32,
    # its data set float16, so its peak is 1.5 times the float32 size).
    n = sum(len(x) for x, _ in parts)
    perm = rng.permutation(n)
    dest = np.empty(n, np.intp)
    dest[perm] = np.arange(n)  # row j of the concatenation goes to dest[j]
    dtype = np.float16 if cfg.context else np.float32
    X = np.empty((n, cfg.patch, cfg.patch, 2 if cfg.context else 1), dtype)
    Y = np.empty((n, cfg.patch, cfg.patch, 1), dtype)
    start = 0
    while parts:
        x, y = parts.pop(0)
        rows = dest[start : start + len(x)]
        X[rows], Y[rows, ..., 0] = x.reshape(len(x), *X.shape[1:]), y
        start += len(x)
        del x, y
    return X, Y


def model_from_config(cfg: TrainConfig):
    """A freshly initialised Keras model of the architecture ``cfg`` names
    (``cfg.init`` is not looked at: ``fit`` loads checkpoints itself)."""
    from .model import build_model

    return build_model(cfg.patch, cfg.width, cfg.latent_width or None, skips=cfg.skips,
                       arch=cfg.arch, decoder_width=cfg.decoder_width,
                       output_kernel=cfg.output_kernel, refine=cfg.refine,
                       separable_output=cfg.separable_output,
                       context_width=cfg.context_width if cfg.context else 0)


class RunConfig(Protocol):
    """What the shared training steps read of a run's config (``TrainConfig``, and
    ``train.enlarge.EnlargeConfig``)."""

    learning_rate: float
    loss: str
    epochs: int

    def to_json(self) -> str: ...


def compile_for_training(model, cfg: RunConfig, steps: int) -> None:
    """Compile ``model`` as ``fit`` trains it: Adam with the learning rate decaying
    along a cosine to 5% over ``steps`` batches, ``cfg.loss``, and an RMSE metric."""
    import keras

    lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=cfg.loss,
                  metrics=[keras.metrics.RootMeanSquaredError(name="rmse")])


#: Written after every epoch, next to ``last.keras``: what a resumed run needs.
PROGRESS = "progress.json"


def fit(cfg: TrainConfig, out_dir: str | os.PathLike[str], verbose: int = 1):
    """Train and save ``model.keras`` (best by validation loss) into ``out_dir``.

    Returns (model, history dict). Writes ``config.json`` and ``history.json`` so a
    run can be audited and exported later.

    Resumable: after every epoch ``last.keras`` (weights and optimiser state, so the
    learning-rate schedule goes on where it was) and ``progress.json`` (epochs done,
    the history so far, the best validation loss) are written, each atomically. A
    run started again into the same ``out_dir`` with the same config rebuilds the
    same data (the seed fixes it) and goes on from the next epoch; with a different
    config it refuses rather than mix two runs. Killed mid-epoch, that epoch is redone.
    """
    import keras

    from .model import CONTEXT_PREFIX, grow_context

    if cfg.context and cfg.arch != "shuffle" and not cfg.init:
        raise ValueError(f"--context true needs --arch shuffle, not {cfg.arch!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = _read_progress(out, cfg)
    set_seeds(cfg.seed)
    t0 = time.time()
    X, Y = build_dataset(cfg)
    n_val = max(1, int(len(X) * cfg.val_fraction))
    Xv, Yv, Xt, Yt = X[:n_val], Y[:n_val], X[n_val:], Y[n_val:]
    if verbose:
        print(f"data: {len(Xt)} train / {len(Xv)} val patches in {time.time() - t0:.1f}s")
    if progress:
        model = keras.models.load_model(out / "last.keras")
        if verbose:
            print(f"resuming {out} after epoch {progress['epochs']} of {cfg.epochs}")
    elif cfg.init:
        model = keras.models.load_model(cfg.init)
        if int(model.inputs[0].shape[1]) != cfg.patch:
            raise ValueError(f"{cfg.init}: patch {model.inputs[0].shape[1]} != config patch "
                             f"{cfg.patch}")
        if cfg.context and len(model.inputs) == 1:
            model = grow_context(model, cfg.context_width)  # starts as the checkpoint
        elif not cfg.context and len(model.inputs) > 1:
            raise ValueError(f"{cfg.init}: reads page context, but the config says "
                             "context=False")
        elif cfg.context:
            width = model.get_layer(f"{CONTEXT_PREFIX}conv1").filters
            if width != cfg.context_width:
                raise ValueError(f"{cfg.init}: its context branch is {width} wide, but the "
                                 f"config says --context-width {cfg.context_width}")
    if not progress:
        if not cfg.init:
            model = model_from_config(cfg)
        compile_for_training(model, cfg, max(1, len(Xt) // cfg.batch_size) * cfg.epochs)
    done, past, callbacks = run_callbacks(out, cfg, progress)

    noisy_rmse = float(np.sqrt(np.mean((Xv[..., :1] - Yv.astype(np.float32)) ** 2)))
    if done < cfg.epochs:
        if cfg.context:
            train_data, val_data = _tensor_batches(X, Y, n_val, cfg.batch_size, cfg.seed)
            del X, Y, Xt, Yt, Xv, Yv  # the tensors hold the only copy now
            model.fit(train_data, validation_data=val_data, epochs=cfg.epochs,
                      initial_epoch=done, shuffle=False, callbacks=callbacks,
                      verbose=verbose)
        else:
            model.fit(Xt, Yt, validation_data=(Xv, Yv), epochs=cfg.epochs,
                      initial_epoch=done, batch_size=cfg.batch_size, shuffle=True,
                      callbacks=callbacks, verbose=verbose)
    return finish_run(out, past, t0, noisy_val_rmse=noisy_rmse)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_callbacks(out: Path, cfg: RunConfig, progress: dict | None,
                  every_epoch: bool = False) -> tuple[int, dict[str, list[float]], list[Any]]:
    """Write ``config.json`` and return (epochs already done, the history so far, the
    Keras callbacks of a resumable run): ``model.keras`` kept best by validation loss
    (its best so far carried over from ``progress``), then ``last.keras`` and
    ``progress.json`` after every epoch (``_progress_callback``). ``every_epoch``:
    also each epoch's model as ``epochNN.keras`` (NN from 01, continuing across a
    resume), to choose among them by OCR rather than by validation loss."""
    import keras

    _atomic_write(out / "config.json", cfg.to_json())
    ckpt = keras.callbacks.ModelCheckpoint(str(out / "model.keras"), monitor="val_loss",
                                           save_best_only=True)
    done = progress["epochs"] if progress else 0
    past: dict[str, list[float]] = progress["history"] if progress else {}
    if progress and progress.get("best") is not None:
        ckpt.best = float(progress["best"])
    callbacks = [ckpt, _progress_callback(out, cfg, past, ckpt)]
    if every_epoch:
        callbacks.insert(1, keras.callbacks.ModelCheckpoint(str(out / "epoch{epoch:02d}.keras")))
    return done, past, callbacks


def finish_run(out: Path, past: dict[str, list[float]], t0: float, **figures: float
               ) -> tuple[Any, dict]:
    """Write ``history.json`` (the epochs' history, ``figures`` such as the untrained
    baseline's RMSE, and the wall seconds since ``t0``) and return (the best model,
    as ``model.keras`` holds it, and that history)."""
    import keras

    history: dict = {k: list(v) for k, v in past.items()}
    history.update(figures)
    history["seconds"] = time.time() - t0
    (out / "history.json").write_text(json.dumps(history, indent=1))
    return keras.models.load_model(out / "model.keras"), history


def _read_progress(out: Path, cfg: RunConfig) -> dict | None:
    """The progress a killed run left in ``out`` (None: start afresh). Raises
    ``ValueError`` when ``out`` holds a run of another config. A setting added to the
    config class since the run started counts as its default there (new settings
    default to what runs did before them), so such a run still resumes."""
    path = out / PROGRESS
    if not path.exists() or not (out / "last.keras").exists():
        return None
    progress = json.loads(path.read_text())
    saved = progress.get("config")
    if isinstance(saved, dict):
        saved = {**json.loads(type(cfg)().to_json()), **saved}
    if saved != json.loads(cfg.to_json()):
        raise ValueError(f"{out} holds a run of another config; resume it with that config, "
                         "or train into a new folder")
    return progress


def _progress_callback(out: Path, cfg: RunConfig, history: dict[str, list[float]], ckpt):
    """A Keras callback that, after each epoch, writes ``last.keras`` and then
    ``progress.json`` naming it, both atomic, so a kill at any moment leaves a pair
    that agrees (a kill between the two writes leaves the previous progress with a
    newer model: that epoch is redone from it). ``history`` is extended in place."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for k, v in (logs or {}).items():
                history.setdefault(k, []).append(float(v))
            tmp = out / "last.tmp.keras"
            self.model.save(tmp)
            os.replace(tmp, out / "last.keras")
            best = ckpt.best
            _atomic_write(out / PROGRESS, json.dumps({
                "epochs": epoch + 1, "config": json.loads(cfg.to_json()), "history": history,
                "best": None if best is None or not np.isfinite(best) else float(best)}))

    return Progress()


def _tensor_batches(X: np.ndarray, Y: np.ndarray, n_val: int, batch_size: int, seed: int):
    """(train, validation) ``tf.data`` batches ``((patch, context), target)``, float32,
    of a context run's float16 data set (rows ``n_val:`` and ``:n_val``; training
    reshuffled every epoch from ``seed``).

    Why not hand Keras the arrays: it copies them into tensors, and the two channels
    split for its two inputs are further copies; given stage 1's float16 arrays (875k
    patches, 4.1 GB) it was killed at 24.4 GB as training began. Here the data set is
    one float16 tensor; batches are gathered, split and cast as needed."""
    import tensorflow as tf

    xs, ys = tf.convert_to_tensor(X), tf.convert_to_tensor(Y)

    def take(rows):
        x = tf.cast(tf.gather(xs, rows), tf.float32)
        return (x[..., :1], x[..., 1:]), tf.cast(tf.gather(ys, rows), tf.float32)

    def part(lo: int, hi: int, shuffle: bool):
        rows = tf.data.Dataset.range(lo, hi)
        if shuffle:
            rows = rows.shuffle(hi - lo, seed=seed, reshuffle_each_iteration=True)
        return rows.batch(batch_size).map(take, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)

    return part(n_val, len(X), True), part(0, n_val, False)
