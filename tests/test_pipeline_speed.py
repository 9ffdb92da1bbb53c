"""benchmarks/pipeline_speed.py: the split of a page's time, with the real onnxruntime."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import pipeline_speed  # noqa: E402


def test_splits_the_page_into_onnxruntime_and_the_rest(tmp_path):
    out = tmp_path / "split.json"
    assert pipeline_speed.main(["--quick", "--repeat", "1", "--band-patches", "1,64",
                                "--json", str(out)]) == 0
    res = json.loads(out.read_text())["results"]
    assert set(res) == {"shipped, band 1", "identity, band 1", "shipped, band 64",
                        "identity, band 64"}
    for name, r in res.items():
        assert r["page_s"] > 0
        if name.startswith("shipped"):
            assert 0 < r["onnxruntime_s"] < r["page_s"]
        else:
            assert r["onnxruntime_s"] == 0.0


def test_a_band_size_that_changed_the_result_fails_the_run(monkeypatch):
    """Different bytes for another band size must stop the benchmark, not be timed."""
    from ocr_denoise import tiling

    real = tiling.apply_tiled

    def drifting(*args, **kwargs):
        sink = args[1]
        if tiling.BAND_PATCHES == 64:  # a tiler whose result depends on the band size
            args = (args[0], lambda a, b, r: sink(a, b, r * 0.5), *args[2:])
        return real(*args, **kwargs)

    monkeypatch.setattr("ocr_denoise.pipeline.apply_tiled", drifting)
    with pytest.raises(SystemExit, match="different bytes"):
        pipeline_speed.main(["--quick", "--repeat", "1", "--band-patches", "1,64"])


def test_two_models_are_timed_side_by_side(tmp_path):
    import shutil

    from ocr_denoise.model import default_model_path

    copy = tmp_path / "copy.onnx"
    shutil.copy(default_model_path(), copy)
    shutil.copy(str(default_model_path()) + ".sha256", str(copy) + ".sha256")
    res = pipeline_speed.measure(pipeline_speed.letter_page(200, 300), [64], 1,
                                 ["shipped", str(copy)])
    assert {"shipped, band 64", f"{copy}, band 64", "identity, band 64"} == set(res)
    assert res[f"{copy}, band 64"]["onnxruntime_s"] > 0
