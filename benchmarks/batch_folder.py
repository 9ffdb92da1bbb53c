"""Folder throughput of the ``ocr-denoise`` command against single-page ``denoise_page``.

Generates a folder of synthetic scanned pages (text-like lines, speckle, a stain,
uneven paper; 300 DPI PNGs), measures in-process ``denoise_page`` on a few of
them, then runs the real CLI over the whole folder once per ``--jobs`` value,
inside a pseudo-terminal so its progress bar is drawn as a user would see it,
and prints the bar's last state, the CLI's summary and the wall-clock pages/s
(process start-up included).

    .venv/bin/python benchmarks/batch_folder.py              # 200 pages, 1000x800
    .venv/bin/python benchmarks/batch_folder.py --pages 50 --jobs 1,2,4

Figures depend on what else the machine is doing: the load average is printed.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ocr_denoise import denoise_page  # noqa: E402
from ocr_denoise.images import read_image, write_image  # noqa: E402

WORDS = ("the of and to in is that for it as with was on be by this are from or "
         "page scan denoise paper ink letter report invoice total amount date").split()


def make_page(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An H x W uint8 page: lines of words on slightly uneven paper, then damage."""
    paper = 235 + 15 * np.sin(np.linspace(0, 3, w))[None, :] * np.ones((h, 1))
    page = paper.astype(np.uint8)
    y = 60
    while y < h - 40:
        x = 40
        while True:
            word = str(rng.choice(WORDS))
            (tw, _), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
            if x + tw > w - 40:
                break
            cv2.putText(page, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 30, 2, cv2.LINE_AA)
            x += tw + 14
        y += 36
    noisy = page.astype(np.float32)
    cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(60, 200)
    yy, xx = np.ogrid[:h, :w]
    noisy -= 60 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * r * r))  # coffee stain
    noisy += rng.normal(0, 18, (h, w))  # sensor noise
    speck = rng.random((h, w)) < 0.004
    noisy[speck] = rng.integers(0, 80, int(speck.sum()))  # dust
    return np.clip(noisy, 0, 255).astype(np.uint8)


def run_cli_in_pty(args: list[str]) -> tuple[int, float, str]:
    """Run the CLI with stderr on a 100x30 pseudo-terminal; (exit status, seconds, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ocr_denoise.cli", *args], cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = bytearray()
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(master)
    rc = proc.wait()
    return rc, time.perf_counter() - t0, out.decode(errors="replace")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--height", type=int, default=1000)
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--jobs", default="1,2", help="comma-separated --jobs values to run")
    ap.add_argument("--single", type=int, default=5, help="pages timed with denoise_page")
    ap.add_argument("--workdir", default=None, help="keep the folders here (default: temp)")
    args = ap.parse_args()

    import onnxruntime

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ocr-denoise-bench-"))
    src = work / "scans"
    src.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python "
          f"{platform.python_version()}, onnxruntime {onnxruntime.__version__}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    t0 = time.perf_counter()
    rng = np.random.default_rng(2024)
    for i in range(args.pages):
        write_image(src / f"page{i:04d}.png", make_page(rng, args.height, args.width),
                    dpi=(300.0, 300.0))
    print(f"generated {args.pages} pages of {args.width}x{args.height} in {src} "
          f"({time.perf_counter() - t0:.1f} s)")

    pages = [read_image(p) for p in sorted(src.iterdir())[: args.single]]
    denoise_page(pages[0])  # build the session outside the timing

    def single_page_seconds() -> float:
        t0 = time.perf_counter()
        for p in pages:
            denoise_page(p)
        return (time.perf_counter() - t0) / len(pages)

    for jobs in [int(j) for j in args.jobs.split(",")]:
        # Measured again right before each run: other processes on the machine
        # come and go, and the comparison should be between like conditions.
        single = single_page_seconds()
        print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; single page, "
              f"in process: denoise_page {single:.3f} s/page = {1 / single:.2f} pages/s "
              f"(mean of {len(pages)}; no decoding or encoding)")
        out = work / f"clean-jobs{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        rc, secs, text = run_cli_in_pty([str(src), "-o", str(out), "--jobs", str(jobs)])
        frames = [f for f in re.split(r"[\r\n]+", text) if "page/s" in f and "|" in f]
        summary = [ln for ln in text.splitlines() if ln.strip() and "|" not in ln]
        print(f"\n$ ocr-denoise {src} -o {out} --jobs {jobs}    (exit status {rc})")
        for f in frames[len(frames) // 2: len(frames) // 2 + 1] + frames[-1:]:
            print(f"  bar: {f.strip()}")
        for ln in summary:
            print(f"  {ln.strip()}")
        print(f"  wall clock incl. start-up: {secs:.1f} s = {args.pages / secs:.2f} pages/s "
              f"= {args.pages / secs * single:.2f}x the single-page denoise_page rate")
    if not args.workdir:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
