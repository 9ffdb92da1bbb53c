"""Plain helpers shared by the tests (no fixtures: those are in conftest.py).

Tests import these as ``from helpers import ...``; pytest puts ``tests/`` on
``sys.path``. Never import conftest itself.
"""

from __future__ import annotations

import os
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
#: The public data sets the benchmarks and the training recipe read from
#: ``SHARED_DATA``, by folder; docs/benchmarks.md says where to get each.
DATA_SETS = {
    "funsd-train": "FUNSD forms",
    "sroie-dev": "SROIE receipts",
    "ehri-dev": "EHRI archive pages",
    "noisyoffice": "NoisyOffice pages",
    "dibco": "DIBCO pages",
}


def missing_data(*folders: str) -> str | None:
    """Why a test that needs these ``SHARED_DATA`` folders is skipped, in words a
    user acts on (which data set, where it is expected, where to get it); None
    when every folder is there."""
    absent = [f for f in folders if not (SHARED_DATA / f).is_dir()]
    if not absent:
        return None
    what = " / ".join(dict.fromkeys(DATA_SETS.get(f.split("/")[0], f) for f in absent))
    where = ", ".join(f"../shared/data/{f}" for f in absent)
    return (f"{what} not present under {where} (beside the checkout): see "
            "docs/benchmarks.md, 'Data sets', for where to get them")


# -- tiny real ONNX models ----------------------------------------------------------


def make_onnx_model(path: Path, kind: str = "identity", patch: int = 28,
                    layout: str = "NHWC", metadata: dict | None = None) -> Path:
    """Write a tiny real ONNX model: 'identity' returns its input, 'invert' 1 - x."""
    from onnx import TensorProto, helper

    shape = ["N", patch, patch, 1] if layout == "NHWC" else ["N", 1, patch, patch]
    x = helper.make_tensor_value_info("noisy", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("clean", TensorProto.FLOAT, shape)
    if kind == "identity":
        nodes = [helper.make_node("Identity", ["noisy"], ["clean"])]
        inits = []
    elif kind == "invert":
        one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
        nodes = [helper.make_node("Sub", ["one", "noisy"], ["clean"])]
        inits = [one]
    else:
        raise ValueError(kind)
    graph = helper.make_graph(nodes, kind, [x], [y], initializer=inits)
    return _save_model(graph, path, metadata)


def make_onnx_graph_model(path: Path, nodes: list, in_shape: list, out_shape: list, *,
                          initializers: tuple = (), metadata: dict | None = None,
                          in_type: int | None = None, out_type: int | None = None,
                          extra_inputs: tuple = (), check: bool = True) -> Path:
    """Write a real ONNX model with graph input 'x' and output 'y' of the given shapes.

    ``nodes`` are ``onnx.helper.make_node`` results wiring 'x' (plus any
    ``extra_inputs`` names) to 'y'. For building models that load in
    onnxruntime but do not fit the denoiser (wrong rank, channels, dtypes,
    metadata...). ``check=False`` skips the ONNX checker for deliberately
    invalid graphs.
    """
    from onnx import TensorProto, helper

    in_type = TensorProto.FLOAT if in_type is None else in_type
    out_type = TensorProto.FLOAT if out_type is None else out_type
    inputs = [helper.make_tensor_value_info("x", in_type, in_shape)]
    inputs += [helper.make_tensor_value_info(n, in_type, in_shape) for n in extra_inputs]
    y = helper.make_tensor_value_info("y", out_type, out_shape)
    graph = helper.make_graph(nodes, "test", inputs, [y], initializer=list(initializers))
    return _save_model(graph, path, metadata, check=check)


def _save_model(graph, path: Path, metadata: dict | None, check: bool = True) -> Path:
    """Wrap ``graph`` as an opset-17, IR-8 model with ``metadata``, check it, save it."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def scalar(name: str, value: float):
    """A float32 scalar ONNX initializer."""
    from onnx import TensorProto, helper

    return helper.make_tensor(name, TensorProto.FLOAT, [], [value])


def node(op: str, inputs: list, outputs: list, **attrs):
    """Shorthand for ``onnx.helper.make_node``."""
    from onnx import helper

    return helper.make_node(op, inputs, outputs, **attrs)


# -- generated pages and image files ---------------------------------------------------


def text_page(rng: np.random.Generator, h: int = 120, w: int = 160) -> np.ndarray:
    """A small float32 page of dark strokes on white, like text, without fonts."""
    page = np.ones((h, w), np.float32)
    for y in range(8, h - 12, 16):
        x = 6
        while x < w - 10:
            cw = int(rng.integers(3, 9))
            page[y : y + 9, x : x + 2] = 0.05
            page[y + 8 : y + 10, x : x + cw] = 0.05
            x += cw + int(rng.integers(3, 7))
    return page


def noisy_page(rng: np.random.Generator, h: int = 60, w: int = 80, channels: int = 0,
               dtype=np.uint8) -> np.ndarray:
    """Uniform random values over the whole range of ``dtype``, (h, w) or (h, w, channels).

    For uint8 this draws exactly what ``rng.integers(0, 256, shape, dtype=np.uint8)``
    draws."""
    hi = np.iinfo(dtype).max
    shape = (h, w) if not channels else (h, w, channels)
    return rng.integers(0, hi, shape, dtype=dtype, endpoint=True)


def write_random_pages(folder: Path, rng: np.random.Generator, n: int = 3, *,
                       names: Iterable[str] | None = None, pattern: str = "p{i}.png",
                       shape: tuple[int, int] = (20, 20)) -> dict[str, np.ndarray]:
    """Write random grey uint8 pages (``noisy_page``) into ``folder``, made if missing.

    The files are ``names`` if given, else ``pattern.format(i=i)`` for ``i`` in
    ``range(n)``; each is written by ``cv2.imwrite``, so the name's extension picks
    the format. Returns ``{name: page}`` in the order written (and drawn from ``rng``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = list(names) if names is not None else [pattern.format(i=i) for i in range(n)]
    pages = {}
    for name in names:
        pages[name] = noisy_page(rng, *shape)
        cv2.imwrite(str(folder / name), pages[name])
    return pages


def png_declaring(width: int, height: int) -> bytes:
    """A valid, tiny PNG whose IHDR declares width x height 8-bit gray pixels; its
    IDAT holds one compressed row, so decoding it fully would need w*h bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))  # filter byte + one row of zeros
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# -- processes -------------------------------------------------------------------------


def worker_pids(pid: int) -> list[int]:
    """Pool workers of a CLI process (not its multiprocessing resource tracker)."""
    out = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            out.append(int(d))
    return out


def wait_for(cond: Callable[[], object], timeout: float = 120.0) -> None:
    """Poll ``cond`` every 20 ms until it is true; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


# -- documentation ---------------------------------------------------------------------


def doc_block(relpath: str, heading: str) -> str:
    """The first ```python block after ``heading`` in the markdown file REPO/relpath."""
    text = (REPO / relpath).read_text()
    start = text.index(heading)
    m = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert m, f"no python block after {heading!r} in {relpath}"
    return m.group(1)


def readme_block(heading: str) -> str:
    """The first ```python block after the README heading ``heading``."""
    return doc_block("README.md", heading)


# -- enlargement (issue 32) ---------------------------------------------------------


def enlarger_model(path: Path, kind: str = "zero", patch: int = 28, scale: int = 2,
                   metadata: dict | None = None) -> Path:
    """A real enlargement model: clean = a * base + b * nearest(noisy), with (a, b) =
    (1, 0) for ``zero`` and (0.3, 0.7) for ``mix``; inputs ``noisy`` (N, 1, P, P) and
    ``base`` (N, 1, kP, kP), as ``train/export.py`` writes them."""
    import onnx
    from onnx import TensorProto, helper

    from ocr_denoise import rescale as page_rescale

    q = scale * patch
    a, b = {"zero": (1.0, 0.0), "mix": (0.3, 0.7)}[kind]
    inits = [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, scale, scale]),
             helper.make_tensor("a", TensorProto.FLOAT, [], [a]),
             helper.make_tensor("b", TensorProto.FLOAT, [], [b])]
    nodes = [helper.make_node("Resize", ["noisy", "", "scales"], ["near"], mode="nearest",
                              coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor"),
             helper.make_node("Mul", ["base", "a"], ["ab"]),
             helper.make_node("Mul", ["near", "b"], ["bn"]),
             helper.make_node("Add", ["ab", "bn"], ["clean"])]
    graph = helper.make_graph(
        nodes, "enlarger",
        [helper.make_tensor_value_info("noisy", TensorProto.FLOAT, ["N", 1, patch, patch]),
         helper.make_tensor_value_info("base", TensorProto.FLOAT, ["N", 1, q, q])],
        [helper.make_tensor_value_info("clean", TensorProto.FLOAT, ["N", 1, q, q])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"patch_size": str(patch), "layout": "NCHW", "scale": str(scale),
            "base": page_rescale.CUBIC}
    meta.update(metadata or {})
    for k, v in meta.items():
        if v is not None:
            model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path


def small_print(rng: np.random.Generator, h: int = 137, w: int = 211) -> np.ndarray:
    """A uint8 page of small dark marks (x-height about 6 px) on light grey noise."""
    page = rng.normal(235, 6, (h, w))
    for y in range(4, h - 8, 11):
        for x in range(3, w - 6, int(rng.integers(5, 8))):
            if rng.random() < 0.8:
                page[y : y + int(rng.integers(3, 7)), x : x + int(rng.integers(1, 4))] = \
                    rng.uniform(10, 80)
    return np.clip(page, 0, 255).astype(np.uint8)


def small_print_folder(folder: Path, n: int, seed: int = 32) -> dict[str, np.ndarray]:
    """``folder`` made and filled with ``n`` small-print pages ``p0.png``... (heights
    90, 97, ..., width 120, declared 100 DPI: small enough for ``upscale="auto"`` to
    enlarge); returns them by name."""
    from ocr_denoise.images import write_image

    rng = np.random.default_rng(seed)
    folder.mkdir()
    pages = {f"p{i}.png": small_print(rng, 90 + 7 * i, 120) for i in range(n)}
    for name, page in pages.items():
        write_image(folder / name, page, dpi=(100, 100))
    return pages
