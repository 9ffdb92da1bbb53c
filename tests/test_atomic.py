"""The one atomic writer: every file the package writes appears whole or not at all."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import ocr_denoise.atomic as atomic
from ocr_denoise.atomic import atomic_file, atomic_write, remove_stale_temps


def _writers(tmp_path):
    """Every writer of the package, each writing one file into ``tmp_path``."""
    from ocr_denoise import images, model

    page = np.full((8, 8), 200, np.uint8)
    (tmp_path / "m.onnx").write_bytes(b"not really a model")  # write_checksum reads it
    return {
        "image": lambda: images.write_image(tmp_path / "p.png", page),
        "tiff_pages": lambda: images.write_pages(tmp_path / "p.tif", [page, page]),
        "text": lambda: images.write_text(tmp_path / "p.txt", "text"),
        "checksum": lambda: model.write_checksum(tmp_path / "m.onnx"),
    }


@pytest.mark.parametrize("writer", ["image", "tiff_pages", "text", "checksum"])
def test_interrupt_right_after_the_temporary_is_created_leaves_no_file(tmp_path, monkeypatch,
                                                                      writer):
    # Ctrl-C or SIGTERM can land between the OS creating the temporary and the call
    # returning its descriptor; the temporary must still be removed.
    write = _writers(tmp_path)[writer]
    before = sorted(p.name for p in tmp_path.iterdir())
    real = atomic._create_exclusive

    def created_then_interrupted(tmp):
        os.close(real(tmp))
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_create_exclusive", created_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("writer", ["image", "tiff_pages", "text", "checksum"])
def test_every_writer_goes_through_the_atomic_file(tmp_path, monkeypatch, writer):
    """A writer that bypassed ``atomic_file`` would write without creating a
    temporary there; counting the temporaries created proves it does not."""
    write = _writers(tmp_path)[writer]
    created = []
    real = atomic._create_exclusive

    def counting(tmp):
        created.append(tmp.name)
        return real(tmp)

    monkeypatch.setattr(atomic, "_create_exclusive", counting)
    write()
    assert len(created) == 1 and created[0].startswith(".") and created[0].endswith(".tmp")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_failure_inside_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), atomic_file(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("disk full, say")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_mode_is_what_open_gives_unless_asked(tmp_path):
    atomic_write(tmp_path / "a", b"x")
    atomic_write(tmp_path / "b", b"x", mode=0o640)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o640


def test_missing_folders_are_made(tmp_path):
    atomic_write(tmp_path / "x" / "y" / "z.txt", lambda f: f.write(b"filled by a function"))
    assert (tmp_path / "x" / "y" / "z.txt").read_bytes() == b"filled by a function"


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {
        "dead": f".a.png.{dead.pid}.x1y2.tmp",
        "mine": f".b.png.{os.getpid()}.x1y2.tmp",
        "live": f".c.png.{os.getppid()}.x1y2.tmp",
        "other": "notes.tmp",
    }
    for n in names.values():
        (tmp_path / n).write_bytes(b"partial")
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [names["dead"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        names[k] for k in ("mine", "live", "other"))


@pytest.mark.parametrize("name", ["x" * 251 + ".png", "é" * 125 + "x.png"])
def test_names_up_to_the_file_system_limit_are_written_and_their_temporaries_cleaned(
        tmp_path, name):
    # ``.NAME.PID.RANDOM.tmp`` of a 255-byte NAME would be ~280 bytes: every write
    # of such a file used to fail with "File name too long" though the name is valid.
    assert len(os.fsencode(name)) == 255
    atomic_write(tmp_path / name, b"whole")
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_bytes() == b"whole"

    # A writer killed mid-write leaves its (shortened) temporary; the next run's
    # clean-up still recognises it as stale.
    script = ("import os, sys\n"
              "from ocr_denoise.atomic import atomic_file\n"
              "writing = atomic_file(sys.argv[1])\n"
              "writing.__enter__().write(b'half')\n"
              "os._exit(0)\n")  # killed: no clean-up runs
    subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True,
                   timeout=60)
    left = [p for p in tmp_path.iterdir() if p.name != name]
    assert len(left) == 1 and len(os.fsencode(left[0].name)) <= 255
    assert remove_stale_temps(tmp_path) == left
    assert [p.name for p in tmp_path.iterdir()] == [name]
