"""``denoise_page`` with the shipped model: shapes, dtypes, and that it really denoises."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import text_page
from ocr_denoise import denoise_page, get_denoiser


@pytest.mark.parametrize("shape", [(1, 1), (1, 30), (30, 1), (28, 28), (45, 61), (100, 7)])
def test_output_is_uint8_page_of_the_input_size(shape, rng):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    out = denoise_page(img)
    assert out.shape == shape and out.dtype == np.uint8


@pytest.mark.parametrize("make", [
    lambda g: (g * 255).round().astype(np.uint8),
    lambda g: (g * 65535).round().astype(np.uint16),
    lambda g: g.astype(np.float64),
    lambda g: np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2),
    lambda g: np.dstack([np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, 2),
                         np.full(g.shape, 255, np.uint8)]),
], ids=["uint8", "uint16", "float64", "bgr", "bgra"])
def test_every_input_form_gives_the_same_page(make, rng):
    g = text_page(rng, 60, 80)
    ref = denoise_page((g * 255).round().astype(np.uint8))
    out = denoise_page(make(g))
    assert out.shape == g.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).max() <= 2


def test_shipped_model_removes_noise(rng):
    clean = text_page(rng, 120, 160)
    noisy = np.clip(clean + 0.25 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    out = denoise_page(noisy).astype(np.float32) / 255
    rmse_in = np.sqrt(np.mean((noisy - clean) ** 2))
    rmse_out = np.sqrt(np.mean((out - clean) ** 2))
    assert rmse_out < 0.6 * rmse_in, (rmse_in, rmse_out)


def test_input_array_is_not_modified(rng):
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    before = img.copy()
    denoise_page(img)
    np.testing.assert_array_equal(img, before)


def test_one_denoiser_is_reused_per_settings():
    assert get_denoiser() is get_denoiser()
    assert get_denoiser(overlap=4) is not get_denoiser()


# -- a 20000 x 20000 page in a process limited to 3 GB of address space ------------------

_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # before anything loads
import numpy as np
from ocr_denoise import denoise_page
model = None if sys.argv[1] == "shipped" else sys.argv[1]
h, w = int(sys.argv[2]), int(sys.argv[3])
page = np.full((h, w), 255, np.uint8)
try:
    out = denoise_page(page, model=model, device="cpu")
    print("RESULT ok", out.shape, out.dtype, int(out.min()), int(out.max()))
except MemoryError as e:
    print("RESULT MemoryError", e)
peak = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmPeak")][0]
print("VMPEAK_KB", peak)
"""


def _run_limited(model: str, h: int, w: int) -> str:
    import subprocess
    import sys

    from conftest import REPO

    r = subprocess.run([sys.executable, "-c", _LIMITED, model, str(h), str(w)],
                       capture_output=True, text=True, cwd=REPO, timeout=900)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])  # a signal is negative
    return r.stdout


def test_20000_square_blank_page_is_denoised_within_3_gb_of_address_space(identity_model):
    """The whole pipeline (check, band-wise conversion, tiling, onnxruntime, output)
    on a 400-Mpx page, with the identity model so it takes seconds, not minutes."""
    out = _run_limited(str(identity_model), 20000, 20000)
    assert "RESULT ok (20000, 20000) uint8 255 255" in out, out


def test_shipped_model_on_a_20000_px_wide_band_fits_in_3_gb_of_address_space():
    """The shipped model's working set for a page 20000 px wide: the full-width
    band of patches and onnxruntime's arena at the default batch size."""
    out = _run_limited("shipped", 66, 20000)
    assert "RESULT ok (66, 20000) uint8" in out, out
    lo = int(out.split("RESULT ok (66, 20000) uint8")[1].split()[0])
    assert lo >= 200, out  # blank paper stays blank


_SQUEEZED = """
import resource, sys
import numpy as np
from ocr_denoise import denoise_page
page = np.full((20000, 20000), 255, np.uint8)
denoise_page(np.full((8, 8), 255, np.uint8), model=sys.argv[1], device="cpu")  # warm
vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
resource.setrlimit(resource.RLIMIT_AS, ((vm + 200 * 1024) * 1024,) * 2)  # no room for the output
try:
    denoise_page(page, model=sys.argv[1], device="cpu")
    print("RESULT ok")
except MemoryError as e:
    print("RESULT MemoryError", e)
print("ALIVE")
"""


def test_page_too_big_for_the_address_space_left_is_a_memory_error_not_a_crash(identity_model):
    import subprocess
    import sys

    from conftest import REPO

    r = subprocess.run([sys.executable, "-c", _SQUEEZED, str(identity_model)],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    assert "RESULT MemoryError" in r.stdout and "(20000, 20000)" in r.stdout, r.stdout
    assert "ALIVE" in r.stdout
