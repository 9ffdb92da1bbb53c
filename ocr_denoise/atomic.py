"""Writing a file so that it appears whole or not at all, and knowing who is writing.

Every file ocr-denoise writes (page images, multi-page TIFFs, OCR text, model
checksums, exported models) goes through ``atomic_file``: it is written under a
temporary name in the destination folder (``.NAME.PID.RANDOM-KERNEL.tmp``),
flushed and fsynced, given ordinary permissions and only then renamed over the
final name. A crash, a full disk, Ctrl-C or SIGKILL never leaves a partial file
under the final name.

Who is still writing is decided by an advisory lock, not by a process id: the
writer holds ``flock`` on its temporary from creation until the rename, and the
kernel drops that lock when the writer dies, however it dies. A PID cannot
tell: a writer in another container (another PID namespace) has a PID that
looks dead here, or belongs to an unrelated process. ``remove_stale_temps``
removes a temporary only when it can take that lock itself, and, since locks
on some network file systems do not reach other machines, only when the
temporary was written under this running kernel (``KERNEL``: a digest of the
boot id, the same in every container on one machine); temporaries from another
machine (or from before a reboot) are removed once untouched for
``STALE_AFTER`` seconds, as are those on file systems without locks.

``output_claim(path)`` is the same lock on a small claim file beside an output
(``.NAME.ocr-claim``): a process that holds it is the only one working on that
output, so two runs on one folder (from two shells, containers or machines
sharing it) never denoise the same file at once.

The temporary's name is chosen before the file is created, so an interrupt
landing anywhere after creation, even before the creating call returns, still
finds it to delete (``tempfile.mkstemp`` creates and names it in one call,
leaving a window in which an interrupt leaks it).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, ages decide
    fcntl = None  # type: ignore[assignment]

#: ``.NAME.PID.RANDOM-KERNEL.tmp``; names written before KERNEL existed have none.
_TEMP_RE = re.compile(r"^\..+\.(?P<pid>\d+)\.(?P<rand>[^.]+?)(?:-(?P<kernel>[0-9a-f]{8}))?"
                      r"\.tmp$")
#: ``.NAME.ocr-claim`` (NAME cut, and a digest of it added, when too long).
CLAIM_SUFFIX = ".ocr-claim"
_CLAIM_RE = re.compile(r"^\..+" + re.escape(CLAIM_SUFFIX) + "$")

#: Seconds after which a temporary whose writer cannot be checked (another machine,
#: a file system without locks) counts as stale: far above any page's time.
STALE_AFTER = 24 * 3600.0


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


@functools.lru_cache(maxsize=1)
def kernel_id() -> str:
    """8 hex digits naming the running kernel: a digest of its boot id, the same for
    every process and container on this machine until it reboots (the host name
    where there is no boot id; containers have their own host names)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "host:" + socket.gethostname()
    return hashlib.sha256(boot.encode()).hexdigest()[:8]


def _fit(name: str, tail: str, folder: Path) -> str:
    """``.NAME{tail}``, NAME cut short (whole characters, at least one kept) to fit
    the folder's name limit."""
    room = _name_max(folder) - 1 - len(os.fsencode(tail))  # 1: the leading dot
    while len(name) > 1 and len(os.fsencode(name)) > room:
        name = name[:max(1, min(len(name) - 1, room))]
    return f".{name}{tail}"


def temp_name(path: Path) -> Path:
    """A fresh ``.NAME.PID.RANDOM-KERNEL.tmp`` beside ``path`` (not yet created).

    NAME is ``path.name``, cut short when the temporary's name would otherwise
    pass the folder's name limit: PID (as this process sees itself), RANDOM (12
    hex digits, fresh each call) and KERNEL (``kernel_id``) keep it unique and let
    ``remove_stale_temps`` recognise it, so NAME is only there for people.
    Without the cut, an input named with ~232 bytes or more could never be
    written ("File name too long") although its output name is valid.
    """
    tail = f".{os.getpid()}.{secrets.token_hex(6)}-{kernel_id()}.tmp"
    return path.parent / _fit(path.name, tail, path.parent)


def claim_name(path: Path) -> Path:
    """The claim file of output ``path``: ``.NAME.ocr-claim`` beside it, the same
    for every process (NAME cut, with a digest of the whole name, when too long)."""
    whole = f".{path.name}{CLAIM_SUFFIX}"
    if len(os.fsencode(whole)) <= _name_max(path.parent):
        return path.parent / whole
    digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]
    return path.parent / _fit(path.name, f".{digest}{CLAIM_SUFFIX}", path.parent)


# -- what a thread is writing, so that an abort can discard it ------------------------


class WriteGroup:
    """The temporaries and claims one worker thread holds. ``abandon(group)``
    removes them all and refuses the thread any new one, so a run stopped at once
    leaves nothing behind while the thread winds down (``with writing_as(group):``
    in that thread)."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.abandoned = False


_local = threading.local()
_registry = threading.Lock()


@contextlib.contextmanager
def writing_as(group: WriteGroup) -> Iterator[None]:
    """Within the block, this thread's temporaries and claims belong to ``group``."""
    _local.group = group
    try:
        yield
    finally:
        _local.group = None


def abandon(group: WriteGroup) -> None:
    """Remove every temporary and claim file of ``group`` and refuse it new ones
    (``InterruptedError``): its outputs are never written, half or whole, unless
    their rename already happened."""
    with _registry:
        group.abandoned = True
        for p in group.paths:
            _unlink_quietly(p)
        group.paths.clear()


def _group() -> WriteGroup | None:
    return getattr(_local, "group", None)


def _created(path: Path, create: Callable[[Path], int]) -> int:
    """``create(path)`` as one step with recording ``path`` in this thread's group."""
    group = _group()
    with _registry:
        if group is not None:
            if group.abandoned:
                raise InterruptedError(errno.EINTR, "the run was stopped", os.fspath(path))
            group.paths.add(path)
        try:
            return create(path)
        except BaseException:
            if group is not None:
                group.paths.discard(path)
            raise


def _forget(path: Path) -> None:
    group = _group()
    if group is not None:
        with _registry:
            group.paths.discard(path)


# -- locks ----------------------------------------------------------------------------


def _lock(fd: int, *, wait: bool) -> bool | None:
    """Take ``flock(LOCK_EX)`` on ``fd``: True taken; False held by another open
    file (``wait=False``); None: this file system has no locks."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL,
                       errno.ENOSYS):
            return None
        raise
    return True


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        a, b = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


_OPEN_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _create_exclusive(tmp: Path) -> int:
    """Create ``tmp`` (which must not exist), 0600, and return its descriptor."""
    return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)


def _unlink_quietly(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _new_temp(target: Path) -> tuple[Path, int]:
    """A temporary beside ``target``: created, locked, recorded in this thread's
    group. A clean-up in another process may take the lock in the instant between
    creation and locking, find the file unheld and remove it; the writer then
    finds its file unlinked and starts again under a new name."""
    for _ in range(20):
        tmp = temp_name(target)
        try:
            fd = _created(tmp, _create_exclusive)
        except OSError as e:
            # Say which output could not be written, not the temporary's name.
            raise type(e)(e.errno, e.strerror, os.fspath(target)) from None
        except BaseException:
            _unlink_quietly(tmp)
            raise
        try:
            _lock(fd, wait=True)
            if os.fstat(fd).st_nlink > 0:
                return tmp, fd
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            _forget(tmp)
            raise
        os.close(fd)  # removed as unheld before we could lock it: a fresh name
        _forget(tmp)
    raise OSError(errno.EAGAIN, "temporary files keep disappearing", os.fspath(target))


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[BinaryIO]:
    """``with atomic_file(path) as f: f.write(...)``: ``path`` appears, complete,
    when the block ends without error, and is left untouched otherwise.

    ``f`` is a binary file open for reading and writing (seekable, so Pillow's
    TIFF appender can use it). The folder is created if missing. ``mode``: the
    file's permission bits (default: what ``open()`` gives under the umask).
    On any error, KeyboardInterrupt included, the temporary is removed and the
    exception propagates. The temporary stays locked until it has its final
    name, so no clean-up can take it for a dead writer's.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _new_temp(target)
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            perms = _default_file_mode() if mode is None else mode
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), perms)
            else:  # pragma: no cover - Windows
                os.chmod(tmp, perms)
            os.replace(tmp, target)  # still locked: closing the file releases it
    except BaseException:
        _unlink_quietly(tmp)
        raise
    finally:
        _forget(tmp)


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None], *,
                 mode: int | None = None) -> None:
    """Write ``data`` (bytes, or a function that fills the open file) to ``path``
    atomically; see ``atomic_file``."""
    with atomic_file(path, mode=mode) as f:
        if isinstance(data, (bytes, bytearray, memoryview)):
            f.write(data)
        else:
            data(f)


# -- claims -----------------------------------------------------------------------------


def _open_claim(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o666)


@contextlib.contextmanager
def output_claim(path: str | os.PathLike[str]) -> Iterator[bool]:
    """``with output_claim(out) as mine:``: ``mine`` is False when another live
    process (in any container on this machine, or on another machine where the
    file system carries locks) is working on output ``out``; True when this
    process now holds the claim until the block ends, or when claims cannot be
    kept here (a file system without locks, a folder we cannot create files in:
    the write itself then reports the problem).

    The claim is ``flock`` on ``claim_name(out)``, which the kernel drops when its
    holder dies, so a claim left by a killed run is simply taken over. The file
    is removed when the block ends; it records who holds it (for people).
    """
    cpath = claim_name(Path(path))
    fd = -1
    for _ in range(20):
        try:
            fd = _created(cpath, _open_claim)
        except InterruptedError:
            raise
        except OSError:
            break  # cannot even create it: let the write say why
        held = _lock(fd, wait=False)
        if held is None:  # no locks here: cannot coordinate, proceed as before
            os.close(fd)
            _forget(cpath)
            _unlink_quietly(cpath)
            fd = -1
            break
        if not held:
            os.close(fd)
            _forget(cpath)
            yield False
            return
        if _same_file(cpath, fd):
            break
        os.close(fd)  # its last holder removed it as we opened it: try the new one
        _forget(cpath)
        fd = -1
    if fd < 0:
        yield True
        return
    try:
        with contextlib.suppress(OSError):  # only for people; a full disk must not stop us
            os.ftruncate(fd, 0)
            os.write(fd, (f"ocr-denoise pid {os.getpid()} on {socket.gethostname()} "
                          f"(kernel {kernel_id()}) since {time.time():.0f}\n").encode())
        yield True
    finally:
        with _registry:  # not between another thread's abandon and its clean-up
            if _same_file(cpath, fd):
                _unlink_quietly(cpath)
        os.close(fd)
        _forget(cpath)


# -- clean-up -----------------------------------------------------------------------------


def _probe(path: str) -> tuple[bool | None, int]:
    """(held, fd): whether a live process holds the lock on ``path`` (None: cannot
    tell), and, when nobody does, a descriptor holding it now (else -1)."""
    fd = -1
    for flags in (os.O_RDWR, os.O_RDONLY):  # NFS needs write access for LOCK_EX
        try:
            fd = os.open(path, flags | os.O_NONBLOCK | _OPEN_FLAGS)
            break
        except FileNotFoundError:
            raise
        except OSError:
            continue
    if fd < 0:
        return None, -1
    try:
        taken = _lock(fd, wait=False)
    except OSError:
        taken = None
    if taken:
        return False, fd
    os.close(fd)
    return (None if taken is None else True), -1


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries ``atomic_file`` left in ``folder`` when its process
    was killed (SIGKILL, power loss) between creating and renaming them, and the
    claim files (``output_claim``) of processes that died holding them.

    A temporary is removed when no process holds its lock and it was written under
    this running kernel: its writer is dead, whichever container or PID namespace
    it ran in. One from another kernel (another machine sharing the folder, or
    before a reboot) or on a file system without locks is removed only once
    untouched for ``STALE_AFTER`` seconds, since its writer cannot be checked.
    Returns the paths removed (claims not included).
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        claim = m is None and _CLAIM_RE.match(entry.name) is not None
        if not (m or claim):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER
            held, fd = _probe(entry.path)
        except OSError:
            continue
        try:
            ours = claim or (m is not None and m.group("kernel") == kernel_id())
            if held or (held is None and not old) or (held is False and not ours and not old):
                continue
            if fd >= 0 and not _same_file(Path(entry.path), fd):
                continue  # renamed or replaced since we looked
            os.unlink(entry.path)
            if not claim:
                removed.append(Path(entry.path))
        except OSError:
            pass
        finally:
            if fd >= 0:
                os.close(fd)
    return removed
