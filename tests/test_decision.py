"""Every page's decision on record: what was done to it (denoised, left as it came,
enlarged) and why, in Python, in a folder run's report, in the command line's
summary and in its JSON report (validated against the schema in docs/cli.md)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import cv2
import jsonschema
import numpy as np
import pytest
from helpers import REPO

from ocr_denoise import Denoiser, PageRecord, denoise_folder, denoise_page
from ocr_denoise.decision import ACTIONS, RULES, Plan, describe, record
from ocr_denoise.images import read_image, write_image


def typed_page() -> np.ndarray:
    """A clean page of typed lines: none of the damage the model removes."""
    page = np.full((240, 420), 255, np.uint8)
    for i, line in enumerate(["Dear Sir, please find", "the invoice for March", "enclosed."]):
        cv2.putText(page, line, (12, 50 + 60 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2,
                    cv2.LINE_AA)
    return page


def stained_page() -> np.ndarray:
    """The typed page under light falling off to the right: a stain the model removes."""
    return (typed_page() * np.linspace(1.0, 0.55, 420)).astype(np.uint8)


def report_schema() -> dict:
    text = (REPO / "docs" / "cli.md").read_text()
    m = re.search(r"<!-- run-report-schema -->\n```json\n(.*?)```", text, re.S)
    assert m, "docs/cli.md has no run-report schema block"
    return json.loads(m.group(1))


def test_explain_returns_the_same_page_and_says_it_was_left_and_why(lighten_model):
    d = Denoiser(lighten_model, device="cpu")
    page = typed_page()
    out, rec = d.denoise(page, explain=True)
    np.testing.assert_array_equal(out, d.denoise(page))
    np.testing.assert_array_equal(out, page)
    assert isinstance(rec, PageRecord)
    assert (rec.action, rec.rule, rec.stage, rec.scale) == ("left", "no-damage", "before", 1)
    assert not rec.denoised and "no damage" in rec.reason
    assert set(rec.measurements) == {"noise", "detail", "stain", "fine_noise", "grey", "ink"}


def test_a_damaged_page_is_recorded_as_denoised_by_the_rule_that_sent_it(lighten_model):
    page = stained_page()
    out, rec = denoise_page(page, model=lighten_model, device="cpu", explain=True)
    assert (out != page).any()
    assert rec.action == "denoised" and rec.denoised and rec.rule == "stain"
    assert f"{rec.measurements['stain']:.2f}" in rec.reason


def test_guard_off_and_enlargement_are_on_record(lighten_model):
    page = typed_page()
    _, off = denoise_page(page, model=lighten_model, device="cpu", guard=False, explain=True)
    assert (off.action, off.rule, off.guard, off.measurements) == ("denoised", "guard-off",
                                                                   None, {})
    big, rec = denoise_page(page, model=lighten_model, device="cpu", upscale=2, explain=True)
    assert big.shape == (480, 840) and (rec.action, rec.scale) == ("enlarged", 2)
    big, rec = denoise_page(stained_page(), model=lighten_model, device="cpu", upscale=2,
                            explain=True)
    assert (rec.action, rec.scale, rec.rule) == ("enlarged+denoised", 2, "stain")


def test_a_pil_image_explained_keeps_its_mode_and_dpi(lighten_model):
    from PIL import Image

    img = Image.fromarray(typed_page()).convert("RGB")
    img.info["dpi"] = (200, 200)
    out, rec = denoise_page(img, model=lighten_model, device="cpu", explain=True)
    assert out.mode == "L" and out.info["dpi"] == (200, 200) and rec.action == "left"


def test_the_after_check_that_hands_a_page_back_decides_the_record():
    plan = Plan(1, True, "fine-noise", "fine noise", {"noise": 1.0})
    kept = record(plan, kept=True, guard="g", seconds=0.1, after=("text-size", "ok"))
    refused = record(plan, kept=False, guard="g", seconds=0.1,
                     after=("small-text", "small text (5 px < 9)"))
    assert (kept.action, kept.rule, kept.stage) == ("denoised", "fine-noise", "before")
    assert (refused.action, refused.rule, refused.stage) == ("left", "small-text", "after")
    assert describe([refused]) == "left: small text (5 px < 9)"
    assert describe([kept, refused, refused]) == "1 denoised, 2 left as they came"


def test_every_rule_the_guard_can_give_is_named_in_rules_and_in_the_schema():
    tree = ast.parse((REPO / "ocr_denoise" / "guard.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "Decision"]
    given = {n.args[2].value for n in calls if isinstance(n.args[2], ast.Constant)}
    assert len(calls) >= 10 and len(given) == len(calls)  # every decision names its rule
    assert given <= set(RULES)
    schema = report_schema()["properties"]["pages"]["items"]["properties"]
    assert set(schema["rule"]["enum"]) == set(RULES)
    assert set(schema["action"]["enum"]) == set(ACTIONS)


@pytest.fixture
def mixed_folder(tmp_path):
    """Two clean pages the guard leaves and one stained page it denoises, plus a file
    that is not an image."""
    src = tmp_path / "in"
    write_image(src / "clean1.png", typed_page())
    write_image(src / "clean2.png", typed_page()[:, ::-1].copy())
    write_image(src / "stained.png", stained_page())
    (src / "broken.png").write_bytes(b"not an image")
    return src


def test_a_folder_run_records_each_pages_decision_and_reason(lighten_model, mixed_folder,
                                                             tmp_path):
    report = denoise_folder(mixed_folder, tmp_path / "out", model=lighten_model, device="cpu")
    by_name = {r.src.name: r for r in report.done}
    assert sorted(by_name) == ["clean1.png", "clean2.png", "stained.png"]
    for name in ("clean1.png", "clean2.png"):
        (rec,) = by_name[name].decisions
        assert rec.action == "left" and rec.rule == "no-damage"
        assert by_name[name].reason.startswith("left: no damage")
        np.testing.assert_array_equal(read_image(tmp_path / "out" / name),
                                      read_image(mixed_folder / name))
    (rec,) = by_name["stained.png"].decisions
    assert rec.action == "denoised" and rec.rule == "stain"
    assert [r.action for r in report.decisions] == ["left", "left", "denoised"]
    assert report.failed[0].decisions == ()
    summary = report.summary()
    assert "  1 denoised: 1 discoloured paper" in summary
    assert "  2 left as they came: 2 none of the damage the model removes" in summary


def test_the_command_line_summary_and_json_report_say_what_was_done(lighten_model,
                                                                    mixed_folder, tmp_path):
    report = tmp_path / "run.json"
    r = subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(mixed_folder), "-o",
                        str(tmp_path / "out"), "--model", str(lighten_model), "--device",
                        "cpu", "--jobs", "2", "--report", str(report), "-vv"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr  # broken.png failed; the others are done
    assert "3 done (3 pages)" in r.stderr and "1 failed" in r.stderr
    assert "1 denoised: 1 discoloured paper" in r.stderr
    assert "2 left as they came: 2 none of the damage" in r.stderr
    # -vv: each page's decision and measurements, as the files finish
    assert re.search(r"page 1: denoised \(stain, before check\).*stain 0\.\d+", r.stderr)
    data = json.loads(report.read_text())
    jsonschema.validate(data, report_schema())
    assert data["counts"] == {"done": 3, "skipped": 0, "failed": 1, "not_started": 0,
                              "pages": 3, "denoised": 1, "left": 2}
    pages = {p["input"].rsplit("/", 1)[-1]: p for p in data["pages"]}
    assert pages["stained.png"]["action"] == "denoised"
    assert pages["stained.png"]["rule"] == "stain"
    assert pages["clean1.png"]["action"] == pages["clean2.png"]["action"] == "left"
    assert pages["clean1.png"]["measurements"]["stain"] < 0.1
    assert all(p["seconds"] > 0 and p["output"].endswith(".png") for p in pages.values())
    files = {f["input"].rsplit("/", 1)[-1]: f for f in data["files"]}
    assert files["broken.png"]["status"] == "failed" and files["broken.png"]["reason"]
    # a second run skips everything: no pages, every file on record as skipped
    subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(mixed_folder), "-o",
                    str(tmp_path / "out"), "--model", str(lighten_model), "--device", "cpu",
                    "--report", str(report), "-q"], capture_output=True, timeout=300)
    again = json.loads(report.read_text())
    jsonschema.validate(again, report_schema())
    assert again["pages"] == [] and again["counts"]["skipped"] == 3


def test_a_report_that_does_not_validate_is_caught_by_the_schema():
    bad = {"schema": "ocr-denoise/run-report/1", "ok": True, "interrupted": False,
           "seconds": 1.0, "files": [], "counts": {"done": 0, "skipped": 0, "failed": 0,
                                                   "not_started": 0, "pages": 0},
           "pages": [{"input": "a", "output": "b", "page": 1, "action": "blurred",
                      "scale": 1, "rule": "no-damage", "reason": "", "stage": "before",
                      "guard": None, "measurements": {}, "seconds": 0.0}]}
    with pytest.raises(jsonschema.ValidationError, match="blurred"):
        jsonschema.validate(bad, report_schema())


def test_the_python_api_example_runs_and_prints_what_its_comments_say(capsys):
    from helpers import doc_block

    code = doc_block("docs/python-api.md", "## What was done to a page")
    exec(compile(code, "python-api.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "left no-damage"
    assert lines[1].startswith("no damage the model removes (noise ")
    assert lines[2] == "denoised noise"
