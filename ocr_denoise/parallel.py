"""Bands of a page on several threads, results in order.

``tiling.apply_tiled`` hands each band of a page, and ``Denoiser.denoise_patches``
each batch of a call, to ``map_ordered``: with one worker it runs in the
caller's thread; with more, on a thread pool (numpy, OpenCV and onnxruntime
release the GIL for their work). Results come back in order, so whatever is
summed over them is summed in the same order whatever the number of workers,
and the page's bytes do not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_ordered(fn: Callable[[T], R], items: Iterable[T], workers: int = 1) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in the items' order. ``workers`` > 1
    runs up to that many at once on threads (``fn`` must then be thread-safe);
    an exception from any call is raised here, and calls not yet started are
    cancelled (those running finish first)."""
    todo = list(items)
    if workers <= 1 or len(todo) <= 1:
        for item in todo:
            yield fn(item)
        return
    pool = ThreadPoolExecutor(max_workers=min(workers, len(todo)),
                              thread_name_prefix="ocr_denoise-band")
    try:
        yield from pool.map(fn, todo)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
