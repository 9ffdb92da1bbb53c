"""train.data.teacher_patches: real pages taught by a classical filter."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from train import data


def _write_pages(folder, rng, n=8):
    """``n`` small noisy text pages ``00.png``...; returns {stem: page}."""
    pages = {}
    for i in range(n):
        page = np.full((90, 120), 215, np.uint8)
        cv2.putText(page, "Ab 12", (5, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 30, 2)
        noisy = np.clip(page + rng.normal(0, 12, page.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:02d}.png"), noisy)
        pages[f"{i:02d}"] = noisy
    return pages


def _is_selection(stem: str) -> bool:
    return int(hashlib.sha256(stem.encode()).hexdigest(), 16) % 2 == 0


def test_teacher_targets_are_the_filter_of_the_same_selection_page(tmp_path, rng):
    pages = _write_pages(tmp_path, rng)
    X, Y = data.teacher_patches([str(tmp_path)], 200, rng, patch=28)
    assert X.shape == Y.shape == (200, 28, 28) and X.dtype == Y.dtype == np.float32
    # Every patch is cut from a selection page, its target from that page's filtered
    # copy at the same place; no report page gives one.
    cuts = {}
    for stem, page in pages.items():
        f = data.TEACHERS["nlmeans"](page).astype(np.float32) / 255
        cuts[stem] = (page.astype(np.float32) / 255, f)
    used = set()
    for x, y in zip(X[:40], Y[:40]):
        hits = [s for s, (p, f) in cuts.items()
                for r in range(p.shape[0] - 27) for c in range(p.shape[1] - 27)
                if np.array_equal(p[r:r + 28, c:c + 28], x)
                and np.array_equal(f[r:r + 28, c:c + 28], y)]
        assert hits, "a patch pair that is not (page, filtered page) at one place"
        used.update(hits)
    assert used and all(_is_selection(s) for s in used)
    # The filter removed noise: on paper (most pixels) the targets are smoother.
    assert np.median(np.abs(np.diff(Y, axis=2))) < 0.5 * np.median(np.abs(np.diff(X, axis=2)))


def test_an_unknown_teacher_or_a_folder_without_selection_pages_is_refused(tmp_path, rng):
    _write_pages(tmp_path, rng)
    with pytest.raises(ValueError, match="unknown teacher 'median'"):
        data.teacher_patches([str(tmp_path)], 10, rng, teacher="median")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no selection pages"):
        data.teacher_patches([str(empty)], 10, rng)


def test_route_only_teaches_from_the_selection_pages_the_light_route_takes(tmp_path, rng):
    # Grain of 3 grey levels is what the light route takes (guard.light); 12 is noise
    # it leaves to the main model, and clean paper has no grain.
    pages = {}
    for i, sigma in enumerate([3, 12, 0] * 4):
        page = np.full((90, 120), 215, np.uint8)
        cv2.putText(page, "Ab 12", (5, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 30, 2)
        noisy = np.clip(page + rng.normal(0, sigma, page.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), noisy)
        pages[f"{i:02d}"] = noisy
    taken = {s for s, p in pages.items() if _is_selection(s) and data.takes_light_route(p)}
    assert taken and taken != {s for s in pages if _is_selection(s)}
    X, _ = data.teacher_patches([str(tmp_path)], 60, rng, patch=28, route_only=True)
    for x in X[:20]:
        hits = {s for s, p in pages.items() for r in range(p.shape[0] - 27)
                for c in range(p.shape[1] - 27)
                if np.array_equal(p[r:r + 28, c:c + 28].astype(np.float32) / 255, x)}
        assert hits and hits <= taken
    # A folder whose selection pages are all clean gives the light route nothing.
    clean = tmp_path / "clean"
    clean.mkdir()
    for s in pages:
        cv2.imwrite(str(clean / f"{s}.png"), np.full((90, 120), 215, np.uint8))
    with pytest.raises(ValueError, match="no selection pages the light route takes"):
        data.teacher_patches([str(clean)], 10, rng, route_only=True)
