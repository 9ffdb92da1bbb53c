"""Reading and writing page image files. The only module that touches image files;
everything it returns is a plain numpy array for ``normalize`` to check.

Reading happens in two steps so a hostile or broken file costs almost nothing:

1. ``open_image`` reads the file's first bytes and refuses it unless they are
   the signature of one of the five formats we accept (PNG, JPEG, TIFF, BMP,
   WebP), then parses only its header with Pillow (size, page count and DPI of
   every page) from the open file. A page whose header declares more pixels than
   ``max_pixels`` is refused here, before anything is decoded or allocated: a
   30-byte PNG can declare 100000 x 100000 pixels (10 GB decoded). Only a file
   that passes is read whole, so a 3 GB non-image costs 16 bytes of reading.
2. ``SourceImage.read(i)`` decodes one page with OpenCV, exactly as stored
   (uint8 or uint16; gray, BGR or BGRA), the same array ``cv2.imread(path,
   cv2.IMREAD_UNCHANGED)`` gives, so files and arrays denoise identically.

Writing goes through ``atomic.atomic_file``, so a crash, a full disk or Ctrl-C
never leaves a partial file under the final name.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import cv2
import numpy as np

from .atomic import atomic_file, atomic_write, remove_stale_temps
from .errors import ImageReadError, ImageTooLargeError, ImageWriteError

#: Default pixel limit per page: an A3 page at 1200 DPI is 280 Mpx, A4 at 1200 DPI
#: 140 Mpx, A4 at 600 DPI 35 Mpx. Raise it with ``max_pixels`` / ``--max-pixels``.
DEFAULT_MAX_PIXELS = 200_000_000

#: Formats we read (Pillow's names) and the file extensions a folder scan picks up.
READ_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP")
INPUT_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp",
                              ".webp"})

#: Extension (lower case) -> Pillow format and save options for what we write.
_WRITE_FORMATS: dict[str, tuple[str, dict]] = {
    # zlib level 3 (Pillow's default is 6): about as fast and as small as OpenCV's
    # encoder at the same level, which needed the DPI's pHYs chunk spliced in by
    # hand. 2500 x 3300 pages, Pillow against OpenCV: a clean text page 33 against
    # 50 ms, a denoised noisy page 84 against 75 ms, a grey page 132 against 121 ms,
    # sizes within 1.5%; level 6 takes 1.6-2.2x as long for files 8-24% smaller.
    ".png": ("PNG", {"compress_level": 3}),
    ".tif": ("TIFF", {"compression": "tiff_adobe_deflate"}),
    ".tiff": ("TIFF", {"compression": "tiff_adobe_deflate"}),
    # Text is hurt by JPEG artefacts; 95 keeps strokes clean at a moderate size.
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".bmp": ("BMP", {}),
    ".webp": ("WEBP", {"lossless": True}),
}

#: Extensions ``write_image`` accepts.
WRITE_EXTENSIONS = frozenset(_WRITE_FORMATS)

Dpi = tuple[float, float]



# -- reading ---------------------------------------------------------------------


def _clean_dpi(dpi: object) -> Dpi | None:
    """Pillow's ``info["dpi"]`` as two positive floats, or None if absent or bogus."""
    try:
        x, y = (float(v) for v in dpi)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


#: Bytes read first: enough for every accepted format's signature (WebP's is 12).
_PREFIX = 16


def _parse_header(path: Path, f: BinaryIO) -> tuple[str, list[tuple[int, int]], list[Dpi | None]]:
    """Format name, (width, height) and DPI of every page, from headers only.

    ``f``: the file, open for binary reading, positioned at its start and not
    empty. Its first ``_PREFIX`` bytes decide the format; a file that starts
    like none of the accepted formats is refused having read only those, and
    the header of one that does is parsed from ``f`` (Pillow reads the header's
    bytes, not the pixel data). ``f`` is left at an unspecified position.

    Calls the Pillow plugin of each accepted format directly rather than
    ``Image.open``: that parses the same header but skips Pillow's own global
    decompression-bomb limit (178 Mpx, a process-wide setting), because
    ``open_image`` applies its own, per-call limit.
    """
    from PIL import Image

    Image.init()
    prefix = f.read(_PREFIX)
    for fmt in READ_FORMATS:
        entry = Image.OPEN.get(fmt)
        if entry is None:  # pragma: no cover - Pillow built without this format
            continue
        factory, accept = entry
        if accept is not None and not accept(prefix):
            continue
        try:
            with warnings.catch_warnings():  # e.g. "Corrupt EXIF": not our concern
                warnings.simplefilter("ignore")
                im = factory(_header_source(fmt, prefix, f), str(path))
            sizes: list[tuple[int, int]] = []
            dpis: list[Dpi | None] = []
            n = int(getattr(im, "n_frames", 1) or 1) if fmt == "TIFF" else 1
            for i in range(n):
                if i:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        im.seek(i)  # reads the next TIFF directory, not its pixels
                sizes.append((int(im.size[0]), int(im.size[1])))
                dpi = im.info.get("dpi")
                if fmt == "TIFF" and 282 not in getattr(im, "tag_v2", {}):
                    dpi = None  # no XResolution tag: Pillow reports a made-up (1, 1)
                dpis.append(_clean_dpi(dpi))
            return fmt, sizes, dpis
        except Exception as e:  # any parse failure means a broken header
            raise ImageReadError(
                path, f"not a readable image (broken {fmt} header: {e})"
            ) from e
    raise ImageReadError(
        path, "not a readable image (unsupported format or not an image; "
        "expected PNG, JPEG, TIFF, BMP or WebP)"
    )


def _header_source(fmt: str, prefix: bytes, f: BinaryIO) -> BinaryIO:
    """What Pillow's ``fmt`` plugin should parse the header from: ``f`` from its
    start, except for WebP, which Pillow reads to the end of the file to parse:
    it gets only the bytes the RIFF header says the image has (not trailing
    junk, however large), and a RIFF size the file cannot hold is refused unread.
    """
    f.seek(0)
    if fmt != "WEBP":
        return f
    riff = int.from_bytes(prefix[4:8], "little") + 8  # "RIFF", size, then that many bytes
    have = os.fstat(f.fileno()).st_size
    if not 20 <= riff <= have:
        raise ValueError(f"RIFF header says the file has {riff:,} bytes, it has {have:,} "
                         f"({'truncated' if riff > have else 'too small for an image'})")
    return io.BytesIO(f.read(riff))


def _png_damage(data: bytes) -> str | None:
    """What is wrong with the PNG stream ``data`` that libpng would stop on, or
    None: it ends before its IEND chunk, or a critical chunk's (IHDR, PLTE,
    IDAT, IEND) CRC does not match.

    Checked before OpenCV decodes, because libpng prints a ``libpng error:``
    line straight to the process's stderr for these (through the progress bar,
    past logging) before OpenCV returns nothing. Ancillary chunks (lower-case
    first letter) with a bad CRC are left to libpng, which skips them: such a
    file still decodes. Costs one CRC pass over the file, no decoding.
    """
    view = memoryview(data)
    pos = 8  # after the signature
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        end = pos + 12 + length  # length, type, data, CRC
        if end > len(data):
            break
        kind = bytes(view[pos + 4:pos + 8])
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if kind[:1].isupper() and zlib.crc32(view[pos + 4:end - 4]) != crc:
            return f"corrupt: the {kind.decode('latin-1')} chunk's checksum does not match"
        if kind == b"IEND":
            return None
        pos = end
    return "truncated: the PNG stream ends before its IEND chunk"


@dataclass(frozen=True)
class SourceImage:
    """An image file whose headers have been checked; pages are decoded on demand.

    ``sizes[i]`` is page i's (width, height) and ``dpi[i]`` its resolution in dots
    per inch as (x, y), or None when the file does not say. Holds the file's
    bytes (not its decoded pixels) in memory.
    """

    path: Path
    format: str
    sizes: tuple[tuple[int, int], ...]
    dpi: tuple[Dpi | None, ...]
    data: bytes

    @property
    def pages(self) -> int:
        return len(self.sizes)

    def read(self, index: int = 0) -> np.ndarray:
        """Decode page ``index``: H x W (gray), H x W x 3 (BGR) or H x W x 4 (BGRA),
        uint8 or uint16 (float for float TIFFs), exactly as stored."""
        if not 0 <= index < self.pages:
            raise IndexError(f"{self.path}: page {index} of {self.pages}")
        if self.format == "PNG" and (damage := _png_damage(self.data)):
            raise ImageReadError(self.path, f"not a readable image ({damage})")
        buf = np.frombuffer(self.data, np.uint8)
        try:
            if self.pages == 1:
                img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            else:
                ok, mats = cv2.imdecodemulti(buf, cv2.IMREAD_UNCHANGED,
                                             range=(index, index + 1))
                img = mats[0] if ok and len(mats) == 1 else None
        except cv2.error as e:
            raise ImageReadError(self.path, f"cannot decode image: {e}") from e
        if img is None:
            where = f"page {index + 1} of {self.pages}: " if self.pages > 1 else ""
            raise ImageReadError(
                self.path, f"{where}not a readable image (corrupt, truncated or "
                "unsupported encoding)"
            )
        w, h = self.sizes[index]
        if img.shape[:2] != (h, w):
            raise ImageReadError(
                self.path, f"decoded page is {img.shape[1]}x{img.shape[0]} but the "
                f"header says {w}x{h}; the file is inconsistent"
            )
        return img

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every page in order, decoded one at a time."""
        for i in range(self.pages):
            yield self.read(i)


def open_image(path: str | os.PathLike[str], *,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> SourceImage:
    """Check a file's headers, then read its bytes; decode nothing.

    Raises ``ImageReadError`` naming the file when it cannot be read, is empty,
    is not a PNG/JPEG/TIFF/BMP/WebP image or has a broken header, and
    ``ImageTooLargeError`` when a page declares more than ``max_pixels`` pixels
    (``None`` disables the check; OpenCV still refuses pages over 2**30 pixels).
    Every check comes before the file is read whole, so a refused file, however
    large, costs only its header's bytes.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ImageReadError(p, "is a directory, not an image file")
        if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
            raise ImageReadError(p, "not a regular file")
        with open(p, "rb") as f:
            if not f.read(1):
                raise ImageReadError(p, "file is empty (0 bytes)")
            f.seek(0)
            fmt, sizes, dpis = _parse_header(p, f)
            _check_pixels(p, sizes, max_pixels)
            f.seek(0)
            data = f.read()
    except FileNotFoundError as e:
        kind = "dangling symbolic link" if p.is_symlink() else "no such file"
        raise ImageReadError(p, f"cannot read file: {kind}") from e
    except OSError as e:
        raise ImageReadError(p, f"cannot read file: {e.strerror or e}") from e
    return SourceImage(p, fmt, tuple(sizes), tuple(dpis), data)


def _check_pixels(p: Path, sizes: list[tuple[int, int]], max_pixels: int | None) -> None:
    """Raise ``ImageTooLargeError`` for the first page of ``sizes`` (from the
    header of ``p``) with more than ``max_pixels`` pixels (None: no limit)."""
    if max_pixels is not None:
        for i, (w, h) in enumerate(sizes):
            if w * h > max_pixels:
                where = f"page {i + 1} of {len(sizes)} " if len(sizes) > 1 else ""
                raise ImageTooLargeError(
                    p, f"{where}declares {w}x{h} = {w * h:,} pixels, more than the limit "
                    f"of {max_pixels:,}; refused before decoding (a decompression bomb "
                    "would exhaust memory). If the page is genuine, raise the limit "
                    "with --max-pixels N (Python: max_pixels=N)"
                )


def read_image(path: str | os.PathLike[str], *,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read the first page of an image file as uint8/uint16, gray/BGR/BGRA, exactly
    as stored; see ``open_image`` for the checks and errors."""
    return open_image(path, max_pixels=max_pixels).read(0)


# -- writing ---------------------------------------------------------------------


def _format_for(path: Path) -> tuple[str, dict]:
    try:
        return _WRITE_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ImageWriteError(
            f"{path}: cannot write images with extension {path.suffix!r}; use one of "
            f"{', '.join(sorted(_WRITE_FORMATS))}"
        ) from None


def _to_pil(img: np.ndarray) -> Any:
    """uint8 gray / BGR / BGRA numpy -> Pillow image (RGB order), or None if the
    array is of another kind (left to OpenCV)."""
    from PIL import Image

    if img.dtype != np.uint8:
        return None
    if img.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(img), "L")
    if img.ndim == 3 and img.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(img[..., ::-1]), "RGB")
    if img.ndim == 3 and img.shape[2] == 4:
        return Image.fromarray(np.ascontiguousarray(img[..., [2, 1, 0, 3]]), "RGBA")
    return None


def _save_kwargs(options: dict, dpi: Dpi | None) -> dict:
    kw = dict(options)
    if dpi is not None:
        kw["dpi"] = dpi
    return kw


def write_image(path: str | os.PathLike[str], img: np.ndarray, *,
                dpi: Dpi | None = None) -> None:
    """Write one page atomically; the format follows the extension (.png, .tif/.tiff,
    .jpg/.jpeg, .bmp, .webp).

    ``img``: H x W uint8 gray (what ``denoise_page`` returns), or H x W x 3 BGR /
    H x W x 4 BGRA uint8; other arrays (e.g. uint16) are encoded by OpenCV, which
    cannot record a DPI. ``dpi``: (x, y) dots per inch to record in the file
    (tesseract and OCRmyPDF read it), or None to record none.
    """
    p = Path(path)
    fmt, options = _format_for(p)
    pil = _to_pil(img)
    if pil is not None:
        def write(f: BinaryIO) -> None:
            pil.save(f, format=fmt, **_save_kwargs(options, dpi))
    else:
        ok, buf = cv2.imencode(p.suffix.lower(), img)
        if not ok:
            raise ImageWriteError(f"{p}: cannot encode a {img.dtype} array of shape "
                                  f"{img.shape} as {p.suffix}")

        def write(f: BinaryIO) -> None:
            f.write(buf.tobytes())
    atomic_write(p, write)


class TiffPagesWriter:
    """Write a multi-page TIFF one page at a time, atomically.

    ``with TiffPagesWriter(path) as w: w.add(page, dpi=...)`` appends each page
    (uint8 arrays as for ``write_image``) to a temporary file as it comes, so
    only one page is in memory; the file appears under ``path`` when the block
    ends without error (``atomic.atomic_file``), and never otherwise.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        fmt, self._options = _format_for(self.path)
        if fmt != "TIFF":
            raise ImageWriteError(f"{self.path}: several pages can only be written to a "
                                  ".tif/.tiff file")
        self._stack = contextlib.ExitStack()
        self._writer: Any = None
        self.count = 0

    def add(self, img: np.ndarray, *, dpi: Dpi | None = None) -> None:
        pil = _to_pil(img)
        if pil is None:
            raise ImageWriteError(f"{self.path}: multi-page TIFF pages must be uint8 gray, "
                                  f"BGR or BGRA, got {img.dtype} {img.shape}")
        assert self._writer is not None, "use TiffPagesWriter as a context manager"
        pil.save(self._writer, format="TIFF", **_save_kwargs(self._options, dpi))
        self._writer.newFrame()
        self.count += 1

    def __enter__(self) -> TiffPagesWriter:
        from PIL import TiffImagePlugin

        with self._stack as stack:  # undone at once if opening fails
            f = stack.enter_context(atomic_file(self.path))
            self._writer = stack.enter_context(TiffImagePlugin.AppendingTiffWriter(f))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None and self.count == 0:
            err = ImageWriteError(f"{self.path}: no pages were added")
            self._stack.__exit__(ImageWriteError, err, None)  # removes the temporary
            raise err
        self._stack.__exit__(exc_type, exc, tb)


def write_pages(path: str | os.PathLike[str], pages: Sequence[np.ndarray], *,
                dpi: Sequence[Dpi | None] | None = None) -> None:
    """Write ``pages`` (uint8 arrays) as one multi-page TIFF, atomically.
    ``dpi[i]`` is recorded for page i when given."""
    with TiffPagesWriter(path) as w:
        for i, page in enumerate(pages):
            w.add(page, dpi=dpi[i] if dpi is not None else None)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically (same rules as images)."""
    atomic_write(path, text.encode("utf-8"))


__all__ = ["DEFAULT_MAX_PIXELS", "INPUT_EXTENSIONS", "READ_FORMATS", "WRITE_EXTENSIONS",
           "ImageReadError", "ImageTooLargeError", "ImageWriteError", "SourceImage",
           "TiffPagesWriter",
           "open_image", "read_image", "remove_stale_temps", "write_image", "write_pages",
           "write_text"]
