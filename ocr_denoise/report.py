"""What a folder run did: one ``FileResult`` per input, gathered in a ``BatchReport``.

``result_sink`` is where every result arrives, whichever executor produced it:
it adds the result to the report, logs it and advances the progress bar.
``finish_report`` records what an interrupted run did not start.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .atomic import atomic_write
from .decision import PageRecord, count_actions, summary_lines

logger = logging.getLogger(__name__)


def shown(text: object) -> str:
    """``str(text)`` fit for one log line: a file name (or a reason quoting one)
    with a newline or another unprintable character (``a\\nb``, a stray byte
    decoded as ``\\udcff``) gets Python's escapes for them, so a name cannot
    start a forged line such as ``ocr-denoise: done: ...``; printable text is
    unchanged."""
    s = str(text)
    return s if s.isprintable() else "".join(
        c if c.isprintable() else repr(c)[1:-1] for c in s)


Status = Literal["done", "skipped", "failed"]
#: Receives each file's result as it is known.
OnResult = Callable[["FileResult"], None]


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file."""

    src: Path
    status: Status
    dst: Path | None = None
    pages: int = 0  # pages processed (a multi-page TIFF counts each page)
    reason: str = ""  # why it failed, or what was done ("left: no damage ...")
    text: Path | None = None  # the OCR text file written, with ``ocr=True``
    #: What was done to each page and why (``done`` files whose pages ran through
    #: the pipeline in this run; empty for skipped and failed ones).
    decisions: tuple[PageRecord, ...] = ()
    #: The ``errno`` of the OSError a failure came from (e.g. ``errno.ENOSPC`` for a
    #: full disk), so a run can tell a full output disk from a bad file; else None.
    errno: int | None = None


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
    #: Cores each worker's Denoiser uses (``Denoiser(threads=...)``; None: all).
    threads: int | None = None

    @property
    def pages(self) -> int:
        """Pages denoised in this run."""
        return sum(r.pages for r in self.done)

    @property
    def decisions(self) -> list[PageRecord]:
        """What was done to every page denoised in this run, in input order."""
        return [d for r in self.done for d in r.decisions]

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
        lines = [self._counts()]
        lines += summary_lines(self.decisions)
        if self.failed:
            lines.append("failed:")
            lines += [f"  {shown(r.src)}: {shown(r.reason)}" for r in self.failed]
        if self.interrupted:
            lines.append(
                f"interrupted: {len(self.not_started)} file(s) not started; run the same "
                "command again to finish (existing outputs are skipped)"
            )
        return "\n".join(lines)


    def _counts(self) -> str:
        """The summary's first line. Pages and pages/s only when pages were
        denoised: a rerun that found everything done, or that only wrote the text
        of images already there (``ocr`` after a run without it), says so instead
        of "0 pages (0.00 pages/s)"."""
        text_only = sum(r.pages == 0 for r in self.done)
        skipped = f"{len(self.skipped)} skipped (output already there)"
        failed = f"{len(self.failed)} failed"
        if self.pages:
            more = f"; {text_only} text only, image already there" if text_only else ""
            return (f"{len(self.done)} done ({_n(self.pages, 'page')}{more}), {skipped}, "
                    f"{failed}, in {self.seconds:.1f} s ({self.pages_per_second:.2f} "
                    f"pages/s, {_n(self.jobs, 'job')})")
        if self.done:
            return (f"{_n(text_only, 'text file')} written for images already there (no page "
                    f"denoised), {skipped}, {failed}, in {self.seconds:.1f} s")
        if self.skipped and not self.failed and not self.interrupted:
            return (f"{len(self.skipped)} already done, nothing to do (every output is "
                    "already there; --overwrite redoes them)")
        return f"0 done, {skipped}, {failed}, in {self.seconds:.1f} s"


def _n(count: int, thing: str) -> str:
    """``1 page``, ``2 pages``."""
    return f"{count} {thing}{'s' if count != 1 else ''}"


#: The ``schema`` value of a run report (``to_json``); docs/cli.md
#: has the JSON Schema it validates against.
REPORT_SCHEMA = "ocr-denoise/run-report/1"


def to_json(report: BatchReport) -> dict[str, Any]:
    """A run's report as plain JSON values: the ``--report`` file.

    ``files``: one object per input (done, skipped, failed, not started) with
    its status and reason; ``pages``: one object per page denoised in this run,
    with its input, output, page number (from 1), what was done (``action``),
    why (``rule``, ``reason``, ``stage``), the guard's ``measurements`` and the
    page's ``seconds``. docs/cli.md ("What was done to each page") has the schema.
    """
    files: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    for r in sorted(report.done + report.skipped + report.failed, key=lambda r: str(r.src)):
        where = {"input": str(r.src), "output": None if r.dst is None else str(r.dst)}
        files.append({**where, "status": r.status, "pages": r.pages, "reason": r.reason,
                      "text": None if r.text is None else str(r.text)})
        pages += [{**where, "page": i + 1, **d.as_dict()} for i, d in enumerate(r.decisions)]
    files += [{"input": str(p), "output": None, "status": "not-started", "pages": 0,
               "reason": "the run was interrupted", "text": None} for p in report.not_started]
    return {
        "schema": REPORT_SCHEMA,
        "ok": report.ok,
        "interrupted": report.interrupted,
        "seconds": round(report.seconds, 3),
        "counts": {"done": len(report.done), "skipped": len(report.skipped),
                   "failed": len(report.failed), "not_started": len(report.not_started),
                   "pages": report.pages, **count_actions(report.decisions)},
        "files": files,
        "pages": pages,
    }


def write_json(report: BatchReport, path: str | os.PathLike[str]) -> None:
    """Write ``to_json(report)`` to ``path`` atomically (never half-written)."""
    data = json.dumps(to_json(report), indent=1, ensure_ascii=False).encode() + b"\n"
    atomic_write(path, data)


def result_sink(report: BatchReport, *, progress: bool,
                total: int) -> tuple[OnResult, Callable[[], None]]:
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
            logger.warning("failed: %s: %s", shown(r.src), shown(r.reason))
        else:
            logger.info("%s: %s -> %s%s%s", r.status, shown(r.src), shown(r.dst),
                        f" ({r.pages} pages)" if r.pages > 1 else "",
                        f": {shown(r.reason)}" if r.reason else "")
            for i, d in enumerate(r.decisions):  # -vv: each page's decision and measurements
                logger.debug("  page %d: %s (%s, %s check): %s; %s", i + 1, d.action, d.rule,
                             d.stage, d.reason, ", ".join(
                                 f"{k} {v:.3g}" for k, v in d.measurements.items()) or
                             "not measured")
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


def finish_report(report: BatchReport, not_started: list[Path], interrupted: bool,
                  t0: float) -> BatchReport:
    """Record the inputs not started, sort every list by input, stamp the time
    (``t0``: when the run began, from ``time.perf_counter()``)."""
    report.not_started = sorted(not_started)
    report.interrupted = interrupted
    for lst in (report.done, report.skipped, report.failed):
        lst.sort(key=lambda r: str(r.src))
    report.seconds = time.perf_counter() - t0
    return report
