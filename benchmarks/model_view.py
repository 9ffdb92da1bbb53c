"""What the page pipeline needs of a model, taken from a real ``Denoiser``: for the
benchmarks that put something of their own in the model's place (an identity, a
recorder, a session with other options) and must feed it pages exactly as the
``Denoiser`` would be fed (its interface, patch size, overlap, batch size, blank-
paper level and bands at once)."""

from __future__ import annotations

import numpy as np

from ocr_denoise.session import Denoiser


class ModelView:
    """``pipeline.Denoiser`` for ``model``'s settings; ``denoise_patches`` runs
    ``model`` itself, and subclasses replace it. ``skip_white`` and ``workers``
    may be set otherwise (None: ``model``'s own)."""

    def __init__(self, model: Denoiser, *, skip_white: float | None | str = "model",
                 workers: int | None = None) -> None:
        self.model = model
        self.overlap = model.overlap
        self.batch_size = model.batch_size
        self.skip_white = model.skip_white if skip_white == "model" else skip_white
        self.workers = model.workers if workers is None else workers

    @property
    def interface(self):  # type: ignore[no-untyped-def]
        return self.model.interface

    @property
    def patch_size(self) -> int:
        return self.model.patch_size

    def denoise_patches(self, patches: np.ndarray,
                        context_windows: np.ndarray | None = None) -> np.ndarray:
        return self.model.denoise_patches(patches, context_windows)
