"""Denoise many image files: find them, run them (in parallel), report on every one.

``denoise_folder(src, dst)`` is what ``ocr-denoise scans/ -o clean/`` runs. It

1. *plans*: expands files, folders (``recursive`` mirrors the tree) and glob
   patterns into (input, output) pairs; leaves out the output folder when it
   lies inside an input folder; refuses pairs that would overwrite an input or
   that two inputs would write to the same output;
2. *skips* pairs whose output already exists (unless ``overwrite``), so running
   the same command again after an interruption finishes the job without
   redoing anything;
3. *runs* the rest in this process (``jobs=1``) or in ``jobs`` worker processes,
   each with its own onnxruntime session using ``cores // jobs`` threads, so
   the workers share the machine instead of fighting over it. One bad file
   becomes one failure with its reason; a worker that dies (killed, out of
   memory) is replaced and the files it had in hand are retried one at a time,
   so only a file that kills a worker on its own is reported as failed;
4. *reports*: a ``BatchReport`` with every file done, skipped and failed (with
   the reason), and whether the run was interrupted.

Every output is written atomically by ``io`` (temporary name, then rename), so
Ctrl-C, SIGKILL or a full disk never leaves a partial file under a final name.
Multi-page TIFF inputs are written as multi-page TIFFs (``.tif``) whatever the
output format, since PNG and JPEG hold one page.
"""

from __future__ import annotations

import concurrent.futures as cf
import glob
import logging
import logging.handlers
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence, Union

from . import io as imgio
from .session import Denoiser

logger = logging.getLogger(__name__)

#: Output format name -> file extension.
FORMATS = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}

PathLike = Union[str, "os.PathLike[str]"]
Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Task:
    """One input file and the output it should produce."""

    src: Path
    dst: Path
    #: The user named this output: never rename it (multi-page input into a
    #: non-TIFF name is then a failure instead of a ``.tif`` output).
    fixed_name: bool = False


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file."""

    src: Path
    status: Status
    dst: Path | None = None
    pages: int = 0  # pages denoised (a multi-page TIFF counts each page)
    reason: str = ""  # why it failed, or a note on what was done
    text: Path | None = None  # the OCR text file written, with ``ocr=True``


@dataclass
class BatchReport:
    """Everything a run did. ``ok`` is True when nothing failed and nothing was left
    undone; the CLI's exit status is 0 exactly then."""

    done: list[FileResult] = field(default_factory=list)
    skipped: list[FileResult] = field(default_factory=list)
    failed: list[FileResult] = field(default_factory=list)
    #: Inputs not processed because the run was interrupted (Ctrl-C, SIGTERM).
    not_started: list[Path] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    jobs: int = 1
    #: onnxruntime intra-op threads per worker (None: onnxruntime's default, all cores).
    threads: int | None = None

    @property
    def pages(self) -> int:
        """Pages denoised in this run."""
        return sum(r.pages for r in self.done)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    def add(self, r: FileResult) -> None:
        {"done": self.done, "skipped": self.skipped, "failed": self.failed}[r.status].append(r)

    def summary(self) -> str:
        """Human-readable summary: counts, speed, then one line per failure."""
        lines = [
            f"{len(self.done)} done ({self.pages} page{'s' if self.pages != 1 else ''}), "
            f"{len(self.skipped)} skipped "
            f"(output already there), {len(self.failed)} failed, in {self.seconds:.1f} s "
            f"({self.pages_per_second:.2f} pages/s, {self.jobs} job"
            f"{'s' if self.jobs != 1 else ''})"
        ]
        if self.failed:
            lines.append("failed:")
            lines += [f"  {r.src}: {r.reason}" for r in self.failed]
        if self.interrupted:
            lines.append(
                f"interrupted: {len(self.not_started)} file(s) not started; run the same "
                "command again to finish (existing outputs are skipped)"
            )
        return "\n".join(lines)


# -- planning --------------------------------------------------------------------


def _location(p: Path) -> Path:
    """Where a directory entry lives: its folder resolved, its own name kept (a
    symlink is located where the link is, not where it points)."""
    return p.parent.resolve() / p.name


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob pattern before the first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _wanted(entry: os.DirEntry) -> bool:
    """A folder entry we treat as an input: an image extension, not hidden (our
    temporaries, macOS ``._`` files), a file or a symlink that is not a folder
    (a dangling one is kept so it is reported, not silently ignored)."""
    if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in imgio.INPUT_EXTENSIONS:
        return False
    try:
        return entry.is_file() or (entry.is_symlink() and not entry.is_dir())
    except OSError:
        return True  # let reading it report what is wrong


@dataclass
class _Found:
    path: Path
    root: Path | None  # the folder the path was found under (None: named directly)


def _scan(root: Path, recursive: bool, skip_dir: Path | None,
          errors: list[FileResult]) -> list[_Found]:
    """Image files in ``root`` (and its subfolders if ``recursive``; hidden folders
    and ``skip_dir`` are not entered, symlinked folders not followed)."""
    found: list[_Found] = []
    if not recursive:
        try:
            with os.scandir(root) as it:
                found = [_Found(Path(e.path), root) for e in it if _wanted(e)]
        except OSError as e:
            errors.append(FileResult(root, "failed", reason=f"cannot list folder: {e.strerror or e}"))
        return found

    def onerror(e: OSError) -> None:
        errors.append(FileResult(Path(e.filename or root), "failed",
                                 reason=f"cannot list folder: {e.strerror or e}"))

    for dirpath, dirnames, _ in os.walk(root, onerror=onerror):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".")
            and (skip_dir is None or Path(dirpath, d).resolve() != skip_dir)
        )
        try:
            with os.scandir(dirpath) as it:
                found += [_Found(Path(e.path), root) for e in it if _wanted(e)]
        except OSError as e:
            onerror(e)
    return found


def _discover(sources: Sequence[PathLike], dst_res: Path, recursive: bool,
              errors: list[FileResult]) -> list[_Found]:
    found: list[_Found] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            root_res = p.resolve()
            inside = root_res in dst_res.parents  # output folder lies inside this one
            found += _scan(p, recursive, dst_res if inside else None, errors)
        elif p.exists() or p.is_symlink():
            found.append(_Found(p, None))
        elif _is_glob(str(s)):
            root = _glob_root(str(s))
            matches = sorted(glob.glob(str(s), recursive=recursive))
            n = 0
            for m in map(Path, matches):
                if m.is_dir():
                    continue  # a folder matched by a pattern is not an input
                if m.suffix.lower() in imgio.INPUT_EXTENSIONS and not m.name.startswith("."):
                    found.append(_Found(m, root))
                    n += 1
            if not n:
                errors.append(FileResult(p, "failed", reason="pattern matches no image file"))
        else:
            errors.append(FileResult(p, "failed", reason="no such file or folder"))
    return found


def _output_name(src: Path, suffix: str, ext: str) -> str:
    return f"{src.stem}{suffix}{ext}"


def plan(
    sources: PathLike | Sequence[PathLike],
    dst: PathLike,
    *,
    recursive: bool = False,
    suffix: str = "",
    format: str = "png",
) -> tuple[list[Task], list[FileResult]]:
    """Expand ``sources`` (files, folders, glob patterns) into tasks writing under
    ``dst``. Returns the tasks and the failures found while planning (missing
    sources, unlistable folders, outputs that would overwrite an input, two
    inputs with one output name). Reads no image.

    Output names: ``dst / STEM + suffix + .ext``; with ``recursive`` the path
    relative to the input folder (or to a pattern's fixed prefix) is mirrored.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if format not in FORMATS:
        raise ValueError(f"unknown output format {format!r}; use one of {sorted(FORMATS)}")
    if os.sep in suffix or (os.altsep and os.altsep in suffix):
        raise ValueError(f"--suffix must be a plain name part, got {suffix!r}")
    out = Path(dst)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder")
    dst_res = out.resolve()
    ext = FORMATS[format]
    for s in sources:
        if Path(s).is_dir() and Path(s).resolve() == dst_res and not suffix:
            raise ValueError(
                f"the output folder is the input folder {s}: pass --suffix (e.g. _clean) "
                "so outputs do not replace inputs"
            )

    errors: list[FileResult] = []
    found = _discover(list(sources), dst_res, recursive, errors)

    tasks: list[Task] = []
    seen: set[Path] = set()
    for f in sorted(found, key=lambda f: str(f.path)):
        loc = _location(f.path)
        if loc in seen:
            continue
        seen.add(loc)
        if f.root is not None and recursive:
            rel_dir = f.path.parent.relative_to(f.root) if f.path.is_relative_to(f.root) else Path()
        else:
            rel_dir = Path()
        out_dir = out / rel_dir
        if f.root is not None and out_dir.resolve() == loc.parent and suffix:
            stem = f.path.stem
            if stem.endswith(suffix) and f.path.suffix.lower() in (ext, ".tif"):
                logger.debug("not reading %s: named like an output of this command", f.path)
                continue
        tasks.append(Task(f.path, out_dir / _output_name(f.path, suffix, ext)))
    return _check_tasks(tasks, errors)


def _check_tasks(tasks: list[Task], errors: list[FileResult]) -> tuple[list[Task], list[FileResult]]:
    """Drop (as failures) tasks that would overwrite an input or share an output."""
    inputs = {_location(t.src): t.src for t in tasks}
    by_output: dict[Path, Task] = {}
    kept: list[Task] = []
    for t in tasks:
        out_loc = _location(t.dst)
        if t.dst.suffix.lower() not in imgio.WRITE_EXTENSIONS:
            errors.append(FileResult(t.src, "failed", t.dst, reason=(
                f"cannot write {t.dst.suffix or 'extension-less'} output {t.dst}; use one of "
                f"{', '.join(sorted(imgio.WRITE_EXTENSIONS))}")))
        elif out_loc in inputs or _same_file(t.src, t.dst):
            errors.append(FileResult(t.src, "failed", t.dst, reason=(
                f"output {t.dst} would overwrite input {inputs.get(out_loc, t.src)}; "
                "choose another output folder or a --suffix")))
        elif out_loc in by_output:
            errors.append(FileResult(t.src, "failed", t.dst, reason=(
                f"output {t.dst} is also the output of {by_output[out_loc].src}; "
                "rename one of them")))
        else:
            by_output[out_loc] = t
            kept.append(t)
    return kept, errors


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# -- running one file ------------------------------------------------------------


@dataclass(frozen=True)
class FileOptions:
    """Settings ``process_file`` needs; small and picklable, so they travel to
    worker processes (here and in ``ocr_denoise.dask``) instead of a session."""

    model: str | None
    device: str
    threads: int | None
    overwrite: bool
    ocr: bool
    ocr_lang: str
    max_pixels: int | None


def _text_path(dst: Path) -> Path:
    return dst.with_suffix(".txt")


def _outputs_exist(task: Task, ocr: bool) -> bool:
    return task.dst.exists() and (not ocr or _text_path(task.dst).exists())


def _ocr(page, opts: FileOptions) -> str:
    from .ocr import tesseract_text

    return tesseract_text(page, lang=opts.ocr_lang)


def process_file(task: Task, denoiser: Denoiser, opts: FileOptions) -> FileResult:
    """Denoise one file into ``task.dst`` (and its text with ``opts.ocr``).

    Never raises for a problem with the file: returns a failed ``FileResult``
    with the reason instead. KeyboardInterrupt passes through (nothing partial
    is left: writes are atomic).
    """
    try:
        src = imgio.open_image(task.src, max_pixels=opts.max_pixels)
        dst = task.dst
        if src.pages > 1 and dst.suffix.lower() not in (".tif", ".tiff"):
            if task.fixed_name:
                return FileResult(task.src, "failed", dst, reason=(
                    f"has {src.pages} pages and only a TIFF holds several; name the "
                    "output .tif"))
            dst = dst.with_suffix(".tif")
        text = _text_path(dst) if opts.ocr else None
        if dst.exists() and not opts.overwrite:
            if text is None or text.exists():
                return FileResult(task.src, "skipped", dst)
            # An earlier run wrote the image but not its text: OCR that image.
            texts = [_ocr(p, opts) for p in imgio.open_image(dst, max_pixels=None)]
            imgio.write_text(text, "\f".join(texts))
            return FileResult(task.src, "done", dst, 0, "text only: image already there",
                              text)
        if _same_file(task.src, dst):
            return FileResult(task.src, "failed", dst,
                              reason=f"output {dst} would overwrite the input")
        texts = []
        if src.pages == 1:
            page = denoiser.denoise(src.read(0))
            imgio.write_image(dst, page, dpi=src.dpi[0])
            if text is not None:
                texts.append(_ocr(page, opts))
        else:
            with imgio.TiffPagesWriter(dst) as w:
                for i in range(src.pages):
                    page = denoiser.denoise(src.read(i))
                    w.add(page, dpi=src.dpi[i])
                    if text is not None:
                        texts.append(_ocr(page, opts))
        if text is not None:
            imgio.write_text(text, "\f".join(texts))  # form feed between pages, as tesseract
        return FileResult(task.src, "done", dst, src.pages, text=text)
    except imgio.ImageReadError as e:
        return FileResult(task.src, "failed", task.dst, reason=e.reason)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        return FileResult(task.src, "failed", task.dst,
                          reason=f"{type(e).__name__}: {e.strerror or e}{where}")
    except Exception as e:  # one bad file must not stop the others
        logger.debug("failure on %s", task.src, exc_info=True)
        return FileResult(task.src, "failed", task.dst, reason=f"{type(e).__name__}: {e}")


# -- worker processes ------------------------------------------------------------

_worker: tuple[Denoiser, FileOptions] | None = None


def _exit_when_orphaned(parent: int) -> None:
    """If the main process dies without telling us (SIGKILL), exit rather than wait
    forever on the task queue; an unfinished output stays a temporary file."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(opts: FileOptions, log_queue, log_level: int) -> None:
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
    if opts.threads is not None:
        os.environ.setdefault("OMP_THREAD_LIMIT", str(opts.threads))  # tesseract
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    _worker = (Denoiser(opts.model, device=opts.device, threads=opts.threads), opts)


def _work(task: Task) -> FileResult:
    assert _worker is not None
    return process_file(task, *_worker)


def _run_pool(todo: list[Task], opts: FileOptions, jobs: int, on_result) -> tuple[list[Task], bool]:
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
        return _run_pool_logged(todo, opts, jobs, on_result, ctx, log_queue)
    finally:
        listener.stop()


class _Redispatch(logging.Handler):
    """Hands a worker's log record to the same-named logger of this process."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _run_pool_logged(todo, opts, jobs, on_result, ctx, log_queue) -> tuple[list[Task], bool]:
    level = logging.getLogger("ocr_denoise").getEffectiveLevel()
    queue: deque[Task] = deque(todo)
    suspects: deque[Task] = deque()
    while queue or suspects:
        pool = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                      initargs=(opts, log_queue, level))
        running: dict[cf.Future, tuple[Task, bool]] = {}
        crashed: list[tuple[Task, bool]] = []
        try:
            broken = False
            while not broken:
                isolate = bool(suspects)
                source, limit = (suspects, 1) if isolate else (queue, 2 * jobs)
                while source and len(running) < limit:
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
    return [], False


def _run_here(todo: list[Task], denoiser: Denoiser, opts: FileOptions,
              on_result) -> tuple[list[Task], bool]:
    for i, t in enumerate(todo):
        try:
            r = process_file(t, denoiser, opts)
        except KeyboardInterrupt:
            logger.warning("interrupted")
            return todo[i:], True
        on_result(r)
    return [], False


# -- the public entry points -----------------------------------------------------


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """Worker processes the command line uses unless told: one per core, at most 4.

    On the 2-core machine this was measured on, 2 one-thread workers denoised a
    folder 1.4x faster than one process with 2 onnxruntime threads (decoding and
    encoding overlap inference; no intra-op thread synchronisation). More than 4
    mostly adds memory: each worker holds a session and a page or two.
    """
    return max(1, min(available_cores(), 4))


def _check_ocr() -> None:
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
    except ImportError as e:
        raise RuntimeError("--ocr needs pytesseract: pip install 'ocr-denoise[ocr]'") from e
    except Exception as e:
        raise RuntimeError(f"--ocr needs the tesseract program (Debian: apt install "
                           f"tesseract-ocr): {e}") from e


def denoise_files(
    tasks: Iterable[Task] | Iterable[tuple[PathLike, PathLike]],
    *,
    overwrite: bool = False,
    jobs: int = 1,
    device: str = "auto",
    model: PathLike | None = None,
    ocr: bool = False,
    ocr_lang: str = "eng",
    max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
    progress: bool = False,
) -> BatchReport:
    """Denoise explicit (input, output) pairs; see ``denoise_folder`` for the options.

    A pair's output name is used as given (its extension picks the format).
    Raises only for problems with the whole run (model missing, ``device='cuda'``
    without a GPU, ``ocr`` without tesseract, ``jobs < 1``); problems with a
    file become failures in the report.
    """
    t0 = time.perf_counter()
    items = [t if isinstance(t, Task) else Task(Path(t[0]), Path(t[1]), fixed_name=True)
             for t in tasks]
    items, early = _check_tasks(items, [])
    return _run(items, early, t0, overwrite=overwrite, jobs=jobs, device=device, model=model,
                ocr=ocr, ocr_lang=ocr_lang, max_pixels=max_pixels, progress=progress)


def split_skipped(items: list[Task], *, overwrite: bool,
                  ocr: bool) -> tuple[list[Task], list[FileResult]]:
    """(tasks to do, skipped results): a task whose outputs exist is skipped
    unless ``overwrite``, so running the same job again resumes it."""
    skipped: list[FileResult] = []
    todo: list[Task] = []
    for t in items:
        if not overwrite and _outputs_exist(t, ocr):
            skipped.append(FileResult(t.src, "skipped", t.dst))
        else:
            todo.append(t)
    return todo, skipped


def prepare_output_folders(todo: list[Task]) -> list[Path]:
    """Make every output folder of ``todo`` and remove the temporaries that
    killed runs left there; returns the folders.

    Done before the first write: a folder that cannot be made is one error for
    the run (``OSError``), not one failure per file.
    """
    out_dirs = sorted({t.dst.parent for t in todo})
    for folder in out_dirs:
        folder.mkdir(parents=True, exist_ok=True)
        for p in imgio.remove_stale_temps(folder):
            logger.info("removed %s, left by an interrupted run", p)
    return out_dirs


def result_sink(report: BatchReport, *, progress: bool,
                total: int) -> tuple[Callable[[FileResult], None], Callable[[], None]]:
    """``(on_result, close)``: ``on_result(r)`` adds ``r`` to ``report``, logs it
    and advances the progress bar (a tqdm bar on stderr over ``total`` pages
    when ``progress``); ``close()`` closes the bar."""
    bar = None
    if progress and total:
        from tqdm import tqdm

        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError):
            width = 0
        # A terminal that reports no size (0 x 0, e.g. a fresh pty) would get no
        # bar at all from tqdm: give it 100 x 20 instead.
        sized = width > 0
        bar = tqdm(total=total, unit="page", file=sys.stderr, smoothing=0.1,
                   desc="ocr-denoise", dynamic_ncols=sized,
                   # always pages/s (tqdm would switch to s/page below 1 page/s)
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
                   "{rate_noinv_fmt}{postfix}]",
                   ncols=None if sized else 100, nrows=None if sized else 20)

    def on_result(r: FileResult) -> None:
        report.add(r)
        if r.status == "failed":
            logger.warning("failed: %s: %s", r.src, r.reason)
        else:
            logger.info("%s: %s -> %s%s", r.status, r.src, r.dst,
                        f" ({r.pages} pages)" if r.pages > 1 else "")
        if bar is not None:
            if r.pages > 1:
                bar.total += r.pages - 1
            bar.update(max(r.pages, 1))
            if report.failed:
                bar.set_postfix_str(f"{len(report.failed)} failed", refresh=False)

    def close() -> None:
        if bar is not None:
            bar.close()

    return on_result, close


def finish_report(report: BatchReport, left: list[Task], interrupted: bool,
                  t0: float) -> BatchReport:
    """Record what was not started, sort every list by input, stamp the time."""
    report.not_started = sorted(t.src for t in left)
    report.interrupted = interrupted
    for lst in (report.done, report.skipped, report.failed):
        lst.sort(key=lambda r: str(r.src))
    report.seconds = time.perf_counter() - t0
    return report


def _run(items: list[Task], early: list[FileResult], t0: float, *, overwrite: bool,
         jobs: int, device: str, model: PathLike | None, ocr: bool, ocr_lang: str,
         max_pixels: int | None, progress: bool) -> BatchReport:
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    todo, skipped = split_skipped(items, overwrite=overwrite, ocr=ocr)
    jobs = max(1, min(jobs, len(todo)))  # no idle workers for a handful of files
    cores = available_cores()
    threads = None if jobs == 1 else max(1, cores // jobs)
    opts = FileOptions(str(model) if model is not None else None, device, threads, overwrite,
                       ocr, ocr_lang, max_pixels)
    report = BatchReport(jobs=jobs, threads=threads)
    for r in early + skipped:
        report.add(r)

    if todo:
        if ocr:
            _check_ocr()
        # Build a session here first: a bad model or a missing GPU is one clear
        # error now, not one failure per file later.
        denoiser = Denoiser(model, device=device, threads=threads)
        denoiser.patch_size  # noqa: B018 - builds the session
    out_dirs = prepare_output_folders(todo)
    if todo:
        logger.info("%d file(s) to do, %d skipped; %d job(s) x %s thread(s) on %d core(s)",
                    len(todo), len(report.skipped), jobs, threads or "all", cores)

    on_result, close = result_sink(report, progress=progress, total=len(todo))
    try:
        if not todo:
            left, interrupted = [], False
        elif jobs == 1:
            left, interrupted = _run_here(todo, denoiser, opts, on_result)
        else:
            left, interrupted = _run_pool(todo, opts, jobs, on_result)
    finally:
        close()
        for folder in out_dirs:  # what workers killed mid-write left behind
            imgio.remove_stale_temps(folder)
    return finish_report(report, left, interrupted, t0)


def denoise_folder(
    src: PathLike | Sequence[PathLike],
    dst: PathLike,
    *,
    recursive: bool = False,
    suffix: str = "",
    format: str = "png",
    overwrite: bool = False,
    jobs: int = 1,
    device: str = "auto",
    model: PathLike | None = None,
    ocr: bool = False,
    ocr_lang: str = "eng",
    max_pixels: int | None = imgio.DEFAULT_MAX_PIXELS,
    progress: bool = False,
) -> BatchReport:
    """Denoise every page image in ``src`` into the folder ``dst``.

    ``src``: a folder, an image file, a glob pattern (``"scans/*.tif"``, with
    ``recursive`` also ``"**"``), or a list of them. Folders are scanned for
    .png .jpg .jpeg .tif .tiff .bmp .webp files (not hidden ones); with
    ``recursive`` subfolders too, and the tree is mirrored under ``dst``.

    Outputs are ``dst/STEM{suffix}.{png|tif|jpg}`` per ``format``: H x W 8-bit
    grey pages with the input's DPI. Multi-page TIFFs become multi-page TIFFs.
    Existing outputs are skipped unless ``overwrite``. ``jobs`` worker processes
    share the CPU cores (each onnxruntime session gets ``cores // jobs``
    threads). ``ocr`` also writes tesseract's text to ``dst/STEM{suffix}.txt``
    (pages separated by form feeds). ``max_pixels`` refuses pages whose header
    declares more pixels (None: no limit). ``progress`` shows a tqdm bar on
    stderr.

    Returns a ``BatchReport``; raises only for problems with the whole run (see
    ``denoise_files``) or bad arguments (``ValueError``).
    """
    t0 = time.perf_counter()
    tasks, failures = plan(src, dst, recursive=recursive, suffix=suffix, format=format)
    if not tasks and not failures:
        logger.warning("no image files found in %s", src)
    return _run(tasks, failures, t0, overwrite=overwrite, jobs=jobs, device=device,
                model=model, ocr=ocr, ocr_lang=ocr_lang, max_pixels=max_pixels,
                progress=progress)
