"""Run a folder job on a Dask cluster: ``ocr-denoise scans/ -o clean/ --scheduler ADDR``.

Needs the ``dask`` extra (``pip install 'ocr-denoise[dask]'``: ``dask.distributed``)
and a filesystem the client and every worker see at the same paths (NFS, a
cluster file system, one machine): workers read the inputs and write the
outputs themselves, so pages never travel through the scheduler.

``DaskExecutor`` is an executor (``ocr_denoise.executors``) like the local ones:
``denoise_folder(src, dst, scheduler=ADDR)`` plans the same tasks, each worker
runs the same ``work.process_file`` (atomic writes: temporary name, then
rename) and the run ends in the same ``BatchReport``, byte for byte the same
outputs. Existing outputs are skipped, so the same command resumes an
interrupted run. ``distributed`` is imported only when a ``DaskExecutor`` starts.

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
its own is reported failed. A missing model or enlargement model, a GPU that is not there,
or tesseract missing with ``ocr`` is checked on a worker first and raised for the whole run.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Union

from .errors import MissingDependencyError, SettingsTypeError
from .executors import (
    POLL,
    STOP,
    DiskFullWatch,
    Executor,
    _interrupted,
    _StopNotice,
    _Waiting,
    claimed_process_file,
)
from .plan import Task
from .report import FileResult, OnResult, shown
from .session import Denoiser
from .work import RunOptions, check_denoiser, check_ocr

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

#: Cores per session (``Denoiser(threads=...)``: one band at a time, one intra-op
#: thread): Dask parallelises by task, one per worker thread, so each task uses one core.
THREADS_PER_SESSION = 1


# -- on the workers ----------------------------------------------------------------


def _denoiser(options: RunOptions) -> Denoiser:
    """This worker process's session for ``options`` (built on first use)."""
    from .api import get_denoiser

    return get_denoiser(options.model, device=options.device, threads=THREADS_PER_SESSION,
                        enlarger=options.enlarger)


def _check_worker(options: RunOptions) -> tuple[type[BaseException], str] | None:
    """Run on one worker before the files: build its session (so a bad model or
    device fails the run once, clearly) and, with ``ocr``, find tesseract and its
    ``ocr_lang`` languages (``RunOptions`` checks them where it is made, but the
    client may have no tesseract, or other languages than the workers).

    Returns None, or the error as (class, message): Dask sends exceptions back
    through tblib, which cannot rebuild ``ModelNotFoundError`` (a ``ValueError``
    and a ``FileNotFoundError``) and would hand the client a bare ``Exception``.
    """
    try:
        check_denoiser(_denoiser(options))
        if options.ocr:
            check_ocr(options.ocr_lang)
    except Exception as e:
        return type(e), str(e)
    return None


def _work(task: Task, options: RunOptions) -> FileResult | None:
    """Denoise one file on a worker; never raises for a problem with the file,
    nor for a session this worker cannot build (a failed ``FileResult`` each).
    None: another run holds the output's claim (``atomic.output_claim``)."""
    try:
        denoiser = _denoiser(options)
    except Exception as e:
        return FileResult(task.src, "failed", task.dst, reason=f"{type(e).__name__}: {e}")
    return claimed_process_file(task, denoiser, options)


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
def _connect(scheduler: Union[str, Client]) -> Iterator[Client]:
    """A ``Client`` for ``scheduler``: an address (connected here, closed after)
    or a ``Client`` the caller owns (used as is)."""
    try:
        from distributed import Client
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("running on a Dask cluster needs the 'dask' extra: "
                                     "pip install 'ocr-denoise[dask]'") from e
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str):
        raise SettingsTypeError(f"scheduler must be an address such as 'tcp://host:8786' or a "
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


class DaskExecutor(Executor):
    """The files of a run spread over the workers of a Dask cluster.

    ``scheduler``: an address such as ``"tcp://10.0.0.5:8786"`` (connected when
    the run starts, closed after) or a ``distributed.Client`` the caller owns
    (used as is). ``in_flight``: most files submitted at once (default: 4 per
    worker thread, at least 64), so a million files do not sit in the
    scheduler's memory. ``jobs`` is the cluster's number of worker threads.
    Paths (inputs, outputs, ``RunOptions.model`` and ``enlarger``) must mean the
    same on the client and on every worker.
    """

    def __init__(self, scheduler: Union[str, Client], *, in_flight: int | None = None) -> None:
        self.scheduler = scheduler
        self.in_flight = in_flight
        self.threads = THREADS_PER_SESSION
        self._stack = contextlib.ExitStack()
        self._client: Client | None = None

    def start(self, options: RunOptions, files: int) -> None:
        self._client = client = self._stack.enter_context(_connect(self.scheduler))
        self.jobs = sum(client.nthreads().values()) or 1
        if files:
            error = client.submit(_check_worker, options, pure=False).result()
            if error is not None:
                _raise(error)

    def run(self, todo: list[Task], options: RunOptions,
            on_result: OnResult) -> tuple[list[Task], bool]:
        assert self._client is not None, "start() first"
        window = self.in_flight or max(64, 4 * self.jobs)
        with STOP.running():
            return _submit_all(self._client, todo, options, window, on_result)

    def close(self) -> None:
        self._client = None
        self._stack.close()

    def describe(self) -> str:
        return f"{self.jobs} Dask worker thread(s)"


def _submit_all(client: Client, todo: list[Task], options: RunOptions, window: int,
                on_result: OnResult) -> tuple[list[Task], bool]:
    """Run ``todo`` on the cluster, reporting each result through ``on_result``;
    returns (tasks not started, interrupted).

    Dask blames a dead worker on every task queued on it, not only the one it
    was running, so an innocent file can share a crashing file's ``KilledWorker``.
    Files that end so are retried one at a time afterwards (nothing else queued
    beside them, as ``executors.ProcessExecutor`` does), and only a file that kills workers on its
    own is reported failed.
    """
    from distributed import KilledWorker

    killed: list[Task] = []
    watch = DiskFullWatch()  # a full output disk starts nothing more
    on_result = watch.wrap(on_result)

    def first_pass(t: Task, r: FileResult | BaseException) -> None:
        if isinstance(r, KilledWorker):
            logger.warning("workers died while %s was queued on them; retrying it alone",
                           shown(t.src))
            killed.append(t)
        else:
            on_result(r if isinstance(r, FileResult) else _failure(t, r))

    def last_pass(t: Task, r: FileResult | BaseException) -> None:
        on_result(r if isinstance(r, FileResult) else _failure(t, r))

    left, interrupted = _run_window(client, todo, options, window, first_pass, watch)
    if interrupted or not killed:
        return left, interrupted
    if watch.full:
        watch.not_started(sorted(killed, key=lambda t: str(t.src)))
        return [], False
    return _run_window(client, sorted(killed, key=lambda t: str(t.src)), options, 1, last_pass,
                       watch)


def _run_window(client: Client, todo: list[Task], options: RunOptions, window: int,
                handle: Callable[[Task, Any], None],
                watch: DiskFullWatch) -> tuple[list[Task], bool]:
    """Keep up to ``window`` files submitted until all are done; ``handle(task,
    FileResult or the exception)`` gets each outcome. Once ``watch`` finds the
    output disk full, nothing more is submitted and the rest go to
    ``watch.not_started``. Files another run holds (a None result) are submitted
    again once nothing else is left. A stop request (``executors.STOP``) submits
    nothing more and cancels the files the scheduler has not given a worker yet;
    a second one cancels the rest too (a worker still finishes the file it is on:
    a Dask task cannot be interrupted). Returns (tasks not started, interrupted)."""
    from distributed import as_completed

    pending = list(reversed(todo))
    running: dict = {}
    waiting = _Waiting()
    notice = _StopNotice()
    trimmed = False

    def submit() -> object:
        t = pending.pop()
        f = client.submit(_work, t, options,  # the key shows in Dask's own logs
                          key=f"denoise-{shown(t.src.name)}-{uuid.uuid4().hex}")
        running[f] = t
        return f

    def not_started() -> list[Task]:
        return sorted([*running.values(), *pending, *waiting.tasks], key=lambda t: str(t.src))

    # loop=: a Client made from an address is not the process's default client,
    # and as_completed would otherwise look for one ("No clients found").
    done_iter = as_completed([submit() for _ in range(min(window, len(pending)))],
                             loop=client.loop)
    while running or pending or waiting:
        try:
            if STOP.level and not trimmed:  # what no worker has started yet: not started
                trimmed = True
                busy = {k for keys in client.processing().values() for k in keys}
                queued = [f for f in running if f.key not in busy]
                client.cancel(queued)
                pending += [running.pop(f) for f in queued]
            level = notice.level(list(running.values()))
            if level >= 2 or (level and not running):
                client.cancel(list(running))
                return not_started(), True
            if done_iter.has_ready():
                finished = done_iter.next_batch(block=False)
            elif running:
                time.sleep(POLL / 5)
                continue
            elif pending and not watch.full and not level:
                done_iter.add(submit())
                continue
            elif waiting and not pending and not watch.full:
                pending += reversed(waiting.take(notice))
                for _ in range(min(window, len(pending))):
                    done_iter.add(submit())
                continue
            else:
                break
        except KeyboardInterrupt:
            _interrupted(notice, list(running.values()))
            continue
        for f in finished:
            t = running.pop(f, None)
            if t is None:  # cancelled on a stop request
                continue
            try:
                r: FileResult | BaseException | None = f.result()
            except Exception as e:  # raised on the worker, or the worker died
                r = e
            f.release()
            if r is None:
                waiting.add(t)
            else:
                handle(t, r)
            if pending and not watch.full and not STOP.level:
                done_iter.add(submit())
    if pending or waiting:
        watch.not_started([*pending[::-1], *waiting.tasks])
    return [], False
