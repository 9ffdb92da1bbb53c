"""train.real_damage: damage that real scans have, and paper from real pages."""

from __future__ import annotations

import hashlib
import sys

import cv2
import numpy as np
import pytest
from helpers import REPO

from train import real_damage

sys.path.insert(0, str(REPO / "benchmarks"))
import real_scans  # noqa: E402


def test_split_is_the_benchmarks_split_so_training_never_sees_a_report_page():
    # One rule: the benchmark calls the very function training's paper bank uses.
    assert real_scans.split_of is real_damage.split_of
    ids = [f"{i:03d}" for i in range(60)] + ["EHRI-BF-19380111_DE_01", "0000971160"]
    assert {real_damage.split_of(i) for i in ids} == {"selection", "report"}
    for i in ids:
        parity = int(hashlib.sha256(i.encode()).hexdigest(), 16) % 2
        assert real_damage.split_of(i) == ("selection", "report")[parity]


def test_paper_comes_only_from_selection_pages(tmp_path, rng):
    for i in range(12):
        page = np.full((80, 80), 200, np.uint8)
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), page)
    got = {p.stem for p in real_damage.selection_images([tmp_path])}
    want = {f"{i:02d}" for i in range(12)
            if int(hashlib.sha256(f"{i:02d}".encode()).hexdigest(), 16) % 2 == 0}
    assert got == want and 0 < len(got) < 12


def test_paper_tiles_avoid_ink(rng):
    page = np.full((300, 300), 0.85, np.float32)
    page += 0.01 * rng.standard_normal(page.shape).astype(np.float32)
    page[:, 100:104] = 0.2  # a rule down the page
    tiles = real_damage.paper_tiles(page, rng, 20)
    assert len(tiles) == 20
    for t in tiles:
        assert t.shape == (real_damage.TILE, real_damage.TILE)
        assert t.min() > 0.9 and abs(float(np.median(t)) - 1.0) < 1e-6
    assert real_damage.paper_tiles(np.zeros((300, 300), np.float32), rng, 5) == []


def test_a_paper_field_has_no_seams(rng):
    tile = (1.0 + 0.03 * rng.standard_normal((64, 64))).astype(np.float32)
    bank = real_damage.PaperBank([tile, tile + 0.05])
    field = bank.field(rng, 200, 300)
    assert field.shape == (200, 300)
    # A seam is a jump between neighbours far above the texture's own steps.
    steps = np.abs(np.diff(field, axis=1))
    assert steps.max() < 6 * np.abs(np.diff(tile, axis=1)).max()


@pytest.mark.parametrize("kind", list(real_damage.KINDS))
def test_every_kind_gives_a_damaged_page_and_a_target_as_printed(kind, rng):
    noisy, clean = real_damage.make(rng, 160, 200, None, kind)
    assert noisy.shape == clean.shape == (160, 200)
    assert noisy.dtype == clean.dtype == np.float32
    assert 0 <= noisy.min() and noisy.max() <= 1 and 0 <= clean.min() and clean.max() <= 1
    change = np.abs(noisy - clean).mean()
    if kind == "clean":  # clean in, clean out: at most sensor noise
        assert change < 0.01
    else:
        assert change > 0.005  # something was done to it
    ink = clean < 0.5
    assert 0.005 < ink.mean() < 0.4  # text, not a blank or a black page
    # The target's paper is white: the model learns to whiten, not to keep the grain.
    assert np.median(clean[clean > 0.5]) == pytest.approx(1.0, abs=0.02)


def test_typewriter_target_keeps_the_fonts_stroke_width(rng):
    """The target is the font as rendered: a filled-in or double-struck input never
    makes the target bolder (same ink as the plain rendering of that text)."""
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    _, clean = real_damage.make(r1, 200, 200, None, "typewriter")
    from train import scans, synth
    r2.uniform(0.2, 1.0)  # make's draw of the strength
    page = synth.render_page(r2, 200, 200, x_height=float(r2.uniform(7, 14)), family="mono",
                             ink=0.0, margin=scans._margin(200))
    np.testing.assert_array_equal(clean, page.clean)


def test_unknown_kind_is_named():
    with pytest.raises(KeyError, match="carbon"):
        real_damage.make(np.random.default_rng(0), 50, 50, None, "carbon")


def test_keep_ink_targets_are_as_dark_as_the_damaged_pages_ink_never_darker(rng):
    """With ``keep_ink`` the target's ink matches the damaged page's darkness relative to
    its paper: faint print stays faint (a black target taught the model to darken grey
    edges, which widens small strokes), and the letters' shapes are the clean page's."""
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    noisy, kept = real_damage.make(r1, 160, 200, None, "faint", keep_ink=True)
    _, black = real_damage.make(r2, 160, 200, None, "faint")
    solid = black < 0.15
    paper = np.median(noisy[black > 0.95])
    want = 1.0 - np.median(noisy[solid]) / paper
    assert np.median(1.0 - kept[solid]) == pytest.approx(want, abs=0.02)
    assert want < 0.8  # faint: the black target would have been darker
    # the same letters: ink only where the clean page has ink
    np.testing.assert_array_equal(kept < 1.0, black < 1.0)


@pytest.mark.parametrize("kind", real_damage.SOFT_KINDS)
def test_a_soft_target_is_the_damaged_page_less_its_noise_never_darker_or_sharper(kind):
    """``soft``: the target is what the scanner's optics saw, paper divided out: as
    dark and as blurred as the damaged page's ink (never blacker, never sharper: the
    residual model that darkened and sharpened made real pages read worse), with the
    grain and noise gone (paper exactly white away from ink)."""
    rng = np.random.default_rng(11)
    bank = real_damage.PaperBank([np.clip(1 + 0.05 * rng.standard_normal((64, 64)), 0, 1)
                                  .astype(np.float32)])
    noisy, soft = real_damage.make(rng, 200, 200, bank, kind, soft=True)
    assert noisy.shape == soft.shape == (200, 200) and soft.dtype == np.float32
    far = cv2.erode((soft > 0.999).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert far.mean() > 0.2
    assert np.abs(soft[far] - 1.0).max() < 1e-3  # paper: white, no grain
    if kind != "clean":
        assert noisy[far].std() > 0.002  # the damaged page's paper had grain or noise
    ink = soft < 0.9
    paper = float(np.median(noisy[far]))
    dark_target = float((1.0 - soft[ink]).mean())
    dark_input = float((1.0 - noisy[ink] / paper).mean())
    assert dark_target <= dark_input + 0.06
    # Not sharper: as many grey edge pixels (between ink and paper) as the input has.
    edge = lambda x: float(((x > 0.25) & (x < 0.75)).mean())  # noqa: E731
    if kind in ("typewriter", "plain"):
        assert edge(soft) >= 0.7 * edge(noisy / paper)


def test_soft_targets_and_keep_ink_exclude_each_other():
    with pytest.raises(ValueError, match="soft"):
        real_damage.make(np.random.default_rng(0), 50, 50, None, keep_ink=True, soft=True)
    with pytest.raises(KeyError, match="soft"):
        real_damage.make(np.random.default_rng(0), 50, 50, None, "thermal", soft=True)


def test_keep_paper_keeps_the_pages_brightness_and_removes_only_its_grain():
    rng = np.random.default_rng(5)
    bank = real_damage.PaperBank([np.clip(1 + 0.05 * rng.standard_normal((64, 64)), 0, 1)
                                  .astype(np.float32)])
    noisy, white = real_damage.make(np.random.default_rng(2), 200, 200, bank, "typewriter",
                                    soft=True)
    _, kept = real_damage.make(np.random.default_rng(2), 200, 200, bank, "typewriter",
                               soft=True, keep_paper=True)
    far = cv2.erode((white > 0.999).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    level = float(np.median(noisy[far]))
    assert level < 0.95  # the damaged paper is darker than white
    assert np.median(kept[far]) == pytest.approx(level, abs=0.01)
    assert kept[far].std() < 0.2 * noisy[far].std()  # no grain
    np.testing.assert_allclose(kept, white * np.median(kept[white > 0.999]), atol=1e-6)
    with pytest.raises(ValueError, match="soft"):
        real_damage.make(np.random.default_rng(0), 50, 50, None, keep_paper=True)
