"""The package's top level: its public names load lazily (PEP 562), so importing
``ocr_denoise`` (and the command, which starts by importing it) loads no numpy,
OpenCV or onnxruntime, and every exported name still imports as before."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest
from helpers import REPO

import ocr_denoise

HEAVY = ("numpy", "cv2", "onnxruntime", "PIL", "tqdm")


def _loaded_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    return ast.literal_eval(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import ocr_denoise",
    "from ocr_denoise import __version__",
    # What the ocr-denoise script runs before main() installs its signal handlers.
    "from ocr_denoise.cli import main",
])
def test_importing_the_package_loads_no_heavy_library(code):
    """A Ctrl-C before cli.main has installed its handlers prints a traceback, so
    what runs before it must be quick: no numpy, OpenCV or onnxruntime."""
    assert _loaded_after(code) == []


def test_a_public_name_loads_its_module_on_first_use():
    assert "numpy" in _loaded_after("from ocr_denoise import Denoiser")
    assert _loaded_after("from ocr_denoise import OcrDenoiseError") == []


@pytest.mark.parametrize("name", ocr_denoise.__all__)
def test_every_exported_name_imports_and_is_its_modules_object(name):
    namespace: dict = {}
    exec(f"from ocr_denoise import {name}", namespace)
    value = namespace[name]
    assert getattr(ocr_denoise, name) is value
    assert name in dir(ocr_denoise)
    if name != "__version__":
        module = importlib.import_module(f"ocr_denoise.{ocr_denoise._LAZY[name]}")
        assert getattr(module, name) is value


def test_the_lazy_table_the_type_checking_imports_and_all_agree():
    """Three lists of the same names in __init__.py: what __getattr__ loads, what
    type checkers and the API reference (mkdocstrings) read, and __all__."""
    tree = ast.parse((REPO / "ocr_denoise" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING")
    seen = {alias.name: node.module for node in block.body
            if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert seen == ocr_denoise._LAZY
    assert set(ocr_denoise.__all__) == set(ocr_denoise._LAZY) | {"__version__"}


def test_star_import_gives_every_exported_name():
    namespace: dict = {}
    exec("from ocr_denoise import *", namespace)
    assert set(ocr_denoise.__all__) <= set(namespace)


def test_submodules_are_attributes_of_a_bare_import():
    """``import ocr_denoise; ocr_denoise.images...`` worked when the package imported
    its modules eagerly; it still does."""
    r = subprocess.run([sys.executable, "-c", "import ocr_denoise; "
                        "print(ocr_denoise.images.write_image.__module__)"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ocr_denoise.images", r.stderr


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        ocr_denoise.no_such_thing  # noqa: B018
    assert not hasattr(ocr_denoise, "__wrapped__")
    with pytest.raises(ImportError):
        exec("from ocr_denoise import no_such_thing", {})
