"""The classic tutorial as a sanity row: the same denoiser on MNIST digits.

The classic Keras denoising-autoencoder tutorial adds x + 0.5 N(0, 1) noise (clipped
to [0, 1]) to MNIST digits and reaches a validation binary cross-entropy of about
0.10. Only the 10000-image test file is available here, so 9000 digits train and
the last 1000 validate. Digits are white on black, as in the tutorial.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np


def load_idx_images(path: str | os.PathLike[str]) -> np.ndarray:
    """IDX3 file (optionally gzipped) -> (N, 28, 28) float32 in [0, 1]."""
    p = Path(path)
    raw = gzip.open(p).read() if p.suffix == ".gz" else p.read_bytes()
    magic, n, h, w = np.frombuffer(raw[:16], ">u4")
    if magic != 2051:
        raise ValueError(f"{p}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(raw[16:], np.uint8).reshape(n, h, w).astype(np.float32) / 255.0


def run(data_dir: str, epochs: int = 20, seed: int = 1234, verbose: int = 2) -> dict:

    from .fit import set_seeds
    from .model import build_model

    set_seeds(seed)
    x = load_idx_images(Path(data_dir) / "t10k-images-idx3-ubyte.gz")[..., None]
    rng = np.random.default_rng(seed)
    noisy = np.clip(x + 0.5 * rng.standard_normal(x.shape).astype(np.float32), 0, 1)
    xt, xv, nt, nv = x[:9000], x[9000:], noisy[:9000], noisy[9000:]
    model = build_model(28, 32)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    hist = model.fit(nt, xt, validation_data=(nv, xv), epochs=epochs, batch_size=128,
                     shuffle=True, verbose=verbose)
    return {"val_bce": float(hist.history["val_loss"][-1]),
            "best_val_bce": float(min(hist.history["val_loss"])), "epochs": epochs,
            "train_images": len(xt), "val_images": len(xv)}
