"""``Denoiser``: the one owner of an onnxruntime session.

It knows about providers, batches and the model's patch shape; of files it knows
only the model path, which ``model.py`` reads and verifies. The session is built
when the ``Denoiser`` is created, so a missing, damaged or ill-fitting model or
an unavailable device fails there, with a ``ModelError`` or ``ProviderError``,
and not on the first page of an unattended run. One session is shared by every
thread that uses the ``Denoiser`` (``InferenceSession.run`` is thread-safe).

Processes. A session is never pickled: a ``Denoiser`` sent to another process
(multiprocessing 'spawn', Dask) travels as its settings and builds its own
session there on first use. A ``Denoiser`` inherited through ``fork`` notices
that ``os.getpid()`` changed and builds a fresh session in the child, because
onnxruntime sessions (their thread pools and arenas) are not fork-safe; its
lock is replaced after fork too, in case another thread held it at that moment.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, overload

import numpy as np

from . import pipeline
from .decision import PageRecord
from .errors import (
    InferenceError,
    ModelError,
    PageError,
    ProviderError,
    SettingsError,
    SettingsTypeError,
)
from .model import (
    BASE_INPUT,
    CONTEXT_INPUT,
    DEFAULT_MODEL,
    SHIPPED_MODELS,
    ModelSpec,
    check_interface,
    is_shipped_model,
    read_model_bytes,
    resolve_model,
    shipped_name,
)
from .parallel import map_ordered
from .tiling import DEFAULT_BATCH_SIZE, DEFAULT_OVERLAP, DEFAULT_SKIP_WHITE

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

#: The level of the "onnxruntime session for ..." line: INFO (the CLI's -v); a
#: host that logs its own run at INFO sets DEBUG with ``session_log_level``.
_session_level: contextvars.ContextVar[int] = contextvars.ContextVar(
    "ocr_denoise_session_log_level", default=logging.INFO)


@contextlib.contextmanager
def session_log_level(level: int) -> Iterator[None]:
    """Log the line that says which session was built (model, provider, bands) at
    ``level`` for sessions built within this block, in this thread or task.

    The OCRmyPDF plugin uses DEBUG, so that OCRmyPDF's normal (INFO) output
    does not show this package's internals; ``-v 1`` shows them. Warnings
    (a CUDA request that fell back to the CPU) stay warnings."""
    token = _session_level.set(level)
    try:
        yield
    finally:
        _session_level.reset(token)

Device = Union[str, Sequence[str]]


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
        raise SettingsError(f"unknown device {device!r}; expected 'auto', 'cpu' or 'cuda'")
    providers = device_key(device)
    assert isinstance(providers, tuple)
    missing = [p for p in providers if p not in available]
    if missing:
        raise ProviderError(
            f"providers {missing} are not offered by this onnxruntime build "
            f"(available: {list(available)})"
        )
    return providers


def device_key(device: object) -> str | tuple[str, ...]:
    """``device`` in a hashable form (a str, or a tuple of provider names).

    Raises ``TypeError`` naming what was given unless ``device`` is a str or a
    non-empty sequence of str.
    """
    if isinstance(device, str):
        return device
    if (isinstance(device, Sequence) and len(device) > 0
            and all(isinstance(p, str) for p in device)):
        return tuple(device)
    raise SettingsTypeError(
        "device must be 'auto', 'cpu', 'cuda' or a non-empty list of onnxruntime "
        f"provider names, got {device!r}"
    )


def model_arg(model: object) -> str | os.PathLike[str] | None:
    """``model`` if it is a path (str or ``os.PathLike``) or None, else a
    ``SettingsTypeError`` naming what was given."""
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise SettingsTypeError(f"model must be a path (str or os.PathLike) or None, "
                                f"got {type(model).__name__}")
    return model


#: The shipped enlargement model ``enlarger="auto"`` takes, when the package ships it.
ENLARGE_MODEL = "enlarge"


def enlarger_arg(value: object) -> str | os.PathLike[str] | None:
    """``enlarger`` resolved: ``"auto"`` is the shipped ``ENLARGE_MODEL`` when there
    is one, else None; None stays None; a path or a model's name is kept. A
    ``SettingsTypeError`` naming what was given otherwise."""
    if isinstance(value, str) and value == "auto":
        return ENLARGE_MODEL if ENLARGE_MODEL in SHIPPED_MODELS else None
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise SettingsTypeError(f"enlarger must be 'auto', a model's name or path, or None, "
                                f"got {type(value).__name__}")
    return value


#: The shipped light model ``light="auto"`` takes, when the package ships it: the
#: model for grainy pages that are not noisy (``Denoiser(light=...)``).
LIGHT_MODEL = "light"


def light_arg(value: object,
              model_path: str | os.PathLike[str]) -> str | os.PathLike[str] | None:
    """``light`` resolved for a ``Denoiser`` whose model is ``model_path``:
    ``"auto"`` is the shipped ``LIGHT_MODEL`` when the package ships one and
    ``model_path`` is the shipped default denoiser (the light model was chosen
    beside that one, not beside a user's model), else None; None stays None; a
    path or a model's name is kept. A ``SettingsTypeError`` naming ``light`` and
    what was given otherwise."""
    if isinstance(value, str) and value == "auto":
        if LIGHT_MODEL in SHIPPED_MODELS and shipped_name(model_path) == DEFAULT_MODEL:
            return LIGHT_MODEL
        return None
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise SettingsTypeError(f"light must be 'auto', a model's name or path, or None, "
                                f"got {type(value).__name__}")
    return value


def white_level(value: object, shipped: bool) -> float | None:
    """``skip_white`` checked and resolved: None, or a real number in (0, 1];
    ``"auto"`` gives ``DEFAULT_SKIP_WHITE`` for the ``shipped`` model, else None.
    A ``SettingsTypeError`` or ``SettingsError`` naming the value otherwise."""
    if isinstance(value, str) and value == "auto":
        return DEFAULT_SKIP_WHITE if shipped else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SettingsTypeError(f"skip_white must be 'auto', a number in (0, 1] or None, got "
                                f"{type(value).__name__} {value!r}")
    if not 0.0 < float(value) <= 1.0:
        raise SettingsError(f"skip_white must be in (0, 1] or None, got {value}")
    return float(value)


#: Where the cgroup file systems are mounted; a test points it at a folder of its own.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The file naming this process's cgroups (``0::/path`` for v2, ``N:cpu,...:/path`` for v1).
PROC_CGROUP = Path("/proc/self/cgroup")


def available_cores() -> int:
    """CPU cores this process may use: its affinity (taskset, cpuset), capped by a
    cgroup CPU quota (``docker run --cpus 2``, systemd ``CPUQuota=``); at least 1.

    The affinity alone sees every host core in a container limited by a quota,
    which would run a band per host core on two cores' worth of time.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    return max(1, min(cores, quota) if quota is not None else cores)


def cgroup_cpu_limit(root: Path | None = None, proc_cgroup: Path | None = None) -> int | None:
    """The CPU quota of this process's cgroup in whole cores (rounded up, at
    least 1), or None where there is none or nothing can be read.

    ``root`` (default ``CGROUP_ROOT``) holds cgroup v2's ``cpu.max`` (``"200000
    100000"``: quota and period in microseconds; ``"max ..."``: no quota) or v1's
    ``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (quota -1: none). The
    process's own cgroup (from ``proc_cgroup``, default ``PROC_CGROUP``) and
    every folder above it up to ``root`` are read, so a quota on a parent slice
    counts too; inside a container the root is usually the container's own cgroup.
    The smallest quota found wins.
    """
    root = CGROUP_ROOT if root is None else root
    proc_cgroup = PROC_CGROUP if proc_cgroup is None else proc_cgroup
    v2_path, v1_path = "/", "/"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in proc_cgroup.read_text().splitlines():
            _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
            if controllers == "":
                v2_path = path or "/"
            elif "cpu" in controllers.split(","):
                v1_path = path or "/"
    limits = []
    for base, path, files in (
        (root, v2_path, ("cpu.max",)),
        (root / "cpu", v1_path, ("cpu.cfs_quota_us", "cpu.cfs_period_us")),
        (root / "cpu,cpuacct", v1_path, ("cpu.cfs_quota_us", "cpu.cfs_period_us")),
    ):
        parts = [p for p in path.split("/") if p and p != ".."]
        for depth in range(len(parts), -1, -1):
            limit = _quota_cores(base.joinpath(*parts[:depth]), files)
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _quota_cores(folder: Path, files: tuple[str, ...]) -> int | None:
    """Whole cores (rounded up) of the quota in ``folder``'s v2 ``cpu.max`` or v1
    quota/period pair named by ``files``; None if absent, unlimited or unreadable."""
    try:
        if len(files) == 1:
            fields = (folder / files[0]).read_text().split()
            quota_text, period_text = fields[0], fields[1] if len(fields) > 1 else "100000"
        else:
            quota_text = (folder / files[0]).read_text().strip()
            period_text = (folder / files[1]).read_text().strip()
        if quota_text == "max":
            return None
        quota, period = int(quota_text), int(period_text)
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None
    if quota <= 0 or period <= 0:  # v1 writes -1 for "no quota"
        return None
    return max(1, -(-quota // period))


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1, or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SettingsTypeError(f"{name} must be an int >= 1, got {type(value).__name__} "
                                f"{value!r}")
    if value < 1:
        raise SettingsError(f"{name} must be >= 1, got {value}")
    return int(value)


@dataclass(frozen=True)
class _Loaded:
    """A built session and what was learnt while building it, published as one
    object so a thread never sees half of a (re)build."""

    session: Any
    input_name: str
    spec: ModelSpec
    providers: tuple[str, ...]
    metadata: dict[str, str]
    pid: int
    workers: int = 1
    #: At most ``workers`` onnxruntime runs at once on the CPU, however many threads
    #: call: each caller's pool would otherwise add its own (None on CUDA).
    slots: threading.BoundedSemaphore | None = None


#: Every live Denoiser, so the at-fork hook can give each a fresh lock.
_instances: weakref.WeakSet[Denoiser] = weakref.WeakSet()
#: Sessions inherited through fork. Never used, and deliberately never freed in
#: the child: their destructors would join thread-pool threads that do not exist
#: here. Their pages are shared copy-on-write with the parent, so this costs little.
_inherited: list[Any] = []


def _after_fork_in_child() -> None:
    for d in list(_instances):
        d._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Denoiser:
    """Denoise pages with one onnxruntime session, built and checked on creation.

    Parameters
    ----------
    model:
        The name of a shipped model (``ocr_denoise.model.SHIPPED_MODELS``:
        ``"denoise"``, the default, ...) or the path of an ONNX model taking
        (N, P, P, 1) or (N, 1, P, P) float32 in [0, 1] (white = 1), N dynamic, and
        returning the same shape. Shipped models are checked against the SHA-256
        the package records; any model with a ``<model>.sha256`` beside it is
        checked against that too.
    device:
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, or a list
        of onnxruntime provider names.
    batch_size:
        Patches per ``session.run`` call. Bounds memory; on CUDA the last batch is
        padded to this size so the GPU always sees one shape.
    overlap:
        Pixels by which neighbouring patches overlap and are blended (0..P/2).
    threads:
        CPU threads for a page; ``None``: every core this process may use. On
        the CPU that many bands of the page (or batches of a
        ``denoise_patches`` call) are denoised at once, each on one thread (its
        own onnxruntime call with one intra-op thread), which ran a 300-DPI page
        about 1.2x faster on 2 cores than one band at a time through 2 intra-op
        threads (``benchmarks/speed.py``, ``benchmarks/ort_settings.py``). On
        CUDA, onnxruntime's intra-op threads, one batch at a time.
    skip_white:
        A patch whose every pixel (after the model's page preprocessing) is at
        least this, in (0, 1], is blank paper: it comes out white without the
        model, which saves its time on margins and gaps. ``"auto"``:
        ``tiling.DEFAULT_SKIP_WHITE`` for the shipped model (measured there: it
        writes nothing darker than 253 of 255 on such patches), ``None`` for any
        other model (the shipped file is recognised by its path, links
        followed; a copy elsewhere counts as another model). ``None`` runs the
        model on every patch.
    enlarger:
        The enlargement model ``upscale`` uses (issue 32): a page it enlarges 2x
        is enlarged by this model (P x P patches of the page as scanned in, 2P x
        2P out, a learned correction to the cubic enlargement) in place of a
        cubic enlargement and the denoiser. The name of a shipped enlargement
        model or a path; ``"auto"`` (the default): the shipped one called
        ``"enlarge"`` when the package ships it, else none; ``None``: none
        (``upscale`` enlarges by bicubic interpolation, as before). Built with
        this ``Denoiser``'s device, batch size, overlap and threads, every patch
        through the model (no ``skip_white``), as ``self.enlarger``.
    light:
        A second model for pages with grainy paper that is not noisy (real
        archive pages, ribbon ink, JPEG grain): the shipped v8 model erodes the
        letters of such pages, while a residual model taught non-local means on
        real pages made archive pages read better (docs/model-history.md). A page
        goes to it where ``guard.light`` says so, asked before the main model's
        damage rules (not smooth pages, not enlarged pages, never with
        ``guard=False``), and comes out as its output (no after-check; record
        rule ``light``). It has a denoiser's interface (scale 1). The name of a
        shipped model or a path; ``"auto"`` (the default): the shipped one called
        ``"light"`` when the package ships it and this ``Denoiser``'s model is
        the shipped default, else none (none ships yet); ``None``: none. Built
        with this ``Denoiser``'s device, batch size, overlap and threads,
        ``skip_white="auto"`` (resolved for the light model itself), as
        ``self.light``.

    Raises ``ModelError`` (a ``ValueError``; ``ModelNotFoundError`` is also a
    ``FileNotFoundError``) if the model is missing, damaged or does not fit,
    ``ProviderError`` if the requested device cannot be had, and
    ``TypeError``/``ValueError`` for bad settings.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: Device = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        overlap: int = DEFAULT_OVERLAP,
        threads: int | None = None,
        skip_white: float | str | None = "auto",
        enlarger: str | os.PathLike[str] | None = "auto",
        light: str | os.PathLike[str] | None = "auto",
    ) -> None:
        model = model_arg(model)
        self.model_path = resolve_model(model)
        self.device = device
        self.batch_size = positive_int("batch_size", batch_size)
        if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)):
            raise SettingsTypeError(f"overlap must be an int, got {type(overlap).__name__} "
                                    f"{overlap!r}")
        self.overlap = int(overlap)
        self.threads = None if threads is None else positive_int("threads", threads)
        light_which = light_arg(light, self.model_path)  # a bad type fails before any work
        self.skip_white = white_level(skip_white, is_shipped_model(self.model_path))
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        _instances.add(self)
        patch = self._ensure_session().spec.patch
        if not 0 <= self.overlap <= patch // 2:
            raise SettingsError(f"overlap must be in [0, {patch // 2}] for the model's "
                             f"{patch}x{patch} patches, got {self.overlap}")
        self.enlarger: Denoiser | None = None
        which = enlarger_arg(enlarger)
        if which is not None:
            self.enlarger = self._companion("enlarger", enlarger, which, skip_white=None)
            if self.enlarger.interface.scale < 2:
                raise SettingsError(f"enlarger={enlarger!r}: {self.enlarger.model_path} is "
                                    "not an enlargement model (its metadata records no "
                                    "scale >= 2)")
        self.light: Denoiser | None = None
        if light_which is not None:
            self.light = self._companion("light", light, light_which, skip_white="auto")
            if self.light.interface.scale != 1:
                raise SettingsError(f"light={light!r}: {self.light.model_path} is not a "
                                    "denoiser (its metadata records scale="
                                    f"{self.light.interface.scale}; the light model must "
                                    "keep the page's size, scale 1)")

    def _companion(self, option: str, given: object, which: str | os.PathLike[str],
                   skip_white: float | str | None) -> Denoiser:
        """The second model ``option`` (``enlarger`` or ``light``) names, ``given`` as
        the caller gave it and ``which`` resolved: a ``Denoiser`` with this one's
        device, batch size, overlap and threads, and no companions of its own. A
        missing, damaged or ill-fitting model raises the ``ModelError`` it raised,
        naming the option first (the user gave two models; say which one failed)."""
        try:
            return Denoiser(which, device=self.device, batch_size=self.batch_size,
                            overlap=self.overlap, threads=self.threads,
                            skip_white=skip_white, enlarger=None, light=None)
        except ModelError as e:
            raise type(e)(f"{option}={given!r}: {e}") from e

    # -- pickling: settings travel, the session never does ---------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_loaded"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("skip_white", None)  # pickled before 0.2.0: the model on every patch
        state.setdefault("enlarger", None)
        state.setdefault("light", None)  # pickled before the light model: none
        self.__dict__.update(state)
        self._lock = threading.Lock()
        _instances.add(self)

    def __repr__(self) -> str:
        return (
            f"Denoiser(model={str(self.model_path)!r}, device={self.device!r}, "
            f"batch_size={self.batch_size}, overlap={self.overlap}, "
            f"skip_white={self.skip_white}"
            + ("" if self.enlarger is None else
               f", enlarger={str(self.enlarger.model_path)!r}")
            + ("" if self.light is None else f", light={str(self.light.model_path)!r}") + ")"
        )

    # -- session ---------------------------------------------------------------
    def _ensure_session(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None and loaded.pid == os.getpid():
            return loaded
        with self._lock:
            loaded = self._loaded
            if loaded is not None and loaded.pid != os.getpid():
                logger.debug("rebuilding the onnxruntime session after fork (pid %d -> %d)",
                             loaded.pid, os.getpid())
                _inherited.append(loaded.session)
                loaded = None
            if loaded is None:
                loaded = self._loaded = self._build_session()
            return loaded

    def _build_session(self) -> _Loaded:
        import onnxruntime as ort

        path = self.model_path
        wanted = resolve_providers(self.device, ort.get_available_providers())
        data = read_model_bytes(path)  # ModelError unless present, sane and checksum-clean
        opts = ort.SessionOptions()
        cores = self.threads if self.threads is not None else available_cores()
        on_cpu = wanted[0] == CPU
        if on_cpu:  # bands in parallel, each run on the thread that calls it
            opts.intra_op_num_threads = 1
        elif self.threads is not None:
            opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(data, opts, providers=list(wanted))
        except MemoryError:
            raise
        except Exception as e:  # onnxruntime's errors derive from Exception only
            raise ModelError(f"{path}: onnxruntime cannot load it as an ONNX model: "
                             f"{_first_line(e)}") from e
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
        metadata = dict(session.get_modelmeta().custom_metadata_map)
        spec = check_interface(path, session.get_inputs(), session.get_outputs(), metadata)
        input_name = spec.input_name
        _probe(session, input_name, spec, path)
        # A CPU fallback of a CUDA request (warned above) keeps onnxruntime's own
        # intra-op threads and one band at a time: correct, not as fast as asked-for CPU.
        workers = cores if on_cpu else 1
        logger.log(_session_level.get(), "onnxruntime session for %s on %s, %d band(s) at a "
                   "time", path, got, workers)
        return _Loaded(session, input_name, spec, got, metadata, os.getpid(), workers,
                       threading.BoundedSemaphore(workers) if on_cpu else None)

    @property
    def patch_size(self) -> int:
        """Side of the square patches the model reads (from its input shape)."""
        return self._ensure_session().spec.patch

    @property
    def workers(self) -> int:
        """Bands of a page denoised at once (threads on the CPU; 1 on CUDA)."""
        return self._ensure_session().workers

    @property
    def providers(self) -> tuple[str, ...]:
        """The execution providers onnxruntime really gave the session."""
        return self._ensure_session().providers

    @property
    def reads_context(self) -> bool:
        """Whether the model reads page context beside each patch (metadata
        ``context``, e.g. ``quarter-v1``): then :meth:`denoise_patches` needs
        ``context_windows`` too (:meth:`denoise` cuts them itself)."""
        return self._ensure_session().spec.context != "none"

    @property
    def metadata(self) -> dict[str, str]:
        """The model's ONNX custom metadata (patch size, training settings, ...)."""
        return dict(self._ensure_session().metadata)

    @property
    def interface(self) -> ModelSpec:
        """What the model reads: patch size, layout, preprocessing, page context."""
        return self._ensure_session().spec

    @property
    def model_version(self) -> str | None:
        """The model's own version (metadata ``model_version``, e.g. ``"v8"``),
        independent of the package version; None for models that record none."""
        return self._ensure_session().metadata.get("model_version")

    # -- inference -------------------------------------------------------------
    def denoise_patches(self, patches: np.ndarray,
                        context_windows: np.ndarray | None = None) -> np.ndarray:
        """(N, P, P) float32 in [0, 1] -> (N, P, P) float32, N >= 0.

        The patches go to the model as they are: the page-wide preprocessing a
        model may ask for (``metadata["preprocess"]``, e.g. ``flatten-v1``)
        needs the whole page, so only :meth:`denoise` applies it. A model that
        reads page context (``metadata["context"]``, e.g. ``quarter-v1``) also
        needs ``context_windows``, (N, P, P) float32 (``ocr_denoise.context``);
        a model that does not refuses them.

        Runs in batches of at most ``batch_size``, ``workers`` of them at once;
        on CUDA, short batches are padded to ``batch_size`` so the GPU sees one
        shape. Raises
        ``InferenceError`` if onnxruntime fails (e.g. out of memory: lower
        ``batch_size``) or the model returns a wrong shape, NaN or infinity.
        """
        loaded = self._ensure_session()
        spec = loaded.spec
        p, q = spec.patch, spec.scale * spec.patch
        if patches.ndim != 3 or patches.shape[1:] != (p, p):
            raise PageError(f"expected patches of shape (N, {p}, {p}), got {patches.shape}")
        wants = spec.context != "none" or spec.base != "none"
        what = (f"page context (context={spec.context})" if spec.base == "none" else
                f"its base enlargement (base={spec.base}, rescale.cubic_windows)")
        if not wants and context_windows is not None:
            raise PageError(f"{self.model_path} reads no page context; "
                            "context_windows must be None")
        if wants:
            if context_windows is None:
                raise PageError(f"{self.model_path} reads {what}: pass context_windows, "
                                "or denoise whole pages with denoise()")
            context_windows = np.asarray(context_windows)
            if context_windows.shape != (len(patches), q, q):
                raise PageError(f"context_windows has shape {context_windows.shape}; expected "
                                + (f"the patches' {patches.shape}" if q == p
                                   else f"{(len(patches), q, q)}"))
        n = patches.shape[0]
        pad_to_fixed = CUDA in loaded.providers
        out = np.empty((n, q, q), dtype=np.float32)

        def batch(b0: int) -> None:  # writes out[b0 : b0 + batch_size] only
            chunk = patches[b0 : b0 + self.batch_size]
            k = len(chunk)
            x = np.ascontiguousarray(chunk, dtype=np.float32).reshape(spec.shape(k))
            c = None
            if context_windows is not None:
                c = np.ascontiguousarray(context_windows[b0 : b0 + self.batch_size],
                                         dtype=np.float32).reshape(spec.out_shape(k)
                                                                   if q != p else x.shape)
            if pad_to_fixed and k < self.batch_size:
                x = np.concatenate([x, np.ones(spec.shape(self.batch_size - k), np.float32)])
                c = None if c is None else np.concatenate(
                    [c, np.ones((self.batch_size - k, *c.shape[1:]), np.float32)])
            with loaded.slots or contextlib.nullcontext():
                y = self._run(loaded, x, c)
            out[b0 : b0 + k] = y[:k].reshape(k, q, q)

        # Batches on the session's workers, as a page's bands run (one intra-op thread
        # each on the CPU); one batch, as the tiler asks, runs in the caller's thread.
        for _ in map_ordered(batch, range(0, n, self.batch_size), loaded.workers):
            pass
        return out

    def _run(self, loaded: _Loaded, x: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        feed = {loaded.input_name: x}
        if c is not None:
            feed[BASE_INPUT if loaded.spec.base != "none" else CONTEXT_INPUT] = c
        try:
            y = loaded.session.run(None, feed)[0]
        except MemoryError:
            raise
        except Exception as e:
            raise InferenceError(
                f"{self.model_path}: onnxruntime failed on a batch of {len(x)} patches "
                f"({_first_line(e)}); if it ran out of memory, lower batch_size "
                f"(now {self.batch_size})"
            ) from e
        want = loaded.spec.out_shape(len(x))
        if y.shape != want:
            raise InferenceError(f"{self.model_path}: model returned shape {y.shape} for "
                                 f"input {x.shape}; expected {want}")
        if not np.isfinite(y).all():
            bad = int(np.count_nonzero(~np.isfinite(y)))
            raise InferenceError(f"{self.model_path}: model returned {bad} NaN or infinite "
                                 f"values for a batch of {len(x)} patches")
        return y

    @overload
    def denoise(self, img: np.ndarray, *, dpi: object = ..., rescale: bool = ...,
                guard: bool = ..., upscale: pipeline.Upscale = ...,
                explain: Literal[False] = ...) -> np.ndarray: ...
    @overload
    def denoise(self, img: np.ndarray, *, dpi: object = ..., rescale: bool = ...,
                guard: bool = ..., upscale: pipeline.Upscale = ...,
                explain: Literal[True]) -> tuple[np.ndarray, PageRecord]: ...

    def denoise(self, img: np.ndarray, *, dpi: object = None, rescale: bool = True,
                guard: bool = True, upscale: pipeline.Upscale = None,
                explain: bool = False) -> np.ndarray | tuple[np.ndarray, PageRecord]:
        """Denoise a page array; returns an H x W uint8 page (white = 255), or
        an enlarged one with ``upscale``.

        ``img``: H x W gray, H x W x 3 BGR or H x W x 4 BGRA (alpha composited onto
        white); uint8, uint16 or float in [0, 1]; any size from 1 x 1; any memory
        layout, read-only is fine. It is never modified. ``dpi``: the page's
        resolution (one number or (x, y)), if known: with ``rescale`` a page
        above 600 DPI is denoised at 300 DPI and resampled back, exactly as
        ``denoise_page`` does. ``guard``: leave a page the model was measured to
        make worse as it is (``ocr_denoise.guard``); False applies the model to
        every page. ``upscale``: ``"auto"`` enlarges a page of small text 2x
        (the result is then that size), as in ``denoise_page``. The page runs
        through ``ocr_denoise.pipeline``
        (in bands, ``workers`` at once, so memory beyond the input and output
        stays bounded by ``batch_size``, ``workers`` and the page width);
        ``denoise_page(img, denoiser=d)`` gives the same bytes. ``explain``:
        return ``(page, record)``, the ``decision.PageRecord`` saying what was
        done to the page (denoised, left as it came, enlarged) and why.
        """
        page, rec = pipeline.explain(self, img, dpi if rescale else None, guard=guard,
                                     upscale=upscale)
        return (page, rec) if explain else page


def _probe(session: Any, input_name: str, spec: ModelSpec, path: Path) -> None:
    """Run a white and a black patch through a new session; ``ModelError`` unless
    the model returns finite values of the input's shape for a batch of 2 (which
    also proves the batch dimension really is dynamic)."""
    x = np.ones(spec.shape(2), np.float32)
    x[1] = 0.0
    feed = {input_name: x}
    if spec.context != "none":
        feed[CONTEXT_INPUT] = x
    if spec.base != "none":
        b = np.ones(spec.out_shape(2), np.float32)
        b[1] = 0.0
        feed[BASE_INPUT] = b
    try:
        y = session.run(None, feed)[0]
    except MemoryError:
        raise
    except Exception as e:
        raise ModelError(f"{path}: fails on a probe batch of 2 patches: {_first_line(e)}") from e
    y = np.asarray(y)
    if y.shape != spec.out_shape(2):
        raise ModelError(f"{path}: returns shape {y.shape} for input {x.shape}; expected "
                         f"{spec.out_shape(2)}")
    if not np.isfinite(y).all():
        raise ModelError(f"{path}: returns NaN or infinite values for a white or black patch")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:500] if text else type(e).__name__
