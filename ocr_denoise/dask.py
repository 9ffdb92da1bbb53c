"""Denoise many files on a Dask cluster: ``ocr-denoise scans/ -o clean/ --scheduler ADDR``.

Needs the ``dask`` extra (``pip install 'ocr-denoise[dask]'``: ``dask.distributed``)
and a filesystem the client and every worker see at the same paths (NFS, a
cluster file system, one machine): workers read the inputs and write the
outputs themselves, so pages never travel through the scheduler.

It is ``batch.denoise_folder`` with Dask workers instead of local processes, and
shares its parts: ``batch.plan`` turns inputs into (input, output) tasks,
``batch.process_file`` denoises one file into atomic writes (temporary name,
then rename) and returns its ``FileResult``, and the run ends in the same
``BatchReport``. Existing outputs are skipped, so the same command resumes an
interrupted run.

Sessions: each worker process builds one onnxruntime session, on its first
file, through ``api.get_denoiser`` (cached per process, built under a lock, so
all the worker's threads share it) with one intra-op thread per Dask thread.
Only file names and settings are sent to workers, never a session.

Failures: a bad file is a failed ``FileResult`` with its reason, as in
``denoise_folder``. A worker that dies (killed, out of memory) is restarted by
its nanny and Dask retries its files elsewhere. Dask gives up on a file after
``distributed.scheduler.allowed-failures`` + 1 worker deaths (4 by default),
counting every death while the file was queued on the worker; such files are
retried once more one at a time, and only a file that then kills workers on
its own is reported failed. A missing model, a GPU that is not there, or tesseract missing
with ``ocr`` is checked on a worker first and raised for the whole run.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence, Union

from . import batch
from . import io as imgio
from .batch import BatchReport, FileOptions, FileResult, PathLike, Task
from .session import Denoiser

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

#: onnxruntime intra-op threads per session: Dask parallelises by task, one per
#: worker thread, so each task's inference uses one core.
THREADS_PER_SESSION = 1


# -- on the workers ----------------------------------------------------------------


def _denoiser(opts: FileOptions) -> Denoiser:
    """This worker process's session for ``opts`` (built on first use)."""
    from .api import get_denoiser

    return get_denoiser(opts.model, device=opts.device, threads=opts.threads)


def _check_worker(opts: FileOptions) -> tuple[type[BaseException], str] | None:
    """Run on one worker before the files: build its session (so a bad model or
    device fails the run once, clearly) and, with ``ocr``, find tesseract.

    Returns None, or the error as (class, message): Dask sends exceptions back
    through tblib, which cannot rebuild ``ModelNotFoundError`` (a ``ValueError``
    and a ``FileNotFoundError``) and would hand the client a bare ``Exception``.
    """
    try:
        _denoiser(opts)
        if opts.ocr:
            batch._check_ocr()
    except Exception as e:
        return type(e), str(e)
    return None


def _work(task: Task, opts: FileOptions) -> FileResult:
    """Denoise one file on a worker; never raises for a problem with the file,
    nor for a session this worker cannot build (a failed ``FileResult`` each)."""
    try:
        denoiser = _denoiser(opts)
    except Exception as e:
        return FileResult(task.src, "failed", task.dst, reason=f"{type(e).__name__}: {e}")
    return batch.process_file(task, denoiser, opts)


def _raise(error: tuple[type[BaseException], str]) -> None:
    """Raise a worker's error (from ``_check_worker``) here, as its own class."""
    cls, message = error
    try:
        exc = cls(message)
    except Exception:
        exc = RuntimeError(f"{cls.__name__}: {message}")
    raise exc


# -- on the client -----------------------------------------------------------------


@contextlib.contextmanager
def _connect(scheduler: Union[str, "Client"]) -> Iterator["Client"]:
    """A ``Client`` for ``scheduler``: an address (connected here, closed after)
    or a ``Client`` the caller owns (used as is)."""
    try:
        from distributed import Client
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError("running on a Dask cluster needs the 'dask' extra: "
                           "pip install 'ocr-denoise[dask]'") from e
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address such as 'tcp://host:8786' or a "
                        f"distributed.Client, got {type(scheduler).__name__}")
    client = Client(scheduler, set_as_default=False)
    try:
        yield client
    finally:
        client.close()


def _failure(task: Task, exc: BaseException) -> FileResult:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        reason = ("the worker process died while processing this file, on every worker "
                  "that tried it alone (crashed, or killed e.g. for lack of memory)")
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return FileResult(task.src, "failed", task.dst, reason=reason)


def denoise_files(
    tasks: Sequence[Task] | Sequence[tuple[PathLike, PathLike]],
    *,
    scheduler: Union[str, "Client"],
    early: Sequence[FileResult] = (),
    overwrite: bool = False,
    device: str = "auto",
    model: PathLike | None = None,
    ocr: bool = False,
    ocr_lang: str = "eng",
    max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
    progress: bool = False,
    in_flight: int | None = None,
) -> BatchReport:
    """Denoise (input, output) pairs on the cluster at ``scheduler``.

    ``tasks``: ``batch.Task``s, or pairs whose output names are used as given.
    ``early``: failures found while planning, reported as they are.
    ``in_flight``: most files submitted at once (default: 4 per worker thread,
    at least 64), so a million files do not sit in the scheduler's memory.
    Other options as for ``batch.denoise_folder``. ``model`` must be a path
    the workers can read. Returns a ``BatchReport`` (``jobs`` is the number
    of worker threads); raises only for problems with the whole run.
    """
    t0 = time.perf_counter()
    items = [t if isinstance(t, Task) else Task(Path(t[0]), Path(t[1]), fixed_name=True)
             for t in tasks]
    items, early_failures = batch._check_tasks(items, list(early))
    todo, skipped = batch.split_skipped(items, overwrite=overwrite, ocr=ocr)
    opts = FileOptions(str(model) if model is not None else None, device,
                       THREADS_PER_SESSION, overwrite, ocr, ocr_lang, max_pixels)
    with _connect(scheduler) as client:
        threads = sum(client.nthreads().values()) or 1
        report = BatchReport(jobs=threads, threads=THREADS_PER_SESSION)
        for r in early_failures + skipped:
            report.add(r)
        if todo:
            error = client.submit(_check_worker, opts, pure=False).result()
            if error is not None:
                _raise(error)
        out_dirs = batch.prepare_output_folders(todo)
        if todo:
            logger.info("%d file(s) to do, %d skipped; %d worker thread(s)",
                        len(todo), len(skipped), threads)
        on_result, close = batch.result_sink(report, progress=progress, total=len(todo))
        window = in_flight or max(64, 4 * threads)
        try:
            left, interrupted = _submit_all(client, todo, opts, window, on_result)
        finally:
            close()
            for folder in out_dirs:  # what killed workers left half-written
                imgio.remove_stale_temps(folder)
    return batch.finish_report(report, left, interrupted, t0)


def _submit_all(client: "Client", todo: list[Task], opts: FileOptions, window: int,
                on_result) -> tuple[list[Task], bool]:
    """Run ``todo`` on the cluster, reporting each result through ``on_result``;
    returns (tasks not started, interrupted).

    Dask blames a dead worker on every task queued on it, not only the one it
    was running, so an innocent file can share a crashing file's ``KilledWorker``.
    Files that end so are retried one at a time afterwards (nothing else queued
    beside them, as ``batch`` does), and only a file that kills workers on its
    own is reported failed.
    """
    from distributed import KilledWorker

    killed: list[Task] = []

    def first_pass(t: Task, r: FileResult | BaseException) -> None:
        if isinstance(r, KilledWorker):
            logger.warning("workers died while %s was queued on them; retrying it alone",
                           t.src)
            killed.append(t)
        else:
            on_result(r if isinstance(r, FileResult) else _failure(t, r))

    def last_pass(t: Task, r: FileResult | BaseException) -> None:
        on_result(r if isinstance(r, FileResult) else _failure(t, r))

    left, interrupted = _run_window(client, todo, opts, window, first_pass)
    if interrupted or not killed:
        return left, interrupted
    return _run_window(client, sorted(killed, key=lambda t: str(t.src)), opts, 1, last_pass)


def _run_window(client: "Client", todo: list[Task], opts: FileOptions, window: int,
                handle) -> tuple[list[Task], bool]:
    """Keep up to ``window`` files submitted until all are done; ``handle(task,
    FileResult or the exception)`` gets each outcome. Returns (tasks not
    started, interrupted)."""
    from distributed import as_completed

    pending = list(reversed(todo))
    running: dict = {}

    def submit() -> object:
        t = pending.pop()
        f = client.submit(_work, t, opts, key=f"denoise-{t.src.name}-{uuid.uuid4().hex}")
        running[f] = t
        return f

    done_iter = as_completed([submit() for _ in range(min(window, len(pending)))])
    try:
        for f in done_iter:
            t = running.pop(f)
            try:
                r: FileResult | BaseException = f.result()
            except Exception as e:  # raised on the worker, or the worker died
                r = e
            handle(t, r)
            f.release()
            if pending:
                done_iter.add(submit())
    except KeyboardInterrupt:
        logger.warning("interrupted: cancelling %d file(s) in progress", len(running))
        client.cancel(list(running))
        return sorted(list(running.values()) + pending, key=lambda t: str(t.src)), True
    return [], False


def denoise_folder(
    src: PathLike | Sequence[PathLike],
    dst: PathLike,
    *,
    scheduler: Union[str, "Client"],
    recursive: bool = False,
    suffix: str = "",
    format: str = "png",
    overwrite: bool = False,
    device: str = "auto",
    model: PathLike | None = None,
    ocr: bool = False,
    ocr_lang: str = "eng",
    max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
    progress: bool = False,
) -> BatchReport:
    """``batch.denoise_folder`` on a Dask cluster: the same inputs, outputs
    (byte for byte), skipping and report, with the files spread over the
    workers of ``scheduler`` (an address such as ``"tcp://10.0.0.5:8786"``, or
    a ``distributed.Client``) instead of local processes.

    Paths must mean the same on the client and on every worker.
    """
    t0 = time.perf_counter()
    tasks, failures = batch.plan(src, dst, recursive=recursive, suffix=suffix, format=format)
    if not tasks and not failures:
        logger.warning("no image files found in %s", src)
    report = denoise_files(tasks, scheduler=scheduler, early=failures, overwrite=overwrite,
                           device=device, model=model, ocr=ocr, ocr_lang=ocr_lang,
                           max_pixels=max_pixels, progress=progress)
    report.seconds = time.perf_counter() - t0
    return report
