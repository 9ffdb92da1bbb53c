"""Shared fixtures: small generated images and tiny real ONNX models built in-test.

Only fixtures live here; the plain helpers they use are in helpers.py, which tests
import from (``from helpers import ...``), never from conftest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import (
    enlarger_model,
    make_onnx_graph_model,
    make_onnx_model,
    node,
    scalar,
    write_random_pages,
)


@pytest.fixture(scope="session")
def identity_model(tmp_path_factory) -> Path:
    return make_onnx_model(tmp_path_factory.mktemp("models") / "identity.onnx")


@pytest.fixture(scope="session")
def invert_model(tmp_path_factory) -> Path:
    return make_onnx_model(tmp_path_factory.mktemp("models") / "invert.onnx", "invert")


@pytest.fixture(scope="session")
def lighten_model(tmp_path_factory) -> Path:
    """A real model that changes every page visibly but keeps its text's shapes:
    y = min(x + 0.2, 1)."""
    return make_onnx_graph_model(
        tmp_path_factory.mktemp("models") / "lighten.onnx",
        [node("Add", ["x", "d"], ["s"]), node("Min", ["s", "one"], ["y"])],
        ["N", 28, 28, 1], ["N", 28, 28, 1],
        initializers=[scalar("d", 0.2), scalar("one", 1.0)])


@pytest.fixture(scope="session")
def darken_model(tmp_path_factory) -> Path:
    """A real model that changes every pixel visibly, white paper too: y = max(x - 0.2,
    0) (a light model whose work shows everywhere; scale 1, 28 x 28 patches)."""
    return make_onnx_graph_model(
        tmp_path_factory.mktemp("models") / "darken.onnx",
        [node("Sub", ["x", "d"], ["s"]), node("Max", ["s", "zero"], ["y"])],
        ["N", 28, 28, 1], ["N", 28, 28, 1],
        initializers=[scalar("d", 0.2), scalar("zero", 0.0)])


@pytest.fixture(scope="session")
def zero_enlarger(tmp_path_factory) -> Path:
    """A real 2x enlargement model that returns its cubic base: an untrained one."""
    return enlarger_model(tmp_path_factory.mktemp("models") / "zero.onnx", "zero")


@pytest.fixture(scope="session")
def mix_enlarger(tmp_path_factory) -> Path:
    """A real 2x enlargement model that differs from cubic everywhere: 0.3 x its cubic
    base + 0.7 x a nearest-neighbour enlargement of its patch."""
    return enlarger_model(tmp_path_factory.mktemp("models") / "mix.onnx", "mix")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def make_page_folder(tmp_path, rng):
    """A factory: ``make_page_folder(n=3, *, names=None, pattern="p{i}.png",
    shape=(20, 20), folder="in", rng=None) -> Path`` writes random grey pages into
    ``tmp_path / folder`` (see ``helpers.write_random_pages``) and returns the folder.

    The pages are drawn from the test's own ``rng`` fixture unless ``rng`` is given,
    in the order the test calls the factory."""
    default_rng = rng

    def make(n: int = 3, *, names=None, pattern: str = "p{i}.png",
             shape: tuple[int, int] = (20, 20), folder: str = "in",
             rng: np.random.Generator | None = None) -> Path:
        src = tmp_path / folder
        write_random_pages(src, default_rng if rng is None else rng, n, names=names,
                           pattern=pattern, shape=shape)
        return src

    return make


@pytest.fixture
def page_folder(make_page_folder) -> Path:
    """``tmp_path / "in"`` holding three random 20 x 20 grey pages p0.png, p1.png, p2.png."""
    return make_page_folder()
