"""benchmarks/route_select.py: noisy pages to one model, the others to another."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO
from test_guard_select import random_rows

sys.path.insert(0, str(REPO / "benchmarks"))
import guard_select  # noqa: E402
import route_select  # noqa: E402


def _pair() -> tuple[list[dict], list[dict]]:
    light = random_rows(200, seed=1)
    for i, r in enumerate(light):  # light: good on quiet pages, useless on noisy ones
        r["model"] = 2.0 if r["noise"] < 6 else 40.0
        if i < 50:
            r["set"] = r["kind"] = "funsd"
    heavy = [dict(r, model=8.0) for r in light]
    return light, heavy[::-1]  # another order: pages are matched by key


def test_noisy_pages_go_to_the_heavy_model_and_the_others_to_the_light_one():
    light, heavy = _pair()
    a, b = route_select.tables(light, heavy)
    got = route_select.route(a, b, route_select.EVERYWHERE, 6.0)
    noise = np.array([r["noise"] for r in light])
    kept_heavy = b.keeps(guard_select.Rule())
    want = np.where(noise < 6, 2.0, np.where(kept_heavy, 8.0, 10.0))
    syn = np.array([r["set"] == "synthetic" for r in light])
    assert got["per_kind"]["gaussian"] == pytest.approx(want[syn].mean())
    forms = np.array([r["set"] == "funsd" for r in light])
    assert got["real"]["funsd"][0] == pytest.approx((want - 10.0)[forms].mean())
    # Everything to the heavy model behind the guard is the guard's own evaluation.
    alone = route_select.route(a, b, route_select.EVERYWHERE, 0.0)
    assert alone["per_kind"] == pytest.approx(b.evaluate(guard_select.Rule())["per_kind"])


def test_caches_of_different_pages_are_refused():
    light, heavy = _pair()
    heavy = [dict(r, raw=r["raw"] + 1) for r in heavy]
    with pytest.raises(ValueError, match="differ"):
        route_select.tables(light, heavy)


def test_pages_the_light_rule_leaves_go_to_the_heavy_model_when_asked():
    light, heavy = _pair()
    a, b = route_select.tables(light, heavy)
    sharp = route_select.dataclasses.replace(route_select.EVERYWHERE, smooth=1.0)
    got = route_select.route(a, b, sharp, 6.0, rest_to_heavy=True)
    noise = np.array([r["noise"] for r in light])
    detail = np.array([r["detail"] for r in light])
    to_light = (noise < 6) & (detail >= 1.0)
    want = np.where(to_light, 2.0, np.where(b.keeps(guard_select.Rule()), 8.0, 10.0))
    gauss = np.array([r["kind"] == "gaussian" for r in light])
    assert got["per_kind"]["gaussian"] == pytest.approx(want[gauss].mean())
    left = route_select.route(a, b, sharp, 6.0)  # without: quiet soft pages stay raw
    assert left["per_kind"]["gaussian"] != got["per_kind"]["gaussian"]
