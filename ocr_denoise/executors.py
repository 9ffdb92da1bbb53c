"""How the files of a run are processed: in this process, or in worker processes.

An executor knows how work runs, not what the work is (that is
``work.process_file``), the split OCRmyPDF's ``Executor`` makes. The run itself
(``batch.run``) calls, in order:

1. ``start(options, files)``: check once what every file will need (build a
   session, so a bad model or a missing GPU is one clear error for the run; find
   tesseract with ``ocr``) and raise for it; sets ``jobs`` and ``threads``;
2. ``run(todo, options, on_result)``: process the files, handing each
   ``FileResult`` to ``on_result`` as it is known; returns the tasks not
   started and whether the run was interrupted (Ctrl-C, SIGTERM);
3. ``close()``: release what ``start`` acquired.

``SerialExecutor`` runs the files one after another here. ``ProcessExecutor``
runs them in ``jobs`` worker processes, each with its own onnxruntime session
on ``cores // jobs`` threads, so the workers share the machine instead of
fighting over it; a worker that dies (killed, out of memory) is replaced and
the files it had in hand are retried one at a time, so only a file that kills
a worker on its own is reported failed. ``cluster.DaskExecutor`` runs them on
a Dask cluster.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import errno
import logging
import logging.handlers
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from typing import Any

from .plan import Task
from .report import FileResult, OnResult
from .session import Denoiser, available_cores, positive_int
from .work import RunOptions, check_ocr, process_file

logger = logging.getLogger(__name__)


class Executor(abc.ABC):
    """How a run's files are processed. Subclasses set ``jobs`` (files processed
    at once, for the report) and ``threads`` (each session's ``Denoiser(threads=...)``: the
    cores it uses; None: all) in ``start``."""

    jobs: int = 1
    threads: int | None = None

    @abc.abstractmethod
    def start(self, options: RunOptions, files: int) -> None:
        """Prepare to process ``files`` files (0: nothing will run, so nothing
        per-file needs checking; ``jobs`` is still set)."""

    @abc.abstractmethod
    def run(self, todo: list[Task], options: RunOptions,
            on_result: OnResult) -> tuple[list[Task], bool]:
        """Process ``todo``; returns (tasks not started, interrupted)."""

    def close(self) -> None:  # noqa: B027 - optional for subclasses
        """Release what ``start`` acquired."""

    def describe(self) -> str:
        """How the work runs, for the log."""
        return (f"{self.jobs} job(s) x {self.threads or 'all'} thread(s) on "
                f"{available_cores()} core(s)")


#: errno values that mean the output disk (or the user's quota on it) is full.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullWatch:
    """Stops a run whose output disk is full instead of denoising every remaining
    file only to fail each write.

    ``wrap(on_result)`` returns an ``on_result`` that passes every result on and
    watches them in the order they finish: the same full-disk ``errno``
    (``DISK_FULL``) on two results in a row sets ``full``. Executors then start
    nothing more and hand the tasks they did not start to ``not_started``, which
    reports each as failed with the reason (naming the output path of the last
    write that failed), so a rerun once there is space does them.
    """

    def __init__(self) -> None:
        self.full = False
        self._last: int | None = None
        self._reason = ""
        self._on_result: OnResult | None = None

    def wrap(self, on_result: OnResult) -> OnResult:
        self._on_result = on_result

        def watched(r: FileResult) -> None:
            on_result(r)
            if r.status == "failed" and r.errno in DISK_FULL:
                if r.errno == self._last and not self.full:
                    self.full = True
                    logger.error("the output disk is full (%s); starting no more files",
                                 r.reason)
                self._last, self._reason = r.errno, r.reason
            elif r.status != "skipped":
                self._last = None

        return watched

    def not_started(self, tasks: list[Task]) -> None:
        """Report each of ``tasks`` as failed: not started because the disk is full."""
        assert self._on_result is not None, "wrap() first"
        for t in tasks:
            self._on_result(FileResult(t.src, "failed", t.dst, reason=(
                f"not started: the output disk is full ({self._reason}); free some "
                "space and run the same command again")))


class SerialExecutor(Executor):
    """One file after another in this process, with one session using ``threads``
    cores (None: all)."""

    def __init__(self, threads: int | None = None) -> None:
        self.jobs = 1
        self.threads = threads
        self._denoiser: Denoiser | None = None

    def start(self, options: RunOptions, files: int) -> None:
        if not files:
            return
        if options.ocr:
            check_ocr()
        self._denoiser = Denoiser(options.model, device=options.device, threads=self.threads)

    def run(self, todo: list[Task], options: RunOptions,
            on_result: OnResult) -> tuple[list[Task], bool]:
        assert self._denoiser is not None or not todo, "start() first"
        watch = DiskFullWatch()
        on_result = watch.wrap(on_result)
        for i, t in enumerate(todo):
            if watch.full:
                watch.not_started(todo[i:])
                break
            try:
                r = process_file(t, self._denoiser, options)  # type: ignore[arg-type]
            except KeyboardInterrupt:
                logger.warning("interrupted")
                return todo[i:], True
            on_result(r)
        return [], False

    def close(self) -> None:
        self._denoiser = None


class ProcessExecutor(Executor):
    """Up to ``jobs`` worker processes ('spawn'), each with one session on its
    share of the cores. With one file to do, or ``jobs=1``, the work runs in
    this process instead (no worker to start)."""

    def __init__(self, jobs: int) -> None:
        self.max_jobs = positive_int("jobs", jobs)
        self._here: SerialExecutor | None = None

    def start(self, options: RunOptions, files: int) -> None:
        self.jobs = max(1, min(self.max_jobs, files))  # no idle workers for a few files
        self.threads = None if self.jobs == 1 else max(1, available_cores() // self.jobs)
        # A session here first, also for worker runs: a bad model or a missing
        # GPU is one clear error now, not one failure per file later.
        self._here = SerialExecutor(self.threads)
        self._here.start(options, files)

    def run(self, todo: list[Task], options: RunOptions,
            on_result: OnResult) -> tuple[list[Task], bool]:
        assert self._here is not None, "start() first"
        if self.jobs == 1:
            return self._here.run(todo, options, on_result)
        return _run_pool(todo, options, self.threads, self.jobs, on_result)

    def close(self) -> None:
        if self._here is not None:
            self._here.close()


def default_jobs() -> int:
    """Worker processes the command line uses unless told: one per core, at most 4.

    On the 2-core machine this was measured on, 2 one-thread workers denoised a
    folder 1.4x faster than one process with 2 onnxruntime threads (decoding and
    encoding overlap inference; no intra-op thread synchronisation). More than 4
    mostly adds memory: each worker holds a session and a page or two.
    """
    return max(1, min(available_cores(), 4))



# -- worker processes ---------------------------------------------------------

_worker: tuple[Denoiser, RunOptions] | None = None


def _exit_when_orphaned(parent: int) -> None:
    """If the main process dies without telling us (SIGKILL), exit rather than wait
    forever on the task queue; an unfinished output stays a temporary file."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(options: RunOptions, threads: int | None, log_queue: Any,
                 log_level: int) -> None:
    global _worker
    # Ctrl-C on a terminal reaches the whole process group; the main process
    # decides what happens (let running files finish), workers carry on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # This process is ours: send its log records to the main process, which
    # handles them as its own (one place decides where logs go).
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    root.setLevel(log_level)
    import cv2

    # Decoder complaints about broken files become our failure reasons instead.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    if threads is not None:
        os.environ.setdefault("OMP_THREAD_LIMIT", str(threads))  # tesseract
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    _worker = (Denoiser(options.model, device=options.device, threads=threads), options)


def _work(task: Task) -> FileResult:
    assert _worker is not None
    return process_file(task, *_worker)


def _run_pool(todo: list[Task], options: RunOptions, threads: int | None, jobs: int,
              on_result: OnResult) -> tuple[list[Task], bool]:
    """Run ``todo`` in ``jobs`` processes; returns (not started, interrupted).

    At most ``2 * jobs`` files are in flight. If a worker dies, the pool is
    rebuilt and the files in flight are retried one at a time (alone in the
    pool): a file that kills a worker on its own is a failure, the others
    complete normally.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    log_queue = ctx.Queue()
    listener = logging.handlers.QueueListener(log_queue, _Redispatch())
    listener.start()
    try:
        return _run_pool_logged(todo, (options, threads, log_queue), jobs, on_result, ctx)
    finally:
        listener.stop()


class _Redispatch(logging.Handler):
    """Hands a worker's log record to the same-named logger of this process."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _run_pool_logged(todo: list[Task], init: tuple[RunOptions, int | None, Any], jobs: int,
                     on_result: OnResult, ctx: Any) -> tuple[list[Task], bool]:
    level = logging.getLogger("ocr_denoise").getEffectiveLevel()
    watch = DiskFullWatch()
    on_result = watch.wrap(on_result)
    queue: deque[Task] = deque(todo)
    suspects: deque[Task] = deque()
    while (queue or suspects) and not watch.full:
        pool = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                      initargs=(*init, level))
        running: dict[cf.Future[FileResult], tuple[Task, bool]] = {}
        crashed: list[tuple[Task, bool]] = []
        try:
            broken = False
            while not broken:
                isolate = bool(suspects)
                source, limit = (suspects, 1) if isolate else (queue, 2 * jobs)
                while source and len(running) < limit and not watch.full:
                    t = source.popleft()
                    try:
                        running[pool.submit(_work, t)] = (t, isolate)
                    except cf.process.BrokenProcessPool:
                        # A worker died after the last wait returned: this file never
                        # started, so it goes back where it was, not among the suspects.
                        source.appendleft(t)
                        broken = True
                        break
                if broken or not running:
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for f in finished:
                    t, alone = running.pop(f)
                    exc = f.exception()
                    if isinstance(exc, cf.process.BrokenProcessPool):
                        crashed.append((t, alone))
                    elif exc is not None:
                        on_result(FileResult(t.src, "failed", t.dst,
                                             reason=f"{type(exc).__name__}: {exc}"))
                    else:
                        on_result(f.result())
                if crashed:
                    break
        except KeyboardInterrupt:
            logger.warning("interrupted: letting the %d file(s) in progress finish", len(running))
            pool.shutdown(wait=False, cancel_futures=True)
            left = list(queue) + list(suspects)
            for f, (t, _) in running.items():
                try:
                    on_result(f.result())
                except (cf.CancelledError, cf.process.BrokenProcessPool):
                    left.append(t)
            return left, True
        for f, (t, alone) in running.items():  # the rest of a broken pool
            if f.done() and f.exception() is None:
                on_result(f.result())
            else:
                crashed.append((t, alone))
        pool.shutdown(wait=True, cancel_futures=True)
        for t, alone in crashed:
            if alone:
                on_result(FileResult(t.src, "failed", t.dst, reason=(
                    "the worker process died while processing this file (crashed, or "
                    "killed e.g. for lack of memory)")))
            else:
                logger.warning("a worker process died; retrying %s on its own", t.src)
                suspects.append(t)
    if watch.full:
        watch.not_started(list(queue) + list(suspects))
    return [], False
