"""The learned 2x enlargement (issue 32): small print made bigger than a cubic can.

The model reads two inputs: ``noisy``, a P x P patch of the page as scanned, and
``base``, the page's cubic 2x enlargement (``ocr_denoise.rescale.enlarged``, the
very function the runtime uses, cut at the matching 2P x 2P output window). It
returns ``clean`` = clip(base + correction, 0, 1), 2P x 2P, where the correction
is a few 3x3 convolutions at P x P on the patch and the base's 2x2 pixel blocks
(space-to-depth: the cubic's four sub-pixel values as four channels), a last
convolution to 4 channels whose kernel and bias start at zero, and depth-to-space
to 2P x 2P. So an untrained model *is* the cubic enlargement, and training can only
depart from it where that pays. Width 16: onnxruntime runs convolutions in blocks
of 16 output channels on AVX-512, so 24 would cost about what 32 does.

Training pairs (``page_pair``) are made the way real low-resolution scans were:
clean text drawn at four times the scan's scale (prose in serif, sans and mono,
or a form with rules, boxes and underlines: ``train.synth.render_page``,
``train.scans.render_form``), shifted by a random whole number of those pixels
(a random sub-pixel phase of the scan), then

* the target: that page area-averaged to half (x-heights 10-20 px, anti-aliased
  grey, strokes as drawn: never bolder);
* the input: optionally binarised (a bitonal office scan or fax), optically
  blurred, area-averaged to a quarter (x-heights 5-10 px, as FUNSD's 90-DPI
  forms), mild noise, sometimes JPEG, rounded to 8 bits;
* the base: ``rescale.enlarged`` of that 8-bit input page, 2x.

Patches: X at (y, x) of the input page, B and Y at (2y, 2x) of the base and target.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ocr_denoise import rescale

from . import scans, synth

#: The output scale.
SCALE = 2
#: Name of the last convolution, the one that starts at zero.
CORRECTION = "correction"
#: What ``base`` is, recorded in the exported model's metadata (``base``).
BASE = rescale.CUBIC


def build_enlarger(patch: int = 28, width: int = 16, depth: int = 4):
    """Inputs ``noisy`` (P, P, 1) and ``base`` (2P, 2P, 1), output ``clean`` (2P, 2P, 1),
    all float32 in [0, 1], white = 1; ``patch`` even. See the module docstring."""
    import keras
    from keras import layers

    from .model import _depth_to_space, _space_to_depth

    if patch % 2:
        raise ValueError(f"patch must be even, got {patch}")
    q = SCALE * patch
    noisy = keras.Input((patch, patch, 1), name="noisy")
    base = keras.Input((q, q, 1), name="base")
    f = layers.Concatenate()([noisy, _space_to_depth(base, q)])
    for _ in range(depth):
        f = layers.Conv2D(width, 3, activation="relu", padding="same")(f)
    c = layers.Conv2D(4, 3, padding="same", kernel_initializer="zeros",
                      bias_initializer="zeros", name=CORRECTION)(f)
    out = layers.Add()([base, _depth_to_space(c, q)])
    out = layers.ReLU(max_value=1.0, name="clean")(out)
    return keras.Model([noisy, base], out, name="ocr_enlarger")


# -- training pairs -----------------------------------------------------------------


def _area(x: np.ndarray, factor: int) -> np.ndarray:
    h, w = x.shape[0] // factor, x.shape[1] // factor
    return cv2.resize(x[: h * factor, : w * factor], (w, h), interpolation=cv2.INTER_AREA)


def page_pair(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """One training page: (X, B, Y) = the size x size 8-bit input page as float32,
    its cubic 2x enlargement (``rescale.enlarged``, as float32) and the 2size x 2size
    clean target. See the module docstring for how each is made."""
    hi = 4 * size + 4  # drawn at 4x the input's scale, with room for the phase shift
    if rng.random() < 0.35:
        clean = scans.render_form(rng, hi, hi, x_height=float(rng.uniform(20, 40))).clean
    else:
        family = str(rng.choice(["serif", "sans", "mono", "serif"]))  # mono: typewriters
        clean = synth.render_page(rng, hi, hi, x_height=float(rng.uniform(20, 40)),
                                  family=family, ink=float(rng.uniform(0.0, 0.2)),
                                  margin=int(rng.integers(4, 40))).clean
    dy, dx = (int(v) for v in rng.integers(0, 4, 2))  # the scan's sub-pixel phase
    clean = np.ascontiguousarray(clean[dy : dy + 4 * size, dx : dx + 4 * size])
    paper, ink = 1.0, 0.0
    if rng.random() < 0.3:  # grey paper, lighter ink: the target keeps the same levels
        paper, ink = float(rng.uniform(0.85, 0.98)), float(rng.uniform(0.0, 0.3))
    levels = np.float32(paper - ink)
    target = ink + levels * _area(clean, 2)
    deg = clean
    if rng.random() < 0.4:  # a bitonal scan (office scanner, fax): thresholded on the way
        soft = cv2.GaussianBlur(deg, (0, 0), float(rng.uniform(0.5, 2.0)))
        deg = (soft > rng.uniform(0.4, 0.7)).astype(np.float32)
    deg = cv2.GaussianBlur(deg, (0, 0), float(rng.uniform(0.3, 2.0)))  # the optics
    x = ink + levels * _area(deg, 4)
    if rng.random() < 0.6:
        x = x + float(rng.uniform(0.0, 0.03)) * rng.standard_normal(x.shape).astype(np.float32)
    x = np.clip(x, 0.0, 1.0)
    if rng.random() < 0.4:
        x = synth._jpeg(x, int(rng.integers(40, 96)))
    x8 = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    b8 = rescale.enlarged(x8, SCALE)
    return (x8.astype(np.float32) / 255.0, b8.astype(np.float32) / 255.0,
            np.clip(target, 0.0, 1.0).astype(np.float32))


def sample_patches(n: int, rng: np.random.Generator, patch: int = 28, size: int = 128,
                   per_page: int = 40, ink_fraction: float = 0.85
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` patch triples (X (n, P, P), B (n, 2P, 2P), Y (n, 2P, 2P)) from fresh pages;
    ``ink_fraction`` of them centred where the target has ink."""
    q = SCALE * patch
    X = np.empty((n, patch, patch), np.float32)
    B = np.empty((n, q, q), np.float32)
    Y = np.empty((n, q, q), np.float32)
    i = 0
    while i < n:
        x, b, y = page_pair(rng, size)
        inky = np.argwhere(_area(y, SCALE) < 0.6)
        for _ in range(min(per_page, n - i)):
            if len(inky) and rng.random() < ink_fraction:
                cy, cx = inky[int(rng.integers(len(inky)))]
                r = int(np.clip(cy - patch // 2, 0, size - patch))
                c = int(np.clip(cx - patch // 2, 0, size - patch))
            else:
                r, c = (int(v) for v in rng.integers(0, size - patch + 1, 2))
            X[i] = x[r : r + patch, c : c + patch]
            B[i] = b[SCALE * r : SCALE * r + q, SCALE * c : SCALE * c + q]
            Y[i] = y[SCALE * r : SCALE * r + q, SCALE * c : SCALE * c + q]
            i += 1
    return X, B, Y


# -- training ------------------------------------------------------------------------


@dataclass
class EnlargeConfig:
    seed: int = 1234
    patch: int = 28
    width: int = 16
    depth: int = 4
    patches: int = 40000
    page_size: int = 128
    per_page: int = 40
    val_fraction: float = 0.1
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    loss: str = "mse"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def fit_enlarger(cfg: EnlargeConfig, out_dir: str | os.PathLike[str], verbose: int = 1):
    """Train into ``out_dir``: ``model.keras`` (best by validation loss), each epoch's
    model as ``epochNN.keras`` (issue 32: checkpoints are chosen by tesseract on real
    selection pages, not by pixel error alone; ``python -m train export-enlarge RUN
    --checkpoint epochNN.keras``), ``last.keras`` and ``progress.json`` after every
    epoch (a run started again with the same config goes on from the next epoch, as
    ``train.fit.fit``'s do), ``config.json`` and ``history.json``. Returns (best
    model, history)."""
    import keras

    from .fit import _read_progress, compile_for_training, finish_run, run_callbacks, set_seeds

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = _read_progress(out, cfg)
    set_seeds(cfg.seed)
    t0 = time.time()
    rng = np.random.default_rng(cfg.seed)
    X, B, Y = sample_patches(cfg.patches, rng, cfg.patch, cfg.page_size, cfg.per_page)
    perm = rng.permutation(len(X))
    X, B, Y = X[perm, ..., None], B[perm, ..., None], Y[perm, ..., None]
    n_val = max(1, int(len(X) * cfg.val_fraction))
    if verbose:
        print(f"data: {len(X) - n_val} train / {n_val} val patches in {time.time() - t0:.1f}s")
    if progress:
        model = keras.models.load_model(out / "last.keras")
    else:
        model = build_enlarger(cfg.patch, cfg.width, cfg.depth)
        compile_for_training(model, cfg,
                             max(1, (len(X) - n_val) // cfg.batch_size) * cfg.epochs)
    done, past, callbacks = run_callbacks(out, cfg, progress, every_epoch=True)
    cubic_rmse = float(np.sqrt(np.mean((B[:n_val] - Y[:n_val]) ** 2)))
    if done < cfg.epochs:
        model.fit([X[n_val:], B[n_val:]], Y[n_val:],
                  validation_data=([X[:n_val], B[:n_val]], Y[:n_val]), epochs=cfg.epochs,
                  initial_epoch=done, batch_size=cfg.batch_size, shuffle=True,
                  callbacks=callbacks, verbose=verbose)
    return finish_run(out, past, t0, cubic_val_rmse=cubic_rmse)
