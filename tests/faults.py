"""Faults injected inside worker processes (a process pool's, a Dask cluster's).

A test puts ``functools.partial(one_of_these, ...)`` in place of the executor's
per-file function (``executors._work``, ``cluster._work``); it is sent to the workers
by reference (this module is importable there: worker processes get the test
process's ``sys.path``), does its harm there, then runs the real function, so the
page itself still runs through onnxruntime and the real writer.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def _log(log: str, name: str) -> None:
    """Append ``name`` to ``log`` (one line; O_APPEND: whole lines from many processes)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (name + "\n").encode())
    finally:
        os.close(fd)


def logged(log: str) -> list[str]:
    """The names ``_log`` recorded, in order."""
    p = Path(log)
    return p.read_text().splitlines() if p.exists() else []


def _full_disk_but(ok: str) -> None:
    """From now on in this process, every page write fails with ENOSPC except that
    of the output named ``ok``: a disk that fills up, with one write that still fit."""
    from ocr_denoise import images

    real = getattr(images.write_image, "__wrapped_real__", images.write_image)

    def write(path, *args, **kwargs):
        if Path(path).name == ok:
            return real(path, *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    write.__wrapped_real__ = real  # type: ignore[attr-defined]
    images.write_image = write


def full_disk_pool_work(log: str, ok: str, task):
    """``executors._work`` on a disk that is full except for ``ok``; logs each file started."""
    from ocr_denoise import executors

    _full_disk_but(ok)
    _log(log, task.src.name)
    return executors._work(task)


def full_disk_dask_work(log: str, ok: str, task, options):
    """``cluster._work`` on a disk that is full except for ``ok``; logs each file started."""
    from ocr_denoise import cluster

    _full_disk_but(ok)
    _log(log, task.src.name)
    try:
        return cluster._work(task, options)
    finally:
        from ocr_denoise import images

        images.write_image = images.write_image.__wrapped_real__  # workers are shared


def _die_once(marker: str, name: str) -> None:
    """SIGKILL this process if ``name`` holds a newline and no process has died on
    such a name before (``marker`` is created, exclusively, by the one that does)."""
    if "\n" in name:
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os.kill(os.getpid(), 9)


def die_once_on(marker: str, task):
    """``executors._work``, except that the first worker to get a file whose name
    holds a newline dies on it (SIGKILL of itself), as a worker killed for memory."""
    from ocr_denoise import executors

    _die_once(marker, task.src.name)
    return executors._work(task)


def die_once_on_dask(marker: str, task, options):
    """``cluster._work``, except that the first worker to get a file whose name holds
    a newline dies on it (SIGKILL of itself)."""
    from ocr_denoise import cluster

    _die_once(marker, task.src.name)
    return cluster._work(task, options)
