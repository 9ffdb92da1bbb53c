"""Shared fixtures: small generated images and tiny real ONNX models built in-test."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def make_onnx_model(path: Path, kind: str = "identity", patch: int = 28,
                    layout: str = "NHWC", metadata: dict | None = None) -> Path:
    """Write a tiny real ONNX model: 'identity' returns its input, 'invert' 1 - x."""
    import onnx
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def identity_model(tmp_path_factory) -> Path:
    return make_onnx_model(tmp_path_factory.mktemp("models") / "identity.onnx")


@pytest.fixture(scope="session")
def invert_model(tmp_path_factory) -> Path:
    return make_onnx_model(tmp_path_factory.mktemp("models") / "invert.onnx", "invert")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


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
    import onnx
    from onnx import TensorProto, helper

    in_type = TensorProto.FLOAT if in_type is None else in_type
    out_type = TensorProto.FLOAT if out_type is None else out_type
    inputs = [helper.make_tensor_value_info("x", in_type, in_shape)]
    inputs += [helper.make_tensor_value_info(n, in_type, in_shape) for n in extra_inputs]
    y = helper.make_tensor_value_info("y", out_type, out_shape)
    graph = helper.make_graph(nodes, "test", inputs, [y], initializer=list(initializers))
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


def readme_block(heading: str) -> str:
    """The first ```python block after the README heading ``heading``."""
    text = (REPO / "README.md").read_text()
    start = text.index(heading)
    m = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert m, f"no python block after {heading!r}"
    return m.group(1)
