"""``ocr-denoise``: a thin command-line layer over ``batch.denoise_folder``.

It parses arguments, sets up logging and the progress bar, calls the batch API
and turns its report into a summary on stderr and an exit status:
0 nothing failed, 1 some file failed, 2 the run could not start (bad
arguments, model, device, missing tesseract), 130 interrupted.

Ctrl-C or SIGTERM: the first starts no new file and lets those in progress
finish; a second stops at once, discarding the files in progress. Either way
the summary of what finished is printed, with no traceback (``_Signals``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__

# Nothing heavy at module level: ``main`` installs the signal handlers before it
# imports numpy, OpenCV or onnxruntime (through .images, .plan, .executors), so a
# Ctrl-C while those load is a stop request like any other, not a traceback.

EXIT_OK, EXIT_FAILED, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = """\
examples:
  ocr-denoise scan.png -o clean.png          one file
  ocr-denoise scans/ -o clean/               every image in a folder
  ocr-denoise scans/ -o clean/ -r --jobs 2   a whole tree, two worker processes
  ocr-denoise 'scans/*.tif' -o clean/ --format tiff --ocr

Existing outputs are skipped (run the same command again to resume an
interrupted run); --overwrite redoes them.
exit status: 0 all done, 1 some file failed (listed on stderr), 2 the run could
not start (nothing found, a missing input, a PDF, a --lang tesseract lacks...),
130 interrupted (Ctrl-C or SIGTERM: the files in progress finish, nothing new
starts; press it again to stop at once). Also: python -m ocr_denoise.
"""


def _pixel_count(s: str) -> int:
    """'200000000', '200M', '1.5G' -> pixels."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", s)
    if not m:
        raise argparse.ArgumentTypeError(
            f"expected a pixel count like 300000000 or 300M, got {s!r}")
    n = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()]
    if n < 1:
        raise argparse.ArgumentTypeError("the pixel limit must be at least 1")
    return int(n)


def _upscale(s: str) -> int | str:
    """'auto', 'off' or a whole number; RunOptions normalises 'off' and 1 to None."""
    return s if s in ("auto", "off") else _positive_int(s)


def _enlarger(s: str) -> str | None:
    """'none' -> None (cubic enlargement); 'auto', a model's name or a path as given."""
    return None if s == "none" else s


def _jobs(s: str) -> int | str:
    return "auto" if s == "auto" else _positive_int(s)


def _positive_int(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {s!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    from .images import DEFAULT_MAX_PIXELS

    p = argparse.ArgumentParser(
        prog="ocr-denoise",
        description="Clean scanned pages before OCR with a learned denoiser: one file, "
        "or whole folders of PNG, JPEG, TIFF (multi-page too), BMP and WebP scans.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders or glob patterns (quote patterns)")
    p.add_argument("-o", "--output", required=True,
                   help="output folder; for a single input file, an output file name "
                   "(.png, .tif, .jpg, ...) also works")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="descend into subfolders, mirroring the tree under the output folder")
    p.add_argument("--suffix", default="",
                   help="appended to each output's stem, e.g. _clean (default: none)")
    p.add_argument("--format", default="png", choices=["png", "tiff", "jpeg"],
                   help="output format (default: png; multi-page inputs are always "
                   "written as multi-page TIFF)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo outputs that already exist (default: skip them)")
    p.add_argument("-j", "--jobs", type=_jobs, default="auto",
                   help="worker processes; each uses cores/jobs cores "
                   "(default: auto = one per core, at most 4; 1 = no worker processes)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                   "tcp://10.0.0.5:8786) instead of local worker processes; paths must "
                   "be the same on every worker; needs the 'dask' extra (--jobs is ignored)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: CUDA if available, else CPU; cuda fails if there is no GPU")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    p.add_argument("--no-guard", dest="guard", action="store_false",
                   help="apply the model to every page; by default pages it was measured "
                   "to make worse (smooth pages, text smaller than it learnt) are left as "
                   "they are")
    p.add_argument("--upscale", type=_upscale, default=None, metavar="off|auto|N",
                   help="auto: enlarge pages whose text is small (letters under about 14 "
                   "px tall, e.g. forms scanned at 75-150 DPI) 2x before denoising, and write "
                   "them enlarged with their DPI scaled (tesseract reads them better); N: "
                   "enlarge every page N times (default: off, pages keep their size)")
    p.add_argument("--enlarger", type=_enlarger, default="auto",
                   metavar="NAME|PATH|auto|none",
                   help="the enlargement model --upscale uses for 2x: a shipped model's name "
                   "or an ONNX file; auto: the shipped one if the package has one; none: "
                   "bicubic enlargement (default: auto)")
    p.add_argument("--ocr", action="store_true",
                   help="also run tesseract and write each page's text next to it (.txt); "
                   "needs the 'ocr' extra and tesseract")
    p.add_argument("--lang", default="eng", help="tesseract language(s) for --ocr (default: eng)")
    p.add_argument("--max-pixels", type=_pixel_count, default=DEFAULT_MAX_PIXELS,
                   metavar="N",
                   help="refuse pages whose header declares more pixels, before decoding "
                   f"(default: {DEFAULT_MAX_PIXELS // 1_000_000}M; e.g. 500M)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar; print only failures")
    g.add_argument("-v", "--verbose", action="count", default=0,
                   help="log every file and what was done to it; -vv also each page's "
                   "decision with the guard's measurements, and debug detail")
    p.add_argument("--report", metavar="FILE", default=None,
                   help="also write a JSON report: every file's status and every page's "
                   "decision (denoised, left as it came, enlarged), its reason, the guard's "
                   "measurements and seconds (schema in docs/cli.md)")
    p.add_argument("--version", action=_Version, nargs=0,
                   help="print the package's and the shipped model's versions and exit")
    return p


class _Version(argparse.Action):
    """``--version``: the package's version and the shipped model's own
    (``model_version`` in its ONNX metadata), which change independently."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from .model import default_model_path, read_model_version

        try:
            model = read_model_version(default_model_path()) or "unversioned"
        except Exception as e:  # a broken install must still say what it is
            model = f"unreadable ({e})"
        print(f"{parser.prog} {__version__} (model {model})")  # stdout, as argparse's own
        parser.exit()


def _single_file(args: argparse.Namespace) -> bool:
    """``ocr-denoise IN.png -o OUT.png``: one input that is not a folder or pattern,
    and an output named like an image file that is not an existing folder."""
    from .images import WRITE_EXTENSIONS
    from .plan import is_glob

    if len(args.inputs) != 1:
        return False
    src, out = Path(args.inputs[0]), Path(args.output)
    is_pattern = is_glob(args.inputs[0]) and not src.exists()
    return (not src.is_dir() and not is_pattern and not out.is_dir()
            and not args.output.endswith(("/", "\\"))
            and out.suffix.lower() in WRITE_EXTENSIONS)


def _preflight(args: argparse.Namespace) -> str | None:
    """What stops a run before it starts, in the user's words (None: nothing):
    an input that does not exist, a PDF (the OCRmyPDF plugin reads those), an
    OCR language tesseract does not have. Checked before any page is denoised."""
    from .plan import is_glob

    for given in args.inputs:
        p = Path(given)
        if not (p.exists() or p.is_symlink()) and not is_glob(given):
            return f"no such file or folder: {given}"
        if p.suffix.lower() == ".pdf" and p.is_file():
            return (f"{given} is a PDF; ocr-denoise reads page images (PNG, JPEG, TIFF, BMP, "
                    "WebP). For PDFs use OCRmyPDF with this package's plugin: "
                    "pip install 'ocr-denoise[ocrmypdf]', then ocrmypdf --denoise IN.pdf "
                    "OUT.pdf")
    if args.ocr:
        from .ocr import available_languages, missing_languages

        have = available_languages()
        missing = missing_languages(args.lang, have)
        if missing:
            return (f"--lang {args.lang}: tesseract has no {'+'.join(missing)}; it has "
                    f"{', '.join(have)} (Debian: apt install "
                    f"tesseract-ocr-{missing[0]})")
    return None


def _nothing_found(args: argparse.Namespace) -> str:
    """Why a run found no input, and where PDFs were, if any."""
    where = ", ".join(args.inputs)
    pdfs = [p for given in args.inputs if Path(given).is_dir()
            for p in Path(given).glob("*.pdf")]
    hint = (f"; {len(pdfs)} PDF file(s) there: for PDFs use OCRmyPDF with "
            "--denoise (pip install 'ocr-denoise[ocrmypdf]')") if pdfs else ""
    return (f"no image files (.png .jpg .jpeg .tif .tiff .bmp .webp) found in {where}"
            f"{' (add -r for subfolders)' if not args.recursive else ''}{hint}")


def _in_cli_words(e: Exception, enlarger: str | None = None) -> str:
    """An error from the Python API, said in the command line's words;
    ``enlarger``: ``--enlarger`` as given, so that a problem with that model
    names the option."""
    from .errors import ProviderError
    from .work import enlarger_problem

    problem = enlarger_problem(e, enlarger)
    if problem is not None:
        return f"--enlarger {enlarger}: {problem}"
    if isinstance(e, OSError) and e.filename and e.strerror:  # an output folder, say
        return f"{e.filename}: {e.strerror}"
    if isinstance(e, ProviderError) and "cuda" in str(e).lower():
        return ("--device cuda: no CUDA GPU is usable here (this onnxruntime offers no CUDA "
                "provider, or it failed to start; install the 'gpu' extra on a machine with "
                "an NVIDIA GPU), or use --device cpu or --device auto")
    return str(e)


class _Signals:
    """Ctrl-C (SIGINT) and SIGTERM for the command line. The first asks the run to
    stop (``executors.STOP``): no new file starts, those in progress finish. A
    second stops at once: the files in progress are discarded (their temporaries
    removed), and the summary of what finished still prints. The handler never
    raises, so no traceback can appear, except once before any file has started
    (``setup``), when there is nothing to wait for: ``KeyboardInterrupt`` then
    ends the run where it is and ``main`` says so. Installed before the heavy
    imports; requests made before ``attach`` are handed on there."""

    def __init__(self) -> None:
        self.setup = True
        self.stop: Any = None  # executors.STOP, once imported
        self._pending: list[str] = []
        self._raised = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # started ignoring it (nohup, a background job): keep that
            self._previous[sig] = signal.signal(sig, self._handle)

    @property
    def raised(self) -> bool:
        """Whether a second signal during the setup raised ``KeyboardInterrupt``."""
        return self._raised

    def attach(self, stop: Any) -> None:
        stop.managed = True
        for name in self._pending:
            stop.request(name)
        self.stop = stop

    def ignore(self) -> None:
        for sig in self._previous:
            signal.signal(sig, signal.SIG_IGN)
        if self.stop is not None:
            self.stop.reset()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self.stop is not None:
            self.stop.reset()

    def _handle(self, signum: int, frame: object) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if self.stop is None:
            self._pending.append(name)
            level, started = min(len(self._pending), 2), False
        else:
            level, started = self.stop.request(name), self.stop.started
        if level >= 2 and self.setup and not started and not self._raised:
            self._raised = True
            raise KeyboardInterrupt


def _exit_now(code: int) -> None:
    """End the process without waiting for a file thread a stop at once left
    running (it writes nothing more: ``atomic.abandon``)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    signals = _Signals()
    signals.install()  # before anything slow: a signal from now on never shows a traceback
    try:
        try:
            return _main(argv, signals)
        except KeyboardInterrupt:  # a second signal before any file had started
            pass
        except Exception:
            if not signals.raised:
                raise
            # that signal's KeyboardInterrupt landed in an extension module's import,
            # which turned it into an error of its own (numpy's: an ImportError)
        # a second signal stopped the run before any file had started
        print("ocr-denoise: stopped before any file was started; run the same command "
              "again to do them", file=sys.stderr)
        if argv is None:
            # CPython 3.11 counts a KeyboardInterrupt raised inside exec'd code (the
            # methods dataclasses build while modules import) as unhandled even once
            # caught, and ends the program by SIGINT on its way out (status -2, not
            # 130): end it here, handlers set to ignore first as below.
            signals.ignore()
            _exit_now(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    finally:
        if argv is not None:  # called from Python: give the caller its handlers back
            signals.restore()
        else:  # the program is ending: a late signal must not kill it on the way out
            signals.ignore()  # (Python resets its own handlers to the default at exit)


def _main(argv: Sequence[str] | None, signals: _Signals) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose
             else logging.ERROR if args.quiet else logging.WARNING)
    logging.basicConfig(level=level, format="ocr-denoise: %(message)s")
    import cv2  # this process is ours: decoder complaints become failure reasons instead

    from .batch import denoise_files, denoise_folder
    from .executors import STOP, default_jobs
    from .work import RunOptions

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    signals.attach(STOP)

    try:
        problem = _preflight(args)
    except Exception as e:  # tesseract missing or unusable
        problem = str(e)
    if problem:
        print(f"ocr-denoise: error: {problem}", file=sys.stderr)
        return EXIT_SETUP
    for given in args.inputs:
        if "**" in given and not args.recursive:
            print(f"ocr-denoise: warning: ** in {given} matches one folder level without "
                  "-r (--recursive)", file=sys.stderr)

    if args.enlarger not in ("auto", None) and args.upscale in (None, "off", 1):
        print("ocr-denoise: warning: --enlarger has no effect without --upscale",
              file=sys.stderr)

    options = RunOptions(model=args.model, device=args.device, overwrite=args.overwrite,
                         ocr=args.ocr, ocr_lang=args.lang, max_pixels=args.max_pixels,
                         guard=args.guard, upscale=args.upscale, enlarger=args.enlarger)
    jobs = default_jobs() if args.jobs == "auto" else args.jobs  # unused with --scheduler
    single = _single_file(args)
    if single and (args.recursive or args.suffix or args.format != "png"):
        parser.error("--recursive, --suffix and --format apply to folder runs; for one file "
                     "the output name's extension picks the format")
    progress = not args.quiet and sys.stderr.isatty()
    redirect: contextlib.AbstractContextManager = contextlib.nullcontext()
    if progress:
        from tqdm.contrib.logging import logging_redirect_tqdm

        redirect = logging_redirect_tqdm()  # log lines print above the bar, not through it

    try:
        with redirect:
            if single:
                report = denoise_files([(args.inputs[0], args.output)], options=options,
                                       jobs=jobs, scheduler=args.scheduler, progress=progress)
            else:
                report = denoise_folder(args.inputs, args.output, recursive=args.recursive,
                                        suffix=args.suffix, format=args.format,
                                        options=options, jobs=jobs,
                                        scheduler=args.scheduler, progress=progress)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # the run could not start: model, device, tesseract, arguments
        logging.getLogger(__name__).debug("setup failure", exc_info=True)
        print(f"ocr-denoise: error: {_in_cli_words(e, args.enlarger)}", file=sys.stderr)
        return EXIT_SETUP
    finally:
        signals.setup = False  # from here on, signals only ask; the summary always prints

    if not (report.done or report.skipped or report.failed or report.interrupted):
        print(f"ocr-denoise: error: {_nothing_found(args)}", file=sys.stderr)
        return EXIT_SETUP
    if not args.quiet or not report.ok:
        print(report.summary(), file=sys.stderr)
    code = EXIT_INTERRUPTED if report.interrupted else EXIT_OK if report.ok else EXIT_FAILED
    if args.report:
        from .report import write_json

        try:
            write_json(report, args.report)
        except OSError as e:
            print(f"ocr-denoise: error: cannot write the report {args.report}: "
                  f"{e.strerror or e}", file=sys.stderr)
            code = code or EXIT_FAILED
    if STOP.level >= 2 and any(t.name == "ocr_denoise-file" and t.is_alive()
                               for t in threading.enumerate()):
        _exit_now(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
