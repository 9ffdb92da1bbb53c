"""A wheel built from the repo works in a fresh virtualenv with no TensorFlow and no checkout."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile

from helpers import REPO

SCRIPT = """
import sys, numpy as np
import ocr_denoise
assert "site-packages" in ocr_denoise.__file__, ocr_denoise.__file__
from pathlib import Path
models = Path(ocr_denoise.__file__).parent / "models"
# The checksum ships beside the model, so the installed model is verified on load.
assert (models / "denoiser.onnx.sha256").is_file(), sorted(p.name for p in models.iterdir())
page = np.full((60, 90), 230, np.uint8); page[20:30, 10:80] = 20
out = ocr_denoise.denoise_page(page)
assert out.shape == page.shape and out.dtype == np.uint8
assert "tensorflow" not in sys.modules
try:
    import tensorflow
    print("TF-PRESENT")
except ImportError:
    print("NO-TF")
print("OK", ocr_denoise.__version__)
"""


def test_wheel_installs_and_denoises_without_tensorflow(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-w", str(dist), str(REPO)], check=True,
                           capture_output=True, text=True, timeout=300)
    wheels = list(dist.glob("ocr_denoise-*.whl"))
    assert len(wheels) == 1
    # The project's own packaging warns about nothing (a user reads warnings as "broken").
    log = built.stdout + built.stderr
    assert "Warning" not in log and "deprecated" not in log and "absent" not in log, log
    with zipfile.ZipFile(wheels[0]) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith("dist-info/METADATA")))
    for field in (b"Author: ", b"License-Expression: MIT", b"Keywords: ", b"Classifier: "):
        assert field in meta, field
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheels[0])], check=True,
                   capture_output=True, timeout=600)
    r = subprocess.run([str(py), "-c", SCRIPT], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "NO-TF" in r.stdout and "OK" in r.stdout
    r = subprocess.run([str(env_dir / "bin" / "ocr-denoise"), "--version"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
