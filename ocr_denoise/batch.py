"""Denoise many image files: ``denoise_folder`` and ``denoise_files``.

``denoise_folder(src, dst)`` is what ``ocr-denoise scans/ -o clean/`` runs. A
run is three parts, each in its own module:

1. a *plan* (``plan``): which input becomes which output, with the failures
   found while planning (missing sources, outputs that would overwrite an
   input...), and which tasks are already done (their outputs exist; skipped
   unless ``overwrite``, so the same command resumes an interrupted run);
2. an *executor* (``executors``, ``cluster``): how the files are processed,
   here, in worker processes or on a Dask cluster; each file goes through
   ``work.process_file`` and the page pipeline, so every executor writes the
   same bytes;
3. a *report* (``report``): every file done, skipped or failed, with the reason,
   and whether the run was interrupted.

Every output is written atomically (``atomic``), so Ctrl-C, SIGKILL or a full
disk never leaves a partial file under a final name.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

from .atomic import remove_stale_temps
from .errors import SettingsError
from .executors import STOP, Executor, ProcessExecutor
from .plan import (
    PathLike,
    Task,
    check_tasks,
    plan,
    prepare_output_folders,
    split_skipped,
    tasks_from_pairs,
)
from .report import BatchReport, FileResult, finish_report, result_sink, shown
from .work import RunOptions

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)


def denoise_folder(
    src: PathLike | Sequence[PathLike],
    dst: PathLike,
    *,
    recursive: bool = False,
    suffix: str = "",
    format: str = "png",
    jobs: int = 1,
    scheduler: Union[str, Client, None] = None,
    executor: Executor | None = None,
    progress: bool = False,
    options: RunOptions | None = None,
    **settings: Any,
) -> BatchReport:
    """Denoise every page image in ``src`` into the folder ``dst``.

    ``src``: a folder, an image file, a glob pattern (``"scans/*.tif"``, with
    ``recursive`` also ``"**"``), or a list of them. Folders are scanned for
    .png .jpg .jpeg .tif .tiff .bmp .webp files (not hidden ones); with
    ``recursive`` subfolders too, and the tree is mirrored under ``dst``.

    Outputs are ``dst/STEM{suffix}.{png|tif|jpg}`` per ``format``: H x W 8-bit
    grey pages with the input's DPI. Multi-page TIFFs become multi-page TIFFs.

    How: ``jobs`` worker processes share the CPU cores (each onnxruntime
    session gets ``cores // jobs`` threads); ``scheduler`` (an address such as
    ``"tcp://10.0.0.5:8786"`` or a ``distributed.Client``) runs on a Dask
    cluster instead; ``executor`` gives any ``executors.Executor`` directly.
    ``progress`` shows a tqdm bar on stderr.

    What: ``options`` (a ``RunOptions``), or its fields as keywords
    (``overwrite``, ``model``, ``device``, ``ocr``, ``ocr_lang``,
    ``max_pixels``, ``rescale``, ``guard``, ``upscale``, ``enlarger``; keywords
    override ``options``).

    Returns a ``BatchReport``; raises only for problems with the whole run
    (bad arguments: ``SettingsError``; model missing or broken: ``ModelError``;
    ``device='cuda'`` without a GPU: ``ProviderError``; ``ocr`` without
    tesseract: ``MissingDependencyError``). Problems with a file become
    failures in the report.
    """
    t0 = time.perf_counter()
    opts = RunOptions.of(options, **settings)
    run_with = _executor(executor, jobs, scheduler)
    tasks, failures = plan(src, dst, recursive=recursive, suffix=suffix, format=format)
    if not tasks and not failures:
        logger.info("no image files found in %s", ", ".join(
            shown(s) for s in ([src] if isinstance(src, (str, os.PathLike)) else src)))
    return run(tasks, failures, opts, run_with, progress=progress, t0=t0)


def denoise_files(
    tasks: Sequence[Task] | Sequence[tuple[PathLike, PathLike]],
    *,
    jobs: int = 1,
    scheduler: Union[str, Client, None] = None,
    executor: Executor | None = None,
    progress: bool = False,
    options: RunOptions | None = None,
    **settings: Any,
) -> BatchReport:
    """Denoise explicit (input, output) pairs; see ``denoise_folder`` for the rest.

    A pair's output name is used as given (its extension picks the format; a
    multi-page input then needs a .tif name).
    """
    t0 = time.perf_counter()
    opts = RunOptions.of(options, **settings)
    run_with = _executor(executor, jobs, scheduler)
    items, failures = check_tasks(tasks_from_pairs(tasks), [])
    return run(items, failures, opts, run_with, progress=progress, t0=t0)


def _executor(executor: Executor | None, jobs: int,
              scheduler: Union[str, Client, None]) -> Executor:
    """The executor a call asked for: given, a Dask cluster, or local processes."""
    if executor is not None:
        if scheduler is not None or jobs != 1:
            raise SettingsError("pass executor= or jobs= / scheduler=, not both: the "
                                "executor decides how files run")
        return executor
    if scheduler is not None:
        from .cluster import DaskExecutor  # the optional part, imported only when used

        return DaskExecutor(scheduler)
    return ProcessExecutor(jobs)


def run(tasks: list[Task], failures: list[FileResult], options: RunOptions,
        executor: Executor, *, progress: bool = False,
        t0: float | None = None) -> BatchReport:
    """Carry out a plan: skip what is done, start ``executor``, process the rest,
    and report. ``failures``: what planning refused, reported as it is.
    ``t0``: when the run began (``time.perf_counter()``), for the report's time.
    """
    t0 = time.perf_counter() if t0 is None else t0
    todo, skipped = split_skipped(tasks, overwrite=options.overwrite, ocr=options.ocr)
    report = BatchReport()
    for r in failures + skipped:
        report.add(r)
    left: list[Task] = todo
    interrupted = False
    try:
        if STOP.level:  # Ctrl-C or SIGTERM while planning: start nothing
            return finish_report(report, [t.src for t in todo], True, t0)
        executor.start(options, len(todo))
        report.jobs, report.threads = executor.jobs, executor.threads
        prepare_output_folders(todo)
        if todo:
            logger.info("%d file(s) to do, %d skipped; %s", len(todo), len(skipped),
                        executor.describe())
        on_result, close = result_sink(report, progress=progress, total=len(todo))
        try:
            STOP.started = True
            left, interrupted = (executor.run(todo, options, on_result) if todo
                                 else ([], False))
        finally:
            close()
            # What workers killed mid-write left behind, and what earlier killed runs
            # left beside outputs that were done before (their folders had no work).
            for folder in sorted({t.dst.parent for t in tasks}):
                remove_stale_temps(folder)
    finally:
        executor.close()
        if not STOP.managed:
            STOP.reset()
    return finish_report(report, [t.src for t in left], interrupted, t0)
