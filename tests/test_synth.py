"""The synthetic page generator and patch sampling (numpy/OpenCV/PIL, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from train import data, synth


def test_rendered_page_has_text_and_ink(rng):
    page = synth.render_page(rng, 200, 300, x_height=12)
    assert page.text.strip()
    assert page.clean.dtype == np.float32 and page.clean.shape == (200, 300)
    assert page.clean.min() < 0.3 and np.median(page.clean) == 1.0


@pytest.mark.parametrize("kind", sorted(synth.DAMAGES))
def test_each_damage_changes_the_page_and_stays_in_range(kind, rng):
    clean = synth.render_page(rng, 128, 128, x_height=12).clean
    noisy = synth.damage(clean, kind, rng, 0.8)
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    assert 0.0 <= noisy.min() and noisy.max() <= 1.0
    assert np.sqrt(np.mean((noisy - clean) ** 2)) > 0.01


def test_patch_sampling_favours_ink(rng):
    page = np.ones((200, 200), np.float32)
    page[100:104, 100:140] = 0.0
    _, Y = data.sample_patches(page, page, 200, rng, ink_fraction=0.8)
    has_ink = (Y.min(axis=(1, 2)) < 0.5).mean()
    assert has_ink >= 0.75


def test_find_pairs_matches_by_name_and_refuses_empty_folders(tmp_path):
    import cv2
    for sub in ("noisy", "clean"):
        (tmp_path / "set" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "set" / sub / "a.png"), np.zeros((30, 30), np.uint8))
    cv2.imwrite(str(tmp_path / "set" / "noisy" / "unpaired.png"), np.zeros((30, 30), np.uint8))
    pairs = data.find_pairs(tmp_path)
    assert [(p.parent.name, c.parent.name, p.name) for p, c in pairs] == [("noisy", "clean", "a.png")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no noisy/clean"):
        data.find_pairs(tmp_path / "empty")
