"""The one page pipeline: the same page at the same DPI gives the same bytes through
every entry point (denoise_page, Denoiser, the command line, denoise_folder in this
process and in worker processes, a Dask cluster, the OCRmyPDF plugin's hook)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocr_denoise import Denoiser, denoise_folder, denoise_page, pipeline
from ocr_denoise.images import open_image, read_image

DPI = (1200, 1200)


@pytest.fixture(scope="module")
def fine_scans(tmp_path_factory) -> Path:
    """A noisy page of strokes saved at 1200 DPI, recorded in the file, as a PNG and
    as a TIFF (the two formats that record DPI differently)."""
    folder = tmp_path_factory.mktemp("fine")
    rng = np.random.default_rng(2026)
    page = np.ones((360, 280), np.float32)
    for y in range(20, 340, 24):  # strokes 12 px tall: letters of a fine scan
        for x in range(12, 260, 9):
            page[y : y + 12, x : x + 3] = 0.1
    noisy = np.clip(page + rng.normal(0, 0.25, page.shape), 0, 1)
    pixels = (noisy * 255 + 0.5).astype(np.uint8)
    Image.fromarray(pixels).save(folder / "page.png", dpi=DPI)
    Image.fromarray(pixels).save(folder / "page.tif", dpi=DPI, compression="tiff_adobe_deflate")
    return folder


def test_the_files_record_1200_dpi_and_rescaling_changes_the_result(fine_scans):
    """Without this, identical outputs below would prove nothing about the rescale."""
    for name in ("page.png", "page.tif"):
        src = open_image(fine_scans / name)
        assert src.dpi[0] == pytest.approx(DPI, abs=0.01)
        path = fine_scans / name
        assert (denoise_page(path) != denoise_page(path, rescale=False)).any()


@pytest.fixture(scope="module")
def references(fine_scans) -> dict[str, np.ndarray]:
    return {Path(n).suffix: denoise_page(fine_scans / n) for n in ("page.png", "page.tif")}


def test_png_and_tiff_of_the_same_pixels_and_dpi_give_the_same_page(references):
    np.testing.assert_array_equal(references[".png"], references[".tif"])


@pytest.mark.parametrize("name", ["page.png", "page.tif"])
def test_denoiser_and_denoise_page_with_a_kept_denoiser_give_the_same_bytes(
        fine_scans, references, name):
    d = Denoiser(device="cpu")
    src = open_image(fine_scans / name)
    ref = references[Path(name).suffix]
    np.testing.assert_array_equal(d.denoise(src.read(0), dpi=src.dpi[0]), ref)
    np.testing.assert_array_equal(denoise_page(fine_scans / name, denoiser=d), ref)
    np.testing.assert_array_equal(pipeline.denoise(d, src.read(0), src.dpi[0]), ref)


@pytest.mark.parametrize("jobs", [1, 2])
def test_denoise_folder_gives_the_bytes_of_denoise_page(fine_scans, references, tmp_path,
                                                        jobs):
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(fine_scans / "page.png", scans / "a.png")
    shutil.copy(fine_scans / "page.tif", scans / "b.tif")
    report = denoise_folder(scans, tmp_path / "out", jobs=jobs, device="cpu")
    assert report.ok and len(report.done) == 2 and report.jobs == jobs, report.summary()
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.png"), references[".png"])
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "b.png"), references[".tif"])


def test_command_line_gives_the_bytes_of_denoise_page(fine_scans, references, tmp_path):
    for name in ("page.png", "page.tif"):
        out = tmp_path / f"{Path(name).suffix[1:]}.png"
        subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(fine_scans / name),
                        "-o", str(out), "-q"], check=True)
        np.testing.assert_array_equal(read_image(out), references[Path(name).suffix])
    folder = tmp_path / "folder"
    subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(fine_scans / "page.tif"),
                    "-o", str(folder), "-q", "--jobs", "2"], check=True)
    np.testing.assert_array_equal(read_image(folder / "page.png"), references[".tif"])


def test_dask_executor_gives_the_bytes_of_denoise_page(fine_scans, references, tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        for name in ("page.png", "page.tif"):
            out = tmp_path / Path(name).suffix[1:]
            report = denoise_folder(fine_scans / name, out, scheduler=client, device="cpu")
            assert report.ok and len(report.done) == 1, report.summary()
            np.testing.assert_array_equal(read_image(out / "page.png"),
                                          references[Path(name).suffix])


@pytest.mark.parametrize("name", ["page.png", "page.tif"])
def test_ocrmypdf_hook_gives_the_bytes_of_denoise_page(fine_scans, references, name):
    """The plugin's filter_ocr_image, called through OCRmyPDF's own plugin manager
    with OCRmyPDF's own options object (only the page context, which needs a whole
    PDF run, is a plain namespace), on the file opened as OCRmyPDF would hand it."""
    pytest.importorskip("ocrmypdf")
    from ocrmypdf._plugin_manager import get_plugin_manager
    from ocrmypdf.api import create_options

    pm = get_plugin_manager([])
    pm = getattr(pm, "pluggy_manager", pm)  # wrapped from OCRmyPDF 17
    options = create_options(input_file="in.pdf", output_file="out.pdf", parser=None,
                             denoise=True)
    page = types.SimpleNamespace(options=options, pageno=0)
    with Image.open(fine_scans / name) as im:
        im.load()
        seen = pm.hook.filter_ocr_image(page=page, image=im)
    assert seen.info.get("ocr_denoise") is True
    np.testing.assert_array_equal(np.asarray(seen), references[Path(name).suffix])


# -- upscale -------------------------------------------------------------------------


def _text(x_height: float, seed: int = 0) -> np.ndarray:
    from train import synth

    page = synth.render_page(np.random.default_rng(seed), 300, 400, x_height=x_height,
                             family="serif", ink=0.1, margin=20)
    return np.clip(page.clean * 255 + 0.5, 0, 255).astype(np.uint8)


def test_upscale_auto_enlarges_small_text_2x_and_leaves_large_text_its_size():
    small, large = _text(6), _text(18)
    assert denoise_page(small, upscale="auto").shape == (600, 800)
    assert denoise_page(large, upscale="auto").shape == (300, 400)
    assert denoise_page(small).shape == (300, 400)  # off by default


def test_upscale_by_a_factor_and_bad_values(tmp_path):
    from ocr_denoise import SettingsError

    page = _text(12)
    assert denoise_page(page, upscale=3).shape == (900, 1200)
    for bad in (0, -2, "big", 1.5, True):
        with pytest.raises((SettingsError, TypeError)):
            denoise_page(page, upscale=bad)


def test_upscaled_pil_image_and_file_get_their_dpi_scaled(tmp_path):
    small = _text(6)
    out = denoise_page(Image.fromarray(small).copy(), upscale="auto")
    assert out.size == (800, 600)
    Image.fromarray(small).save(tmp_path / "in.png", dpi=(100, 100))
    with Image.open(tmp_path / "in.png") as im:
        im.load()
        seen = denoise_page(im, upscale="auto")
    assert seen.info["dpi"] == pytest.approx((200, 200), abs=0.01)
    report = denoise_folder(tmp_path / "in.png", tmp_path / "out", upscale="auto")
    assert report.ok
    src = open_image(tmp_path / "out" / "in.png")
    assert src.sizes[0] == (800, 600) and src.dpi[0] == pytest.approx((200, 200), abs=0.01)
    subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(tmp_path / "in.png"), "-o",
                    str(tmp_path / "cli.png"), "--upscale", "auto", "-q"], check=True)
    np.testing.assert_array_equal(read_image(tmp_path / "cli.png"),
                                  read_image(tmp_path / "out" / "in.png"))


def test_a_bad_upscale_stops_a_folder_run_before_any_file(tmp_path):
    from ocr_denoise import RunOptions, SettingsError

    Image.fromarray(_text(6)).save(tmp_path / "in.png")
    for bad in ("bogus", 0, "2"):
        with pytest.raises(SettingsError, match="upscale"):
            denoise_folder(tmp_path / "in.png", tmp_path / "out", upscale=bad)
    assert not (tmp_path / "out").exists()
    assert RunOptions(upscale="off").upscale is None and RunOptions(upscale=1).upscale is None


class Counting:
    """The pipeline's view of a ``Denoiser``, counting the patches given to its model."""

    def __init__(self, model: Denoiser) -> None:
        self.model, self.patches = model, 0
        self.overlap, self.batch_size = model.overlap, model.batch_size
        self.skip_white = model.skip_white

    @property
    def interface(self):
        return self.model.interface

    @property
    def patch_size(self) -> int:
        return self.model.patch_size

    def denoise_patches(self, patches, context_windows=None):
        self.patches += len(patches)
        return self.model.denoise_patches(patches, context_windows)


def test_margins_skip_the_shipped_model_and_read_within_two_grey_levels_of_it():
    """A page of noisy text with wide, nearly clean margins: the blank patches skip
    the model, and the page differs from the model-everywhere page only by the
    model's near-white on them (the default was chosen for at most 2 levels)."""
    from helpers import text_page
    rng = np.random.default_rng(5)
    page = np.ones((300, 260), np.float32)
    page[80:220, 60:200] = np.clip(text_page(rng, 140, 140)
                                   + rng.normal(0, 0.2, (140, 140)), 0, 1)
    page = np.clip(page - np.abs(rng.normal(0, 0.004, page.shape)), 0, 1)
    img = (page * 255 + 0.5).astype(np.uint8)
    skipping, everywhere = Counting(Denoiser()), Counting(Denoiser(skip_white=None))
    out = pipeline.denoise(skipping, img, guard=False)
    ref = pipeline.denoise(everywhere, img, guard=False)
    assert skipping.patches < 0.6 * everywhere.patches
    diff = np.abs(out.astype(int) - ref)
    assert diff.max() <= 2
    assert diff[80:220, 60:200].max() == 0  # every patch over the noisy text ran the model
    assert (out[:40] == 255).all()  # the margin is paper
