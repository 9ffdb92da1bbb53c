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
