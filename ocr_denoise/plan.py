"""Planning a folder run: which file becomes which output, and which are already done.

``plan(sources, dst)`` expands files, folders (``recursive`` mirrors the tree)
and glob patterns into ``Task``s (input, output); leaves out the output folder
when it lies inside an input folder; and refuses, as failures, pairs that would
overwrite an input or that two inputs would write to the same output.
``split_skipped`` then sets aside the tasks whose outputs exist already, which
is what makes running the same command again resume an interrupted run.
Nothing here reads an image or runs a model.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from . import images
from .atomic import remove_stale_temps, temp_name
from .errors import SettingsError
from .report import FileResult, shown

logger = logging.getLogger(__name__)

#: Output format name -> file extension.
FORMATS = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg"}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Task:
    """One input file and the output it should produce."""

    src: Path
    dst: Path
    #: The user named this output: never rename it (multi-page input into a
    #: non-TIFF name is then a failure instead of a ``.tif`` output).
    fixed_name: bool = False


def _location(p: Path) -> Path:
    """Where a directory entry lives: its folder resolved, its own name kept (a
    symlink is located where the link is, not where it points)."""
    return p.parent.resolve() / p.name


def is_glob(s: str) -> bool:
    """Whether ``s`` holds a glob wildcard (``*``, ``?``, ``[``)."""
    return any(c in s for c in "*?[")


def _glob_root(pattern: str) -> Path:
    """The folder part of a glob pattern before the first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if is_glob(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _glob(folder: Path, parts: Sequence[str], recursive: bool) -> Iterator[Path]:
    """Paths under ``folder`` matching the pattern ``parts`` (one per path level),
    as ``glob.glob`` matches them, except that links to folders are never entered.

    ``glob.glob`` follows them: two links pointing back up (``ln -s . a; ln -s .
    b``) made planning never end, and one made 40 nested copies of every output.
    Here a wildcard part matches names with ``fnmatch.fnmatch`` (hidden names only when
    the part itself starts with a dot) and, with ``recursive``, ``**`` matches
    zero or more real (non-link) subfolders; a link to a folder can still be
    matched as the last part, and is then set aside as a folder. ``folder``
    itself (the pattern's fixed part) is used as given, link or not.
    """
    if not parts:
        yield folder
        return
    part, rest = parts[0], parts[1:]
    if not is_glob(part):
        child = folder / part
        if not rest:
            if os.path.lexists(child):
                yield child
        elif child.is_dir() and not child.is_symlink():
            yield from _glob(child, rest, recursive)
        return
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return  # as glob.glob: an unlistable folder matches nothing
    if part == "**" and recursive:
        yield from _glob(folder, rest, recursive)  # zero folders
        for e in entries:
            if e.name.startswith("."):
                continue
            if _real_dir(e):
                yield from _glob(Path(e.path), parts, recursive)
            elif not rest:
                yield Path(e.path)
        return
    for e in entries:
        if e.name.startswith(".") and not part.startswith("."):
            continue
        if not fnmatch.fnmatch(e.name, part):
            continue
        if not rest:
            yield Path(e.path)
        elif _real_dir(e):
            yield from _glob(Path(e.path), rest, recursive)


def _real_dir(entry: os.DirEntry) -> bool:
    """A folder, not a link to one."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _wanted(entry: os.DirEntry) -> bool:
    """A folder entry we treat as an input: an image extension, not hidden (our
    temporaries, macOS ``._`` files), a file or a symlink that is not a folder
    (a dangling one is kept so it is reported, not silently ignored)."""
    if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in images.INPUT_EXTENSIONS:
        return False
    try:
        return entry.is_file() or (entry.is_symlink() and not entry.is_dir())
    except OSError:
        return True  # let reading it report what is wrong


@dataclass
class _Found:
    path: Path
    root: Path | None  # the folder the path was found under (None: named directly)


def _scan(root: Path, recursive: bool, skip_dir: Path | None,
          errors: list[FileResult]) -> list[_Found]:
    """Image files in ``root`` (and its subfolders if ``recursive``; hidden folders
    and ``skip_dir`` are not entered, symlinked folders not followed)."""
    found: list[_Found] = []
    if not recursive:
        try:
            with os.scandir(root) as it:
                found = [_Found(Path(e.path), root) for e in it if _wanted(e)]
        except OSError as e:
            errors.append(FileResult(root, "failed",
                                     reason=f"cannot list folder: {e.strerror or e}"))
        return found

    def onerror(e: OSError) -> None:
        errors.append(FileResult(Path(e.filename or root), "failed",
                                 reason=f"cannot list folder: {e.strerror or e}"))

    for dirpath, dirnames, _ in os.walk(root, onerror=onerror):
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".")
            and (skip_dir is None or Path(dirpath, d).resolve() != skip_dir)
        )
        try:
            with os.scandir(dirpath) as it:
                found += [_Found(Path(e.path), root) for e in it if _wanted(e)]
        except OSError as e:
            onerror(e)
    return found


def _discover(sources: Sequence[PathLike], dst_res: Path, recursive: bool,
              errors: list[FileResult]) -> list[_Found]:
    found: list[_Found] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            root_res = p.resolve()
            inside = root_res in dst_res.parents  # output folder lies inside this one
            found += _scan(p, recursive, dst_res if inside else None, errors)
        elif p.exists() or p.is_symlink():
            found.append(_Found(p, None))
        elif is_glob(str(s)):
            root = _glob_root(str(s))
            parts = Path(s).parts[len(root.parts):]
            matches = sorted(set(_glob(root, parts, recursive)))
            n = 0
            for m in map(Path, matches):
                if m.is_dir():
                    continue  # a folder matched by a pattern is not an input
                if m.suffix.lower() in images.INPUT_EXTENSIONS and not m.name.startswith("."):
                    found.append(_Found(m, root))
                    n += 1
            if not n:
                errors.append(FileResult(p, "failed", reason="pattern matches no image file"))
        else:
            errors.append(FileResult(p, "failed", reason="no such file or folder"))
    return found


def _output_name(src: Path, suffix: str, ext: str) -> str:
    return f"{src.stem}{suffix}{ext}"


def plan(
    sources: PathLike | Sequence[PathLike],
    dst: PathLike,
    *,
    recursive: bool = False,
    suffix: str = "",
    format: str = "png",
) -> tuple[list[Task], list[FileResult]]:
    """Expand ``sources`` (files, folders, glob patterns) into tasks writing under
    ``dst``. Returns the tasks and the failures found while planning (missing
    sources, unlistable folders, outputs that would overwrite an input, two
    inputs with one output name). Reads no image.

    Output names: ``dst / STEM + suffix + .ext``; with ``recursive`` the path
    relative to the input folder (or to a pattern's fixed prefix) is mirrored.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if format not in FORMATS:
        raise SettingsError(f"unknown output format {format!r}; use one of {sorted(FORMATS)}")
    if os.sep in suffix or (os.altsep and os.altsep in suffix):
        raise SettingsError(f"--suffix must be a plain name part, got {suffix!r}")
    out = Path(dst)
    if out.exists() and not out.is_dir():
        raise SettingsError(f"output {out} exists and is not a folder")
    dst_res = out.resolve()
    ext = FORMATS[format]
    for s in sources:
        if Path(s).is_dir() and Path(s).resolve() == dst_res and not suffix:
            raise SettingsError(
                f"the output folder is the input folder {s}: pass --suffix (e.g. _clean) "
                "so outputs do not replace inputs"
            )

    errors: list[FileResult] = []
    found = _discover(list(sources), dst_res, recursive, errors)

    tasks: list[Task] = []
    seen: set[Path] = set()
    for f in sorted(found, key=lambda f: str(f.path)):
        loc = _location(f.path)
        if loc in seen:
            continue
        seen.add(loc)
        if f.root is not None and recursive:
            rel_dir = f.path.parent.relative_to(f.root) if f.path.is_relative_to(f.root) else Path()
        else:
            rel_dir = Path()
        out_dir = out / rel_dir
        if f.root is not None and out_dir.resolve() == loc.parent and suffix:
            stem = f.path.stem
            if stem.endswith(suffix) and f.path.suffix.lower() in (ext, ".tif"):
                logger.debug("not reading %s: named like an output of this command",
                             shown(f.path))
                continue
        tasks.append(Task(f.path, out_dir / _output_name(f.path, suffix, ext)))
    return check_tasks(tasks, errors)


def check_tasks(tasks: list[Task],
                errors: list[FileResult]) -> tuple[list[Task], list[FileResult]]:
    """Drop (as failures, appended to ``errors``) tasks that would overwrite an
    input, share an output, or write a format we cannot write."""
    inputs = {_location(t.src): t.src for t in tasks}
    by_output: dict[Path, Task] = {}
    kept: list[Task] = []
    for t in tasks:
        out_loc = _location(t.dst)
        if t.dst.suffix.lower() not in images.WRITE_EXTENSIONS:
            errors.append(FileResult(t.src, "failed", t.dst, reason=(
                f"cannot write {t.dst.suffix or 'extension-less'} output {t.dst}; use one of "
                f"{', '.join(sorted(images.WRITE_EXTENSIONS))}")))
        elif out_loc in inputs or same_file(t.src, t.dst):
            errors.append(FileResult(t.src, "failed", t.dst, reason=(
                f"output {t.dst} would overwrite input {inputs.get(out_loc, t.src)}; "
                "choose another output folder or a --suffix")))
        elif out_loc in by_output:
            errors.append(FileResult(t.src, "failed", t.dst, reason=(
                f"output {t.dst} is also the output of {by_output[out_loc].src}; "
                "rename one of them")))
        else:
            by_output[out_loc] = t
            kept.append(t)
    return kept, errors


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def tasks_from_pairs(pairs: Sequence[Task] | Sequence[tuple[PathLike, PathLike]]) -> list[Task]:
    """``Task``s as given, or (input, output) pairs whose output names are used
    as given (``fixed_name``: the extension picks the format)."""
    return [t if isinstance(t, Task) else Task(Path(t[0]), Path(t[1]), fixed_name=True)
            for t in pairs]


def text_path(dst: Path) -> Path:
    """Where the OCR text of output ``dst`` goes (``--ocr``)."""
    return dst.with_suffix(".txt")


def _outputs_exist(task: Task, ocr: bool) -> bool:
    return task.dst.exists() and (not ocr or text_path(task.dst).exists())


def split_skipped(items: list[Task], *, overwrite: bool,
                  ocr: bool) -> tuple[list[Task], list[FileResult]]:
    """(tasks to do, skipped results): a task whose outputs exist is skipped
    unless ``overwrite``, so running the same job again resumes it."""
    skipped: list[FileResult] = []
    todo: list[Task] = []
    for t in items:
        if not overwrite and _outputs_exist(t, ocr):
            skipped.append(FileResult(t.src, "skipped", t.dst))
        else:
            todo.append(t)
    return todo, skipped


def prepare_output_folders(todo: list[Task]) -> list[Path]:
    """Make every output folder of ``todo``, check that a file can be created in
    each, and remove the temporaries that killed runs left there; returns the
    folders.

    Done before the first write: a folder that cannot be made, or takes no new
    file whatever its permissions say (``/proc``), is one ``OSError`` for the run
    naming the output (its ``filename``), not one failure per file.
    """
    outputs: dict[Path, list[Path]] = {}
    for t in todo:
        outputs.setdefault(t.dst.parent, []).append(t.dst)
    out_dirs = sorted(outputs)
    for folder in out_dirs:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise type(e)(e.errno, f"cannot make the output folder ({e.strerror})",
                          e.filename or os.fspath(folder)) from None
        _check_writable(folder, outputs[folder])
        for p in remove_stale_temps(folder):
            logger.info("removed %s, left by an interrupted run", shown(p))
    return out_dirs


def _check_writable(folder: Path, outputs: list[Path]) -> None:
    """Create and remove a file in ``folder``; an ``OSError`` naming the output
    (or the folder, for several) if that cannot be done."""
    probe = temp_name(folder / ".ocr-denoise-probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except OSError as e:
        named = outputs[0] if len(outputs) == 1 else folder
        raise type(e)(e.errno, f"cannot be written: no file can be created in {folder} "
                      f"({e.strerror})", os.fspath(named)) from None
    os.unlink(probe)
