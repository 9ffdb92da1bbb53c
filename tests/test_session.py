"""The Denoiser and its onnxruntime session, with tiny real ONNX models built in-test."""

from __future__ import annotations

import logging
import pickle
import threading

import numpy as np
import onnxruntime as ort
import pytest

from conftest import make_onnx_model
from ocr_denoise import Denoiser, ProviderError
from ocr_denoise.session import CPU, CUDA, resolve_providers


def test_auto_prefers_cuda_only_when_offered():
    assert resolve_providers("auto", [CPU]) == (CPU,)
    assert resolve_providers("auto", [CUDA, CPU]) == (CUDA, CPU)
    assert resolve_providers("cpu", [CUDA, CPU]) == (CPU,)


def test_explicit_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ProviderError, match="device='cuda'.*onnxruntime-gpu"):
        resolve_providers("cuda", [CPU])


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device"):
        resolve_providers("tpu", [CPU])


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="machine has CUDA")
def test_denoiser_asked_for_cuda_on_a_cpu_build_refuses(identity_model):
    d = Denoiser(identity_model, device="cuda")
    with pytest.raises(ProviderError):
        d.denoise(np.zeros((5, 5), np.uint8))


def test_session_reports_the_provider_it_really_got(identity_model):
    d = Denoiser(identity_model, device="cpu")
    d.denoise(np.zeros((3, 3), np.uint8))
    assert d.providers[0] == CPU


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_identity_model_reproduces_page_through_onnxruntime(tmp_path, rng, layout):
    model = make_onnx_model(tmp_path / "m.onnx", layout=layout)
    page = rng.integers(0, 256, (61, 93), dtype=np.uint8)
    out = Denoiser(model, device="cpu", batch_size=7).denoise(page)
    assert np.abs(out.astype(int) - page).max() <= 1


def test_model_actually_runs(invert_model, rng):
    page = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    out = Denoiser(invert_model, device="cpu").denoise(page)
    assert np.abs(out.astype(int) - (255 - page.astype(int))).max() <= 1


def test_pickle_carries_settings_not_the_session(identity_model):
    d = Denoiser(identity_model, device="cpu", batch_size=33, overlap=4)
    d.denoise(np.zeros((4, 4), np.uint8))
    assert d._session is not None
    d2 = pickle.loads(pickle.dumps(d))
    assert d2._session is None and d2.batch_size == 33 and d2.overlap == 4
    np.testing.assert_array_equal(d2.denoise(np.full((9, 9), 7, np.uint8)), 7)


def test_session_built_once_under_concurrent_first_use(identity_model, monkeypatch):
    d = Denoiser(identity_model, device="cpu")
    calls = []
    real = d._build_session
    barrier = threading.Barrier(8)

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(d, "_build_session", counting)

    def work():
        barrier.wait()
        d.denoise(np.zeros((10, 10), np.uint8))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_missing_model_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        Denoiser(tmp_path / "nope.onnx").denoise(np.zeros((2, 2), np.uint8))


def test_importing_adds_no_log_handlers():
    assert logging.getLogger("ocr_denoise.session").handlers == []
