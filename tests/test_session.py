"""The Denoiser and its onnxruntime session, with tiny real ONNX models built in-test."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import subprocess
import sys
import textwrap
import threading

import numpy as np
import onnxruntime as ort
import pytest
from helpers import REPO, make_onnx_model, text_page

from ocr_denoise import Denoiser, InferenceError, ProviderError
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
def test_denoiser_asked_for_cuda_on_a_cpu_build_refuses_at_creation(identity_model):
    with pytest.raises(ProviderError):
        Denoiser(identity_model, device="cuda")


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
    assert d._loaded is not None
    d2 = pickle.loads(pickle.dumps(d))
    assert d2._loaded is None and d2.batch_size == 33 and d2.overlap == 4
    np.testing.assert_array_equal(d2.denoise(np.full((9, 9), 7, np.uint8)), 7)


def test_session_built_once_under_concurrent_first_use(identity_model, monkeypatch):
    # A Denoiser arriving in a worker (unpickled) builds its session on first use.
    d = pickle.loads(pickle.dumps(Denoiser(identity_model, device="cpu")))
    calls = []
    real = d._build_session
    barrier = threading.Barrier(8)

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(d, "_build_session", counting)

    def work():
        barrier.wait()
        d.denoise(np.zeros((10, 10), np.uint8), guard=False)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_missing_model_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        Denoiser(tmp_path / "nope.onnx")


def test_importing_adds_no_log_handlers():
    assert logging.getLogger("ocr_denoise.session").handlers == []


# -- settings ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,msg", [
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
    ({"batch_size": True}, TypeError, "batch_size must be an int"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an int.*float"),
    ({"overlap": 15}, ValueError, r"overlap must be in \[0, 14\].*got 15"),
    ({"overlap": -1}, ValueError, "overlap"),
    ({"overlap": "6"}, TypeError, "overlap must be an int.*str"),
    ({"threads": 0}, ValueError, "threads must be >= 1"),
    ({"device": None}, TypeError, "device must be.*got None"),
    ({"device": []}, TypeError, "device must be"),
    ({"device": ["NoSuchExecutionProvider"]}, ProviderError, "NoSuchExecutionProvider"),
    ({"skip_white": 0}, ValueError, r"skip_white must be in \(0, 1\] or None, got 0"),
    ({"skip_white": 1.5}, ValueError, "skip_white.*1.5"),
    ({"skip_white": float("nan")}, ValueError, "skip_white.*nan"),
    ({"skip_white": True}, TypeError, "skip_white must be 'auto', a number.*bool"),
    ({"skip_white": "0.9"}, TypeError, "skip_white.*str '0.9'"),
    ({"skip_white": "AUTO"}, TypeError, "skip_white.*str 'AUTO'"),
    ({"skip_white": np.bool_(True)}, TypeError, "skip_white must be 'auto', a number.*bool"),
])
def test_bad_settings_are_refused_at_creation_naming_the_setting(identity_model, kwargs,
                                                                  exc, msg):
    with pytest.raises(exc, match=msg):
        Denoiser(identity_model, **kwargs)


def test_blank_patches_are_skipped_by_default_only_for_the_shipped_model(identity_model):
    """The shipped model was measured to write white on blank patches; a model of the
    user's was not, so by default it sees every patch."""
    from ocr_denoise.model import default_model_path
    from ocr_denoise.tiling import DEFAULT_SKIP_WHITE
    assert Denoiser().skip_white == DEFAULT_SKIP_WHITE
    assert Denoiser(default_model_path()).skip_white == DEFAULT_SKIP_WHITE
    assert Denoiser(identity_model).skip_white is None
    assert Denoiser(identity_model, skip_white=0.9).skip_white == 0.9
    assert Denoiser(skip_white=None).skip_white is None


def test_the_shipped_model_is_recognised_by_path_or_link_and_a_copy_is_another(tmp_path):
    """"auto" goes by which file it is: the shipped one under any spelling of its
    path or through a link (exported/ holds one) skips blank patches; a copy is
    the user's model, for which nothing was measured."""
    import shutil

    from helpers import REPO

    from ocr_denoise.model import checksum_path, default_model_path
    from ocr_denoise.tiling import DEFAULT_SKIP_WHITE
    shipped = default_model_path()
    link = tmp_path / "link.onnx"
    link.symlink_to(shipped)
    copy = tmp_path / "copy.onnx"
    shutil.copy(shipped, copy)
    shutil.copy(checksum_path(shipped), checksum_path(copy))
    for same in (str(shipped), shipped.parent / ".." / "models" / shipped.name, link,
                 REPO / "exported" / "denoiser.onnx"):
        assert Denoiser(same).skip_white == DEFAULT_SKIP_WHITE, same
    assert Denoiser(copy).skip_white is None
    from ocr_denoise import ModelNotFoundError
    with pytest.raises(ModelNotFoundError):  # resolving "auto" hides no missing file
        Denoiser(tmp_path / "missing.onnx")


def test_a_denoiser_pickled_before_skip_white_existed_runs_every_patch(identity_model):
    d = Denoiser(identity_model, device="cpu", skip_white=0.5)
    state = d.__getstate__()
    del state["skip_white"]  # what a 0.1 Denoiser's pickle holds
    old = Denoiser.__new__(Denoiser)
    old.__setstate__(state)
    assert old.skip_white is None
    np.testing.assert_array_equal(old.denoise(np.full((9, 9), 200, np.uint8)), 200)


def test_model_argument_of_the_wrong_type_is_refused(tmp_path):
    with pytest.raises(TypeError, match="model must be a path.*int"):
        Denoiser(3)  # type: ignore[arg-type]


# -- runtime failures of the model --------------------------------------------------------

def test_model_that_returns_infinity_at_run_time_raises_inference_error(tmp_path):
    # log|x - 0.5| is finite for the white and black probe patches but -inf at 0.5.
    from helpers import make_onnx_graph_model, node, scalar

    path = make_onnx_graph_model(
        tmp_path / "log.onnx",
        [node("Sub", ["x", "half"], ["d"]), node("Abs", ["d"], ["a"]),
         node("Log", ["a"], ["y"])],
        ["N", 28, 28, 1], ["N", 28, 28, 1], initializers=[scalar("half", 0.5)])
    d = Denoiser(path, device="cpu")  # passes the load-time probe
    with pytest.raises(InferenceError, match=r"log\.onnx.*NaN or infinite"):
        d.denoise(np.full((40, 40), 0.5, np.float32), guard=False)  # a flat page runs too


def test_onnxruntime_out_of_memory_is_an_inference_error_not_a_crash(tmp_path):
    """Allow onnxruntime only ~150 MB more address space than it has after loading,
    then ask for 8192-patch batches (its arena alone wants ~2 GB): the process
    must report an InferenceError (or MemoryError) and go on, not abort."""
    script = textwrap.dedent("""
        import resource, sys
        import numpy as np
        from ocr_denoise import Denoiser, InferenceError
        d = Denoiser(device="cpu", batch_size=8192, skip_white=None)  # a blank page
        page = np.full((60, 8192 * 22 // 3), 200, np.uint8)
        vm = [int(l.split()[1]) for l in open("/proc/self/status")
              if l.startswith("VmSize")][0] * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 150 * 2**20,) * 2)
        try:
            d.denoise(page, guard=False)
            print("RESULT ok")
        except InferenceError as e:
            print("RESULT InferenceError", e)
        except MemoryError as e:
            print("RESULT MemoryError", e)
        print("ALIVE")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ALIVE" in r.stdout
    assert "RESULT InferenceError" in r.stdout or "RESULT MemoryError" in r.stdout, r.stdout
    if "InferenceError" in r.stdout:
        assert "lower batch_size (now 8192)" in r.stdout


# -- threads, processes, determinism -----------------------------------------------------

def _pages(n: int, seed: int = 7) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    pages = []
    for i in range(n):
        g = text_page(rng, 50 + 13 * i, 70 + 17 * i)
        noisy = np.clip(g + 0.2 * rng.standard_normal(g.shape), 0, 1)
        pages.append((noisy * 255).round().astype(np.uint8))
    return pages


def test_one_denoiser_from_8_threads_gives_the_bytes_of_sequential_use():
    d = Denoiser(device="cpu", batch_size=16)  # small batches: many interleaved runs
    pages = _pages(8)
    sequential = [d.denoise(p).tobytes() for p in pages]
    barrier = threading.Barrier(8)
    results: dict[tuple[int, int], bytes] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for rep in range(3):
                i = (t + rep) % len(pages)  # every thread runs different pages at once
                results[(t, rep)] = d.denoise(pages[i]).tobytes()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 24
    for (t, rep), got in results.items():
        assert got == sequential[(t + rep) % len(pages)], (t, rep)


def test_creating_denoisers_from_8_threads_at_once_works(identity_model):
    barrier = threading.Barrier(8)
    outs: list[np.ndarray] = []
    errors: list[BaseException] = []
    page = np.arange(30 * 41, dtype=np.uint16).reshape(30, 41) * 50

    def work() -> None:
        try:
            barrier.wait()
            outs.append(Denoiser(identity_model, device="cpu").denoise(page))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(outs) == 8 and all(np.array_equal(o, outs[0]) for o in outs)


_inherited_denoiser: Denoiser | None = None


def _use_inherited(page: np.ndarray) -> tuple[int, int, bytes]:
    """In a forked child: use the module-global Denoiser the parent built."""
    d = _inherited_denoiser
    assert d is not None
    out = d.denoise(page)
    return os.getpid(), d._loaded.pid, out.tobytes()


def _use_passed(d: Denoiser, page: np.ndarray) -> tuple[int, int, bytes]:
    """In a child: use a Denoiser that arrived pickled (settings only)."""
    out = d.denoise(page)
    return os.getpid(), d._loaded.pid, out.tobytes()


def test_denoiser_inherited_through_fork_rebuilds_its_session_and_gives_same_bytes():
    global _inherited_denoiser
    d = _inherited_denoiser = Denoiser(device="cpu")
    pages = _pages(4)
    want = [d.denoise(p).tobytes() for p in pages]  # parent's session exists and ran
    ctx = multiprocessing.get_context("fork")
    try:
        with ctx.Pool(2) as pool:
            got = pool.map(_use_inherited, pages)
    finally:
        _inherited_denoiser = None
    for (child_pid, session_pid, out), ref in zip(got, want):
        assert child_pid != os.getpid()
        assert session_pid == child_pid  # a fresh session, not the parent's
        assert out == ref


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_denoiser_sent_to_worker_processes_gives_same_bytes(method):
    d = Denoiser(device="cpu")
    pages = _pages(4)
    want = [d.denoise(p).tobytes() for p in pages]
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        got = pool.starmap(_use_passed, [(d, p) for p in pages])
    for (child_pid, session_pid, out), ref in zip(got, want):
        assert child_pid != os.getpid() and session_pid == child_pid
        assert out == ref


def _child_after_locked_fork(q) -> None:
    d = _inherited_denoiser
    q.put(d.denoise(np.full((9, 9), 77, np.uint8)).tobytes())


def test_fork_while_the_session_lock_is_held_does_not_deadlock_the_child(identity_model):
    """If another thread is building a session when the process forks, the child
    inherits a held lock; the at-fork hook must give it a fresh one."""
    global _inherited_denoiser
    d = _inherited_denoiser = Denoiser(identity_model, device="cpu")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_after_locked_fork, args=(q,))
    d._lock.acquire()  # as if a build were under way in another thread
    try:
        p.start()
        try:
            out = q.get(timeout=120)
        except queue.Empty:
            out = None
        p.join(timeout=30)
    finally:
        d._lock.release()
        _inherited_denoiser = None
        if p.is_alive():  # only on failure: the child is stuck on the inherited lock
            p.kill()
            p.join()
    assert out == np.full((9, 9), 77, np.uint8).tobytes(), "the child deadlocked"
    assert p.exitcode == 0


def test_same_input_gives_same_bytes_across_sessions_batch_sizes_and_threads():
    page = _pages(1, seed=3)[0]
    page = np.vstack([page, page[::-1]])  # 100 x 70: 5 x 4 patches
    ref = Denoiser(device="cpu", batch_size=512).denoise(page)
    for batch_size in (1, 3, 7, 64, 512, 4096):
        for threads in (1, 2, None):
            got = Denoiser(device="cpu", batch_size=batch_size, threads=threads).denoise(page)
            assert got.tobytes() == ref.tobytes(), (batch_size, threads)


def test_onnxruntime_conv_output_for_a_patch_does_not_depend_on_its_batch(rng):
    """The guarantee under the one above: a patch's output is the same bytes
    whether it is run alone, in a batch of 7 or in a batch of 300."""
    patches = rng.random((300, 28, 28), dtype=np.float32)
    alone = Denoiser(device="cpu", batch_size=1).denoise_patches(patches)
    for batch_size in (7, 300):
        got = Denoiser(device="cpu", batch_size=batch_size).denoise_patches(patches)
        assert np.array_equal(got, alone), batch_size


def test_denoise_patches_refuses_patches_of_the_wrong_size(identity_model):
    d = Denoiser(identity_model, device="cpu")
    with pytest.raises(ValueError, match=r"expected patches of shape \(N, 28, 28\), got"):
        d.denoise_patches(np.zeros((2, 32, 32), np.float32))


def _context_model(tmp_path, output: str, metadata: dict | None = None):
    """y = the context window (``output="context"``) or the patch, of a model that
    declares ``context=quarter-v1`` and so has the second input."""
    from helpers import make_onnx_graph_model, node

    nchw = ["N", 1, 28, 28]
    return make_onnx_graph_model(tmp_path / f"ctx-{output}.onnx",
                                 [node("Identity", [output], ["y"])], nchw, nchw,
                                 extra_inputs=("context",),
                                 metadata={"context": "quarter-v1", **(metadata or {})})


def test_context_model_gets_the_quarter_page_window_centred_on_each_patch(tmp_path):
    """A model that returns its context window, with no overlap, draws each patch's
    window: a dark 8x8 square (4 blocks of 4x4) must appear, shrunk to 2x2, where
    each patch's window has it: block (b - centre block + 14) of that patch."""
    page = np.full((100, 120), 255, np.uint8)
    page[40:48, 60:68] = 0  # blocks rows 10..11, columns 15..16
    out = Denoiser(_context_model(tmp_path, "context"), device="cpu",
                   overlap=0).denoise(page, guard=False)
    want = np.zeros(page.shape, bool)
    for y0 in range(0, 100, 28):
        for x0 in range(0, 120, 28):
            for by in (10, 11):
                for bx in (15, 16):
                    u = by - (y0 + 14) // 4 + 14
                    v = bx - (x0 + 14) // 4 + 14
                    if 0 <= u < 28 and 0 <= v < 28 and y0 + u < 100 and x0 + v < 120:
                        want[y0 + u, x0 + v] = True
    assert want.sum() > 4  # several patches see the square
    np.testing.assert_array_equal(out < 128, want)


def test_context_model_reads_the_page_as_preprocessed(tmp_path, rng):
    """With flatten-v1, the context is the flattened page: a page on grey paper
    comes back as white paper in the window too."""
    page = np.full((90, 90), 150, np.uint8)
    out = Denoiser(_context_model(tmp_path, "context", {"preprocess": "flatten-v1"}),
                   device="cpu").denoise(page, guard=False)
    assert out.min() == 255


def test_context_windows_are_required_by_a_context_model_and_refused_by_others(
        tmp_path, identity_model):
    patches = np.ones((3, 28, 28), np.float32)
    ctx = Denoiser(_context_model(tmp_path, "x"), device="cpu")
    assert ctx.reads_context and not Denoiser(identity_model, device="cpu").reads_context
    with pytest.raises(ValueError, match="reads page context .* pass context_windows"):
        ctx.denoise_patches(patches)
    with pytest.raises(ValueError, match="expected the patches'"):
        ctx.denoise_patches(patches, np.ones((2, 28, 28), np.float32))
    np.testing.assert_array_equal(ctx.denoise_patches(patches, 0 * patches), patches)
    with pytest.raises(ValueError, match="reads no page context"):
        Denoiser(identity_model, device="cpu").denoise_patches(patches, patches)


def test_threads_are_bands_at_once_on_the_cpu_and_never_change_the_page(rng, monkeypatch):
    """On the CPU a Denoiser denoises ``threads`` bands at once (every core by
    default); the page is the same bytes as one band at a time."""
    from ocr_denoise import tiling
    from ocr_denoise.session import available_cores
    assert Denoiser(device="cpu").workers == available_cores()
    assert Denoiser(device="cpu", threads=3).workers == 3
    page = (text_page(rng, 700, 300) * 255).astype(np.uint8)
    noisy = np.clip(page + rng.normal(0, 40, page.shape), 0, 255).astype(np.uint8)
    one = Denoiser(device="cpu", threads=1).denoise(noisy, guard=False)
    monkeypatch.setattr(tiling, "BAND_PATCHES", 1)  # a band per patch row: many to spread
    for threads in (2, 5):
        got = Denoiser(device="cpu", threads=threads).denoise(noisy, guard=False)
        assert got.tobytes() == one.tobytes(), threads


def test_a_call_of_many_batches_runs_them_on_the_workers_with_the_same_bytes(rng, monkeypatch):
    import threading
    import time
    x = rng.random((300, 28, 28), dtype=np.float32)
    one = Denoiser(device="cpu", threads=1, batch_size=16).denoise_patches(x)
    d = Denoiser(device="cpu", threads=3, batch_size=16)
    seen = set()
    real = d._run

    def spy(loaded, xb, c=None):
        seen.add(threading.get_ident())
        time.sleep(0.005)  # long enough that every worker gets a batch
        return real(loaded, xb, c)

    monkeypatch.setattr(d, "_run", spy)
    got = d.denoise_patches(x)
    assert got.tobytes() == one.tobytes()
    assert len(seen) > 1  # the 19 batches did not all run on one thread


def test_callers_on_many_threads_share_the_denoisers_cores(rng, monkeypatch):
    """Eight threads denoising pages through one Denoiser(threads=2) never have more
    than two onnxruntime runs going at once: each page's band pool would otherwise
    add its own."""
    import threading
    import time
    d = Denoiser(device="cpu", threads=2, batch_size=8)
    now, most, lock = [0], [0], threading.Lock()
    real = d._run

    def counting(loaded, x, c=None):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.002)
        try:
            return real(loaded, x, c)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(d, "_run", counting)
    pages = [(rng.random((120, 90)) * 255).astype(np.uint8) for _ in range(8)]
    threads = [threading.Thread(target=d.denoise, args=(p,), kwargs={"guard": False})
               for p in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 2


# -- cores: affinity capped by a cgroup CPU quota (issue 34) ---------------------------


def _cgroup(tmp_path, files: dict[str, str], own: str = "0::/\n"):
    """A fake cgroup mount under tmp_path with ``files`` (relative path -> text), and
    a /proc/self/cgroup naming ``own``; returns (root, proc_cgroup)."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(own)
    return root, proc


@pytest.mark.parametrize("files, own, want", [
    ({"cpu.max": "200000 100000\n"}, "0::/\n", 2),          # docker run --cpus 2 (v2)
    ({"cpu.max": "150000 100000\n"}, "0::/\n", 2),          # --cpus 1.5: rounded up
    ({"cpu.max": "50000 100000\n"}, "0::/\n", 1),           # half a core: at least 1
    ({"cpu.max": "max 100000\n"}, "0::/\n", None),          # no quota
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"},
     "4:cpu,cpuacct:/\n", 3),                               # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
     "4:cpu,cpuacct:/\n", None),                            # v1, no quota
    ({"system.slice/cpu.max": "100000 100000\n",
      "system.slice/x.service/cpu.max": "400000 100000\n"},
     "0::/system.slice/x.service\n", 1),                    # a parent's quota counts
    ({}, "0::/\n", None),                                   # no cgroup files at all
    ({"cpu.max": "garbage\n"}, "0::/\n", None),             # unreadable: ignored
])
def test_cgroup_cpu_limit_reads_v2_and_v1_quotas(tmp_path, files, own, want):
    from ocr_denoise.session import cgroup_cpu_limit
    root, proc = _cgroup(tmp_path, files, own)
    assert cgroup_cpu_limit(root, proc) == want


def test_available_cores_is_the_affinity_capped_by_the_cgroup_quota(tmp_path, monkeypatch):
    """A container limited to 2 CPUs with every host core in its affinity gets 2
    cores; without a quota, or with missing files, the affinity; never below 1."""
    from ocr_denoise import session
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(session.os, "sched_getaffinity", lambda pid: set(range(64)))
    root, proc = _cgroup(tmp_path, {"cpu.max": "200000 100000\n"})
    monkeypatch.setattr(session, "CGROUP_ROOT", root)
    monkeypatch.setattr(session, "PROC_CGROUP", proc)
    assert session.available_cores() == 2
    (root / "cpu.max").write_text("max 100000\n")
    assert session.available_cores() == 64
    (root / "cpu.max").unlink()
    assert session.available_cores() == 64
    monkeypatch.setattr(session.os, "sched_getaffinity", lambda pid: set(range(affinity)))
    (root / "cpu.max").write_text("6400000 100000\n")  # a quota above the affinity
    assert session.available_cores() == affinity
    monkeypatch.setattr(session, "PROC_CGROUP", tmp_path / "absent")
    assert session.available_cores() == affinity
