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

Every executor runs a file while holding its output's claim
(``claimed_process_file``, ``atomic.output_claim``): a file another live run
is working on (another shell, container or machine sharing the folder) is
left to it and tried again at the end, when it is skipped once written. And
every executor honours ``STOP``: after a first stop request (Ctrl-C, SIGTERM)
no file starts and those in progress finish; after a second, those in
progress are discarded and ``run`` returns at once.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
import contextlib
import contextvars
import errno
import logging
import logging.handlers
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from . import atomic
from .plan import Task
from .report import FileResult, OnResult, shown
from .session import Denoiser, available_cores, positive_int
from .work import RunOptions, check_denoiser, check_ocr, process_file

logger = logging.getLogger(__name__)

#: Seconds between looks at a stop request while files run (how soon a stop is seen).
POLL = 0.1


class Stop:
    """How far a stop has been asked for, for the run in progress: 0 none; 1 start
    no new file and let those in progress finish (Ctrl-C or SIGTERM once); 2 stop
    at once, discarding the files in progress (a second signal).

    The command line's signal handlers call ``request``, as do the executors when
    a ``KeyboardInterrupt`` reaches them while they wait (the Python API, where
    Ctrl-C raises it). Executors look at ``level`` between files and while waiting
    (every ``POLL`` seconds) and report what they did not start. ``started``: the
    executor's ``run`` has begun (the command line stops at once on a second
    signal before that). ``managed``: the command line owns this object and resets
    it itself; otherwise every run resets it when it ends. One per process, shared
    by runs in several threads: a stop reaches them all, and is cleared only when
    the last of them ends (``reset`` does nothing while files run).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0  # executors' run() calls in progress, on any thread
        self._clear()

    def _clear(self) -> None:
        self.level = 0
        self.started = False
        self.managed = False
        self.signal_name = "Ctrl-C"

    def request(self, signal_name: str = "Ctrl-C") -> int:
        """One more stop request; returns the new level."""
        if self.level == 0:
            self.signal_name = signal_name
        self.level = min(self.level + 1, 2)
        return self.level

    def reset(self) -> None:
        """No stop requested; kept while another thread's run is processing files."""
        with self._lock:
            if not self._runs:
                self._clear()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around an executor's ``run``: counts the runs in progress for ``reset``
        and, in a program's main thread, turns Ctrl-C into a stop request
        (``ctrl_c_as_stop_request``)."""
        with self._lock:
            self._runs += 1
        try:
            with ctrl_c_as_stop_request(self):
                yield
        finally:
            with self._lock:
                self._runs -= 1


#: The stop state of this process's run (one run at a time per process).
STOP = Stop()


def _names(tasks: Sequence[Task], most: int = 8) -> str:
    shown_ = ", ".join(shown(t.src) for t in tasks[:most])
    return shown_ + (f" and {len(tasks) - most} more" if len(tasks) > most else "")


class _StopNotice:
    """Says each step of a stop once, from the executor's loop, naming the files
    in progress at that moment."""

    def __init__(self) -> None:
        self.said = 0

    def level(self, in_progress: Sequence[Task]) -> int:
        level = STOP.level
        if level > self.said:
            self.said = level
            again = f"{STOP.signal_name} again to stop at once"
            if level == 1 and in_progress:
                logger.warning("stopping (%s): no new file is started; letting the %d file(s) "
                               "in progress finish: %s (%s)", STOP.signal_name,
                               len(in_progress), _names(in_progress), again)
            elif level == 1:
                logger.warning("stopping (%s): no new file is started", STOP.signal_name)
            elif in_progress:
                logger.warning("stopping at once: the %d file(s) in progress are discarded "
                               "(no output written): %s", len(in_progress),
                               _names(in_progress))
        return level


@contextlib.contextmanager
def ctrl_c_as_stop_request(stop: Stop) -> Iterator[None]:
    """While files run in a Python program's main thread, Ctrl-C is a stop request
    (``STOP.request``) instead of a ``KeyboardInterrupt``, which could land anywhere
    (in a worker pool's shutdown, say) and end the run without its report. Only
    where Python's own handler is in place: the command line's, or one the
    program installed, is left alone; so are runs on other threads (Python runs
    signal handlers on the main thread only)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.request("Ctrl-C"))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(notice: _StopNotice, in_progress: Sequence[Task]) -> int:
    """A KeyboardInterrupt reached an executor's wait: one more stop request."""
    STOP.request()
    return notice.level(in_progress)


class _Waiting:
    """Files another live run holds the claim on (``atomic.output_claim``): tried
    again once nothing else is left, until that run has finished them (then they
    are skipped) or died (then they are done here)."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []
        self._since: float | None = None
        self._warned = False
        self._pause = POLL

    def add(self, t: Task) -> None:
        logger.info("another run is writing %s; coming back to it", shown(t.dst))
        self.tasks.append(t)

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def take(self, notice: _StopNotice) -> list[Task]:
        """After a pause (cut short by a stop request), the files to try again."""
        now = time.monotonic()
        self._since = self._since or now
        if not self._warned and now - self._since > 10:
            self._warned = True
            logger.warning("waiting for another run to finish %d file(s) it is writing: %s",
                           len(self.tasks), _names(self.tasks))
        end = now + self._pause
        self._pause = min(2 * self._pause, 2.0)
        while time.monotonic() < end and not notice.level([]):
            try:
                time.sleep(POLL / 2)
            except KeyboardInterrupt:
                _interrupted(notice, [])
        if STOP.level:
            return []
        tasks, self.tasks = self.tasks, []
        return tasks


def claimed_process_file(task: Task, denoiser: Denoiser,
                         options: RunOptions) -> FileResult | None:
    """``process_file`` while holding the output's claim; None, without reading
    anything, when another live run (another process, container or machine) is
    working on the same output."""
    with atomic.output_claim(task.dst) as mine:
        if not mine:
            return None
        return process_file(task, denoiser, options)


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
    """One file after another, with one session using ``threads`` cores (None:
    all). Each file runs on a helper thread while this thread waits, so a stop
    request is seen at once: the file in progress finishes (or, at a second
    request, is discarded with its temporary files) and no new one starts."""

    def __init__(self, threads: int | None = None) -> None:
        self.jobs = 1
        self.threads = threads
        self._denoiser: Denoiser | None = None

    def start(self, options: RunOptions, files: int) -> None:
        if not files:
            return
        if options.ocr:
            check_ocr(options.ocr_lang)
        self._denoiser = check_denoiser(Denoiser(
            options.model, device=options.device, threads=self.threads,
            enlarger=options.enlarger))

    def run(self, todo: list[Task], options: RunOptions,
            on_result: OnResult) -> tuple[list[Task], bool]:
        assert self._denoiser is not None or not todo, "start() first"
        with STOP.running():
            return self._run(todo, options, on_result)

    def _run(self, todo: list[Task], options: RunOptions,
             on_result: OnResult) -> tuple[list[Task], bool]:
        watch = DiskFullWatch()
        on_result = watch.wrap(on_result)
        notice = _StopNotice()
        queue: deque[Task] = deque(todo)
        waiting = _Waiting()
        while queue or waiting:
            if watch.full:
                watch.not_started([*queue, *waiting.tasks])
                return [], False
            if notice.level([]):
                return [*queue, *waiting.tasks], True
            if not queue:
                queue.extend(waiting.take(notice))
                continue
            t = queue.popleft()
            r = self._one(t, options, notice)
            if r is _ABANDONED:
                return [t, *queue, *waiting.tasks], True
            if r is None:
                waiting.add(t)
            else:
                on_result(r)  # type: ignore[arg-type]
        return [], False

    def _one(self, t: Task, options: RunOptions, notice: _StopNotice) -> object:
        """``t``'s result (None: another run holds its output), computed on a helper
        thread; ``_ABANDONED`` if a stop at once came first."""
        group = atomic.WriteGroup()
        box: list[FileResult | None] = []
        # Waited on instead of Thread.join: a KeyboardInterrupt raised inside join()
        # can leave the thread marked as ended while it still runs (CPython 3.11),
        # and its file was then reported failed with its claim left behind.
        ended = threading.Event()
        logger.debug("starting %s", shown(t.src))

        def work() -> None:
            try:
                with atomic.writing_as(group):
                    try:
                        box.append(claimed_process_file(t, self._denoiser, options))  # type: ignore[arg-type]
                    except Exception as e:  # process_file never raises for a file; just in case
                        box.append(FileResult(t.src, "failed", t.dst,
                                              reason=f"{type(e).__name__}: {e}"))
            finally:
                ended.set()

        # A daemon: a run stopped at once does not wait for the page on it. In a copy
        # of this thread's context, so settings made with context variables hold.
        worker = threading.Thread(target=contextvars.copy_context().run, args=(work,),
                                  name="ocr_denoise-file", daemon=True)
        worker.start()
        while True:
            try:
                if ended.wait(POLL):
                    return box[0] if box else FileResult(
                        t.src, "failed", t.dst, reason="the file's thread ended without a result")
                level = notice.level([t])
            except KeyboardInterrupt:
                level = _interrupted(notice, [t])
            if level >= 2:
                atomic.abandon(group)  # its temporaries and claim go; nothing new is written
                return _ABANDONED

    def close(self) -> None:
        self._denoiser = None


_ABANDONED = object()


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
        with STOP.running():
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
    # Ctrl-C on a terminal reaches the whole process group: the main process
    # decides what happens (let running files finish, or stop them at once),
    # workers carry on until told. (They start with SIGINT blocked, so one landing
    # while this interpreter starts cannot print a traceback either.) SIGTERM keeps
    # its default: the pool itself ends workers with it.
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
    _worker = (Denoiser(options.model, device=options.device, threads=threads,
                        enlarger=options.enlarger), options)


def _work(task: Task) -> FileResult | None:
    assert _worker is not None
    return claimed_process_file(task, *_worker)


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while worker processes are started: a new
    process inherits the mask, so a Ctrl-C reaching the process group while a
    worker's interpreter starts stays pending there (the worker ignores it once
    it runs) instead of printing a KeyboardInterrupt traceback. This process
    loses no signal: it is delivered when the block ends (or to another thread
    at once)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _run_pool(todo: list[Task], options: RunOptions, threads: int | None, jobs: int,
              on_result: OnResult) -> tuple[list[Task], bool]:
    """Run ``todo`` in ``jobs`` processes; returns (not started, interrupted).

    At most ``jobs`` files are in flight, one per worker, so a stop request
    starts nothing new. If a worker dies, the pool is rebuilt and the files in
    flight are retried one at a time (alone in the pool): a file that kills a
    worker on its own is a failure, the others complete normally.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    with _stop_signals_blocked():
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


def _kill_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Stop every worker of ``pool`` at once and wait until they are gone (their
    locks with them, so their temporaries and claims are provably stale)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(10)


def _run_pool_logged(todo: list[Task], init: tuple[RunOptions, int | None, Any], jobs: int,
                     on_result: OnResult, ctx: Any) -> tuple[list[Task], bool]:
    level = logging.getLogger("ocr_denoise").getEffectiveLevel()
    watch = DiskFullWatch()
    on_result = watch.wrap(on_result)
    notice = _StopNotice()
    queue: deque[Task] = deque(todo)
    suspects: deque[Task] = deque()
    waiting = _Waiting()
    while (queue or suspects or waiting) and not watch.full:
        if notice.level([]):
            return [*queue, *suspects, *waiting.tasks], True
        if not (queue or suspects):
            queue.extend(waiting.take(notice))
            continue
        pool = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                      initargs=(*init, level))
        running: dict[cf.Future[FileResult | None], tuple[Task, bool]] = {}
        crashed: list[tuple[Task, bool]] = []
        broken = False
        stopping = 0
        while not broken:
            try:
                stopping = notice.level([t for t, _ in running.values()])
                isolate = bool(suspects)
                source, limit = (suspects, 1) if isolate else (queue, jobs)
                while (source and len(running) < limit and not watch.full
                       and not stopping):
                    t = source.popleft()
                    logger.debug("starting %s", shown(t.src))
                    try:
                        with _stop_signals_blocked():
                            running[pool.submit(_work, t)] = (t, isolate)
                    except cf.process.BrokenProcessPool:
                        # A worker died after the last wait returned: this file never
                        # started, so it goes back where it was, not among the suspects.
                        source.appendleft(t)
                        broken = True
                        break
                if broken or stopping >= 2:
                    break
                if not running:
                    if stopping or watch.full or suspects or queue or not waiting:
                        break
                    queue.extend(waiting.take(notice))  # the same workers try them again
                    continue
                finished, _ = cf.wait(running, timeout=POLL, return_when=cf.FIRST_COMPLETED)
            except KeyboardInterrupt:
                stopping = _interrupted(notice, [t for t, _ in running.values()])
                continue
            for f in finished:
                t, alone = running.pop(f)
                exc = f.exception()
                if isinstance(exc, cf.process.BrokenProcessPool):
                    crashed.append((t, alone))
                elif exc is not None:
                    on_result(FileResult(t.src, "failed", t.dst,
                                         reason=f"{type(exc).__name__}: {exc}"))
                elif f.result() is None:
                    waiting.add(t)
                else:
                    on_result(f.result())  # type: ignore[arg-type]
            if crashed:
                break
        if stopping >= 2:
            _kill_workers(pool)  # their temporaries are removed once they are gone
            pool.shutdown(wait=True, cancel_futures=True)
            left = [t for t, _ in running.values()] + [t for t, _ in crashed]
            return [*left, *queue, *suspects, *waiting.tasks], True
        for f, (t, alone) in running.items():  # the rest of a broken pool
            if f.done() and f.exception() is None and f.result() is not None:
                on_result(f.result())  # type: ignore[arg-type]
            elif f.done() and f.exception() is None:
                waiting.add(t)
            else:
                crashed.append((t, alone))
        pool.shutdown(wait=True, cancel_futures=True)
        for t, alone in crashed:
            if stopping:
                queue.append(t)  # not retried after a stop request: not started
            elif alone:
                on_result(FileResult(t.src, "failed", t.dst, reason=(
                    "the worker process died while processing this file (crashed, or "
                    "killed e.g. for lack of memory)")))
            else:
                logger.warning("a worker process died; retrying %s on its own", shown(t.src))
                suspects.append(t)
    if watch.full:
        watch.not_started([*queue, *suspects, *waiting.tasks])
    return [], False
