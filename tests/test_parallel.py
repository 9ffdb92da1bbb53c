"""ocr_denoise.parallel: bands on threads, results in the bands' order."""

from __future__ import annotations

import threading
import time

import pytest

from ocr_denoise.parallel import map_ordered


@pytest.mark.parametrize("workers", [1, 2, 7])
def test_results_come_back_in_order_whatever_finishes_first(workers):
    def slow_first(i):
        time.sleep(0.02 if i == 0 else 0.0)
        return i * i

    assert list(map_ordered(slow_first, range(10), workers)) == [i * i for i in range(10)]


def test_one_worker_runs_in_the_callers_thread_and_more_do_not():
    here = threading.get_ident()
    assert set(map_ordered(lambda _: threading.get_ident(), range(3), 1)) == {here}
    barrier = threading.Barrier(2, timeout=5)  # two calls must be running at once

    def meet(_):
        barrier.wait()
        return threading.get_ident()

    assert here not in set(map_ordered(meet, range(2), 2))


def test_an_error_is_raised_to_the_caller_and_calls_not_started_are_cancelled():
    started = []

    def fail_at_two(i):
        started.append(i)
        if i == 2:
            raise ValueError("band 2 failed")
        time.sleep(0.02)
        return i

    with pytest.raises(ValueError, match="band 2 failed"):
        list(map_ordered(fail_at_two, range(50), 2))
    assert len(started) < 50
