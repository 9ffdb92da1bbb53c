"""benchmarks/real_scans.py: the split rule, the crops and the paired statistics, and one
small run on real FUNSD pages with real tesseract and real unpaper."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, SHARED_DATA

sys.path.insert(0, str(REPO / "benchmarks"))
import real_scans  # noqa: E402

FUNSD = SHARED_DATA / "funsd-train"


def test_split_is_fixed_by_the_page_id_and_about_half_each():
    ids = [f"{i:010d}" for i in range(400)]
    splits = [real_scans.split_of(i) for i in ids]
    assert splits == [real_scans.split_of(i) for i in ids]  # a rule, not a draw
    assert 150 < splits.count("selection") < 250


def test_crops_follow_the_page_when_it_is_enlarged():
    page = np.full((100, 200), 255, np.uint8)
    page[20:30, 40:90] = 0
    seg = real_scans.Segment((40, 20, 90, 30), "x")
    (one,) = real_scans.crops(page, page.shape, [seg])
    big = np.kron(page, np.ones((2, 2), np.uint8))
    (two,) = real_scans.crops(big, page.shape, [seg])
    pad = real_scans.PAD
    assert one.shape == (10 + 2 * pad, 50 + 2 * pad)
    assert two.shape == (20 + 4 * pad, 100 + 4 * pad)
    assert (one[pad:-pad, pad:-pad] == 0).all() and (one[:pad] == 255).all()


def test_bootstrap_interval_holds_the_mean_and_excludes_zero_for_a_clear_shift():
    rng = np.random.default_rng(0)
    mean, lo, hi = real_scans.bootstrap(rng.normal(-2.0, 1.0, 60))
    assert lo < mean < hi < 0
    mean, lo, hi = real_scans.bootstrap(rng.normal(0.0, 1.0, 60))
    assert lo < 0 < hi


def test_tesseract_lines_reads_each_image_as_its_own_line():
    import cv2

    imgs = []
    for word in ("alpha", "ZEBRA"):
        im = np.full((40, 160), 255, np.uint8)
        cv2.putText(im, word, (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
        imgs.append(im)
    blank = np.full((30, 30), 255, np.uint8)
    got = real_scans.tesseract_lines([imgs[0], blank, imgs[1]])
    assert len(got) == 3 and "alpha" not in got[1].lower() and "zebra" not in got[1].lower()
    assert "alpha" in got[0].lower() and "zebra" in got[2].lower()


@pytest.mark.skipif(not FUNSD.is_dir(), reason="needs ../shared/data/funsd-train")
@pytest.mark.skipif(shutil.which("unpaper") is None, reason="needs unpaper (scripts/setup.sh)")
def test_two_real_pages_run_end_to_end(tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "real_scans.py"),
                        "--split", "selection", "--pages", "2", "--jobs", "2",
                        "--methods", "raw,unpaper,cubic2x", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "| raw | 2 |" in r.stdout and "| cubic2x | 2 |" in r.stdout
    data = json.loads(out.read_text())
    raw = data["summary"]["raw"]
    assert 0 < raw["cer"] < 100 and raw["delta"] == [0.0, 0.0, 0.0]
    # every segment of the pages was read, by every method
    assert {len(p["edits"]) for m in data["pages"].values() for p in m} == {
        len(p["edits"]) for p in data["pages"]["raw"]}


def test_upscale_model_sends_the_enlarged_page_to_the_model_and_restores_the_guard():
    from ocr_denoise import guard
    from train import synth

    page = synth.render_page(np.random.default_rng(3), 240, 320, x_height=7, family="serif",
                             ink=0.1, margin=10).clean
    img = np.clip(page * 255 + 0.5, 0, 255).astype(np.uint8)
    was = guard.ENLARGED
    plain = real_scans.process("upscale", img, None)
    model = real_scans.process("upscale-model", img, None)
    assert plain.shape == model.shape == (480, 640)  # both enlarged 2x
    assert not np.array_equal(plain, model)  # only one went through the model
    assert guard.ENLARGED is was
