"""What a run reports: every log and summary line names its file on that one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
from helpers import REPO, noisy_page

from ocr_denoise.report import shown

FORGED = "ocr-denoise: done: forged"


def test_a_newline_in_a_file_name_cannot_forge_a_log_line(tmp_path, rng, identity_model):
    # A name holding "\n" + a log line's start used to print that line as if the
    # run had written it ("-v" shows one "done:" line per file).
    src = tmp_path / "in"
    src.mkdir()
    good = f"x.png\n{FORGED}.png"
    cv2.imwrite(str(src / "ok.png"), noisy_page(rng, 20, 20))
    (src / good).write_bytes((src / "ok.png").read_bytes())
    (src / f"y.png\n{FORGED}-too.png").write_text("not an image")
    r = subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(src), "-o",
                        str(tmp_path / "out"), "-v", "--jobs", "1",
                        "--model", str(identity_model)],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 1, r.stderr  # the non-image fails, the others are done
    assert (tmp_path / "out" / good).exists()
    lines = r.stderr.splitlines()
    assert not [line for line in lines if line.lstrip().startswith(FORGED)], r.stderr
    assert f"x.png\\n{FORGED}.png" in r.stderr  # the name, escaped, on its own line
    assert f"y.png\\n{FORGED}-too.png" in r.stderr


def test_shown_escapes_only_what_is_unprintable():
    assert shown(Path("out/page 1 é.png")) == "out/page 1 é.png"
    assert shown("a\nb\r\tc\x1b") == "a\\nb\\r\\tc\\x1b"
    assert shown("bad\udcffbyte.png") == "bad\\udcffbyte.png"  # undecodable byte
    assert shown(None) == "None"


def test_a_rerun_with_nothing_to_denoise_says_so_without_a_pages_per_second(
        tmp_path, rng, identity_model):
    from ocr_denoise import denoise_folder

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(2):
        cv2.imwrite(str(src / f"p{i}.png"), noisy_page(rng, 40, 60))
    first = denoise_folder(src, out, model=identity_model).summary().splitlines()[0]
    assert first.startswith("2 done (2 pages), 0 skipped (output already there), 0 failed")
    assert "pages/s, 1 job)" in first
    # --ocr over images already written: only their text is new
    text_only = denoise_folder(src, out, model=identity_model, ocr=True)
    assert [r.pages for r in text_only.done] == [0, 0] and text_only.ok
    first = text_only.summary().splitlines()[0]
    assert first.startswith("2 text files written for images already there (no page "
                            "denoised), 0 skipped (output already there), 0 failed, in ")
    assert "0 pages" not in first and "pages/s" not in first
    # and once more: everything is there
    again = denoise_folder(src, out, model=identity_model, ocr=True).summary()
    assert again == ("2 already done, nothing to do (every output is already there; "
                     "--overwrite redoes them)")


def test_the_first_summary_line_of_a_run_that_denoised_and_one_that_failed():
    from ocr_denoise.report import BatchReport, FileResult

    a, b = Path("a.png"), Path("b.png")
    mixed = BatchReport(done=[FileResult(a, "done", a, 1), FileResult(b, "done", b, 0)],
                        seconds=2.0, jobs=2)
    assert mixed.summary() == ("2 done (1 page; 1 text only, image already there), 0 skipped "
                               "(output already there), 0 failed, in 2.0 s (0.50 pages/s, "
                               "2 jobs)")
    failed = BatchReport(skipped=[FileResult(a, "skipped", a)],
                         failed=[FileResult(b, "failed", reason="truncated")], seconds=0.25)
    assert failed.summary().splitlines()[:3] == [
        "0 done, 1 skipped (output already there), 1 failed, in 0.2 s", "failed:",
        "  b.png: truncated"]
