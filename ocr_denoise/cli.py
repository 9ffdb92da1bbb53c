"""``ocr-denoise IN -o OUT``: a thin command-line layer over ``denoise_page``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from ._version import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ocr-denoise",
        description="Clean a scanned page before OCR with a learned denoiser.",
    )
    p.add_argument("input", help="input image (PNG, JPEG, TIFF, BMP, WebP)")
    p.add_argument("-o", "--output", required=True, help="output image path")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from .api import denoise_page
    from .io import read_image, write_image

    try:
        img = read_image(args.input)
        out = denoise_page(img, model=args.model, device=args.device)
        write_image(args.output, out)
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        print(f"ocr-denoise: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
