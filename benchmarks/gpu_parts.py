"""Carry a large wheel to a GPU machine in parts that each fit one upload, and join them there.

    python3 benchmarks/gpu_parts.py split WHEEL [--size-mib 61] [--out .whl]
    python3 benchmarks/gpu_parts.py join DIR [DIR ...] --out DIR

Why: the GPU machines lent to this project reach no package registry, their image
has onnxruntime without the CUDA provider, and each command there takes at most
64 MiB of files with it, working tree included; onnxruntime-gpu's wheel is about
244 MiB. A machine stays up between commands a little while, keeping what earlier
commands left outside the working tree, so the wheel goes in parts over several
commands (each copying its part to a folder outside the tree) and the last one
joins them and runs ``benchmarks/gpu_check.sh`` (docs/benchmarks.md, "GPU").

``split`` writes ``NAME.part-000``, ``NAME.part-001``, ... of at most ``--size-mib``
MiB each and ``NAME.parts`` (the whole file's SHA-256, size and part count) into
``--out``. ``join`` finds every ``NAME.parts`` and its parts in the folders given,
checks that no part is missing, joins them, checks size and SHA-256, and writes
``NAME`` into ``--out``; it prints each joined path. Exit status 2, naming what is
missing or wrong, if a file cannot be joined whole: a half-carried wheel must stop
the check, not install something broken.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

CHUNK = 1 << 20


def split(path: Path, out: Path, size_mib: int) -> list[Path]:
    """``path`` cut into parts of at most ``size_mib`` MiB in ``out``, and its
    ``.parts`` record; returns the part paths in order."""
    out.mkdir(parents=True, exist_ok=True)
    size = size_mib << 20
    digest, parts, total = hashlib.sha256(), [], 0
    with path.open("rb") as f:
        while True:
            data = f.read(size)
            if not data:
                break
            digest.update(data)
            total += len(data)
            part = out / f"{path.name}.part-{len(parts):03d}"
            part.write_bytes(data)
            parts.append(part)
    (out / f"{path.name}.parts").write_text(f"{digest.hexdigest()} {total} {len(parts)}\n")
    return parts


def join(folders: list[Path], out: Path) -> list[Path]:
    """Every file recorded by a ``.parts`` file in ``folders``, joined into ``out``.
    Raises ``ValueError`` naming the file if a part is missing or the whole is wrong."""
    records = sorted({r for d in folders for r in d.glob("*.parts")}, key=lambda r: r.name)
    joined = []
    for record in records:
        name = record.name[: -len(".parts")]
        sha, size, count = record.read_text().split()
        found = {p.name: p for d in folders for p in d.glob(f"{name}.part-*")}
        names = [f"{name}.part-{i:03d}" for i in range(int(count))]
        missing = [n for n in names if n not in found]
        if missing:
            raise ValueError(f"{name}: {len(missing)} of {count} parts missing "
                             f"({', '.join(missing)}) in {', '.join(map(str, folders))}")
        out.mkdir(parents=True, exist_ok=True)
        target = out / name
        digest, total = hashlib.sha256(), 0
        with target.open("wb") as w:
            for n in names:
                with found[n].open("rb") as f:
                    while data := f.read(CHUNK):
                        digest.update(data)
                        total += len(data)
                        w.write(data)
        if total != int(size) or digest.hexdigest() != sha:
            target.unlink()
            raise ValueError(f"{name}: joined {total} bytes with SHA-256 {digest.hexdigest()}, "
                             f"expected {size} bytes and {sha}: a part is damaged or stale")
        joined.append(target)
    return joined


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("wheel", type=Path)
    s.add_argument("--size-mib", type=int, default=61)
    s.add_argument("--out", type=Path, default=Path(".whl"))
    j = sub.add_parser("join")
    j.add_argument("folders", type=Path, nargs="+")
    j.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "split":
        if args.size_mib < 1:
            ap.error("--size-mib must be at least 1")
        for p in split(args.wheel, args.out, args.size_mib):
            print(p)
        return 0
    try:
        for p in join(args.folders, args.out):
            print(p)
    except ValueError as e:
        print(f"gpu_parts: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
