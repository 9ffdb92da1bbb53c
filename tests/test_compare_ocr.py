"""benchmarks/compare_ocr.py: the paired difference of two runs' MEAN on the same pages."""

from __future__ import annotations

import sys

import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import compare_ocr  # noqa: E402


def test_mean_difference_is_the_mean_of_the_kinds_differences_with_an_interval():
    ref = {"a": [10.0, 20.0, 30.0, 40.0], "b": [1.0, 1.0, 1.0, 1.0]}
    other = {"a": [8.0, 18.0, 28.0, 38.0], "b": [1.0, 2.0, 1.0, 2.0]}
    mean, lo, hi = compare_ocr.paired_mean_difference(ref, other)
    assert mean == pytest.approx((-2.0 + 0.5) / 2)
    assert lo <= mean <= hi and hi - lo < 1.0  # kind a's difference is the same on every page


def test_the_same_run_differs_by_exactly_nothing():
    ref = {"a": [3.0, 9.0, 0.0]}
    assert compare_ocr.paired_mean_difference(ref, ref) == (0.0, 0.0, 0.0)
