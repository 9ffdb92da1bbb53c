"""``denoise_folder(..., scheduler=client)`` (``ocr_denoise.cluster``) on a real
``distributed.LocalCluster`` with two worker processes: the same files, byte for byte,
and the same report as a local ``denoise_folder``; bad files and dead workers are
failures in the report, not the end of the run."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import small_print_folder

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from ocr_denoise import ModelNotFoundError, denoise_folder, denoise_page  # noqa: E402
from ocr_denoise.images import read_image, write_image, write_pages  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def make_scans(root: Path, rng: np.random.Generator) -> None:
    """Grey, colour, 16-bit and multi-page pages with DPI, in a tree, and bad files."""
    sub = root / "sub"
    sub.mkdir(parents=True)
    page = lambda h=50, w=70: rng.integers(0, 256, (h, w), dtype=np.uint8)  # noqa: E731
    write_image(root / "gray.png", page(), dpi=(300, 300))
    cv2.imwrite(str(root / "colour.jpg"), np.dstack([page(40, 60)] * 3))
    cv2.imwrite(str(root / "deep.tif"), page().astype(np.uint16) * 257)
    write_pages(root / "two.tif", [page(), page(30, 30)], dpi=[(200, 200), (200, 200)])
    write_image(sub / "low.png", page(60, 60), dpi=(100, 100))
    (root / "empty.png").write_bytes(b"")
    ok, buf = cv2.imencode(".png", page(200, 200))
    (sub / "truncated.png").write_bytes(buf.tobytes()[:-400])


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def facts(report) -> list[tuple]:
    """What a report says about each file, without timings or worker counts."""
    return [(r.src.name, r.status, r.dst.name if r.dst else None, r.pages, r.reason)
            for r in report.done + report.skipped + report.failed]


def test_cluster_writes_exactly_the_files_denoise_folder_writes(client, tmp_path, rng):
    src = tmp_path / "scans"
    make_scans(src, rng)
    local = denoise_folder(src, tmp_path / "local", recursive=True, device="cpu")
    remote = denoise_folder(src, tmp_path / "cluster", recursive=True,
                                       device="cpu", scheduler=client)
    expected = files(tmp_path / "local")
    assert sorted(expected) == ["colour.png", "deep.png", "gray.png", "sub/low.png", "two.tif"]
    got = files(tmp_path / "cluster")
    assert sorted(got) == sorted(expected)
    for name in expected:  # byte for byte, DPI chunks included
        assert got[name] == expected[name], name
    assert facts(remote) == facts(local)
    assert remote.jobs == 2 and remote.pages == 6 and not remote.ok


def test_bad_files_are_reported_with_their_reason_and_the_rest_is_done(client, tmp_path, rng):
    src = tmp_path / "scans"
    make_scans(src, rng)
    report = denoise_folder(src, tmp_path / "out", recursive=True, device="cpu",
                                       scheduler=client)
    failed = {r.src.name: r.reason for r in report.failed}
    assert failed.keys() == {"empty.png", "truncated.png"}
    assert failed["empty.png"] == "file is empty (0 bytes)"
    assert "not a readable image" in failed["truncated.png"]
    assert len(report.done) == 5 and not report.interrupted
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # no temporaries left


def test_running_again_skips_every_output_already_there(client, tmp_path, rng):
    src = tmp_path / "scans"
    make_scans(src, rng)
    denoise_folder(src, tmp_path / "out", scheduler=client)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    again = denoise_folder(src, tmp_path / "out", scheduler=client)
    assert len(again.skipped) == 4 and not again.done
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before


def test_each_worker_process_builds_one_session_and_keeps_it(client, tmp_path, identity_model,
                                                             make_page_folder):
    src = make_page_folder(8, shape=(40, 40), folder="scans")
    model = str(identity_model.resolve())

    def sessions() -> tuple[int, list[int]]:
        """(pid, ids of this process's cached Denoisers for ``model``)."""
        from ocr_denoise import api

        return os.getpid(), sorted(id(d) for k, d in api._cache.items() if k[0] == model)

    assert all(not ids for _, ids in client.run(sessions).values())
    denoise_folder(src, tmp_path / "a", model=model, scheduler=client)
    first = client.run(sessions)
    denoise_folder(src, tmp_path / "b", model=model, scheduler=client)
    second = client.run(sessions)
    pids = {pid for pid, _ in first.values()}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    assert second == first  # the same sessions, reused by the second run
    assert all(len(ids) <= 1 for _, ids in first.values())  # one per process at most
    assert sum(len(ids) for _, ids in first.values()) >= 1


def test_missing_model_stops_the_run_once_with_a_clear_error(client, tmp_path, rng):
    src = tmp_path / "scans"
    make_scans(src, rng)
    with pytest.raises(ModelNotFoundError, match="nowhere.onnx"):
        denoise_folder(src, tmp_path / "out", model=tmp_path / "nowhere.onnx",
                                  scheduler=client)
    assert not (tmp_path / "out").exists()


def test_cluster_enlarges_with_the_enlarger_it_is_given_as_a_local_run_does(
        client, tmp_path, mix_enlarger):
    src = tmp_path / "scans"
    pages = small_print_folder(src, 4)
    remote = denoise_folder(src, tmp_path / "cluster", upscale="auto", enlarger=mix_enlarger,
                            device="cpu", scheduler=client)
    local = denoise_folder(src, tmp_path / "local", upscale="auto", enlarger=mix_enlarger,
                           device="cpu")
    assert remote.ok and facts(remote) == facts(local)
    assert files(tmp_path / "cluster") == files(tmp_path / "local")
    for name, page in pages.items():  # the model's enlargement, not cubic
        got = read_image(tmp_path / "cluster" / name)
        assert got.shape == (2 * page.shape[0], 2 * page.shape[1])
        np.testing.assert_array_equal(
            got, denoise_page(page, upscale="auto", enlarger=mix_enlarger), err_msg=name)
        assert not np.array_equal(got, denoise_page(page, upscale="auto", enlarger=None))


def test_a_wrong_kind_of_enlarger_stops_the_run_once_with_a_clear_error(client, tmp_path,
                                                                        rng):
    from ocr_denoise import SettingsError

    src = tmp_path / "scans"
    make_scans(src, rng)
    with pytest.raises(SettingsError, match="enlarger='denoise': .* is not an enlargement "
                                            "model"):
        denoise_folder(src, tmp_path / "out", upscale=2, enlarger="denoise", device="cpu",
                       scheduler=client)
    assert not (tmp_path / "out").exists()


def test_an_ocr_language_the_workers_lack_stops_the_run_once(client, tmp_path, rng,
                                                             monkeypatch):
    """A client that cannot run tesseract cannot check ``ocr_lang`` (``RunOptions``
    lets it through); the workers do, before any file: one ``SettingsError``, not a
    TesseractError for every file."""
    from ocr_denoise import SettingsError, work

    monkeypatch.setattr(work, "_check_languages_here", lambda lang: None)  # here only
    src = tmp_path / "scans"
    make_scans(src, rng)
    with pytest.raises(SettingsError, match="tesseract has no xyz"):
        denoise_folder(src, tmp_path / "out", ocr=True, ocr_lang="eng+xyz", device="cpu",
                       scheduler=client)
    assert not (tmp_path / "out").exists()


def test_cli_scheduler_switch_runs_the_folder_on_the_cluster(client, tmp_path, rng, capsys):
    from ocr_denoise.cli import main

    src = tmp_path / "scans"
    make_scans(src, rng)
    address = client.scheduler.address
    status = main([str(src), "-o", str(tmp_path / "out"), "-r", "--device", "cpu",
                   "--scheduler", address])
    err = capsys.readouterr().err
    assert status == 1, err  # two bad files
    assert "5 done (6 pages), 0 skipped (output already there), 2 failed" in err
    assert "pages/s, 2 jobs)" in err
    denoise_folder(src, tmp_path / "local", recursive=True, device="cpu")
    assert files(tmp_path / "out") == files(tmp_path / "local")


def test_cli_scheduler_address_works_in_a_process_with_no_client_of_its_own(client, tmp_path,
                                                                           rng):
    """The command line connects by address; this test process's Client (the
    default one here) must not be what makes it work."""
    import subprocess
    import sys

    src = tmp_path / "scans"
    make_scans(src, rng)
    r = subprocess.run([sys.executable, "-m", "ocr_denoise.cli", str(src), "-o",
                        str(tmp_path / "out"), "-r", "--device", "cpu", "--scheduler",
                        client.scheduler.address], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, r.stderr  # the two bad files
    assert "5 done (6 pages), 0 skipped (output already there), 2 failed" in r.stderr
    denoise_folder(src, tmp_path / "local", recursive=True, device="cpu")
    assert files(tmp_path / "out") == files(tmp_path / "local")


def test_file_that_kills_every_worker_trying_it_fails_alone(tmp_path, make_page_folder):
    """A page too big for the workers' memory limit: the nanny kills the worker,
    Dask retries the file on a fresh one, and after ``allowed-failures`` deaths the
    file is reported; the small pages around it are done. Every file is queued on a
    worker up front (saturation inf), so the small ones die with the big one's
    workers too, and Dask gives up on them as well: they must be retried and done."""
    import dask

    src = make_page_folder(3, shape=(40, 40), folder="scans")
    # 12000 x 12000 blank: a 100 kB file that decodes to 144 MB, then 576 MB as float.
    cv2.imwrite(str(src / "huge.png"), np.full((12000, 12000), 255, np.uint8))
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": "inf"}), \
            LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                         memory_limit="350MiB", dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        report = denoise_folder(src, tmp_path / "out", device="cpu", scheduler=c)
    assert [r.src.name for r in report.done] == ["p0.png", "p1.png", "p2.png"]
    assert [r.src.name for r in report.failed] == ["huge.png"]
    assert "worker process died" in report.failed[0].reason
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png",
                                                                    "p2.png"]


def test_readme_dask_example_runs_as_written(tmp_path):
    import shutil
    import subprocess
    import sys

    from helpers import REPO, readme_block

    code = readme_block("### Dask")
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 done (2 pages), 0 skipped (output already there), 0 failed" in r.stdout, r.stdout
    out = tmp_path / "out" / "dask"
    assert sorted(p.name for p in out.iterdir()) == ["sample_clean.png", "sample_noisy.png"]
    expected = denoise_folder(tmp_path / "examples", tmp_path / "local", device="cpu")
    assert expected.ok
    for p in out.iterdir():
        assert p.read_bytes() == (tmp_path / "local" / p.name).read_bytes(), p.name


def test_a_full_output_disk_stops_a_cluster_run(client, tmp_path, identity_model,
                                                make_page_folder, monkeypatch):
    """The full disk injected on the workers (``faults.full_disk_dask_work``: every
    page write fails with ENOSPC but p1.png's): once two failures come in a row the
    client submits nothing more; every file left is "not started" and was never
    denoised, and every write failure names its output."""
    import functools

    import faults

    from ocr_denoise import cluster

    src = make_page_folder(10, shape=(30, 30), folder="scans")
    out, log = tmp_path / "out", str(tmp_path / "started.log")
    monkeypatch.setattr(cluster, "_work",
                        functools.partial(faults.full_disk_dask_work, log, "p1.png"))
    report = denoise_folder(src, out, model=str(identity_model.resolve()),
                            executor=cluster.DaskExecutor(client, in_flight=2))

    started = faults.logged(log)
    reasons = {r.src.name: r.reason for r in report.failed}
    not_started = sorted(k for k, why in reasons.items() if why.startswith("not started"))
    assert [r.src.name for r in report.done] == ["p1.png"]
    assert not_started and not set(not_started) & set(started)
    assert sorted(started + not_started) == sorted(p.name for p in src.iterdir())
    for name in set(started) - {"p1.png"}:
        assert reasons[name] == f"OSError: No space left on device writing {out / name}"
    assert sorted(p.name for p in out.iterdir()) == ["p1.png"]


def test_a_file_retried_after_a_worker_death_is_logged_with_its_name_escaped(
        tmp_path, identity_model, make_page_folder, monkeypatch, caplog):
    """A newline in the name of a file whose worker died must not start a log line of
    its own (a forged ``done``). The worker really dies, once (``faults``)."""
    import functools
    import logging

    import dask
    import faults

    from ocr_denoise import cluster

    name = "a\nocr-denoise: done: forged.png"
    src = make_page_folder(names=[name, "b.png"], shape=(30, 30), folder="scans")
    monkeypatch.setattr(cluster, "_work",
                        functools.partial(faults.die_once_on_dask, str(tmp_path / "died")))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                         dashboard_address=":0") as lc, Client(lc) as c, \
            caplog.at_level(logging.WARNING, logger="ocr_denoise"):
        report = denoise_folder(src, tmp_path / "out", model=str(identity_model.resolve()),
                                scheduler=c)
    assert report.ok and len(report.done) == 2, report.summary()
    retrying = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert any("a\\nocr-denoise: done: forged.png" in m for m in retrying), caplog.text
    assert not any("\n" in m for m in retrying)
    assert "\nocr-denoise: done: forged.png" not in caplog.text  # Dask's own lines too


def test_ctrl_c_on_a_cluster_run_submits_nothing_more_and_prints_the_summary(client,
                                                                           tmp_path):
    """The CLI on a cluster, stopped with Ctrl-C (a real SIGINT to its process
    group): no traceback, exit 130, the summary with the rerun hint; the files the
    workers were on are written whole (there or not at all), nothing else starts,
    and a rerun does the rest, the same bytes as a local run."""
    import signal
    import subprocess
    import sys
    import threading

    from helpers import REPO, wait_for, write_random_pages

    src, out = tmp_path / "in", tmp_path / "out"
    write_random_pages(src, np.random.default_rng(4), 24, pattern="p{i:02d}.png",
                       shape=(320, 320))
    cmd = [sys.executable, "-m", "ocr_denoise.cli", str(src), "-o", str(out), "--device",
           "cpu", "--scheduler", client.scheduler.address]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    wait_for(lambda: (out.exists() and any(p.suffix == ".png" for p in out.iterdir()))
             or proc.poll() is not None, timeout=300)
    assert proc.poll() is None, "finished before it could be stopped"
    os.killpg(proc.pid, signal.SIGINT)
    rc = proc.wait(timeout=300)
    reader.join(60)
    text = "".join(lines)
    assert rc == 130, text
    assert "Traceback" not in text and "stopping (Ctrl-C)" in text, text
    assert "run the same command again" in text, text
    wait_for(lambda: not any(client.processing().values()))  # the workers are idle again
    first = sorted(p.name for p in out.iterdir())
    assert 0 < len(first) < 24 and not any(n.startswith(".") for n in first), first

    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    denoise_folder(src, tmp_path / "local", device="cpu")
    assert files(out) == files(tmp_path / "local")
