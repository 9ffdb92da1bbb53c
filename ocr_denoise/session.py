"""``Denoiser``: the one owner of an onnxruntime session.

It knows about providers, batches and the model's patch shape; it knows nothing
about files. The session is built lazily on first use under a lock, shared by
every thread that uses the ``Denoiser`` (``InferenceSession.run`` is thread-safe),
and never pickled: a ``Denoiser`` sent to another process (multiprocessing, Dask)
travels as its settings and builds its own session there.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from .model import default_model_path
from .normalize import check_page, to_gray_float, to_uint8
from .tiling import TileGrid, apply_tiled

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

Device = Union[str, Sequence[str]]


class ProviderError(RuntimeError):
    """An explicitly requested execution provider cannot be used."""


def resolve_providers(device: Device, available: Sequence[str]) -> tuple[str, ...]:
    """Map ``device`` to the onnxruntime provider list to request.

    ``"auto"`` takes CUDA when this onnxruntime build offers it, else CPU. ``"cpu"``
    is CPU only. ``"cuda"`` demands CUDA (with CPU behind it for the few ops CUDA
    lacks) and raises ``ProviderError`` if the build has no CUDA provider: a
    user who asked for the GPU must not silently get the CPU. A sequence is
    passed through as explicit onnxruntime provider names.
    """
    if isinstance(device, str):
        d = device.lower()
        if d == "auto":
            return (CUDA, CPU) if CUDA in available else (CPU,)
        if d == "cpu":
            return (CPU,)
        if d in ("cuda", "gpu"):
            if CUDA not in available:
                raise ProviderError(
                    "device='cuda' was requested but this onnxruntime build offers only "
                    f"{list(available)}; install the 'gpu' extra (onnxruntime-gpu) "
                    "with a matching CUDA, or use device='cpu'"
                )
            return (CUDA, CPU)
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu' or 'cuda'")
    providers = tuple(device)
    missing = [p for p in providers if p not in available]
    if missing:
        raise ProviderError(
            f"providers {missing} are not offered by this onnxruntime build "
            f"(available: {list(available)})"
        )
    return providers


class Denoiser:
    """Denoise pages with one lazily built onnxruntime session.

    Parameters
    ----------
    model:
        Path of an ONNX model taking (N, P, P, 1) or (N, 1, P, P) float32 in [0, 1]
        (white = 1) and returning the same shape. Default: the shipped model.
    device:
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, or a list
        of onnxruntime provider names.
    batch_size:
        Patches per ``session.run`` call. Bounds memory; on CUDA the last batch is
        padded to this size so the GPU always sees one shape.
    overlap:
        Pixels by which neighbouring patches overlap and are blended (0..P/2).
    threads:
        onnxruntime intra-op threads; ``None`` lets onnxruntime use all cores.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: Device = "auto",
        batch_size: int = 512,
        overlap: int = 6,
        threads: int | None = None,
    ) -> None:
        self.model_path = Path(model) if model is not None else default_model_path()
        self.device = device
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.overlap = int(overlap)
        self.threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._input_name = ""
        self._input_shape: tuple[int, ...] = ()
        self.providers: tuple[str, ...] = ()
        self.metadata: dict[str, str] = {}

    # -- pickling: settings travel, the session never does ---------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Denoiser(model={str(self.model_path)!r}, device={self.device!r}, "
            f"batch_size={self.batch_size}, overlap={self.overlap})"
        )

    # -- session ---------------------------------------------------------------
    def _ensure_session(self) -> Any:
        session = self._session
        if session is not None:
            return session
        with self._lock:
            if self._session is None:
                self._session = self._build_session()
            return self._session

    def _build_session(self) -> Any:
        import onnxruntime as ort

        wanted = resolve_providers(self.device, ort.get_available_providers())
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model file not found: {self.model_path}")
        opts = ort.SessionOptions()
        if self.threads is not None:
            opts.intra_op_num_threads = int(self.threads)
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(self.model_path), opts, providers=list(wanted))
        got = tuple(session.get_providers())
        if wanted[0] not in got:
            # onnxruntime falls back silently (e.g. CUDA libraries missing): say so.
            if self.device == "auto" or not isinstance(self.device, str):
                logger.warning(
                    "asked onnxruntime for %s but the session runs on %s",
                    wanted[0], got,
                )
            else:
                raise ProviderError(
                    f"device={self.device!r} requested {wanted[0]} but onnxruntime "
                    f"created the session on {list(got)} (are the CUDA/cuDNN libraries "
                    "installed?)"
                )
        logger.info("onnxruntime session for %s on %s", self.model_path, got)
        inp = session.get_inputs()[0]
        self._input_name = inp.name
        self._input_shape = tuple(d if isinstance(d, int) else -1 for d in inp.shape)
        self.providers = got
        self.metadata = dict(session.get_modelmeta().custom_metadata_map)
        return session

    @property
    def patch_size(self) -> int:
        """Side of the square patches the model reads (from its input shape)."""
        self._ensure_session()
        return int(self._input_shape[2])

    # -- inference -------------------------------------------------------------
    def denoise_patches(self, patches: np.ndarray) -> np.ndarray:
        """(N, P, P) float32 in [0, 1] -> (N, P, P) float32 in [0, 1].

        Runs in batches of at most ``batch_size``; on CUDA, short batches are
        padded to ``batch_size`` so the GPU sees one shape.
        """
        session = self._ensure_session()
        n, p = patches.shape[0], patches.shape[1]
        shape4 = (1, p, p) if self._input_shape[1] == 1 else (p, p, 1)
        pad_to_fixed = CUDA in self.providers
        out = np.empty((n, p, p), dtype=np.float32)
        for b0 in range(0, n, self.batch_size):
            chunk = patches[b0 : b0 + self.batch_size]
            k = len(chunk)
            x = np.ascontiguousarray(chunk, dtype=np.float32).reshape((k, *shape4))
            if pad_to_fixed and k < self.batch_size:
                x = np.concatenate([x, np.ones((self.batch_size - k, *shape4), np.float32)])
            y = session.run(None, {self._input_name: x})[0]
            out[b0 : b0 + k] = y[:k].reshape(k, p, p)
        return out

    def denoise(self, img: np.ndarray) -> np.ndarray:
        """Denoise a page array; returns an H x W uint8 page (white = 255).

        ``img``: H x W gray, H x W x 3 BGR or H x W x 4 BGRA (alpha composited onto
        white); uint8, uint16 or float in [0, 1]; any size from 1 x 1. The page is
        converted, tiled, denoised and stitched one band at a time, so memory
        beyond the input and output stays bounded by ``batch_size``.
        """
        spec = check_page(img)
        grid = TileGrid(spec.height, spec.width, self.patch_size, self.overlap)
        out = np.empty((spec.height, spec.width), dtype=np.uint8)

        def source(y0: int, y1: int) -> np.ndarray:
            return to_gray_float(img[y0:y1], spec)

        def sink(y0: int, y1: int, rows: np.ndarray) -> None:
            out[y0:y1] = to_uint8(rows)

        apply_tiled(source, sink, grid, self.denoise_patches, batch_size=self.batch_size)
        return out
