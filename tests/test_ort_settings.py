"""benchmarks/ort_settings.py: session settings timed on a page, with the real onnxruntime."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import ort_settings  # noqa: E402

from ocr_denoise import pipeline  # noqa: E402
from ocr_denoise.session import Denoiser  # noqa: E402


def test_each_setting_is_timed_and_its_page_compared_with_the_first(tmp_path):
    out = tmp_path / "settings.json"
    assert ort_settings.main(["--quick", "--repeat", "1", "--settings",
                              "default,opt=basic,batch=64,one-band", "--json", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    assert list(res) == ["default", "opt=basic", "batch=64", "one-band"]
    assert all(r["seconds"] > 0 for r in res.values())
    assert res["default"]["max_diff"] == 0
    assert res["batch=64"]["max_diff"] == 0  # batch size never changes a pixel
    assert res["one-band"]["max_diff"] == 0  # nor do bands at once


def test_the_default_setting_gives_denoisers_page(tmp_path):
    """The reference row must be what users run, or the comparison says nothing."""
    page = (np.random.default_rng(0).random((90, 130)) * 255).astype(np.uint8)
    ref = Denoiser(device="cpu", skip_white=None)
    changes, batch, workers = ort_settings.SETTINGS["default"]
    model = ort_settings.Configured(ref, changes, batch, workers)
    assert model.workers == ref.workers  # the bands at once Denoiser chose
    got = pipeline.denoise(model, page, guard=False)
    assert np.array_equal(got, ref.denoise(page, guard=False))


def test_an_unknown_setting_is_refused():
    with pytest.raises(SystemExit):
        ort_settings.main(["--settings", "default,turbo"])
