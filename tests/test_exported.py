"""The shipped model file: where it is, and what its metadata records."""

from __future__ import annotations

import json
import re

import onnx
from helpers import REPO

from ocr_denoise.model import default_model_path


def test_exported_model_is_the_packaged_model():
    assert (REPO / "exported" / "denoiser.onnx").resolve() == default_model_path().resolve()


def test_metadata_records_version_patch_and_training_settings():
    meta = {p.key: p.value for p in onnx.load(str(default_model_path())).metadata_props}
    assert meta["patch_size"] == "28"
    # The model's own version, independent of the package's: a package release
    # does not re-export the model. The package that exported it is recorded too.
    assert re.fullmatch(r"v\d+", meta["model_version"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["ocr_denoise_version"])
    cfg = json.loads(meta["training_config"])
    assert cfg["patch"] == 28 and "seed" in cfg and "epochs" in cfg
    assert float(meta["export_max_abs_diff"]) <= 1e-4


def test_model_has_dynamic_batch_and_28px_patches():
    m = onnx.load(str(default_model_path()))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value")  # dynamic batch
    layout = {p.key: p.value for p in m.metadata_props}["layout"]
    want = {"NCHW": [1, 28, 28], "NHWC": [28, 28, 1]}[layout]
    assert [d.dim_value for d in dims[1:]] == want


def test_changelog_and_model_card_name_the_shipped_model_version():
    version = {p.key: p.value for p in onnx.load(str(default_model_path())).metadata_props
               }["model_version"]
    assert re.search(rf"\bmodel {version}\b", (REPO / "CHANGELOG.md").read_text())
    assert re.search(rf"\b{version}\b", (REPO / "exported" / "MODEL_CARD.md").read_text())
