"""The ``ocr-denoise`` command, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np

from ocr_denoise import denoise_page


def run(*args):
    return subprocess.run([sys.executable, "-m", "ocr_denoise.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_single_file_matches_the_api(tmp_path, rng):
    img = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    r = run(tmp_path / "in.png", "-o", tmp_path / "out.png")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED),
                                  denoise_page(img))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unreadable_input_is_a_clear_error_naming_the_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    r = run(bad, "-o", tmp_path / "out.png")
    assert r.returncode != 0
    assert "notes.png" in r.stderr and "not a readable image" in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_version_flag_prints_package_version():
    from ocr_denoise import __version__
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_output_file_gets_ordinary_permissions(tmp_path):
    import os
    import stat
    cv2.imwrite(str(tmp_path / "in.png"), np.full((10, 10), 200, np.uint8))
    assert run(tmp_path / "in.png", "-o", tmp_path / "out.png").returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o666 & ~mask
