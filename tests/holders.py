"""Real processes that hold a temporary file or an output's claim (``ocr_denoise.atomic``)
while a test looks at the folder, then finish or are killed: the other side of every
"who is still writing?" question.

``fake_pid`` makes the holder name itself with another PID, as a process in another PID
namespace (another container sharing the folder) does: its own PID means nothing, or
something else, in ours.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

_SCRIPT = r"""
import os, sys
what, path, fake = sys.argv[1], sys.argv[2], int(sys.argv[3])
if fake:
    os.getpid = lambda: fake
from ocr_denoise import atomic
if what == "temp":
    held = atomic.atomic_file(path)
    f = held.__enter__()
    f.write(b"written by the holder")
    f.flush()
else:
    held = atomic.output_claim(path)
    assert held.__enter__() is True, "someone else holds the claim"
    assert atomic.claim_name(atomic.Path(path)).exists(), "no claim file (no folder?)"
print("ready", flush=True)
if sys.stdin.readline().strip() == "finish":
    if what == "claim":
        atomic.atomic_write(path, b"written by the holder")
    held.__exit__(None, None, None)
    print("finished", flush=True)
    sys.stdin.readline()
os._exit(0)
"""


class Holder:
    """A process holding ``what`` ("temp": an ``atomic_file`` of ``path`` half
    written; "claim": ``output_claim(path)``). ``finish()`` completes the write
    (for a claim: writes ``path`` itself, then releases); ``kill()`` is SIGKILL."""

    def __init__(self, what: str, path: Path, *, fake_pid: int = 0,
                 prefix: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-c", _SCRIPT, what, str(path), str(fake_pid)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line == "ready", f"holder did not start: {line!r}"

    def finish(self) -> None:
        self.proc.stdin.write("finish\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        assert self.proc.stdout.readline().strip() == "finished"  # type: ignore[union-attr]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def dead_pid() -> int:
    """A PID no process has here now (one that just exited)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def other_pid_namespace() -> tuple[str, ...] | None:
    """A command prefix running a program in a new user and PID namespace (as a
    container would), or None where this machine does not allow it. Inside, the
    program is started after 40 short-lived processes, so its PID (about 42) is
    one that, here, is most likely unused or someone else's. Killing the returned
    process (``unshare``) kills the whole namespace, a moment later."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = (unshare, "--user", "--map-root-user", "--pid", "--fork", "--mount-proc",
              "--kill-child", "sh", "-c", 'for i in $(seq 40); do /bin/true; done; "$@"', "sh")
    try:
        r = subprocess.run([*prefix, sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0 or not r.stdout.strip().isdigit():
        return None
    return prefix
