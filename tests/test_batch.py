"""``denoise_folder``: planning, skipping, formats, DPI, OCR, and surviving bad files and
dead workers. Real onnxruntime (the shipped model or tiny models built in conftest),
real tesseract, real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import REPO, noisy_page, small_print_folder, wait_for, worker_pids, write_random_pages
from holders import Holder
from PIL import Image

from ocr_denoise import BatchReport, denoise_folder, denoise_page
from ocr_denoise.batch import denoise_files
from ocr_denoise.images import open_image, read_image


def expected_pages(path: Path) -> list[np.ndarray]:
    """What ``denoise_page`` makes of every page of ``path`` read by OpenCV itself."""
    ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
    assert ok
    return [denoise_page(p) for p in pages]


def output_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def by_name(results) -> dict[str, object]:
    return {r.src.name: r for r in results}


# -- bad files -------------------------------------------------------------------


def test_every_good_page_is_written_and_every_bad_file_reported_with_its_reason(
        tmp_path, rng, identity_model, make_page_folder):
    src = make_page_folder(3, pattern="good{i}.png", shape=(60, 80), folder="scans")
    out = tmp_path / "clean"
    (src / "empty.png").write_bytes(b"")
    ok, buf = cv2.imencode(".png", noisy_page(rng, 200, 200))
    (src / "truncated.png").write_bytes(buf.tobytes()[:-500])
    (src / "notes.png").write_text("meeting notes, not a scan")
    (src / "link.png").symlink_to(src / "deleted.png")
    report = denoise_folder(src, out, model=identity_model)

    assert isinstance(report, BatchReport) and not report.ok
    assert sorted(by_name(report.done)) == ["good0.png", "good1.png", "good2.png"]
    reasons = {k: r.reason for k, r in by_name(report.failed).items()}
    assert sorted(reasons) == ["empty.png", "link.png", "notes.png", "truncated.png"]
    assert "empty (0 bytes)" in reasons["empty.png"]
    assert "truncated" in reasons["truncated.png"]
    assert "not a readable image" in reasons["notes.png"]
    assert "dangling symbolic link" in reasons["link.png"]
    assert output_files(out) == ["good0.png", "good1.png", "good2.png"]  # no partial, no temp
    lines = report.summary().splitlines()
    for line in lines[lines.index("failed:") + 1:]:
        assert line.startswith(f"  {src}/")


# -- outputs equal denoise_page ----------------------------------------------------


def _all_kinds(folder: Path, rng) -> None:
    folder.mkdir()
    cv2.imwrite(str(folder / "gray.png"), noisy_page(rng))
    cv2.imwrite(str(folder / "colour.png"), noisy_page(rng, channels=3))
    cv2.imwrite(str(folder / "alpha.png"), noisy_page(rng, channels=4))
    cv2.imwrite(str(folder / "deep.png"), noisy_page(rng, dtype=np.uint16))
    Image.fromarray(noisy_page(rng, channels=2), "LA").save(folder / "gray_alpha.png")
    Image.fromarray(noisy_page(rng)).convert("P").save(folder / "palette.png")
    cv2.imwrite(str(folder / "photo.jpg"), noisy_page(rng, channels=3))
    cv2.imwrite(str(folder / "old.bmp"), noisy_page(rng, channels=3))
    cv2.imwrite(str(folder / "web.webp"), noisy_page(rng, channels=3))
    cv2.imwrite(str(folder / "deep16.tiff"), noisy_page(rng, channels=3, dtype=np.uint16))
    cv2.imwritemulti(str(folder / "book.tif"),
                     [noisy_page(rng, 40, 50), noisy_page(rng, 70, 30), noisy_page(rng, 9, 9)])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """One folder of every input kind denoised with jobs=1 and with jobs=2."""
    rng = np.random.default_rng(7)
    base = tmp_path_factory.mktemp("kinds")
    _all_kinds(base / "in", rng)
    reports = {j: denoise_folder(base / "in", base / f"out{j}", jobs=j) for j in (1, 2)}
    return base, reports


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_input_kind_gives_exactly_what_denoise_page_gives(two_runs, jobs):
    base, reports = two_runs
    r = reports[jobs]
    assert r.ok and len(r.done) == 11 and r.pages == 13, r.summary()
    for src in sorted((base / "in").iterdir()):
        name = src.stem + (".tif" if src.name == "book.tif" else ".png")
        got = list(open_image(base / f"out{jobs}" / name))
        want = expected_pages(src)
        assert len(got) == len(want), src.name
        for g, w in zip(got, want):
            assert g.dtype == np.uint8 and g.ndim == 2
            np.testing.assert_array_equal(g, w, err_msg=src.name)


def test_jobs_do_not_change_a_single_output_byte(two_runs):
    base, _ = two_runs
    names = output_files(base / "out1")
    assert names == output_files(base / "out2") and len(names) == 11
    for n in names:
        assert (base / "out1" / n).read_bytes() == (base / "out2" / n).read_bytes(), n


def test_multipage_tiff_is_written_as_multipage_tif_whatever_the_format(two_runs):
    base, reports = two_runs
    book = by_name(reports[1].done)["book.tif"]
    assert book.dst == base / "out1" / "book.tif" and book.pages == 3
    assert open_image(book.dst).pages == 3
    assert not (base / "out1" / "book.png").exists()


# -- metadata and formats --------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "tiff", "jpeg"])
def test_each_inputs_dpi_is_kept_in_its_output(tmp_path, rng, identity_model, fmt):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(noisy_page(rng)).save(src / "a.png", dpi=(300, 300))
    Image.fromarray(noisy_page(rng, channels=3)).save(src / "b.jpg", dpi=(200, 100))
    Image.fromarray(noisy_page(rng)).save(src / "c.tif", dpi=(400, 400))
    Image.fromarray(noisy_page(rng)).save(src / "d.bmp", dpi=(600, 600))
    cv2.imwrite(str(src / "e.png"), noisy_page(rng))  # no DPI recorded
    report = denoise_folder(src, tmp_path / "out", format=fmt, model=identity_model)
    assert report.ok, report.summary()
    dpi = {r.src.stem: open_image(r.dst).dpi[0] for r in report.done}
    rounded = {k: v and (round(v[0]), round(v[1])) for k, v in dpi.items()}
    assert rounded == {"a": (300, 300), "b": (200, 100), "c": (400, 400), "d": (600, 600),
                       "e": None}
    ext = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}[fmt]
    assert {r.dst.suffix for r in report.done} == {ext}
    assert {open_image(r.dst).format for r in report.done} == {fmt.upper()}


def test_suffix_is_added_to_each_output_stem(tmp_path, identity_model, make_page_folder):
    src = make_page_folder(names=["p.jpg"], shape=(60, 80))
    denoise_folder(src, tmp_path / "out", suffix="_clean", model=identity_model)
    assert output_files(tmp_path / "out") == ["p_clean.png"]


# -- which files are inputs --------------------------------------------------------


def _tree(root: Path, rng) -> None:
    for rel in ["a.png", "sub/b.png", "sub/deeper/c.jpg", ".hidden/d.png"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), noisy_page(rng, 20, 20))


def test_recursive_mirrors_the_tree_and_plain_run_stays_in_the_folder(tmp_path, rng,
                                                                       identity_model):
    _tree(tmp_path / "in", rng)
    (tmp_path / "in" / "readme.txt").write_text("not an image")
    (tmp_path / "in" / "._a.png").write_bytes(b"macOS resource fork")
    assert denoise_folder(tmp_path / "in", tmp_path / "flat", model=identity_model).ok
    assert output_files(tmp_path / "flat") == ["a.png"]
    assert denoise_folder(tmp_path / "in", tmp_path / "tree", recursive=True,
                          model=identity_model).ok
    assert output_files(tmp_path / "tree") == ["a.png", "sub/b.png", "sub/deeper/c.png"]


def test_output_folder_inside_the_input_folder_is_never_read_back(tmp_path, rng,
                                                                  identity_model):
    src = tmp_path / "in"
    _tree(src, rng)
    first = denoise_folder(src, src / "clean", recursive=True, model=identity_model)
    second = denoise_folder(src, src / "clean", recursive=True, model=identity_model)
    assert len(first.done) == 3 and first.ok
    assert len(second.done) == 0 and len(second.skipped) == 3 and second.ok
    assert output_files(src / "clean") == ["a.png", "sub/b.png", "sub/deeper/c.png"]


def test_outputs_written_beside_their_inputs_are_not_taken_for_inputs(tmp_path, rng,
                                                                      identity_model):
    src = tmp_path / "in"
    _tree(src, rng)
    first = denoise_folder(src, src, suffix="_clean", recursive=True, model=identity_model)
    second = denoise_folder(src, src, suffix="_clean", recursive=True, model=identity_model)
    assert len(first.done) == 3 and (len(second.done), len(second.skipped)) == (0, 3)
    assert not [p for p in src.rglob("*_clean_clean*")]


def test_output_folder_equal_to_input_folder_without_suffix_is_refused(tmp_path, rng,
                                                                       identity_model):
    _tree(tmp_path / "in", rng)
    before = output_files(tmp_path / "in")
    with pytest.raises(ValueError, match="--suffix"):
        denoise_folder(tmp_path / "in", tmp_path / "in", model=identity_model)
    assert output_files(tmp_path / "in") == before


def test_an_output_that_is_an_input_file_is_refused_and_the_input_kept(tmp_path, rng,
                                                                       identity_model):
    a = tmp_path / "a.png"
    cv2.imwrite(str(a), noisy_page(rng))
    os.link(a, tmp_path / "hard.png")
    before = a.read_bytes()
    report = denoise_files([(a, a), (a, tmp_path / "hard.png")], overwrite=True,
                           model=identity_model)
    assert [r.status for r in report.failed] == ["failed", "failed"]
    assert all("would overwrite" in r.reason for r in report.failed)
    assert a.read_bytes() == before and not report.done


def test_two_inputs_with_one_output_name_give_one_output_and_one_clear_failure(
        tmp_path, identity_model, make_page_folder):
    src = make_page_folder(names=["p.jpg", "p.png"], shape=(60, 80))
    report = denoise_folder(src, tmp_path / "out", model=identity_model)
    assert len(report.done) == 1 and len(report.failed) == 1
    assert "is also the output of" in report.failed[0].reason


def test_glob_patterns_pick_files_and_an_empty_match_is_a_failure(tmp_path, rng,
                                                                  identity_model):
    _tree(tmp_path / "in", rng)
    report = denoise_folder([str(tmp_path / "in" / "**" / "*.png"),
                             str(tmp_path / "in" / "*.gif")],
                            tmp_path / "out", recursive=True, model=identity_model)
    assert sorted(r.src.name for r in report.done) == ["a.png", "b.png"]
    assert [r.reason for r in report.failed] == ["pattern matches no image file"]
    assert output_files(tmp_path / "out") == ["a.png", "sub/b.png"]


def test_missing_input_path_is_a_failure_not_a_crash(tmp_path, identity_model):
    report = denoise_folder([tmp_path / "nowhere"], tmp_path / "out", model=identity_model)
    assert [(r.src.name, r.reason) for r in report.failed] == [
        ("nowhere", "no such file or folder")]


# -- skipping and resuming -------------------------------------------------------


def test_existing_outputs_are_skipped_and_overwrite_redoes_them(tmp_path, rng, invert_model):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    page = noisy_page(rng)
    cv2.imwrite(str(src / "a.png"), page)
    cv2.imwrite(str(src / "b.png"), page)
    sentinel = np.full(page.shape, 7, np.uint8)
    cv2.imwrite(str(out / "a.png"), sentinel)
    r1 = denoise_folder(src, out, model=invert_model)
    assert [r.src.name for r in r1.skipped] == ["a.png"]
    assert [r.src.name for r in r1.done] == ["b.png"]
    np.testing.assert_array_equal(read_image(out / "a.png"), sentinel)
    r2 = denoise_folder(src, out, model=invert_model, overwrite=True)
    assert len(r2.done) == 2 and not r2.skipped
    np.testing.assert_array_equal(read_image(out / "a.png"), 255 - page)


def test_temporaries_left_by_a_killed_run_are_removed_when_a_run_starts(
        tmp_path, identity_model, make_page_folder):
    src, out = make_page_folder(names=["a.png"], shape=(60, 80)), tmp_path / "out"
    out.mkdir()
    writer = Holder("temp", out / "a.png")  # a real writer, killed mid-write
    writer.kill()
    writer.close()
    assert len(output_files(out)) == 1
    assert denoise_folder(src, out, model=identity_model).ok
    assert output_files(out) == ["a.png"]


def test_temporaries_and_claims_left_beside_finished_outputs_are_removed(
        tmp_path, identity_model, make_page_folder):
    # A run killed after renaming its output but before releasing its claim, or a
    # writer of an output done since: the next run has nothing to do in that folder,
    # and must still clear what the dead left there.
    src, out = make_page_folder(names=["a.png"], shape=(60, 80)), tmp_path / "out"
    assert denoise_folder(src, out, model=identity_model).ok
    for what in ("temp", "claim"):
        h = Holder(what, out / "a.png")
        h.kill()
        h.close()
    assert len(output_files(out)) == 3
    report = denoise_folder(src, out, model=identity_model)
    assert report.ok and len(report.skipped) == 1
    assert output_files(out) == ["a.png"]


# -- whole-run errors --------------------------------------------------------------


def test_a_missing_model_stops_the_run_before_any_output(tmp_path, make_page_folder):
    src = make_page_folder(names=["a.png"], shape=(60, 80))
    with pytest.raises(FileNotFoundError):
        denoise_folder(src, tmp_path / "out", model=tmp_path / "nope.onnx")
    assert not (tmp_path / "out").exists() or output_files(tmp_path / "out") == []


def test_nothing_to_do_needs_no_model(tmp_path, rng, make_page_folder):
    src, out = make_page_folder(names=["a.png"], shape=(60, 80)), tmp_path / "out"
    out.mkdir()
    cv2.imwrite(str(out / "a.png"), noisy_page(rng))
    report = denoise_folder(src, out, model=tmp_path / "nope.onnx")
    assert report.ok and len(report.skipped) == 1


# -- OCR -------------------------------------------------------------------------


def text_image(words: str) -> np.ndarray:
    img = np.full((90, 60 + 26 * len(words)), 255, np.uint8)
    cv2.putText(img, words, (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 3, cv2.LINE_AA)
    return img


def test_ocr_writes_each_files_text_next_to_it_with_pages_separated(tmp_path, identity_model):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "one.png"), text_image("HELLO WORLD"))
    cv2.imwritemulti(str(src / "two.tif"), [text_image("FIRST PAGE"), text_image("SECOND PAGE")])
    report = denoise_folder(src, tmp_path / "out", ocr=True, model=identity_model)
    assert report.ok, report.summary()
    assert output_files(tmp_path / "out") == ["one.png", "one.txt", "two.tif", "two.txt"]
    assert "HELLO WORLD" in (tmp_path / "out" / "one.txt").read_text()
    first, second = (tmp_path / "out" / "two.txt").read_text().split("\f")
    assert "FIRST PAGE" in first and "SECOND PAGE" in second


def test_ocr_after_a_run_without_it_reads_the_images_already_written(tmp_path, invert_model):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "one.png"), 255 - text_image("HELLO WORLD"))  # inverted back
    denoise_folder(src, out, model=invert_model)
    image_bytes = (out / "one.png").read_bytes()
    report = denoise_folder(src, out, model=invert_model, ocr=True)
    assert [(r.src.name, r.pages) for r in report.done] == [("one.png", 0)]
    assert (out / "one.png").read_bytes() == image_bytes
    assert "HELLO WORLD" in (out / "one.txt").read_text()


def test_an_ocr_language_the_run_lacks_stops_it_before_any_page_when_options_missed_it(
        tmp_path, identity_model, monkeypatch):
    """``RunOptions`` refuses such a language where it is made, unless tesseract
    could not be run there (``work._check_languages_here`` gives up): then the
    executor's start checks it (``check_ocr(ocr_lang)``), once, before any page,
    instead of each page failing with a TesseractError."""
    from ocr_denoise import SettingsError, work

    monkeypatch.setattr(work, "_check_languages_here", lambda lang: None)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "one.png"), text_image("HELLO"))
    with pytest.raises(SettingsError, match="tesseract has no xyz"):
        denoise_folder(src, tmp_path / "out", ocr=True, ocr_lang="eng+xyz",
                       model=identity_model)
    assert not (tmp_path / "out").exists()


# -- dead workers ------------------------------------------------------------------


def start_cli(args, **kw) -> tuple[subprocess.Popen, list[str]]:
    """Run the CLI; its stderr lines are collected live into the returned list."""
    proc = subprocess.Popen([sys.executable, "-m", "ocr_denoise.cli", *map(str, args)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=REPO, **kw)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()
    return proc, lines


@pytest.fixture(scope="module")
def big_page_folder(tmp_path_factory):
    """16 pages big enough that the shipped model takes a while on each."""
    src = tmp_path_factory.mktemp("pages") / "in"
    write_random_pages(src, np.random.default_rng(3), 16, pattern="p{i:02d}.png",
                       shape=(300, 300))
    return src


def test_a_killed_worker_is_replaced_and_its_files_still_done(tmp_path, big_page_folder):
    out = tmp_path / "out"
    proc, lines = start_cli([big_page_folder, "-o", out, "--jobs", "2", "-v"])
    wait_for(lambda: len(worker_pids(proc.pid)) == 2 and out.exists() and any(out.iterdir())
             or proc.poll() is not None)
    assert proc.poll() is None, "the run ended before a worker could be killed"
    os.kill(worker_pids(proc.pid)[0], signal.SIGKILL)
    assert proc.wait(timeout=300) == 0, "".join(lines)
    assert any("a worker process died; retrying" in ln for ln in lines)
    assert output_files(out) == sorted(p.name for p in big_page_folder.iterdir())
    for p in sorted(big_page_folder.iterdir()):
        np.testing.assert_array_equal(read_image(out / p.name), denoise_page(read_image(p)))


def test_a_file_whose_worker_dies_even_alone_is_reported_and_the_rest_done(
        tmp_path, big_page_folder):
    out = tmp_path / "out"
    proc, lines = start_cli([big_page_folder, "-o", out, "--jobs", "2", "-v"])
    wait_for(lambda: any(out.glob("*.png")) or proc.poll() is not None)
    for pid in worker_pids(proc.pid):
        os.kill(pid, signal.SIGKILL)  # first death: the files in flight become suspects
    wait_for(lambda: any("retrying" in ln for ln in lines) or proc.poll() is not None)
    # Now each suspect runs alone; kill workers until one of them is blamed.
    while proc.poll() is None and not any("worker process died while" in ln for ln in lines):
        for pid in worker_pids(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    rc = proc.wait(timeout=300)
    text = "".join(lines)
    assert rc == 1, text
    blamed = [ln.split(": ", 1)[0].strip() for ln in lines
              if ln.startswith("  ") and "worker process died while" in ln]
    assert blamed, text
    done = output_files(out)
    assert sorted(done + [Path(b).name for b in blamed]) == sorted(
        p.name for p in big_page_folder.iterdir())
    for name in done:
        np.testing.assert_array_equal(read_image(out / name),
                                      denoise_page(read_image(big_page_folder / name)))


def test_a_worker_death_noticed_between_files_is_retried_not_fatal(tmp_path, monkeypatch,
                                                                   make_page_folder):
    """The pool can break after ``wait`` returned and before the next ``submit``,
    which then raises BrokenProcessPool itself. Injected for real: the third submit
    SIGKILLs a worker of the (real) pool and waits until the pool knows."""
    import concurrent.futures as cf

    src = make_page_folder(8, shape=(120, 120), rng=np.random.default_rng(5))
    submits = []

    class KillingPool(cf.ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submits.append(fn)
            if len(submits) == 3:
                wait_for(lambda: self._processes and len(self._processes) == 2)
                os.kill(next(iter(self._processes)), signal.SIGKILL)
                wait_for(lambda: self._broken)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(cf, "ProcessPoolExecutor", KillingPool)
    report = denoise_folder(src, tmp_path / "out", jobs=2)
    assert len(submits) > 8  # the pool broke and work was resubmitted
    # A file the killed worker had written before it died is found already there when
    # it is redone (skipped); none is lost or failed.
    assert report.ok and sorted(r.src.name for r in report.done + report.skipped) == sorted(
        p.name for p in src.iterdir())
    for p in sorted(src.iterdir()):
        np.testing.assert_array_equal(read_image(tmp_path / "out" / p.name),
                                      denoise_page(read_image(p)))


# -- Ctrl-C from Python ----------------------------------------------------------------

_CTRL_C_SCRIPT = """
import os, signal, sys, threading, time
from pathlib import Path
from ocr_denoise import denoise_folder

def ctrl_c_once_a_file_is_written(out):
    while not (out.exists() and any(p.suffix == ".png" for p in out.iterdir())):
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGINT)  # Python's own handler: a KeyboardInterrupt

if __name__ == "__main__":
    src, out, jobs, threaded = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    threading.Thread(target=ctrl_c_once_a_file_is_written, args=(out,), daemon=True).start()
    other = {}
    if threaded == "yes":  # a second run, on another thread, into out2
        t = threading.Thread(target=lambda: other.update(
            r=denoise_folder(src, out.with_name("out2"), jobs=1)))
        t.start()
    report = denoise_folder(src, out, jobs=jobs)
    reports = [report] + ([t.join() or other["r"]] if threaded == "yes" else [])
    for r in reports:
        print(r.interrupted, len(r.done), len(r.not_started), len(r.failed))
"""


@pytest.mark.parametrize("jobs,threaded", [(1, "no"), (2, "no"), (1, "yes")])
def test_ctrl_c_in_a_python_program_returns_an_interrupted_report(tmp_path, jobs, threaded):
    """Ctrl-C while ``denoise_folder`` runs in a program's main thread: no new file,
    those in progress are written whole, and the report comes back marked
    interrupted instead of a KeyboardInterrupt. A run on another thread of the
    same process stops too (one stop state per process)."""
    src = tmp_path / "in"
    write_random_pages(src, np.random.default_rng(3), 16, pattern="p{i:02d}.png",
                       shape=(700, 700))
    script = tmp_path / "run.py"
    script.write_text(_CTRL_C_SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "out"),
                        str(jobs), threaded], capture_output=True, text=True, timeout=600,
                       cwd=REPO)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "stopping (Ctrl-C): no new file is started" in r.stderr, r.stderr
    for line, out in zip(r.stdout.splitlines(), [tmp_path / "out", tmp_path / "out2"]):
        interrupted, done, not_started, failed = line.split()
        assert interrupted == "True" and failed == "0", r.stdout + r.stderr
        assert int(not_started) > 0 and int(done) + int(not_started) == 16, r.stdout
        # only whole outputs, and nothing else: no temporary, no claim
        written = output_files(out) if out.exists() else []
        assert len(written) == int(done) and all(n.endswith(".png") for n in written)
        for name in written:
            np.testing.assert_array_equal(read_image(out / name),
                                          denoise_page(read_image(src / name)))
    assert len(r.stdout.splitlines()) == (2 if threaded == "yes" else 1), r.stdout


# -- a full output disk ---------------------------------------------------------------


def test_a_full_output_disk_stops_the_run_naming_the_output(tmp_path, identity_model,
                                                            make_page_folder, monkeypatch):
    """The same ENOSPC twice in a row starts no more files: each one left is failed
    "not started: the output disk is full", and a write failure names the output,
    not the input. One ENOSPC between successes does not stop the run. The full
    disk is injected where the output is written (``images.write_image``); the
    pages really run through onnxruntime."""
    import errno

    from ocr_denoise import images, work
    from ocr_denoise.executors import SerialExecutor

    src = make_page_folder(6, shape=(30, 30))
    out = tmp_path / "out"
    real_write, writes, denoised = images.write_image, [], []
    real_denoise = work._denoise

    def write(path, *args, **kwargs):
        writes.append(Path(path).name)
        if len(writes) == 2:  # one write gets through between two failures
            return real_write(path, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def denoise(denoiser, image, *args):
        denoised.append(image.path.name)
        return real_denoise(denoiser, image, *args)

    monkeypatch.setattr(images, "write_image", write)
    monkeypatch.setattr(work, "_denoise", denoise)
    report = denoise_folder(src, out, model=identity_model, executor=SerialExecutor())

    assert writes == denoised == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert [r.src.name for r in report.done] == ["p1.png"]
    reasons = {k: r.reason for k, r in by_name(report.failed).items()}
    assert sorted(reasons) == ["p0.png", "p2.png", "p3.png", "p4.png", "p5.png"]
    for name in ("p0.png", "p2.png", "p3.png"):
        assert reasons[name] == f"OSError: No space left on device writing {out / name}"
    for name in ("p4.png", "p5.png"):
        assert reasons[name].startswith("not started: the output disk is full (OSError: "
                                        f"No space left on device writing {out / 'p3.png'})")
    assert "not started: the output disk is full" in report.summary()
    assert not report.ok and output_files(out) == ["p1.png"]


def test_a_full_output_disk_stops_a_worker_pool_run_too(tmp_path, identity_model,
                                                       make_page_folder, monkeypatch):
    """As above with two worker processes: the full disk is injected inside the
    workers (``faults.full_disk_pool_work``: every write fails with ENOSPC but
    p1.png's), the pages really run there. Results arrive as workers finish, so
    which files fail to write varies; what must hold: once two failures come in a
    row nothing more starts, every file left is "not started" and was never
    denoised, and every write failure names its output."""
    import functools

    import faults

    from ocr_denoise import executors

    src = make_page_folder(10, shape=(30, 30))
    out, log = tmp_path / "out", str(tmp_path / "started.log")
    monkeypatch.setattr(executors, "_work",
                        functools.partial(faults.full_disk_pool_work, log, "p1.png"))
    report = denoise_folder(src, out, model=identity_model, jobs=2)

    started = faults.logged(log)
    reasons = {k: r.reason for k, r in by_name(report.failed).items()}
    not_started = sorted(k for k, why in reasons.items() if why.startswith("not started"))
    assert [r.src.name for r in report.done] == ["p1.png"]  # one of the first two started
    assert not_started and not set(not_started) & set(started)
    assert sorted(started + not_started) == sorted(p.name for p in src.iterdir())
    for name in set(started) - {"p1.png"}:
        assert reasons[name] == f"OSError: No space left on device writing {out / name}"
    for name in not_started:
        assert reasons[name].startswith("not started: the output disk is full (OSError: "
                                        "No space left on device writing ")
    assert not report.ok and output_files(out) == ["p1.png"]


def test_a_retried_file_with_a_newline_in_its_name_is_logged_escaped(
        tmp_path, identity_model, make_page_folder, monkeypatch, caplog):
    """The pool's "retrying" line names a file whose worker died: a newline in that
    name must not start a line of its own (a forged ``done``). The worker really
    dies (``faults.die_once_on``: SIGKILL of itself on that file, once)."""
    import functools
    import logging

    import faults

    from ocr_denoise import executors

    name = "a\nocr-denoise: done: forged.png"
    src = make_page_folder(names=["b.png", name, "c.png"], shape=(30, 30))
    monkeypatch.setattr(executors, "_work",
                        functools.partial(faults.die_once_on, str(tmp_path / "died")))
    with caplog.at_level(logging.WARNING, logger="ocr_denoise"):
        report = denoise_folder(src, tmp_path / "out", model=identity_model, jobs=2)
    assert report.ok and len(report.done) == 3
    retrying = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retrying, caplog.text
    assert any("a\\nocr-denoise: done: forged.png" in m for m in retrying), retrying
    assert not any("\n" in m for m in retrying)


def test_an_output_folder_that_takes_no_file_is_one_error_naming_the_output(
        tmp_path, identity_model, make_page_folder):
    """/proc takes no new file whatever its permissions say: one OSError for the run,
    before any page, whose filename is the output (one) or the folder (several)."""
    src = make_page_folder(2, shape=(30, 30))
    with pytest.raises(OSError) as one:
        denoise_files([(src / "p0.png", "/proc/out.png")], model=identity_model)
    assert one.value.filename == "/proc/out.png"
    assert "no file can be created in /proc" in one.value.strerror
    with pytest.raises(OSError) as several:
        denoise_folder(src, "/proc", model=identity_model)
    assert several.value.filename == "/proc"


# -- the enlargement model (issue 32) ----------------------------------------------


def test_run_options_keep_the_enlarger_as_a_str_and_travel_pickled(tmp_path, mix_enlarger):
    import pickle

    from ocr_denoise import RunOptions, SettingsTypeError

    assert RunOptions().enlarger == "auto"
    assert RunOptions(enlarger=None).enlarger is None
    opts = RunOptions(enlarger=mix_enlarger, upscale="auto")
    assert opts.enlarger == str(mix_enlarger) and isinstance(opts.enlarger, str)
    assert RunOptions(enlarger="enlarge").enlarger == "enlarge"  # a shipped model's name
    assert pickle.loads(pickle.dumps(opts)) == opts
    assert RunOptions.of(opts, enlarger=None).enlarger is None
    with pytest.raises(SettingsTypeError, match="enlarger must be 'auto', a model's name or "
                                                "path, or None, got int"):
        RunOptions(enlarger=2)  # type: ignore[arg-type]


def test_a_folder_run_enlarges_with_the_enlarger_it_is_given_in_workers_too(
        tmp_path, mix_enlarger):
    src = tmp_path / "in"
    pages = small_print_folder(src, 3)
    runs = {j: denoise_folder(src, tmp_path / f"out{j}", upscale="auto",
                              enlarger=mix_enlarger, jobs=j) for j in (1, 2)}
    assert runs[2].jobs == 2 and all(r.ok and len(r.done) == 3 for r in runs.values())
    for name, page in pages.items():
        want = denoise_page(page, upscale="auto", enlarger=mix_enlarger)
        assert want.shape == (2 * page.shape[0], 2 * page.shape[1])
        assert not np.array_equal(want, denoise_page(page, upscale="auto", enlarger=None))
        out = open_image(tmp_path / "out1" / name)
        assert out.dpi[0] == pytest.approx((200, 200), abs=0.01)
        np.testing.assert_array_equal(out.read(0), want, err_msg=name)
        assert (tmp_path / "out2" / name).read_bytes() == (tmp_path / "out1" / name).read_bytes()


@pytest.mark.parametrize("settings, error, match", [
    (dict(enlarger="denoise"), "SettingsError",
     r"enlarger='denoise': .* is not an enlargement model"),
    (dict(enlarger="/nowhere/big.onnx"), "ModelNotFoundError",
     "/nowhere/big.onnx: model file not found"),
    (dict(model="MIX"), "SettingsError",
     r"mix.onnx is an enlargement model \(metadata scale=2\), not a denoiser"),
], ids=["denoiser-as-enlarger", "missing-enlarger", "enlarger-as-model"])
def test_a_wrong_enlarger_or_an_enlarger_as_model_stops_the_run_before_any_output(
        tmp_path, make_page_folder, mix_enlarger, settings, error, match):
    import ocr_denoise

    src = make_page_folder(names=["a.png", "b.png"], shape=(60, 80))
    settings = {k: mix_enlarger if v == "MIX" else v for k, v in settings.items()}
    with pytest.raises(getattr(ocr_denoise, error), match=match):
        denoise_folder(src, tmp_path / "out", upscale=2, **settings)
    assert not (tmp_path / "out").exists() or output_files(tmp_path / "out") == []
