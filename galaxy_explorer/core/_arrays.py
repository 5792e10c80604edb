"""Small array helpers that stay fast at millions of rows.

numpy 2.4's ``np.unique`` without ``return_*`` arguments takes a hash-based path that, for
int64 rows, measured 2.4-2.9 s on 500k values on the 2-core test machine (sorting them
takes 25 ms). Row sets (selections) go through :func:`unique_rows` instead.

:func:`paused_gc` keeps the garbage collector's full passes away from code that builds
millions of Python objects (a catalogue's items and their paths).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["difference_rows", "paused_gc", "union_rows", "unique_rows"]

_GC_LOCK = threading.Lock()
_gc_depth = 0
_gc_was_enabled = True


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector meanwhile, then freeze what was built.

    Building a million rows' objects (items, paths, per-row lists) made the collector run
    full passes over all of them again and again as they grew: 14 passes of up to 1.9 s
    each while a 1M catalogue opened (measured, issue #12), each holding the GIL, so the
    GUI thread froze for as long. With the collector paused no pass runs meanwhile, and
    :func:`gc.freeze` (O(1)) then moves everything alive into the permanent generation,
    which later passes skip. Objects are still freed by reference counting; only cycles
    made meanwhile are never collected.

    Process-wide (the collector is): nested or concurrent uses keep it paused until the
    last one ends, and it is enabled again only if it was enabled before the first.
    """
    global _gc_depth, _gc_was_enabled
    with _GC_LOCK:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_depth -= 1
            gc.freeze()
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def limit_blas_threads() -> int:
    """Limit every loaded BLAS library (OpenBLAS, MKL) to one thread less than the CPUs.

    BLAS threads wait for work by spinning and synchronise at every call: on a 2-core
    machine with anything else running, an SVD of 1,000 x 384 took 0.65 s with two OpenBLAS
    threads and 0.12-0.15 s with one (#12), and the spinning threads took the core the GUI
    thread needed. Process-wide; call it again after a BLAS is loaded later (scipy's,
    torch's start with every core). Returns the limit (0 if it could not be set).
    """
    import os

    n = max(1, (os.cpu_count() or 2) - 1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return 0
    return n


def unique_rows(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of an integer array (sort, then drop repeats)."""
    a = np.asarray(a, dtype=np.int64).ravel()
    if len(a) < 2 or bool((a[1:] > a[:-1]).all()):  # already sorted and unique: 1 ms at 1M
        return a.copy()
    a = np.sort(a)
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def union_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted union of two integer row arrays."""
    return unique_rows(np.concatenate([np.asarray(a).ravel(), np.asarray(b).ravel()]))


def difference_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted unique rows of ``a`` that are not in ``b``."""
    a = unique_rows(a)
    b = np.asarray(b, dtype=np.int64).ravel()
    if not len(a) or not len(b):
        return a
    return a[~_member(a, b)]


def _member(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` sorted unique: whether each value is in ``b`` (binary search, no hashing)."""
    bs = np.sort(b)
    pos = np.searchsorted(bs, a)
    pos[pos >= len(bs)] = len(bs) - 1
    return bs[pos] == a
