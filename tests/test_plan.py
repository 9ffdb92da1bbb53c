"""Planning a folder run: which inputs a pattern or folder names, and their outputs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest
from helpers import REPO, noisy_page

from ocr_denoise.plan import plan


def _pages(root: Path, rng, rels: list[str]) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), noisy_page(rng, 8, 8))


def _planned(tasks, root: Path, out: Path) -> list[tuple[str, str]]:
    return sorted((str(t.src.relative_to(root)), str(t.dst.relative_to(out))) for t in tasks)


def test_glob_with_links_looping_back_up_ends_and_enters_no_link(tmp_path, rng):
    # ``glob.glob`` follows links to folders: with two links to "." planning
    # never ended (2**40 paths before ELOOP). Run in a child so a hang fails the
    # test instead of stalling the suite.
    gl = tmp_path / "gl2"
    _pages(gl, rng, ["a.png", "sub/b.png"])
    (gl / "l1").symlink_to(".")
    (gl / "l2").symlink_to(".")
    script = textwrap.dedent(f"""
        from ocr_denoise.plan import plan
        tasks, errors = plan({str(gl / "**" / "*.png")!r}, {str(tmp_path / "out")!r},
                             recursive=True)
        assert not errors, errors
        for t in tasks:
            print(t.src, t.dst, sep="\\t")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    got = sorted(tuple(line.split("\t")) for line in r.stdout.splitlines())
    assert got == [(str(gl / "a.png"), str(tmp_path / "out" / "a.png")),
                   (str(gl / "sub" / "b.png"), str(tmp_path / "out" / "sub" / "b.png"))]


@pytest.mark.parametrize("pattern", ["**/*.png", "*/*.png", "*/sub/*.png", "*/**/*.png"])
def test_glob_never_enters_a_link_to_a_folder(tmp_path, rng, pattern):
    # One loop used to write outputs 40 folders deep (out/loop/loop/.../a.png); a
    # link out of the tree was followed too. The docs promise links to folders
    # are not followed, as for a folder input.
    gl, elsewhere = tmp_path / "gl", tmp_path / "elsewhere"
    _pages(gl, rng, ["a.png", "real/b.png", "real/sub/c.png"])
    _pages(elsewhere, rng, ["x.png", "sub/y.png"])
    (gl / "loop").symlink_to(".")
    (gl / "out_link").symlink_to(elsewhere)
    tasks, errors = plan(str(gl / pattern), tmp_path / "out", recursive=True)
    expected = {
        "**/*.png": [("a.png", "a.png"), ("real/b.png", "real/b.png"),
                     ("real/sub/c.png", "real/sub/c.png")],
        "*/*.png": [("real/b.png", "real/b.png")],
        "*/sub/*.png": [("real/sub/c.png", "real/sub/c.png")],
        "*/**/*.png": [("real/b.png", "real/b.png"), ("real/sub/c.png", "real/sub/c.png")],
    }[pattern]
    assert _planned(tasks, gl, tmp_path / "out") == expected
    assert not errors


def test_glob_keeps_links_to_files_and_a_linked_fixed_folder(tmp_path, rng):
    # Only links to *folders* below the pattern's fixed part are refused: a link
    # to a file is an input as before, and the fixed part may itself be a link.
    real = tmp_path / "real"
    _pages(real, rng, ["a.png", "sub/b.png"])
    (real / "sub" / "to_a.png").symlink_to(real / "a.png")
    (tmp_path / "via").symlink_to(real)
    tasks, errors = plan(str(tmp_path / "via" / "**" / "*.png"), tmp_path / "out",
                         recursive=True)
    assert not errors
    assert _planned(tasks, tmp_path / "via", tmp_path / "out") == [
        ("a.png", "a.png"), ("sub/b.png", "sub/b.png"), ("sub/to_a.png", "sub/to_a.png")]
