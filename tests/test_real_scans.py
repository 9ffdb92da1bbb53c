"""benchmarks/real_scans.py: the split rule, the three sources' parsers, the crops and the
polygon mask, the paired statistics, and small runs on real FUNSD, SROIE and EHRI pages
with real tesseract and real unpaper."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, SHARED_DATA, missing_data

sys.path.insert(0, str(REPO / "benchmarks"))
import real_scans  # noqa: E402

FUNSD = SHARED_DATA / "funsd-train"
SOURCE_DIRS = {"funsd": "funsd-train", "sroie": "sroie-dev", "ehri": "ehri-dev"}


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


@pytest.mark.skipif(not FUNSD.is_dir(), reason=str(missing_data("funsd-train")))
@pytest.mark.skipif(shutil.which("unpaper") is None,
                    reason="needs the unpaper program (Debian: apt install unpaper; "
                    "scripts/setup.sh installs it)")
def test_two_real_pages_run_end_to_end(tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "real_scans.py"),
                        "--sources", "funsd", "--split", "selection", "--pages", "2",
                        "--jobs", "2", "--methods", "raw,unpaper,cubic2x", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "| raw | 2 |" in r.stdout and "| cubic2x | 2 |" in r.stdout
    data = json.loads(out.read_text())
    raw = data["summary"]["funsd"]["raw"]
    assert 0 < raw["cer"] < 100 and raw["delta"] == [0.0, 0.0, 0.0]
    assert data["summary"]["pooled"]["raw"]["page_cer"] == raw["page_cer"]
    # every segment of the pages was read, by every method
    assert {len(p["edits"]) for m in data["pages"].values() for p in m} == {
        len(p["edits"]) for p in data["pages"]["raw"]}


def test_one_page_of_each_source_runs_end_to_end_with_per_source_and_pooled_rows(tmp_path):
    names = [n for n, d in SOURCE_DIRS.items() if (SHARED_DATA / d).is_dir()]
    if not names:
        pytest.skip(missing_data(*SOURCE_DIRS.values()))
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "real_scans.py"),
                        "--sources", ",".join(names), "--split", "report", "--pages", "1",
                        "--jobs", "2", "--methods", "raw,cubic2x", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    sections = {part.split(" ", 1)[0]: part for part in r.stdout.split("\n## ")[1:]}
    assert set(sections) == {*names, "pooled"}
    for n in names:
        assert sections[n].startswith(f"{n} report pages")
        assert "| raw | 1 |" in sections[n] and "| cubic2x | 1 |" in sections[n]
    pooled = f"| raw | {len(names)} |"
    assert pooled in sections["pooled"] and f"| cubic2x | {len(names)} |" in sections["pooled"]
    assert "s wall" in r.stderr
    data = json.loads(out.read_text())
    assert set(data["summary"]) == {*names, "pooled"}
    assert data["best_classical"] == {n: "cubic2x" for n in names}
    for n in [*names, "pooled"]:
        raw, cubic = data["summary"][n]["raw"], data["summary"][n]["cubic2x"]
        assert raw["delta"] == [0.0, 0.0, 0.0] and cubic["delta_best"] == [0.0, 0.0, 0.0]
        assert raw["delta_best"][0] == pytest.approx(-cubic["delta"][0])
        assert 0 <= raw["cer"] < 100 and raw["pages"] == (len(names) if n == "pooled" else 1)
    for m in ("raw", "cubic2x"):
        ids = [p["page"] for p in data["pages"][m]]
        assert sorted(i.split("/")[0] for i in ids) == sorted(names)
        assert all(real_scans.split_of(i.split("/", 1)[1]) == "report" for i in ids)
        assert all(sum(p["chars"]) > 0 for p in data["pages"][m])


def test_the_alto_parser_scales_to_the_image_and_reads_polygons(tmp_path):
    import cv2

    folder = tmp_path / "ehri-dev"
    folder.mkdir()
    cv2.imwrite(str(folder / "p1.jpg"), np.full((500, 1000), 230, np.uint8))
    (folder / "p1.xml").write_text(ALTO.format(
        lines=ALTO_LINE.format(x=200, y=100, w=1000, h=60,
                               points="200 100 1200 110 1200 160 200 150",
                               strings='<String CONTENT="Hallo"/><SP/><String CONTENT="Welt"/>')
        + ALTO_LINE.format(x=200, y=400, w=400, h=40, points="200 400 600 400 600 440",
                           strings='<String CONTENT=" "/>')))
    ehri = real_scans.sources(tmp_path)["ehri"]
    assert ehri.page_ids("all") == ["p1"] and ehri.tesseract_args == ["-l", "deu", "--psm", "7"]
    img = ehri.read("p1")
    assert img.shape == (500, 1000) and img.dtype == np.uint8
    (seg,) = ehri.segments("p1", img.shape)  # the line with no text is left out
    assert seg.text == "Hallo Welt"
    assert seg.box == (100, 50, 600, 80)  # the ALTO page is 2000 x 1000, the image half
    assert seg.polygon == ((100, 50), (600, 55), (600, 80), (100, 75))
    assert ehri.dpi(img) is None


def test_a_polygon_crop_keeps_the_ink_inside_the_grown_polygon_and_paper_outside():
    page = np.full((80, 200), 230, np.uint8)
    page[30:40, 40:160] = 0      # the line's ink, inside the polygon
    page[12:16, 40:160] = 0      # the line above's descenders: in the box, outside the polygon
    page[43, 40:160] = 20        # 1 px below the polygon: within GROW, kept
    polygon = ((30.0, 25.0), (170.0, 25.0), (170.0, 42.0), (30.0, 42.0))
    seg = real_scans.Segment((30, 10, 170, 50), "x", polygon)
    plain = real_scans.Segment((30, 10, 170, 50), "x")
    (masked,), (boxed,) = real_scans.crops(page, page.shape, [seg]), \
        real_scans.crops(page, page.shape, [plain])
    pad, grow = real_scans.PAD, real_scans.GROW
    assert boxed.shape == (40 + 2 * pad, 140 + 2 * pad)
    assert masked.shape == (40 + 2 * (pad + grow), 140 + 2 * (pad + grow))
    o = pad + grow  # the page's (30, 10) in the masked crop
    assert (boxed[pad + 2:pad + 6, pad + 10:pad + 130] == 0).all()  # unmasked: still there
    assert (masked[o + 2:o + 6, o + 10:o + 130] == 230).all()       # masked: paper
    assert (masked[o + 20:o + 30, o + 10:o + 130] == 0).all()
    assert (masked[o + 33, o + 10:o + 130] == 20).all()
    assert (masked == 0).sum() == 10 * 120 and (masked < 230).sum() == 11 * 120
    big = np.kron(page, np.ones((2, 2), np.uint8))
    (masked2,) = real_scans.crops(big, page.shape, [seg])
    assert masked2.shape == (80 + 4 * (pad + grow), 280 + 4 * (pad + grow))
    assert (masked2 == 0).sum() == 4 * 10 * 120


def test_the_sroie_parser_splits_on_the_first_eight_commas_and_takes_the_bounding_box(
        tmp_path):
    csv = tmp_path / "001.csv"
    csv.write_text("10,20,110,20,110,40,10,40,TOTAL: 1,234.50\n"
                   "5,60,100,58,102,80,7,82,A,  B ,C\n"
                   "1,1,9,1,9,9,1,9, \n")
    segs = real_scans.sroie_segments(csv)
    assert [s.text for s in segs] == ["TOTAL: 1,234.50", "A, B ,C"]
    assert [s.box for s in segs] == [(10, 20, 110, 40), (5, 58, 102, 82)]
    assert all(s.polygon is None for s in segs)
    sroie = real_scans.sources(tmp_path)["sroie"]
    assert sroie.tesseract_args == ["-l", "eng", "--psm", "7"]
    assert sroie.image("001") == tmp_path / "sroie-dev" / "img" / "001.jpg"


def test_read_batches_reads_each_distinct_image_once_and_keeps_every_batch_in_order():
    import cv2

    word = np.full((40, 160), 255, np.uint8)
    cv2.putText(word, "alpha", (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    other = np.full((40, 160), 255, np.uint8)
    cv2.putText(other, "ZEBRA", (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    got = real_scans.read_batches([([word, other], ["-l", "eng"]), ([other.copy(), word], [
        "-l", "eng"]), ([word], ["-l", "eng", "-c", "thresholding_method=2"])])
    assert [len(g) for g in got] == [2, 2, 1]
    assert "alpha" in got[0][0].lower() and "zebra" in got[0][1].lower()
    assert got[1] == got[0][::-1] and "alpha" in got[2][0].lower()


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


@pytest.mark.parametrize("factor", [3, 4])
def test_auto_factor_enlarges_that_many_times_where_auto_enlarges_and_only_there(
        monkeypatch, factor):
    from ocr_denoise import guard
    from train import synth

    small = synth.render_page(np.random.default_rng(3), 240, 320, x_height=7, family="serif",
                              ink=0.1, margin=10).clean
    big = synth.render_page(np.random.default_rng(4), 240, 320, x_height=24, family="serif",
                            ink=0.1, margin=10).clean
    small, big = (np.clip(p * 255 + 0.5, 0, 255).astype(np.uint8) for p in (small, big))
    was = guard.upscale_factor
    monkeypatch.setenv(real_scans.AUTO_FACTOR_ENV, str(factor))
    assert real_scans.process("upscale", small, None).shape == (240 * factor, 320 * factor)
    assert real_scans.process("upscale", big, None).shape == (240, 320)  # auto keeps it
    assert guard.upscale_factor is was
    monkeypatch.setenv(real_scans.AUTO_FACTOR_ENV, "2")
    assert real_scans.process("upscale", small, None).shape == (480, 640)


ALTO = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
  <Description><MeasurementUnit>pixel</MeasurementUnit></Description>
  <Layout><Page WIDTH="2000" HEIGHT="1000" PHYSICAL_IMG_NR="0" ID="p">
    <PrintSpace HPOS="0" VPOS="0" WIDTH="2000" HEIGHT="1000"><TextBlock ID="b">
{lines}
    </TextBlock></PrintSpace>
  </Page></Layout>
</alto>
"""
ALTO_LINE = """<TextLine ID="l" HPOS="{x}" VPOS="{y}" WIDTH="{w}" HEIGHT="{h}">
  <Shape><Polygon POINTS="{points}"/></Shape>{strings}
</TextLine>"""


def test_a_skip_for_missing_data_names_the_data_set_and_where_the_docs_say_to_get_it(
        monkeypatch, tmp_path):
    import helpers

    monkeypatch.setattr(helpers, "SHARED_DATA", tmp_path)
    (tmp_path / "funsd-train").mkdir()
    assert helpers.missing_data("funsd-train") is None
    reason = helpers.missing_data("funsd-train", "sroie-dev", "dibco/2009", "dibco/2010")
    assert reason == ("SROIE receipts / DIBCO pages not present under ../shared/data/sroie-dev, "
                      "../shared/data/dibco/2009, ../shared/data/dibco/2010 (beside the "
                      "checkout): see docs/benchmarks.md, 'Data sets', for where to get them")
    docs = (REPO / "docs" / "benchmarks.md").read_text()
    section = docs.split("\n## Data sets\n", 1)[1].split("\n## ", 1)[0]
    for name in ("FUNSD", "SROIE", "EHRI", "NoisyOffice", "DIBCO"):
        assert name in section, name
    assert "../shared/data" in section
    for folder in helpers.DATA_SETS:  # the table's first column: the folder, then its files
        assert f"| `{folder}/" in section, folder
