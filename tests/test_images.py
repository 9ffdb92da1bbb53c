"""Reading and writing image files: formats, pages, DPI, the pixel limit, atomic writes."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import REPO, png_declaring
from PIL import Image

from ocr_denoise.images import (
    ImageReadError,
    ImageTooLargeError,
    TiffPagesWriter,
    open_image,
    read_image,
    write_image,
    write_pages,
    write_text,
)


def pil_tiff_pages(path: Path, pages: list[np.ndarray], dpis: list[tuple[int, int]]) -> None:
    """A multi-page TIFF written by Pillow (as a scanner or another tool would)."""
    ims = [Image.fromarray(p) for p in pages]
    for im, d in zip(ims[1:], dpis[1:]):
        im.encoderinfo = {"dpi": d}
    ims[0].save(path, save_all=True, append_images=ims[1:], dpi=dpis[0])


# -- reading ---------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".webp", ".jpg"])
@pytest.mark.parametrize("kind", ["gray", "bgr", "bgra", "gray16"])
def test_read_image_gives_what_cv2_imread_gives(tmp_path, rng, ext, kind):
    shape = {"gray": (31, 45), "bgr": (31, 45, 3), "bgra": (31, 45, 4), "gray16": (31, 45)}[kind]
    dtype = np.uint16 if kind == "gray16" else np.uint8
    if ((ext in (".jpg", ".bmp", ".webp") and kind == "gray16")
            or (ext == ".jpg" and kind == "bgra")):
        pytest.skip(f"{ext} cannot hold {kind}")
    img = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    path = tmp_path / f"page{ext}"
    assert cv2.imwrite(str(path), img)
    got = read_image(path)
    np.testing.assert_array_equal(got, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    assert got.dtype == cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype


def test_multipage_tiff_pages_are_read_in_order_with_their_own_size_and_dpi(tmp_path, rng):
    pages = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(20, 30), (25, 16), (9, 9)]]
    path = tmp_path / "book.tif"
    pil_tiff_pages(path, pages, [(300, 300), (150, 150), (600, 300)])
    src = open_image(path)
    assert src.pages == 3
    assert src.sizes == ((30, 20), (16, 25), (9, 9))
    assert src.dpi == ((300.0, 300.0), (150.0, 150.0), (600.0, 300.0))
    for i, page in enumerate(src):
        np.testing.assert_array_equal(page, pages[i])


def test_sixteen_bit_multipage_tiff_keeps_its_depth(tmp_path, rng):
    pages = [rng.integers(0, 65536, (12, 14), dtype=np.uint16) for _ in range(2)]
    path = tmp_path / "deep.tif"
    assert cv2.imwritemulti(str(path), pages)
    got = list(open_image(path))
    assert [p.dtype for p in got] == [np.uint16, np.uint16]
    for a, b in zip(got, pages):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fmt,ext", [("PNG", ".png"), ("JPEG", ".jpg"), ("TIFF", ".tif"),
                                     ("BMP", ".bmp")])
def test_dpi_is_read_from_the_header(tmp_path, fmt, ext):
    path = tmp_path / f"p{ext}"
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(path, fmt, dpi=(300, 200))
    (x, y), = open_image(path).dpi
    assert (round(x), round(y)) == (300, 200)


def test_file_without_dpi_reports_none(tmp_path):
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), np.zeros((5, 5), np.uint8))  # OpenCV writes no pHYs chunk
    assert open_image(path).dpi == (None,)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".bmp", ".webp"])
def test_truncated_file_is_a_clear_error(tmp_path, rng, ext):
    ok, buf = cv2.imencode(ext, rng.integers(0, 256, (200, 300), dtype=np.uint8))
    path = tmp_path / f"cut{ext}"
    path.write_bytes(buf.tobytes()[: len(buf) // 2])
    with pytest.raises(ImageReadError) as e:
        read_image(path)
    assert e.value.path == path
    assert str(path) in str(e.value)
    assert "truncated" in e.value.reason or "broken" in e.value.reason


@pytest.mark.parametrize("make,expected", [
    (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    (lambda p: p.write_text("not a picture, just words"), "not a readable image"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.symlink_to(p.parent / "gone.png"), "dangling symbolic link"),
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: None, "no such file"),
])
def test_unreadable_inputs_say_what_is_wrong(tmp_path, make, expected):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(ImageReadError) as e:
        read_image(path)  # a FIFO would block forever if it were opened for reading
    assert expected in e.value.reason and str(path) in str(e.value)


def test_other_formats_that_opencv_reads_are_refused_by_name(tmp_path):
    path = tmp_path / "p.pgm"
    cv2.imwrite(str(path), np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageReadError, match="expected PNG, JPEG, TIFF, BMP or WebP"):
        read_image(path)


def _png_chunk(kind: bytes, body: bytes, *, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(kind + body) ^ (0 if crc_ok else 1)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


@pytest.mark.parametrize("damage", ["cut in half", "IDAT checksum", "no IEND"])
def test_damaged_png_is_refused_without_libpng_printing_to_stderr(tmp_path, rng, capfd,
                                                                  damage):
    # libpng wrote "libpng error: ..." straight to stderr (through the progress
    # bar) before OpenCV gave up on such a file.
    png = cv2.imencode(".png", rng.integers(0, 256, (60, 80), dtype=np.uint8))[1].tobytes()
    idat = png.index(b"IDAT") + 8  # the first byte of the first IDAT's data
    data = {"cut in half": png[: len(png) // 2],
            "IDAT checksum": png[:idat] + bytes([png[idat] ^ 0xFF]) + png[idat + 1:],
            "no IEND": png[:-12]}[damage]
    path = tmp_path / "damaged.png"
    path.write_bytes(data)
    with pytest.raises(ImageReadError) as e:
        read_image(path)
    assert e.value.path == path
    assert ("truncated" if damage != "IDAT checksum" else "IDAT") in e.value.reason
    assert "libpng" not in capfd.readouterr().err


def test_png_with_a_damaged_ancillary_chunk_still_reads(tmp_path, rng):
    # libpng skips an ancillary chunk (lower-case first letter) whose checksum is
    # wrong and decodes the page: so do we. (Before the pixel data it is in the
    # header, which Pillow refuses.)
    page = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    png = cv2.imencode(".png", page)[1].tobytes()
    bad = _png_chunk(b"tEXt", b"note\0damaged in transit", crc_ok=False)
    (tmp_path / "p.png").write_bytes(png[:-12] + bad + png[-12:])  # before IEND
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), page)


def test_huge_non_images_are_refused_from_their_first_bytes_without_being_read(tmp_path):
    # A 3 GB file named .png used to be read whole before its header was looked
    # at (3.2 GB per worker). Sparse 4 GiB files cost no disk; the child runs
    # under a 3 GiB address-space limit so reading one whole fails loudly
    # instead of eating the machine's memory.
    starts = {"zeros.png": b"", "png_then_junk.png": b"\x89PNG\r\n\x1a\n",
              "webp_then_junk.png": b"RIFF\0\0\0\0WEBPVP8 "}
    for name, start in starts.items():
        with open(tmp_path / name, "wb") as f:
            f.write(start)
            f.truncate(4 * 2**30)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((4, 4), np.uint8))
    script = textwrap.dedent(f"""
        import resource
        from ocr_denoise.images import open_image, ImageReadError
        open_image({str(small)!r})  # warm up: load Pillow's plugins
        for name in {sorted(starts)!r}:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            try:
                open_image({str(tmp_path)!r} + "/" + name)
                print("OPENED", name)
            except ImageReadError as e:
                grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
                print("REFUSED", grown * 1024, e, sep="\t")
    """)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       preexec_fn=limit, cwd=REPO, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    lines = [line.split("\t") for line in r.stdout.splitlines()]
    assert [line[0] for line in lines] == ["REFUSED"] * 3, r.stdout
    for (_, grown, message), name in zip(lines, sorted(starts)):
        assert message.startswith(f"{tmp_path / name}: not a readable image")
        assert int(grown) < 32 * 2**20, (name, grown)  # peak RSS growth: not the file


# -- the pixel limit ---------------------------------------------------------------


def test_decompression_bomb_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(100_000, 100_000))
    assert path.stat().st_size < 1000
    with pytest.raises(ImageTooLargeError) as e:
        read_image(path)
    msg = str(e.value)
    assert str(path) in msg
    assert "100000x100000" in msg and "10,000,000,000 pixels" in msg
    assert "--max-pixels" in msg and "max_pixels=" in msg


def test_decompression_bomb_under_a_3_gib_address_space_gives_an_error_not_a_crash(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(100_000, 100_000))
    script = textwrap.dedent(f"""
        import sys
        from ocr_denoise.images import read_image, ImageTooLargeError
        try:
            read_image({str(path)!r})
        except ImageTooLargeError as e:
            print("REFUSED:", e)
            sys.exit(3)
        print("DECODED")
    """)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       preexec_fn=limit, cwd=REPO, timeout=120)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "REFUSED:" in r.stdout and "100000x100000" in r.stdout
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr


def test_pixel_limit_is_exclusive_of_the_limit_and_raisable(tmp_path, rng):
    path = tmp_path / "p.png"
    img = rng.integers(0, 256, (100, 100), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    with pytest.raises(ImageTooLargeError, match="100x100 = 10,000 pixels"):
        read_image(path, max_pixels=9_999)
    np.testing.assert_array_equal(read_image(path, max_pixels=10_000), img)
    np.testing.assert_array_equal(read_image(path, max_pixels=None), img)


def test_pixel_limit_checks_every_tiff_page_before_decoding_any(tmp_path, rng):
    path = tmp_path / "book.tif"
    pil_tiff_pages(path, [np.zeros((10, 10), np.uint8), np.zeros((200, 200), np.uint8)],
                   [(300, 300), (300, 300)])
    with pytest.raises(ImageTooLargeError, match="page 2 of 2 declares 200x200"):
        open_image(path, max_pixels=10_000)


# -- writing ---------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".tif", ".jpg"])
def test_written_file_records_the_dpi_given(tmp_path, ext):
    path = tmp_path / f"out{ext}"
    write_image(path, np.full((16, 16), 255, np.uint8), dpi=(300.0, 300.0))
    x, y = Image.open(path).info["dpi"]
    assert (round(x), round(y)) == (300, 300)


def test_written_file_has_no_dpi_when_none_is_given(tmp_path):
    path = tmp_path / "out.png"
    write_image(path, np.full((16, 16), 255, np.uint8))
    assert "dpi" not in Image.open(path).info


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".webp"])
def test_lossless_writes_round_trip_exactly(tmp_path, rng, ext):
    img = rng.integers(0, 256, (21, 34), dtype=np.uint8)
    write_image(tmp_path / f"o{ext}", img)
    got = read_image(tmp_path / f"o{ext}")
    if ext == ".webp":  # WebP has no grey mode: three equal channels
        assert got.shape == (*img.shape, 3) and (got == got[..., :1]).all()
        got = got[..., 0]
    np.testing.assert_array_equal(got, img)


def test_write_pages_makes_a_multipage_tiff_with_each_pages_dpi(tmp_path, rng):
    pages = [rng.integers(0, 256, (10 + i, 12), dtype=np.uint8) for i in range(3)]
    path = tmp_path / "out.tif"
    write_pages(path, pages, dpi=[(300, 300), None, (150, 75)])
    src = open_image(path)
    assert src.pages == 3
    for a, b in zip(src, pages):
        np.testing.assert_array_equal(a, b)
    assert src.dpi[0] == (300.0, 300.0) and src.dpi[1] is None and src.dpi[2] == (150.0, 75.0)


def test_tiff_writer_leaves_nothing_when_a_page_fails(tmp_path):
    path = tmp_path / "out.tif"
    with pytest.raises(ValueError, match="must be uint8"):
        with TiffPagesWriter(path) as w:
            w.add(np.zeros((5, 5), np.uint8))
            w.add(np.zeros((5, 5), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_unknown_extensions_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"out\.gif.*\.gif"):
        write_image(tmp_path / "out.gif", np.zeros((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_that_fails_midway_leaves_neither_partial_file_nor_temporary(tmp_path, rng):
    """A real write error (file-size limit, like a full disk) in a subprocess."""
    out = tmp_path / "out.png"
    out.write_bytes(b"previous content")
    script = textwrap.dedent(f"""
        import numpy as np, resource, signal
        from ocr_denoise.images import write_image
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        img = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
        try:
            write_image({str(out)!r}, img)
        except OSError as e:
            print("OSError", e.errno)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert "OSError 27" in r.stdout, (r.stdout, r.stderr)  # EFBIG
    assert out.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_write_text_is_utf8_and_atomic(tmp_path):
    path = tmp_path / "t.txt"
    write_text(path, "Größe: 1\fpage two")
    assert path.read_bytes() == "Größe: 1\fpage two".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_image_read_error_survives_pickling():
    import pickle
    e = pickle.loads(pickle.dumps(ImageReadError("/x/y.png", "file is empty (0 bytes)")))
    assert e.path == Path("/x/y.png") and e.reason == "file is empty (0 bytes)"
    assert str(e) == "/x/y.png: file is empty (0 bytes)"


@pytest.mark.parametrize("ext", [".png", ".tif", ".jpg"])
def test_tesseract_reads_the_dpi_we_write(tmp_path, ext):
    """Tesseract guesses ("Estimating resolution as N") only when a file has no DPI."""
    import shutil
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract not installed")
    img = np.full((120, 400), 255, np.uint8)
    cv2.putText(img, "HELLO", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, 0, 4)
    write_image(tmp_path / f"with{ext}", img, dpi=(300.0, 300.0))
    write_image(tmp_path / f"without{ext}", img)

    def stderr_of(name: str) -> str:
        return subprocess.run(["tesseract", str(tmp_path / name), "stdout"],
                              capture_output=True, text=True, timeout=120).stderr

    assert "Estimating resolution" in stderr_of(f"without{ext}")
    assert "Estimating resolution" not in stderr_of(f"with{ext}")
