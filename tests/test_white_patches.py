"""benchmarks/white_patches.py: what skipping blank patches changes, with the real model."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import white_patches  # noqa: E402


def test_blank_patches_are_counted_and_their_pages_stay_within_the_chosen_bound(tmp_path):
    out = tmp_path / "white.json"
    assert white_patches.main(["--pages", "1", "--no-folders", "--thresholds", "0.97,1.0",
                               "--repeat", "1", "--json", str(out)]) == 0
    groups = json.loads(out.read_text())["groups"]
    measured = {k: g for k, g in groups.items() if g["patches"]}
    assert measured, "the model ran on none of the pages"
    assert any(g["by"]["0.97"]["white"] for g in measured.values()), "no blank patch anywhere"
    for kind, g in measured.items():
        lo, hi = g["by"]["0.97"], g["by"]["1.0"]
        assert hi["white"] <= lo["white"] <= g["patches"], kind
        for b in (lo, hi):
            if b["white"] == 0:  # nothing skipped: the very same page
                assert b["pixels_differ"] == 0 and b["max_page_diff"] == 0, kind
            assert b["seconds"] > 0 and b["model_seconds"] > 0, kind
        assert lo["max_page_diff"] <= 2, kind  # DEFAULT_SKIP_WHITE's measured bound
