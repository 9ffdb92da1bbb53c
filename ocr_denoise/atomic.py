"""Writing a file so that it appears whole or not at all: the one atomic writer.

Every file ocr-denoise writes (page images, multi-page TIFFs, OCR text, model
checksums, exported models) goes through ``atomic_file``: it is written under a
temporary name in the destination folder (``.NAME.PID.RANDOM.tmp``), flushed
and fsynced, given ordinary permissions and only then renamed over the final
name. A crash, a full disk, Ctrl-C or SIGKILL never leaves a partial file under
the final name; ``remove_stale_temps`` removes the temporaries of processes
that were killed before they could remove them themselves.

The temporary's name is chosen before the file is created, so an interrupt
landing anywhere after creation, even before the creating call returns, still
finds it to delete (``tempfile.mkstemp`` creates and names it in one call,
leaving a window in which an interrupt leaks it).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def _default_file_mode() -> int:
    """0666 less the process umask: the mode ``open()`` would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: Name length limit (bytes) assumed where the file system does not say (Linux, macOS).
_NAME_MAX = 255


def _name_max(folder: Path) -> int:
    """The longest file name, in bytes, ``folder``'s file system accepts."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), unknown name
        return _NAME_MAX


def temp_name(path: Path) -> Path:
    """A fresh ``.NAME.PID.RANDOM.tmp`` beside ``path`` (not yet created).

    NAME is ``path.name``, cut short (whole characters, at least one kept)
    when the temporary's name would otherwise pass the folder's name limit:
    PID and RANDOM (12 hex digits, fresh each call) keep it unique and let
    ``remove_stale_temps`` recognise it, so NAME is only there for people.
    Without the cut, an input named with ~232 bytes or more could never be
    written ("File name too long") although its output name is valid.
    """
    tail = f".{os.getpid()}.{secrets.token_hex(6)}.tmp"
    room = _name_max(path.parent) - 1 - len(tail)  # 1: the leading dot
    name = path.name
    while len(name) > 1 and len(os.fsencode(name)) > room:
        name = name[:max(1, min(len(name) - 1, room))]
    return path.parent / f".{name}{tail}"


def _create_exclusive(tmp: Path) -> int:
    """Create ``tmp`` (which must not exist), 0600, and return its descriptor."""
    return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)


def _unlink_quietly(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[BinaryIO]:
    """``with atomic_file(path) as f: f.write(...)``: ``path`` appears, complete,
    when the block ends without error, and is left untouched otherwise.

    ``f`` is a binary file open for reading and writing (seekable, so Pillow's
    TIFF appender can use it). The folder is created if missing. ``mode``: the
    file's permission bits (default: what ``open()`` gives under the umask).
    On any error, KeyboardInterrupt included, the temporary is removed and the
    exception propagates.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    try:
        with os.fdopen(_create_exclusive(tmp), "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode() if mode is None else mode)
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None], *,
                 mode: int | None = None) -> None:
    """Write ``data`` (bytes, or a function that fills the open file) to ``path``
    atomically; see ``atomic_file``."""
    with atomic_file(path, mode=mode) as f:
        if isinstance(data, (bytes, bytearray, memoryview)):
            f.write(data)
        else:
            data(f)


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries ``atomic_file`` left in ``folder`` when its process
    was killed (SIGKILL, power loss) between creating and renaming them.

    Only names of the form ``.NAME.PID.RANDOM.tmp`` whose PID is not a running
    process are removed, so another run writing into the same folder keeps its
    files. Returns the paths removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
