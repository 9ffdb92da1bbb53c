"""The one atomic writer: every file the package writes appears whole or not at all."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers import wait_for
from holders import Holder, dead_pid, other_pid_namespace

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


def temporaries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_live_writer_whose_pid_looks_dead_here_keeps_its_temporary(tmp_path):
    """A writer in another container (another PID namespace) names its temporary
    with a PID that is dead here: a clean-up deciding by PID deleted its work in
    progress, and the writer then failed. Liveness is its lock instead."""
    holder = Holder("temp", tmp_path / "out.png", fake_pid=dead_pid())
    try:
        [tmp] = temporaries(tmp_path)
        assert remove_stale_temps(tmp_path) == []
        assert temporaries(tmp_path) == [tmp]
        holder.finish()
        assert (tmp_path / "out.png").read_bytes() == b"written by the holder"
        assert temporaries(tmp_path) == []
    finally:
        holder.close()


def test_a_killed_writers_temporary_is_removed_even_when_its_pid_is_alive_here(tmp_path):
    # Another namespace's PID can be a live process here (ours, even): a dead writer's
    # temporary was then kept for ever.
    holder = Holder("temp", tmp_path / "out.png", fake_pid=os.getpid())
    try:
        [tmp] = temporaries(tmp_path)
        assert f".{os.getpid()}." in tmp
        assert remove_stale_temps(tmp_path) == []  # alive: kept
        holder.kill()
        assert [p.name for p in remove_stale_temps(tmp_path)] == [tmp]
        assert list(tmp_path.iterdir()) == []
    finally:
        holder.close()


def test_a_writer_in_a_real_other_pid_namespace(tmp_path):
    """The container case for real: a writer started by ``unshare --pid`` (its own
    PID namespace, as in a container sharing the folder) keeps its temporary while
    it lives and completes its file; once killed its temporary is stale."""
    prefix = other_pid_namespace()
    if prefix is None:
        pytest.skip("this machine does not allow a new user and PID namespace (unshare)")
    live = Holder("temp", tmp_path / "a.png", prefix=prefix)
    killed = Holder("temp", tmp_path / "b.png", prefix=prefix)
    try:
        assert len(temporaries(tmp_path)) == 2
        assert remove_stale_temps(tmp_path) == []
        live.finish()
        assert (tmp_path / "a.png").read_bytes() == b"written by the holder"
        [left] = temporaries(tmp_path)
        killed.kill()  # the namespace's processes die a moment after unshare
        removed: list = []
        wait_for(lambda: removed.extend(remove_stale_temps(tmp_path)) or removed, timeout=60)
        assert [p.name for p in removed] == [left]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    finally:
        live.close()
        killed.close()


def test_temporaries_whose_writer_cannot_be_checked_wait_until_long_untouched(tmp_path):
    """Nobody holds these, but they come from another kernel (another machine
    sharing the folder, whose locks may not reach us; or before a reboot) or from a
    version that named no kernel: removed only once untouched for STALE_AFTER."""
    names = [f".a.png.{os.getpid()}.0123456789ab-{'0' * 8}.tmp",  # another kernel
             ".b.png.123.k3j4.tmp"]  # no kernel named
    if atomic.kernel_id() == "0" * 8:  # pragma: no cover - one boot in 4 billion
        pytest.skip("this kernel's tag is the one used for 'another kernel'")
    for n in names:
        (tmp_path / n).write_bytes(b"partial")
    (tmp_path / "notes.tmp").write_bytes(b"not ours")
    assert remove_stale_temps(tmp_path) == []
    old = time.time() - atomic.STALE_AFTER - 60
    for n in [*names, "notes.tmp"]:
        os.utime(tmp_path / n, (old, old))
    assert sorted(p.name for p in remove_stale_temps(tmp_path)) == sorted(names)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.tmp"]


def test_a_cleanup_between_creating_and_locking_makes_the_writer_start_again(tmp_path,
                                                                          monkeypatch):
    # The writer locks its temporary just after creating it; a clean-up landing in
    # between finds it unheld and removes it. The writer must notice, not write into
    # an unlinked file and then fail to rename it.
    created = []
    real = atomic._create_exclusive

    def create_then_cleanup(tmp):
        fd = real(tmp)
        created.append(tmp.name)
        if len(created) == 1:
            assert [p.name for p in remove_stale_temps(tmp.parent)] == [tmp.name]
        return fd

    monkeypatch.setattr(atomic, "_create_exclusive", create_then_cleanup)
    atomic_write(tmp_path / "out.bin", b"whole")
    assert len(created) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert (tmp_path / "out.bin").read_bytes() == b"whole"


def test_an_output_claimed_by_a_live_process_is_not_ours_until_it_dies(tmp_path):
    out = tmp_path / "p.png"
    holder = Holder("claim", out, fake_pid=dead_pid())  # its PID means nothing here
    try:
        claim = atomic.claim_name(out)
        assert claim.exists() and "ocr-denoise pid" in claim.read_text()
        with atomic.output_claim(out) as mine:
            assert mine is False
        assert remove_stale_temps(tmp_path) == [] and claim.exists()  # held: kept
        holder.kill()
        assert claim.exists()  # left by the killed holder...
        with atomic.output_claim(out) as mine:  # ...and simply taken over
            assert mine is True
            assert str(os.getpid()) in claim.read_text()
        assert list(tmp_path.iterdir()) == []  # released: removed
    finally:
        holder.close()


def test_a_claim_left_by_a_killed_process_is_cleaned_up(tmp_path):
    holder = Holder("claim", tmp_path / "p.png")
    holder.kill()
    assert [p.name for p in tmp_path.iterdir()] == [".p.png.ocr-claim"]
    remove_stale_temps(tmp_path)
    assert list(tmp_path.iterdir()) == []
    holder.close()


def test_claim_names_fit_the_file_system_limit_and_stay_distinct(tmp_path):
    a, b = "x" * 250 + "a.png", "x" * 250 + "b.png"
    ca, cb = atomic.claim_name(tmp_path / a), atomic.claim_name(tmp_path / b)
    assert ca != cb and all(len(os.fsencode(c.name)) <= 255 for c in (ca, cb))
    assert atomic.claim_name(tmp_path / a) == ca  # the same for every process
    with atomic.output_claim(tmp_path / a) as mine:
        assert mine and ca.exists()
    assert not ca.exists()


def test_an_abandoned_thread_leaves_no_temporary_and_writes_nothing_more(tmp_path):
    """A run stopped at once abandons the file a thread is writing: its temporary
    and claim go at once, its rename fails, and it may start no new file."""
    group = atomic.WriteGroup()
    inside, release, outcome = threading.Event(), threading.Event(), []

    def write():
        with atomic.writing_as(group), atomic.output_claim(tmp_path / "a.png") as mine:
            assert mine
            try:
                with atomic_file(tmp_path / "a.png") as f:
                    f.write(b"half")
                    inside.set()
                    release.wait(60)
            except OSError as e:
                outcome.append(type(e).__name__)
            try:
                atomic_write(tmp_path / "b.png", b"next")
            except InterruptedError:
                outcome.append("refused")

    t = threading.Thread(target=write)
    t.start()
    assert inside.wait(60)
    assert len(list(tmp_path.iterdir())) == 2  # the temporary and the claim
    atomic.abandon(group)
    assert list(tmp_path.iterdir()) == []
    release.set()
    t.join(60)
    assert outcome == ["FileNotFoundError", "refused"]
    assert list(tmp_path.iterdir()) == []


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
