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
    assert [(p.parent.name, c.parent.name, p.name) for p, c in pairs] == [
        ("noisy", "clean", "a.png")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no noisy/clean"):
        data.find_pairs(tmp_path / "empty")


def test_black_ink_target_keeps_paper_and_antialiasing_but_blackens_the_ink(rng):
    page = synth.render_page(rng, 120, 200, x_height=14, ink=0.2)
    target = page.black_ink()
    assert page.clean.min() >= 0.2 - 1e-6 and target.min() == 0.0
    paper = page.clean == 1.0
    assert np.all(target[paper] == 1.0)
    edge = (page.clean > 0.3) & (page.clean < 0.9)  # anti-aliased stroke edges
    assert edge.any()
    assert np.all(target[edge] < page.clean[edge]) and np.all(target[edge] > 0.0)
    order = np.argsort(page.clean[edge])  # darker stays darker
    assert np.all(np.diff(target[edge][order]) >= -1e-6)


def test_make_pair_black_ink_changes_only_the_target(rng):
    seed = int(rng.integers(1 << 30))
    n1, t1 = synth.make_pair(np.random.default_rng(seed), 96, 96)
    n2, t2 = synth.make_pair(np.random.default_rng(seed), 96, 96, black_ink=True)
    assert np.array_equal(n1, n2)
    assert t2.min() == 0.0 and np.all(t2 <= t1)


def test_kind_weights_choose_the_weighted_damage(rng):
    # fax is the one kind whose output is pure 0/1; uniform odds would pick it 1 in 10.
    for _ in range(8):
        noisy, _ = synth.make_pair(rng, 64, 64, clean_fraction=0.0, max_damages=1,
                                   kind_weights={"fax": 1e6})
        assert set(np.unique(noisy)) <= {0.0, 1.0}


def test_empty_kind_weights_draw_what_unweighted_pages_drew(rng):
    seed = int(rng.integers(1 << 30))
    a = synth.make_pair(np.random.default_rng(seed), 64, 64)
    b = synth.make_pair(np.random.default_rng(seed), 64, 64, kind_weights={})
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_kind_weights_parse_and_name_what_is_wrong():
    assert synth.parse_kind_weights(" bleed_through=3, fax=0.5 ") == {"bleed_through": 3.0,
                                                                      "fax": 0.5}
    assert synth.parse_kind_weights("") == {}
    for bad, says in [("bleed=3", "KIND=WEIGHT"), ("fax", "KIND=WEIGHT"),
                      ("fax=0", "positive"), ("fax=-1", "positive"), ("fax=x", "positive"),
                      ("fax=nan", "positive"), ("fax=inf", "positive")]:
        with pytest.raises(ValueError, match=says) as e:
            synth.parse_kind_weights(bad)
        assert repr(bad) in str(e.value)


def test_patch_sampling_centres_a_share_on_false_ink(rng):
    clean = np.ones((300, 300), np.float32)
    noisy = clean.copy()
    noisy[40:44, 40:70] = 0.4  # a streak on blank paper: dark in noisy, paper in clean
    X, _ = data.sample_patches(noisy, clean, 400, rng, ink_fraction=0.0, damage_fraction=0.5)
    hits = (X.min(axis=(1, 2)) < 0.5).mean()
    assert hits >= 0.5
    X0, _ = data.sample_patches(noisy, clean, 400, rng, ink_fraction=0.0)
    assert (X0.min(axis=(1, 2)) < 0.5).mean() < 0.2


def test_patch_sampling_without_false_ink_falls_back_to_uniform(rng):
    page = np.ones((100, 100), np.float32)
    X, Y = data.sample_patches(page, page, 50, rng, ink_fraction=0.5, damage_fraction=0.5)
    assert X.shape == (50, 28, 28) and np.array_equal(X, Y)


def test_mark_sampling_practises_small_marks_as_often_as_big_ones(rng):
    clean = np.ones((300, 300), np.float32)
    clean[100:160, 100:160] = 0.0  # one big mark: 3600 ink pixels
    for y, x in [(30, 30), (30, 250), (250, 30), (250, 250), (150, 250)]:
        clean[y : y + 2, x : x + 2] = 0.0  # five full stops: 20 ink pixels in all

    def dots_hit(X):  # patches that hold a dot but none of the big mark
        return ((X.min(axis=(1, 2)) < 0.5) & (X.mean(axis=(1, 2)) > 0.95)).mean()
    X_marks, _ = data.sample_patches(clean, clean, 600, rng, ink_fraction=0.0, mark_fraction=1.0)
    X_ink, _ = data.sample_patches(clean, clean, 600, rng, ink_fraction=1.0)
    assert dots_hit(X_marks) > 0.7  # 5 of 6 marks are dots
    assert dots_hit(X_ink) < 0.05  # 20 of 3620 ink pixels are dots


def test_mark_sampling_on_a_page_without_ink_falls_back_to_uniform(rng):
    page = np.ones((100, 100), np.float32)
    X, Y = data.sample_patches(page, page, 50, rng, ink_fraction=0.0, mark_fraction=1.0)
    assert X.shape == (50, 28, 28) and np.array_equal(X, Y)


def test_context_windows_come_from_the_noisy_page_around_each_patch(rng):
    """Each patch's window holds, at its centre, the mean of the noisy page's 4x4
    block that contains the patch's centre pixel (found by locating the patch on a
    random page), and the same draws give the same patches as without context."""
    noisy = rng.random((90, 110), dtype=np.float32)
    clean = np.ones_like(noisy)
    X, Y = data.sample_patches(noisy, clean, 30, np.random.default_rng(1), context=True)
    X0, _ = data.sample_patches(noisy, clean, 30, np.random.default_rng(1))
    assert X.shape == (30, 28, 28, 2) and Y.shape == (30, 28, 28)
    np.testing.assert_array_equal(X[..., 0], X0)
    for patch, window in zip(X[..., 0], X[..., 1]):
        y, x = np.argwhere(noisy == patch[0, 0])[0]
        by, bx = (y + 14) // 4 * 4, (x + 14) // 4 * 4
        assert window[14, 14] == pytest.approx(noisy[by:by + 4, bx:bx + 4].mean(), abs=1e-6)
