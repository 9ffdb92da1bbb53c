"""benchmarks/guard_select.py: its vectorised rule is the guard's own rule, and its choice
keeps real scans first."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO

from ocr_denoise import guard

sys.path.insert(0, str(REPO / "benchmarks"))
import guard_select  # noqa: E402


def random_rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rows.append({
            "set": "synthetic", "kind": "gaussian", "page": i,
            "noise": float(rng.choice([0.5, 3.0, 7.0, 30.0])),
            "fine_noise": float(rng.choice([0.2, 1.0, 1.5, 3.0])),
            "detail": float(rng.choice([0.2, 0.5, 3.0])),
            "stain": float(rng.choice([0.0, 0.05, 0.2])),
            "grey": float(rng.choice([0.0, 0.01, 0.05])),
            "ink": float(rng.choice([0.25, 0.5, 0.9])),
            "text_height": float(rng.choice([6.0, 12.0])), "text_height_in": None,
            "raw": 10.0, "model": 5.0})
    return rows


@pytest.mark.parametrize("min_text", [0.0, 9.0])
def test_the_grid_rule_decides_as_the_guard_does(monkeypatch, min_text):
    monkeypatch.setattr(guard, "MIN_TEXT", min_text)
    rows = random_rows(300)
    keeps = guard_select.Table(rows).keeps(guard_select.Rule(min_text=min_text))
    for r, kept in zip(rows, keeps):
        stats = guard.PageStats(noise=r["noise"], detail=r["detail"], stain=r["stain"],
                                fine_noise=r["fine_noise"], grey=r["grey"], ink=r["ink"])
        expect = guard.before(stats).apply and guard.after(
            stats, lambda r=r: r["text_height"], lambda: None).apply
        assert bool(kept) == expect, r


def test_a_rule_that_makes_real_scans_worse_is_not_chosen(monkeypatch):
    inf = float("inf")
    monkeypatch.setattr(guard_select, "GRID", {
        "smooth": [0.0, 0.4], "noise": [2.0, 6.0, 8.0, inf], "fine": [1.2, inf],
        "noisy": [20.0], "stain": [0.1, inf], "grey": [0.02, inf], "faint": [0.0, 0.3],
        "min_text": [0.0]})
    rows = random_rows(40)
    for i in range(20):  # real forms the model makes worse, with noise on the paper
        rows.append({**rows[i], "set": "funsd", "kind": "funsd", "page": f"f{i}",
                     "noise": 7.0, "fine_noise": 0.2, "raw": 10.0, "model": 30.0})
    for i in range(20):  # real receipts the model makes worse, on discoloured paper
        rows.append({**rows[i], "set": "sroie", "kind": "sroie", "page": f"s{i}",
                     "noise": 0.5, "fine_noise": 0.2, "stain": 0.2, "grey": 0.0,
                     "ink": 0.9, "detail": 3.0, "raw": 10.0, "model": 20.0})
    best, ok, _ = guard_select.choose(guard_select.Table(rows))
    assert ok and set(best["real"]) == {"funsd", "sroie"}
    for mean, _, high in best["real"].values():  # every real source, not just one
        assert mean <= 0.0 and high <= 0.2
    assert best["rule"].noise > 7.0  # the noise that fakes damage on those forms is let go
    assert best["rule"].stain > 0.2  # and the discoloured paper of those receipts


def test_the_searched_fields_are_the_rules_fields_and_the_guards_thresholds():
    import dataclasses
    assert set(guard_select.FIELDS) == {f.name for f in dataclasses.fields(guard_select.Rule)}
    assert guard_select.Rule().faint_blur == guard.FAINT_BLUR
    assert guard_select.Rule().min_text == guard.MIN_TEXT
    assert guard_select.Rule().grey_sharp == guard.GREY_SHARP
