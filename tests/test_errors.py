"""One base class for every error the package raises, keeping the old built-in bases."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import ocr_denoise
from ocr_denoise import OcrDenoiseError

LEGACY_BASES = {
    "ImageReadError": ValueError,
    "ImageTooLargeError": ValueError,
    "ImageWriteError": ValueError,
    "ModelError": ValueError,
    "ModelNotFoundError": FileNotFoundError,
    "PageError": ValueError,
    "PageTypeError": TypeError,
    "SettingsError": ValueError,
    "SettingsTypeError": TypeError,
    "ProviderError": RuntimeError,
    "InferenceError": RuntimeError,
    "MissingDependencyError": RuntimeError,
}


def test_every_exported_error_is_an_ocr_denoise_error_and_keeps_its_old_base():
    exported = {n for n in ocr_denoise.__all__ if n.endswith("Error")} - {"OcrDenoiseError"}
    assert exported == set(LEGACY_BASES)
    for name, base in LEGACY_BASES.items():
        cls = getattr(ocr_denoise, name)
        assert issubclass(cls, OcrDenoiseError) and issubclass(cls, base), name


@pytest.mark.parametrize("call", [
    lambda: ocr_denoise.denoise_page(np.zeros((4, 4), np.int64)),            # dtype
    lambda: ocr_denoise.denoise_page(np.zeros((4, 4, 2), np.uint8)),         # channels
    lambda: ocr_denoise.denoise_page(np.full((4, 4), 2.0)),                  # range
    lambda: ocr_denoise.denoise_page("no/such/file.png"),                    # file
    lambda: ocr_denoise.Denoiser(batch_size=0),                               # setting
    lambda: ocr_denoise.Denoiser(device="tpu"),                               # setting
    lambda: ocr_denoise.Denoiser("no/such/model.onnx"),                       # model
    lambda: ocr_denoise.denoise_folder(".", "out", format="gif"),             # setting
    lambda: ocr_denoise.denoise_folder(".", "out", jobs=0),                   # setting
    lambda: ocr_denoise.denoise_folder(".", "out", colour=True),              # unknown option
    lambda: ocr_denoise.images.write_image("x.gif", np.zeros((2, 2), np.uint8)),  # writing
], ids=["dtype", "channels", "range", "file", "batch_size", "device", "model", "format",
        "jobs", "unknown-option", "write-extension"])
def test_what_the_package_refuses_is_an_ocr_denoise_error(call):
    with pytest.raises(OcrDenoiseError):
        call()


def test_denoiser_and_settings_to_build_one_are_not_both_taken():
    d = ocr_denoise.Denoiser(device="cpu")
    with pytest.raises(ocr_denoise.SettingsError, match="either denoiser= or"):
        ocr_denoise.denoise_page(np.ones((4, 4)), denoiser=d, batch_size=7)


def test_errors_with_fields_survive_pickling():
    from ocr_denoise import ImageTooLargeError

    e = pickle.loads(pickle.dumps(ImageTooLargeError("/a/b.png", "declares too many")))
    assert type(e) is ImageTooLargeError and e.path.name == "b.png"
    assert str(e) == "/a/b.png: declares too many"
