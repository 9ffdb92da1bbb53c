"""The OCRmyPDF plugin, run by real OCRmyPDF (Python API) with real tesseract: it lowers the
character error rate of the PDF's text layer, changes nothing without ``--denoise``, keeps
the PDF's images, hands OCR a mode L page of the right size and DPI for 1-bit, grey and
colour pages after OCRmyPDF's own downsampling, and loads both ways (entry point and
``--plugin``)."""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ocrmypdf = pytest.importorskip("ocrmypdf")

import img2pdf  # noqa: E402  (an OCRmyPDF dependency)
import pikepdf  # noqa: E402
from pdfminer.high_level import extract_text  # noqa: E402
from PIL import Image  # noqa: E402

from ocr_denoise import denoise_page  # noqa: E402
from ocr_denoise.ocr import cer  # noqa: E402
from train import synth  # noqa: E402

PLUGIN = "ocr_denoise.ocrmypdf_plugin"
#: Quick settings for every run: a plain PDF (no PDF/A conversion), no optimisation.
FAST = dict(output_type="pdf", optimize=0, progress_bar=False)


def _png(img: np.ndarray | Image.Image, dpi: int) -> bytes:
    im = Image.fromarray(img) if isinstance(img, np.ndarray) else img
    buf = io.BytesIO()
    im.save(buf, "PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def page_images(pdf: Path) -> list[bytes]:
    """The decoded pixels of every image on every page."""
    with pikepdf.open(pdf) as doc:
        return [pikepdf.PdfImage(im).as_pil_image().tobytes()
                for page in doc.pages for im in images_of(page)]


def images_of(page) -> list:
    """A page's image XObjects (pikepdf 10 renamed ``images`` to ``get_images()``)."""
    get = getattr(page, "get_images", None)
    return list((get() if get else page.images).values())


def pluggy_pm(pm):
    """The pluggy manager: OCRmyPDF's own up to 16, wrapped from 17."""
    return getattr(pm, "pluggy_manager", pm)


def run_without_plugin(src: Path, dst: Path, **kw) -> None:
    """OCRmyPDF as if this package were not installed: its entry point blocked, and
    threads instead of worker processes (which would load the entry point again)."""
    from ocrmypdf._plugin_manager import get_plugin_manager

    pm = get_plugin_manager([])
    pluggy_pm(pm).set_blocked("ocr_denoise")
    impls = pluggy_pm(pm).hook.filter_ocr_image.get_hookimpls()
    assert impls and not any(i.plugin_name.startswith("ocr_denoise") for i in impls)
    ocrmypdf.ocr(src, dst, plugin_manager=pm, use_threads=True, **FAST, **kw)


@pytest.fixture(scope="module")
def noisy_pdf(tmp_path_factory) -> tuple[Path, str]:
    """A two-page 300-DPI PDF of prose under heavy sensor noise (Gaussian on page 1,
    salt and pepper on page 2: damage the current model removes), and its text."""
    folder = tmp_path_factory.mktemp("pdf")
    pngs, texts = [], []
    for i, (kind, strength) in enumerate([("gaussian", 0.8), ("salt_pepper", 0.7)]):
        rng = np.random.default_rng(100 + i)
        page = synth.render_page(rng, 900, 1200, x_height=18, family="serif", ink=0.1,
                                 margin=60)
        noisy = synth.damage(page.clean, kind, rng, strength)
        pngs.append(_png(np.clip(noisy * 255 + 0.5, 0, 255).astype(np.uint8), 300))
        texts.append(page.text)
    path = folder / "noisy.pdf"
    path.write_bytes(img2pdf.convert(pngs))
    return path, "\n".join(texts)


@pytest.fixture(scope="module")
def runs(noisy_pdf, tmp_path_factory) -> dict[str, Path]:
    """The noisy PDF through OCRmyPDF four ways."""
    src, _ = noisy_pdf
    out = tmp_path_factory.mktemp("runs")
    run_without_plugin(src, out / "without_plugin.pdf")
    # Installed (entry point), not asked to denoise; threads like the run above.
    ocrmypdf.ocr(src, out / "installed.pdf", use_threads=True, **FAST)
    # Installed and asked: OCRmyPDF's worker processes build the sessions.
    ocrmypdf.ocr(src, out / "denoised.pdf", denoise=True, **FAST)
    # Installed *and* named with --plugin: both registrations load.
    ocrmypdf.ocr(src, out / "denoised_plugin.pdf", denoise=True, plugins=[PLUGIN], **FAST)
    return {p.stem: p for p in out.glob("*.pdf")}


def test_entry_point_registers_the_plugin_with_ocrmypdf():
    from ocrmypdf._plugin_manager import get_plugin_manager

    names = [n for n, _ in pluggy_pm(get_plugin_manager([])).list_name_plugin()]
    assert "ocr_denoise" in names
    r = subprocess.run([sys.executable, "-m", "ocrmypdf", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for flag in ("--denoise", "--denoise-visible", "--denoise-model", "--denoise-device",
                 "--no-denoise-rescale", "--denoise-upscale", "--denoise-enlarger"):
        assert flag in r.stdout, flag


def test_denoise_lowers_the_character_error_rate_of_the_text_layer(noisy_pdf, runs):
    _, truth = noisy_pdf
    without = cer(truth, extract_text(runs["without_plugin"]))
    denoised = cer(truth, extract_text(runs["denoised"]))
    print(f"OCRmyPDF text layer CER: without the plugin {without:.3f}, "
          f"with --denoise {denoised:.3f}")
    assert denoised < without
    assert denoised < 0.5  # most of the text is read, not a lucky word


def test_without_denoise_the_text_layer_equals_a_run_without_the_plugin(runs):
    text = extract_text(runs["installed"])
    assert text == extract_text(runs["without_plugin"])
    assert page_images(runs["installed"]) == page_images(runs["without_plugin"])


def test_pdf_keeps_its_original_page_images_unless_asked(noisy_pdf, runs):
    src, _ = noisy_pdf
    assert page_images(runs["denoised"]) == page_images(src)


def test_plugin_named_with_plugin_while_installed_loads_and_denoises_once(runs):
    """Registered twice (entry point and --plugin), the hooks must neither crash
    OCRmyPDF (duplicate options) nor denoise the denoised page again."""
    assert extract_text(runs["denoised_plugin"]) == extract_text(runs["denoised"])


def test_denoise_visible_puts_the_denoised_page_in_the_pdf(noisy_pdf, tmp_path, monkeypatch):
    src, truth = noisy_pdf
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # to find OCRmyPDF's work folder
    ocrmypdf.ocr(src, tmp_path / "visible.pdf", denoise=True, denoise_visible=True,
                 force_ocr=True, keep_temporary_files=True, **FAST)
    (work,) = tmp_path.glob("ocrmypdf.io.*")
    with pikepdf.open(tmp_path / "visible.pdf") as doc:
        shown = [pikepdf.PdfImage(im).as_pil_image()
                 for p in doc.pages for im in images_of(p)]
    assert len(shown) == 2
    for i, im in enumerate(shown, 1):
        # --force-ocr re-rasterises each page; the PDF shows that page, denoised.
        with Image.open(work / f"{i:06d}_rasterize.png") as raster:
            expected = denoise_page(raster)
            assert im.tobytes() != raster.convert("L").tobytes()
        assert (im.mode, im.size) == ("L", expected.size)
        assert im.tobytes() == expected.tobytes()
    assert cer(truth, extract_text(tmp_path / "visible.pdf")) < 0.5


def test_the_plugin_is_quiet_in_ocrmypdfs_normal_output(noisy_pdf, tmp_path):
    """OCRmyPDF's own command, as a user runs it: its INFO output says nothing of the
    onnxruntime session (built in the main process to check the options, and in
    each worker); ``-v 1`` (debug) shows it."""
    src, _ = noisy_pdf
    session = "onnxruntime session for"

    def ocrmypdf_cli(*flags: str) -> str:
        r = subprocess.run([sys.executable, "-m", "ocrmypdf", *flags, "--denoise",
                            "--output-type", "pdf", "--optimize", "0", str(src),
                            str(tmp_path / "out.pdf")],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout + r.stderr

    normal = ocrmypdf_cli()
    assert session not in normal, normal
    assert "Postprocessing" in normal  # OCRmyPDF's own INFO lines are there
    debug = ocrmypdf_cli("-v", "1")
    assert debug.count(session) >= 2, debug  # options check + a worker


@pytest.mark.parametrize("kw, message", [
    (dict(denoise_visible=True), "--denoise-visible needs --force-ocr"),
    (dict(denoise_model="/nonexistent/model.onnx"),
     "/nonexistent/model.onnx: model file not found"),
    (dict(denoise_enlarger="/nonexistent/enlarger.onnx"),
     "--denoise-enlarger /nonexistent/enlarger.onnx: /nonexistent/enlarger.onnx: model file "
     "not found"),
    (dict(denoise_enlarger="denoise"),
     r"--denoise-enlarger denoise: \S+denoiser\S*\.onnx is not an enlargement model"),
    (dict(denoise_model="MIX"),
     r"--denoise: \S+mix\.onnx is an enlargement model \(metadata scale=2\), not a "
     "denoiser"),
], ids=["visible", "missing-model", "missing-enlarger", "denoiser-as-enlarger",
        "enlarger-as-model"])
def test_unusable_denoise_options_stop_ocrmypdf_before_any_page(noisy_pdf, tmp_path, kw,
                                                                  message, mix_enlarger):
    from ocrmypdf.exceptions import BadArgsError

    src, _ = noisy_pdf
    kw = {k: str(mix_enlarger) if v == "MIX" else v for k, v in kw.items()}
    with pytest.raises(BadArgsError, match=message):
        ocrmypdf.ocr(src, tmp_path / "out.pdf", denoise=True, **kw, **FAST)
    assert not (tmp_path / "out.pdf").exists()


# -- what OCR sees, from OCRmyPDF's kept temporary files --------------------------------------


def _small_page() -> np.ndarray:
    rng = np.random.default_rng(5)
    page = synth.render_page(rng, 300, 500, x_height=14, family="sans", ink=0.05, margin=20)
    noisy = synth.damage(page.clean, "gaussian", rng, 0.6)
    return np.clip(noisy * 255 + 0.5, 0, 255).astype(np.uint8)


def _ocr_images(tmp_path: Path, monkeypatch, image: Image.Image, dpi: int = 200, **kw):
    """Run OCRmyPDF with --denoise on a one-page PDF of ``image`` (at ``dpi``) into
    ``tmp_path / "out.pdf"``, keeping its work folder; return (the page as rasterised
    for OCR, the image OCR read)."""
    pdf = tmp_path / "in.pdf"
    buf = io.BytesIO()
    if image.mode == "1":
        image.save(buf, "TIFF", compression="group4", dpi=(dpi, dpi))
    else:
        image.save(buf, "PNG", dpi=(dpi, dpi))
    pdf.write_bytes(img2pdf.convert(buf.getvalue()))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ocrmypdf.ocr(pdf, tmp_path / "out.pdf", denoise=True, keep_temporary_files=True,
                 **FAST, **kw)
    (work,) = tmp_path.glob("ocrmypdf.io.*")
    return Image.open(work / "000001_rasterize.png"), Image.open(work / "000001_ocr.png")


@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_ocr_sees_the_denoised_page_at_its_size_and_dpi_for_every_page_mode(
        tmp_path, monkeypatch, mode):
    g = _small_page()
    image = Image.fromarray(g) if mode != "RGB" else Image.fromarray(
        np.dstack([g, g // 2 + 128, g]))  # dark text on green paper
    raster, seen = _ocr_images(tmp_path, monkeypatch, image.convert(mode))
    assert raster.mode == mode  # OCRmyPDF really handed the hook this mode
    assert seen.mode == "L" and seen.size == raster.size
    assert seen.info["dpi"] == pytest.approx(raster.info["dpi"], abs=0.01)
    np.testing.assert_array_equal(np.asarray(seen), np.asarray(denoise_page(raster)))


def test_ocrmypdf_downsampling_for_tesseract_is_kept_and_the_result_denoised(
        tmp_path, monkeypatch):
    """OCRmyPDF's Tesseract hook shrinks images over --tesseract-downsample-above;
    ours wraps it, so OCR gets the shrunk page (half the DPI), denoised."""
    g = _small_page()
    raster, seen = _ocr_images(tmp_path, monkeypatch,
                               Image.fromarray(np.dstack([g, g, g // 2 + 128])),
                               tesseract_downsample_large_images=True,
                               tesseract_downsample_above=250)
    assert raster.size == (500, 300) and raster.mode == "RGB"
    assert seen.size == (250, 150) and seen.mode == "L"
    assert seen.info["dpi"] == pytest.approx((100, 100), abs=0.01)


# -- --denoise-upscale auto: where the text layer lands (issue 32) ---------------------------

#: Words drawn at known places on a 100-DPI page, small enough (x-height about 7 px) for
#: ``--denoise-upscale auto`` to enlarge the OCR image 2x.
WORDS = ("invoice total amount paid received number customer address street city payment "
         "method balance account summary period charges credit").split()


def _words_page(dpi: int = 100, size: int = 13) -> tuple[Image.Image, list[tuple]]:
    """A noisy grey page of ``WORDS`` in DejaVu Sans at ``size`` px, and where each
    word's ink is: (word, left, top, right, bottom) in points from the top left."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype("DejaVuSans.ttf", size)  # fonts-dejavu-core
    w, h = int(4.25 * dpi), int(2.5 * dpi)
    page = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(page)
    rng = np.random.default_rng(32)
    truth, words, y = [], list(WORDS), int(0.3 * dpi)
    while words and y < h - 0.4 * dpi:
        x = int(0.4 * dpi) + int(rng.integers(0, 30))
        while words and draw.textbbox((x, y), words[0], font=font)[2] < w - 0.4 * dpi:
            word = words.pop(0)
            alone = Image.new("L", (w, h), 255)
            ImageDraw.Draw(alone).text((x, y), word, font=font, fill=0)
            ink = np.argwhere(np.asarray(alone) < 128)
            (y0, x0), (y1, x1) = ink.min(0), ink.max(0) + 1
            truth.append((word, *(float(v) * 72 / dpi for v in (x0, y0, x1, y1))))
            draw.text((x, y), word, font=font, fill=20)
            x = draw.textbbox((x, y), word, font=font)[2] + int(size * 1.2)
        y += int(size * 2.2)
    noisy = np.asarray(page) + rng.normal(0, 12, (h, w))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), truth


def pdf_words(pdf: Path) -> list[tuple]:
    """The text layer's words: (word, left, top, right, bottom) in points from the
    page's top left (OCRmyPDF 17 puts the text in a form XObject, hence all_texts)."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextLine

    def lines(el):
        if isinstance(el, LTTextLine):
            yield el
        elif hasattr(el, "__iter__"):
            for child in el:
                yield from lines(child)

    out = []
    for page in extract_pages(pdf, laparams=LAParams(all_texts=True)):
        for line in lines(page):
            word: list = []
            for ch in [*line, None]:
                if isinstance(ch, LTChar) and ch.get_text().strip():
                    word.append(ch)
                elif word:
                    out.append(("".join(c.get_text() for c in word),
                                min(c.x0 for c in word), page.height - max(c.y1 for c in word),
                                max(c.x1 for c in word), page.height - min(c.y0 for c in word)))
                    word = []
    return out


def misplacement(truth: list[tuple], found: list[tuple]) -> np.ndarray:
    """For each true word the text layer has (nearest copy): how far its left and
    right edges and its vertical centre are from the ink's, in points."""
    rows = []
    for word, *t in truth:
        boxes = [b for w, *b in found if w.strip(".,;:").lower() == word]
        if boxes:
            b = min(boxes, key=lambda b: abs(b[0] - t[0]) + abs(b[1] - t[1]))
            rows.append((b[0] - t[0], b[2] - t[2], (b[1] + b[3] - t[1] - t[3]) / 2))
    return np.array(rows).reshape(-1, 3)


@pytest.mark.parametrize("oversample", [None, 200], ids=["upscale", "upscale+oversample"])
def test_denoise_upscale_auto_enlarges_the_ocr_image_and_the_words_land_where_they_are(
        tmp_path, monkeypatch, mix_enlarger, oversample):
    """The OCR image comes back 2x (DPI doubled) from the enlargement model given
    by path, the same bytes as ``denoise_page``; OCRmyPDF still puts every word of
    the text layer where its ink is on the page. With ``--oversample`` the page is
    rasterised at 200 DPI already, its text is not small and is left its size."""
    image, truth = _words_page()
    kw = {} if oversample is None else {"oversample": oversample}
    raster, seen = _ocr_images(tmp_path, monkeypatch, image, dpi=100, denoise_upscale="auto",
                               denoise_enlarger=str(mix_enlarger), **kw)
    rasterised = 1 if oversample is None else 2  # OCRmyPDF's own enlargement
    assert raster.size == (rasterised * image.width, rasterised * image.height)
    assert seen.size == (2 * image.width, 2 * image.height)
    assert seen.info["dpi"] == pytest.approx((200, 200), abs=0.01)
    want = denoise_page(raster, upscale="auto", enlarger=mix_enlarger)
    np.testing.assert_array_equal(np.asarray(seen), np.asarray(want))
    if oversample is None:  # enlarged by the model given, not by cubic
        assert want.tobytes() != denoise_page(raster, upscale="auto", enlarger=None).tobytes()
    off = misplacement(truth, pdf_words(tmp_path / "out.pdf"))
    print(f"text layer, {len(off)}/{len(truth)} words: left edge |dx| max "
          f"{np.abs(off[:, 0]).max():.2f} pt, right edge |dx| max {np.abs(off[:, 1]).max():.2f} "
          f"pt, centre |dy| max {np.abs(off[:, 2]).max():.2f} pt")
    assert len(off) >= 0.8 * len(truth)
    assert np.abs(off[:, :2]).max() <= 1.5  # about a pixel at 100 DPI: 0.72 pt
    assert np.abs(off[:, 2]).max() <= 4.0  # the box is the font's height, not the ink's
