"""benchmarks/gpu_parts.py: a wheel carried in parts is joined whole or not at all."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_parts  # noqa: E402


@pytest.fixture
def wheel(tmp_path):
    p = tmp_path / "src" / "fake-1.0-py3-none-any.whl"
    p.parent.mkdir()
    p.write_bytes(np.random.default_rng(0).bytes(5 * 2**20 + 123))  # 5 MiB and a bit
    return p


def test_parts_in_several_folders_join_into_the_same_bytes(wheel, tmp_path):
    parts = gpu_parts.split(wheel, tmp_path / "a", size_mib=2)
    assert [p.stat().st_size for p in parts] == [2 << 20, 2 << 20, (1 << 20) + 123]
    (tmp_path / "b").mkdir()
    parts[1].rename(tmp_path / "b" / parts[1].name)  # carried by another command
    joined = gpu_parts.join([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    assert [p.name for p in joined] == [wheel.name]
    assert joined[0].read_bytes() == wheel.read_bytes()


def test_a_missing_part_is_named_and_nothing_is_written(wheel, tmp_path):
    parts = gpu_parts.split(wheel, tmp_path / "a", size_mib=2)
    parts[2].unlink()
    with pytest.raises(ValueError, match=r"1 of 3 parts missing \(.*part-002\)"):
        gpu_parts.join([tmp_path / "a"], tmp_path / "out")
    assert not (tmp_path / "out" / wheel.name).exists()


def test_a_damaged_part_fails_the_checksum_and_leaves_no_wheel(wheel, tmp_path):
    parts = gpu_parts.split(wheel, tmp_path / "a", size_mib=2)
    data = bytearray(parts[0].read_bytes())
    data[100] ^= 1
    parts[0].write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged or stale"):
        gpu_parts.join([tmp_path / "a"], tmp_path / "out")
    assert not (tmp_path / "out" / wheel.name).exists()
    assert gpu_parts.main(["join", str(tmp_path / "a"), "--out", str(tmp_path / "o")]) == 2


def test_gpu_check_stops_before_installing_from_a_half_carried_wheel(wheel, tmp_path):
    parts = gpu_parts.split(wheel, tmp_path / "parts", size_mib=2)
    parts[0].unlink()
    r = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "GPU_CHECK_DEVICE": "cuda",
                            "GPU_CHECK_PARTS": str(tmp_path / "parts")})
    assert r.returncode == 3, r.stdout + r.stderr
    assert "part-000" in r.stderr and not (tmp_path / "o" / "pytest.log").exists()
