"""The ``ocr-denoise`` command, run as a real subprocess: bad files, signals, resuming,
exact outputs, the progress bar, exit status, the pixel limit."""

from __future__ import annotations

import ctypes
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import REPO, png_declaring, small_print, wait_for, worker_pids, write_random_pages

from ocr_denoise import denoise_page
from ocr_denoise.images import open_image, read_image

sys.path.insert(0, str(REPO / "benchmarks"))
from kill_soak import alive  # noqa: E402

CMD = [sys.executable, "-m", "ocr_denoise.cli"]
SUMMARY = re.compile(r"(\d+) done \((\d+) pages?[;)].*?, (\d+) skipped .*?, (\d+) failed")
NOTHING_DENOISED = re.compile(r"^(?:0 done|(\d+) text files? written .*?), (\d+) skipped .*?, "
                              r"(\d+) failed", re.M)
ALL_DONE = re.compile(r"^(\d+) already done, nothing to do", re.M)


def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=REPO, **kw)


def counts(stderr: str) -> tuple[int, int, int, int]:
    """(files done, pages, skipped, failed) from the summary's first line, in any of
    its forms (pages denoised; nothing denoised; everything already done)."""
    if m := SUMMARY.search(stderr):
        return tuple(int(g) for g in m.groups())  # type: ignore[return-value]
    if m := NOTHING_DENOISED.search(stderr):
        return (int(m.group(1) or 0), 0, int(m.group(2)), int(m.group(3)))
    m = ALL_DONE.search(stderr)
    assert m, stderr
    return (0, 0, int(m.group(1)), 0)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- one file --------------------------------------------------------------------


def test_single_file_matches_the_api(tmp_path, rng):
    img = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    r = run(tmp_path / "in.png", "-o", tmp_path / "out.png")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED),
                                  denoise_page(img))
    assert files_in(tmp_path) == ["in.png", "out.png"]


def test_unreadable_input_is_a_clear_error_naming_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    r = run(bad, "-o", tmp_path / "out.png")
    assert r.returncode == 1
    assert "notes.png" in r.stderr and "not a readable image" in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_version_flag_prints_package_and_model_versions():
    from ocr_denoise import Denoiser, __version__
    r = run("--version")
    model = Denoiser(device="cpu").model_version
    assert model  # the shipped model records its own version
    assert r.returncode == 0 and r.stdout.strip() == f"ocr-denoise {__version__} (model {model})"


def test_output_file_gets_ordinary_permissions(tmp_path):
    cv2.imwrite(str(tmp_path / "in.png"), np.full((10, 10), 200, np.uint8))
    assert run(tmp_path / "in.png", "-o", tmp_path / "out.png").returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o666 & ~mask


def test_single_file_output_that_exists_is_kept_unless_overwrite(tmp_path, rng):
    img = rng.integers(0, 256, (30, 30), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    (tmp_path / "out.png").write_bytes(b"earlier result")
    r = run(tmp_path / "in.png", "-o", tmp_path / "out.png")
    assert r.returncode == 0 and counts(r.stderr)[:3] == (0, 0, 1)
    assert (tmp_path / "out.png").read_bytes() == b"earlier result"
    r = run(tmp_path / "in.png", "-o", tmp_path / "out.png", "--overwrite")
    assert r.returncode == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out.png"), denoise_page(img))


def test_single_file_refuses_folder_only_flags(tmp_path, rng):
    cv2.imwrite(str(tmp_path / "in.png"), rng.integers(0, 256, (9, 9), dtype=np.uint8))
    r = run(tmp_path / "in.png", "-o", tmp_path / "out.png", "--format", "tiff")
    assert r.returncode == 2 and "--format" in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_multipage_input_into_a_png_name_fails_clearly(tmp_path, rng):
    pages = [rng.integers(0, 256, (9, 9), dtype=np.uint8) for _ in range(2)]
    cv2.imwritemulti(str(tmp_path / "two.tif"), pages)
    r = run(tmp_path / "two.tif", "-o", tmp_path / "two.png")
    assert r.returncode == 1 and "has 2 pages" in r.stderr and ".tif" in r.stderr
    assert files_in(tmp_path) == ["two.tif"]


# -- a folder with bad files (must-show 1) ---------------------------------------------


def _without_dac_override() -> None:
    """Root reads mode-000 files through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH. Drop
    both from the bounding set before exec, so the kernel enforces the file mode on
    this (still uid 0) process exactly as on an ordinary user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_folder_with_bad_files_writes_every_good_page_and_reports_every_bad_one(tmp_path, rng):
    src, out = tmp_path / "scans", tmp_path / "clean"
    good = write_random_pages(src, rng, 3, pattern="page{i}.png", shape=(40, 60))
    (src / "empty.png").write_bytes(b"")
    ok, buf = cv2.imencode(".png", rng.integers(0, 256, (200, 200), dtype=np.uint8))
    (src / "truncated.png").write_bytes(buf.tobytes()[: len(buf) // 2])
    (src / "notes.png").write_text("shopping list: milk, eggs")
    cv2.imwrite(str(src / "locked.png"), good["page0.png"])
    (src / "locked.png").chmod(0)
    (src / "moved.png").symlink_to(src / "elsewhere.png")

    r = run(src, "-o", out, preexec_fn=_without_dac_override if os.geteuid() == 0 else None)

    assert r.returncode == 1, r.stderr
    assert counts(r.stderr) == (3, 3, 0, 5)
    failed = dict(re.findall(r"^  \S+/(\S+): (.*)$", r.stderr, re.M))
    assert sorted(failed) == ["empty.png", "locked.png", "moved.png", "notes.png",
                              "truncated.png"]
    assert "empty (0 bytes)" in failed["empty.png"]
    assert "truncated" in failed["truncated.png"]
    assert "not a readable image" in failed["notes.png"]
    assert "Permission denied" in failed["locked.png"]
    assert "dangling symbolic link" in failed["moved.png"]
    assert files_in(out) == ["page0.png", "page1.png", "page2.png"]  # nothing partial
    for name, img in good.items():
        np.testing.assert_array_equal(read_image(out / name), denoise_page(img))


# -- interrupted runs (must-show 2) -----------------------------------------------------


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """24 pages, large enough that the shipped model takes a moment on each, and the
    page ``denoise_page`` makes of each."""
    src = tmp_path_factory.mktemp("pages") / "in"
    written = write_random_pages(src, np.random.default_rng(11), 24, pattern="p{i:02d}.png",
                                 shape=(320, 320))
    return src, {name: denoise_page(img) for name, img in written.items()}


def _outputs(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.png") if not p.name.startswith("."))


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigkill"])
def test_a_run_killed_midway_and_started_again_does_every_page_exactly_once(
        tmp_path, pages, how, jobs):
    src, expected = pages
    out = tmp_path / "out"
    args = [*CMD, str(src), "-o", str(out), "--jobs", str(jobs)]
    # A new session, so Ctrl-C can go to the whole process group as a terminal sends it.
    # SIGINT back to its default in the child: a shell runs background jobs (e.g. a CI
    # script started with '&') with SIGINT ignored, which every child inherits, and
    # Python then never raises KeyboardInterrupt. A terminal's foreground job has it.
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()
    wait_for(lambda: len(_outputs(out) if out.exists() else []) >= 2 or proc.poll() is not None,
             timeout=300)
    assert proc.poll() is None, "finished before it could be interrupted"
    workers = worker_pids(proc.pid)
    assert len(workers) == (jobs if jobs > 1 else 0)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    elif how == "sigterm":
        os.kill(proc.pid, signal.SIGTERM)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    rc = proc.wait(timeout=300)
    wait_for(lambda: not any(alive(w) for w in workers), timeout=60)  # no orphans left

    first = _outputs(out)
    assert 0 < len(first) < len(expected), first
    for name in first:  # whatever is there under a final name is complete and right
        np.testing.assert_array_equal(read_image(out / name), expected[name])
    if how == "sigkill":
        assert rc == -signal.SIGKILL
    else:
        text = "".join(err)
        assert rc == 130, text
        assert "interrupted" in text and "run the same command again" in text
        assert counts(text)[0] == len(first)  # every file it reported done is there
        assert counts(text)[3] == 0  # the files in flight were finished, not blamed
        assert files_in(out) == first  # orderly stop: no temporaries either

    r = run(src, "-o", out, "--jobs", str(jobs))
    assert r.returncode == 0, r.stderr
    done, n_pages, skipped, failed = counts(r.stderr)
    assert (skipped, done, failed) == (len(first), len(expected) - len(first), 0)
    assert files_in(out) == sorted(expected)  # temporaries of the killed run are gone
    for name, want in expected.items():
        np.testing.assert_array_equal(read_image(out / name), want)


class Running:
    """The CLI as a real process in its own session (so Ctrl-C can go to its whole
    process group, as a terminal sends it), its stderr lines collected live."""

    def __init__(self, *args) -> None:
        # SIGINT back to its default in the child: a shell runs background jobs (e.g.
        # a CI script started with '&') with SIGINT ignored, which every child
        # inherits, and the CLI then rightly keeps ignoring it.
        self.proc = subprocess.Popen(
            [*CMD, *map(str, args)], cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr),
                                        daemon=True)
        self._reader.start()

    def ctrl_c(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def sigterm(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)

    def started(self) -> list[str]:
        """Names of the files the run logged starting (-vv)."""
        return [Path(ln.split(" starting ", 1)[1].strip()).name for ln in list(self.lines)
                if ln.startswith("ocr-denoise: starting ")]

    def said(self, text: str) -> bool:
        return any(text in ln for ln in list(self.lines))

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=60)
        return rc, "".join(self.lines)

    def signal_mask(self, field: str) -> int:
        """A signal mask of the main process from /proc (SigCgt, SigPnd, ShdPnd)."""
        for ln in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if ln.startswith(field + ":"):
                return int(ln.split()[1], 16)
        raise AssertionError(field)


def _bit(sig: int) -> int:
    return 1 << (sig - 1)


def _check_interrupted_run(rc: int, text: str, out: Path, expected: dict) -> list[str]:
    """What every interrupted run must show: exit 130, no traceback, the summary with
    the rerun hint, and under final names only complete, right outputs, nothing
    else (no temporary, no claim). Returns the outputs."""
    assert rc == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "interrupted:" in text and "run the same command again" in text, text
    done = _outputs(out) if out.exists() else []
    assert (files_in(out) if out.exists() else []) == done
    for name in done:
        np.testing.assert_array_equal(read_image(out / name), expected[name])
    return done


def _rerun_completes(src: Path, out: Path, jobs: int, expected: dict, already: int) -> None:
    r = run(src, "-o", out, "--jobs", jobs)
    assert r.returncode == 0, r.stderr
    done, _, skipped, failed = counts(r.stderr)
    assert (done, skipped, failed) == (len(expected) - already, already, 0), r.stderr
    assert files_in(out) == sorted(expected)
    for name, want in expected.items():
        np.testing.assert_array_equal(read_image(out / name), want)


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_stop_request_starts_no_new_file_and_lets_those_in_progress_finish(
        tmp_path, pages, how, jobs):
    """Once stopped, no file starts (the run's own -vv "starting" lines), every file
    that started is finished and written (none half, none blamed), and the message
    names the files still in progress."""
    src, expected = pages
    out = tmp_path / "out"
    cli = Running(src, "-o", out, "--jobs", jobs, "-vv")
    wait_for(lambda: (out.exists() and _outputs(out)) or cli.proc.poll() is not None,
             timeout=300)
    assert cli.proc.poll() is None, "finished before it could be stopped"
    cli.ctrl_c() if how == "ctrl-c" else cli.sigterm()
    rc, text = cli.finish()
    done = _check_interrupted_run(rc, text, out, expected)

    lines = [ln for ln in text.splitlines() if ln.startswith("ocr-denoise: ")]
    stop = next(i for i, ln in enumerate(lines) if "stopping (" in ln)
    assert ("Ctrl-C" if how == "ctrl-c" else "SIGTERM") in lines[stop]
    assert not any(" starting " in ln for ln in lines[stop:]), text  # nothing new
    assert sorted(cli.started()) == done, text  # whatever started, finished
    assert counts(text)[0] == len(done) and counts(text)[3] == 0
    assert 0 < len(done) < len(expected)
    _rerun_completes(src, out, jobs, expected, len(done))


@pytest.fixture(scope="module")
def big_pages(tmp_path_factory):
    """4 pages big enough (2400 x 2400) that a second signal lands while one is in
    progress, and the page ``denoise_page`` makes of each."""
    src = tmp_path_factory.mktemp("big") / "in"
    written = write_random_pages(src, np.random.default_rng(7), 4, pattern="b{i}.png",
                                 shape=(2400, 2400))
    return src, {name: denoise_page(img) for name, img in written.items()}


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_second_signal_stops_at_once_and_still_prints_the_summary(tmp_path, big_pages,
                                                                   jobs):
    """Ctrl-C, then Ctrl-C again while files are in progress: they are discarded
    at once (no output, no temporary, no claim left), the summary of what finished
    is printed with the rerun hint, no traceback; a rerun does the rest."""
    src, expected = big_pages
    out = tmp_path / "out"
    cli = Running(src, "-o", out, "--jobs", jobs, "-vv")

    def a_fresh_file_running() -> bool:
        # A file that started after one finished (past the first ``jobs``): it has a
        # whole page's work ahead, so it is still in progress at the second Ctrl-C.
        # (Any file in progress was not enough: with 2 jobs, the first pair finish
        # together, and the second of them could end between the two signals.)
        done = _outputs(out) if out.exists() else []
        return bool(done) and any(n not in done for n in cli.started()[jobs:])

    wait_for(lambda: a_fresh_file_running() or cli.proc.poll() is not None, timeout=300)
    assert cli.proc.poll() is None, "finished before it could be stopped"
    cli.ctrl_c()
    wait_for(lambda: cli.said("stopping (Ctrl-C)") or cli.proc.poll() is not None)
    cli.ctrl_c()
    rc, text = cli.finish()
    done = _check_interrupted_run(rc, text, out, expected)

    assert "stopping at once: the " in text, text
    discarded = [Path(p.strip()).name for p in text.split("stopping at once: the ", 1)[1]
                 .split("\n", 1)[0].split(": ", 1)[1].split(",")]
    assert discarded and not set(discarded) & set(done), text
    assert counts(text)[0] == len(done) and counts(text)[3] == 0
    _rerun_completes(src, out, jobs, expected, len(done))


@pytest.mark.parametrize("twice", [False, True])
def test_a_signal_before_any_file_started_is_a_clean_stop(tmp_path, pages, twice):
    """Ctrl-C while the run is still loading its libraries and model: it stops
    before starting any file, with the summary and exit 130; twice: at once. No
    traceback either way (the handlers are installed before anything slow)."""
    src, expected = pages
    out = tmp_path / "out"
    cli = Running(src, "-o", out, "--jobs", "2")
    wait_for(lambda: cli.signal_mask("SigCgt") & _bit(signal.SIGTERM))  # handlers in
    cli.ctrl_c()
    if twice:  # the first one handled (no longer pending) before the second is sent
        wait_for(lambda: not (cli.signal_mask("SigPnd") | cli.signal_mask("ShdPnd"))
                 & _bit(signal.SIGINT))
        cli.ctrl_c()
    rc, text = cli.finish()
    assert rc == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    # Twice: stopped where it was, or (the second signal came once that little setup
    # was over) as after one.
    assert (f"interrupted: {len(expected)} file(s) not started" in text
            or twice and "stopped before any file was started; run the same command "
            "again" in text), text
    assert not out.exists() or files_in(out) == []


def _main_with_setup(tmp_path: Path, setup: str) -> subprocess.CompletedProcess:
    """``cli.main`` run as a real ``python -m`` program (as ``python -m ocr_denoise``
    is) with its setup, ``cli._main``, replaced by ``setup``: the source of a
    function ``setup(argv, signals)`` (fault injection into our own code)."""
    (tmp_path / "setup_fault.py").write_text(
        "import signal, sys\n"
        "import ocr_denoise.cli as cli\n"
        f"{setup}\n"
        "cli._main = setup\n"
        "sys.exit(cli.main())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    return subprocess.run([sys.executable, "-m", "setup_fault"], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)


def _assert_clean_stop(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert "stopped before any file was started" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_second_signal_during_exec_d_setup_code_still_exits_130(tmp_path):
    """The second Ctrl-C of a run still setting up can land in exec'd code (the
    methods dataclasses build as modules import); CPython 3.11 then ends a program
    run with ``-m`` by SIGINT, status -2, even though ``main`` caught it. Here that
    KeyboardInterrupt is raised from exec'd code in place of the setup."""
    _assert_clean_stop(_main_with_setup(tmp_path, (
        "def setup(argv, signals):\n"
        "    exec('raise KeyboardInterrupt')\n")))


@pytest.mark.parametrize("turned_into", ["ImportError", "RuntimeError"])
def test_a_second_signal_an_import_turned_into_another_error_is_still_a_clean_stop(
        tmp_path, turned_into):
    """An extension module importing when the second Ctrl-C lands may turn its
    KeyboardInterrupt into an error of its own (numpy: "ImportError: PyCapsule_Import
    could not import module datetime"): still the clean stop, no traceback. The
    signal handler itself raises here, twice called as two Ctrl-C would."""
    _assert_clean_stop(_main_with_setup(tmp_path, (
        "def setup(argv, signals):\n"
        "    try:\n"
        "        signals._handle(signal.SIGINT, None)\n"
        "        signals._handle(signal.SIGINT, None)\n"
        "    except KeyboardInterrupt as e:\n"
        f"        raise {turned_into}('could not import module datetime') from e\n")))


def test_an_error_in_setup_without_a_signal_is_not_taken_for_a_stop(tmp_path):
    r = _main_with_setup(tmp_path, (
        "def setup(argv, signals):\n"
        "    raise ImportError('a real import failure')\n"))
    assert r.returncode == 1 and "ImportError: a real import failure" in r.stderr
    assert "stopped before any file" not in r.stderr


def test_a_signal_while_worker_processes_start_prints_no_traceback(tmp_path, pages):
    """Ctrl-C reaches the whole process group, worker processes included, which are
    still importing their libraries just after the pool starts them."""
    src, expected = pages
    out = tmp_path / "out"
    cli = Running(src, "-o", out, "--jobs", "2")
    wait_for(lambda: worker_pids(cli.proc.pid) or cli.proc.poll() is not None)
    cli.ctrl_c()
    rc, text = cli.finish()
    _check_interrupted_run(rc, text, out, expected)
    assert "stopping (Ctrl-C)" in text


# -- two runs on one folder ----------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("then", ["finish", "kill"])
def test_an_output_another_run_is_writing_is_left_to_it(tmp_path, identity_model,
                                                        make_page_folder, jobs, then):
    """Another process (here with a PID that means nothing in ours, as from another
    container) holds the claim on out/p1.png: this run does the rest, waits, and
    then skips p1.png if the other wrote it, or does it if the other died."""
    from holders import Holder, dead_pid

    src = make_page_folder(4, shape=(30, 30))
    out = tmp_path / "out"
    out.mkdir()
    other = Holder("claim", out / "p1.png", fake_pid=dead_pid())
    try:
        cli = Running(src, "-o", out, "--jobs", jobs, "--model", identity_model, "-v")
        wait_for(lambda: cli.said("another run is writing") or cli.proc.poll() is not None)
        wait_for(lambda: _outputs(out) == ["p0.png", "p2.png", "p3.png"]
                 or cli.proc.poll() is not None)
        assert cli.proc.poll() is None, "".join(cli.lines)  # waiting for p1.png
        assert not cli.said("done: " + str(src / "p1.png"))
        other.finish() if then == "finish" else other.kill()
        rc, text = cli.finish()
    finally:
        other.close()
    assert rc == 0, text
    assert files_in(out) == ["p0.png", "p1.png", "p2.png", "p3.png"]  # no claim left
    if then == "finish":
        assert (out / "p1.png").read_bytes() == b"written by the holder"
        assert counts(text) == (3, 3, 1, 0)
    else:
        np.testing.assert_array_equal(read_image(out / "p1.png"),
                                      read_image(src / "p1.png"))
        assert counts(text) == (4, 4, 0, 0)


def test_two_runs_on_one_folder_at_once_never_denoise_the_same_file(tmp_path, pages):
    """Two runs started together over one folder (as from two containers sharing
    it): between them every file is done once, and both end successfully."""
    src, expected = pages
    out = tmp_path / "out"
    runs = [Running(src, "-o", out, "--jobs", jobs, "-v") for jobs in (2, 1)]
    results = [r.finish() for r in runs]
    done = []
    for rc, text in results:
        assert rc == 0, text
        done += [ln.split(" -> ")[0].split("done: ", 1)[1] for ln in text.splitlines()
                 if ln.startswith("ocr-denoise: done: ")]
    assert sorted(Path(d).name for d in done) == sorted(expected)  # each once
    assert files_in(out) == sorted(expected)
    for name, want in expected.items():
        np.testing.assert_array_equal(read_image(out / name), want)


# -- exact outputs (must-show 3) -------------------------------------------------------


def test_outputs_equal_denoise_page_byte_for_byte_with_and_without_jobs(tmp_path, rng):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "gray.png"), rng.integers(0, 256, (70, 90), dtype=np.uint8))
    cv2.imwrite(str(src / "colour.jpg"), rng.integers(0, 256, (50, 40, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "alpha.png"), rng.integers(0, 256, (33, 47, 4), dtype=np.uint8))
    cv2.imwrite(str(src / "deep.tif"), rng.integers(0, 65536, (40, 30), dtype=np.uint16))
    cv2.imwritemulti(str(src / "book.tiff"),
                     [rng.integers(0, 256, (30 + i, 20), dtype=np.uint8) for i in range(3)])
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        r = run(src, "-o", out, "--jobs", str(jobs))
        assert r.returncode == 0 and counts(r.stderr) == (5, 7, 0, 0), r.stderr
        runs[jobs] = out
        for p in src.iterdir():
            ok, want = cv2.imreadmulti(str(p), flags=cv2.IMREAD_UNCHANGED)
            name = p.stem + (".tif" if p.name == "book.tiff" else ".png")
            got = list(open_image(out / name))
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.tobytes() == denoise_page(w).tobytes(), (jobs, p.name)
    for name in files_in(runs[1]):
        assert (runs[1] / name).read_bytes() == (runs[2] / name).read_bytes(), name


# -- terminal, summary, exit status ----------------------------------------------------


def test_progress_bar_shows_on_a_terminal_and_not_on_a_pipe(tmp_path, page_folder,
                                                            identity_model):
    src = page_folder
    master, slave = os.openpty()
    proc = subprocess.Popen([*CMD, str(src), "-o", str(tmp_path / "tty"), "--model",
                             str(identity_model)], cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    tty = b"".join(chunks).decode(errors="replace")
    assert "3/3" in tty and "page/s" in tty, tty
    assert counts(tty) == (3, 3, 0, 0)

    piped = run(src, "-o", tmp_path / "pipe", "--model", identity_model)
    assert piped.returncode == 0
    assert "page/s" not in piped.stderr and "\r" not in piped.stderr
    assert counts(piped.stderr) == (3, 3, 0, 0)


def test_quiet_prints_nothing_on_success_and_only_failures_otherwise(
        tmp_path, identity_model, make_page_folder):
    src = make_page_folder(names=["a.png"])
    r = run(src, "-o", tmp_path / "out", "-q", "--model", identity_model)
    assert r.returncode == 0 and r.stderr == "" and r.stdout == ""
    (src / "b.png").write_bytes(b"")
    r = run(src, "-o", tmp_path / "out", "-q", "--model", identity_model)
    assert r.returncode == 1 and "b.png: file is empty" in r.stderr


def test_jobs_default_to_one_per_core_at_most_four_and_never_more_than_files(
        tmp_path, identity_model, make_page_folder):
    src = make_page_folder(5)
    auto = min(len(os.sched_getaffinity(0)), 4)
    r = run(src, "-o", tmp_path / "a", "--model", identity_model)
    assert r.returncode == 0 and f"{auto} job" in r.stderr, r.stderr
    r = run(src, "-o", tmp_path / "b", "--model", identity_model, "--jobs", "1")
    assert r.returncode == 0 and "1 job)" in r.stderr
    r = run(src / "p0.png", "-o", tmp_path / "c.png", "--model", identity_model, "--jobs", "3")
    assert r.returncode == 0 and "1 job)" in r.stderr


def test_everything_already_done_is_success(tmp_path, identity_model, make_page_folder):
    src = make_page_folder(names=["a.png"])
    assert run(src, "-o", tmp_path / "out", "--model", identity_model).returncode == 0
    r = run(src, "-o", tmp_path / "out", "--model", identity_model)
    assert r.returncode == 0 and counts(r.stderr) == (0, 0, 1, 0)


def test_cuda_without_a_gpu_is_one_clear_error_before_any_output(tmp_path, make_page_folder):
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    src = make_page_folder()
    r = run(src, "-o", tmp_path / "out", "--device", "cuda")
    assert r.returncode == 2
    assert r.stderr.count("error:") == 1 and "cuda" in r.stderr.lower()
    assert "--device cpu" in r.stderr and "device='cuda'" not in r.stderr  # the CLI's words
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []


def test_output_path_that_is_a_file_is_refused(tmp_path, make_page_folder):
    src = make_page_folder(0)
    (tmp_path / "taken").write_text("x")
    r = run(src, "-o", tmp_path / "taken")
    assert r.returncode == 2 and "not a folder" in r.stderr


@pytest.mark.parametrize("output", ["/proc/out.png", "/proc/out"])
def test_an_output_where_no_file_can_be_created_stops_the_run_naming_it(page_folder, output):
    """/proc takes no new files, whatever the permissions say (root may write
    anywhere): one error naming the output the user gave, not the temporary file
    the writer tried, before any page is denoised."""
    src = page_folder / "p0.png" if output.endswith(".png") else page_folder
    r = run(src, "-o", output)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("error:") == 1 and f"error: {output}: " in r.stderr, r.stderr
    assert ".tmp" not in r.stderr and "Traceback" not in r.stderr and "[Errno" not in r.stderr


def test_a_write_error_names_the_output_not_the_temporary(tmp_path):
    from ocr_denoise.images import write_image

    with pytest.raises(OSError) as e:
        write_image("/proc/out.png", np.zeros((4, 4), np.uint8))
    assert e.value.filename == "/proc/out.png" and ".tmp" not in str(e.value)


def test_output_folder_that_cannot_be_made_is_one_error_not_one_per_file(tmp_path,
                                                                         page_folder):
    src = page_folder
    (tmp_path / "afile").write_text("x")
    r = run(src, "-o", tmp_path / "afile" / "out")
    assert r.returncode == 2 and r.stderr.count("error:") == 1, r.stderr
    assert "afile" in r.stderr and "p0.png" not in r.stderr


def test_ocr_flag_writes_text_beside_each_output(tmp_path, identity_model):
    src = tmp_path / "in"
    src.mkdir()
    img = np.full((90, 400), 255, np.uint8)
    cv2.putText(img, "GOOD MORNING", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 3, cv2.LINE_AA)
    cv2.imwrite(str(src / "memo.png"), img)
    r = run(src, "-o", tmp_path / "out", "--ocr", "--model", identity_model)
    assert r.returncode == 0, r.stderr
    assert files_in(tmp_path / "out") == ["memo.png", "memo.txt"]
    assert "GOOD MORNING" in (tmp_path / "out" / "memo.txt").read_text()


# -- the pixel limit -------------------------------------------------------------------


def test_decompression_bomb_is_refused_with_the_flag_to_raise_and_others_still_done(
        tmp_path, identity_model, make_page_folder):
    src = make_page_folder(names=["ok.png"])
    (src / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    r = run(src, "-o", tmp_path / "out", "--model", identity_model)
    assert r.returncode == 1
    assert re.search(r"bomb\.png: declares 100000x100000 .*--max-pixels", r.stderr), r.stderr
    assert files_in(tmp_path / "out") == ["ok.png"]


def test_max_pixels_flag_sets_the_limit(tmp_path, identity_model):
    page = np.full((2000, 3000), 250, np.uint8)  # 6 Mpx
    cv2.imwrite(str(tmp_path / "big.png"), page)
    r = run(tmp_path / "big.png", "-o", tmp_path / "out.png", "--max-pixels", "5M",
            "--model", identity_model)
    assert r.returncode == 1 and "6,000,000 pixels" in r.stderr
    assert not (tmp_path / "out.png").exists()
    r = run(tmp_path / "big.png", "-o", tmp_path / "out.png", "--max-pixels", "6000000",
            "--model", identity_model)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(read_image(tmp_path / "out.png"), page)


def test_decompression_bomb_under_a_3_gib_address_space_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_declaring(100_000, 100_000))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    r = run(tmp_path / "bomb.png", "-o", tmp_path / "out.png", preexec_fn=limit)
    assert r.returncode == 1, r.stderr
    assert "100000x100000" in r.stderr and "--max-pixels" in r.stderr
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr
    assert files_in(tmp_path) == ["bomb.png"]


# -- what stops a run before it starts ---------------------------------------------


def test_python_dash_m_runs_the_command():
    r = subprocess.run([sys.executable, "-m", "ocr_denoise", "--version"], capture_output=True,
                       text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0 and r.stdout.startswith("ocr-denoise ")


def test_a_missing_input_cannot_start_the_run(tmp_path, page_folder):
    r = run(page_folder, tmp_path / "nope", "-o", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.count("error:") == 1
    assert f"no such file or folder: {tmp_path / 'nope'}" in r.stderr
    assert not (tmp_path / "out").exists()  # nothing of the good folder was done either


def test_a_folder_without_images_says_so_and_points_pdfs_to_the_plugin(tmp_path):
    empty, pdfs = tmp_path / "empty", tmp_path / "pdfs"
    empty.mkdir()
    pdfs.mkdir()
    (pdfs / "scan.pdf").write_bytes(b"%PDF-1.4\n")
    r = run(empty, "-o", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.count("error:") == 1
    assert "no image files (.png" in r.stderr and str(empty) in r.stderr and "[" not in r.stderr
    r = run(pdfs, "-o", tmp_path / "out")
    assert r.returncode == 2 and "1 PDF file(s)" in r.stderr and "--denoise" in r.stderr
    r = run(pdfs / "scan.pdf", "-o", tmp_path / "out")
    assert r.returncode == 2 and "is a PDF" in r.stderr and "ocrmypdf --denoise" in r.stderr


def test_an_ocr_language_tesseract_lacks_stops_the_run_before_any_page(tmp_path, page_folder):
    import shutil
    if shutil.which("tesseract") is None:
        pytest.skip("needs tesseract")
    r = run(page_folder, "-o", tmp_path / "out", "--ocr", "--lang", "eng+xyz")
    assert r.returncode == 2 and r.stderr.count("error:") == 1
    assert "tesseract has no xyz" in r.stderr and "eng" in r.stderr.split("it has")[1]
    assert not (tmp_path / "out").exists()


def test_a_double_star_pattern_without_recursive_is_warned_about(tmp_path, make_page_folder):
    src = make_page_folder(1)
    r = run(f"{src}/**/*.png", "-o", tmp_path / "out")
    assert "warning: ** in" in r.stderr and "-r" in r.stderr
    r = run(f"{src}/**/*.png", "-o", tmp_path / "out2", "-r")
    assert "warning" not in r.stderr


# -- --enlarger (issue 32) ---------------------------------------------------------


def test_enlarger_by_path_gives_the_bytes_the_python_api_gives(tmp_path, mix_enlarger):
    from ocr_denoise import denoise_folder

    rng = np.random.default_rng(32)
    src = tmp_path / "in"
    src.mkdir()
    pages = {f"p{i}.png": small_print(rng, 80 + 9 * i, 110) for i in range(2)}
    for name, page in pages.items():
        cv2.imwrite(str(src / name), page)
    r = run(src, "-o", tmp_path / "cli", "--upscale", "auto", "--enlarger", mix_enlarger,
            "--jobs", "2")
    assert r.returncode == 0 and counts(r.stderr)[:2] == (2, 2), r.stderr
    denoise_folder(src, tmp_path / "api", upscale="auto", enlarger=mix_enlarger)
    one = run(src / "p0.png", "-o", tmp_path / "one.png", "--upscale", "2",
              "--enlarger", mix_enlarger)
    assert one.returncode == 0, one.stderr
    cubic = run(src / "p0.png", "-o", tmp_path / "cubic.png", "--upscale", "2",
                "--enlarger", "none")
    assert cubic.returncode == 0, cubic.stderr
    for name, page in pages.items():
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()
        want = denoise_page(page, upscale="auto", enlarger=mix_enlarger)
        assert want.shape == (2 * page.shape[0], 2 * page.shape[1])
        np.testing.assert_array_equal(read_image(tmp_path / "cli" / name), want)
    np.testing.assert_array_equal(read_image(tmp_path / "one.png"),
                                  denoise_page(pages["p0.png"], upscale=2,
                                               enlarger=mix_enlarger))
    np.testing.assert_array_equal(read_image(tmp_path / "cubic.png"),
                                  denoise_page(pages["p0.png"], upscale=2, enlarger=None))
    assert (tmp_path / "one.png").read_bytes() != (tmp_path / "cubic.png").read_bytes()


@pytest.mark.parametrize("flags, says", [
    (["--enlarger", "NOWHERE"], "error: --enlarger NOWHERE: NOWHERE: model file not found"),
    (["--enlarger", "BROKEN"], "error: --enlarger BROKEN: BROKEN: onnxruntime cannot load it"),
    (["--enlarger", "denoise"],
     r"error: --enlarger denoise: \S+denoiser\S*\.onnx is not an enlargement model"),
    (["--model", "MIX"],
     r"error: MIX is an enlargement model \(metadata scale=2\), not a denoiser; give it as "
     r"the enlarger \(enlarger=\.\.\., --enlarger"),
], ids=["missing", "broken", "denoiser-as-enlarger", "enlarger-as-model"])
def test_a_missing_broken_or_wrong_kind_of_model_is_one_error_naming_it(
        tmp_path, make_page_folder, mix_enlarger, flags, says):
    src = make_page_folder(2)
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07 not an onnx model " * 20)
    paths = {"NOWHERE": str(tmp_path / "nowhere.onnx"), "BROKEN": str(tmp_path / "broken.onnx"),
             "MIX": str(mix_enlarger)}
    flags = [paths.get(f, f) for f in flags]
    for k, v in paths.items():
        says = says.replace(k, re.escape(v))
    r = run(src, "-o", tmp_path / "out", "--upscale", "2", *flags)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("error:") == 1 and re.search(says, r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []


def test_an_enlarger_without_upscale_is_warned_about(tmp_path, make_page_folder, mix_enlarger):
    src = make_page_folder(1)
    r = run(src, "-o", tmp_path / "out", "--enlarger", mix_enlarger)
    assert r.returncode == 0 and "warning: --enlarger has no effect without --upscale" in r.stderr
    r = run(src, "-o", tmp_path / "out2", "--enlarger", mix_enlarger, "--upscale", "auto")
    assert r.returncode == 0 and "warning" not in r.stderr
