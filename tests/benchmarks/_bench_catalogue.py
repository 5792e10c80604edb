"""A cached catalogue built synthetically through the real store APIs, for the scale benchmarks.

``bench_query_scale.py`` and ``bench_app_scale.py`` both time a folder whose every file
already has a vector in the cache. Building one honestly goes through the same code a user's
first run does: the files are scanned into the :class:`FileMemo` (content hash, size, mtime,
inode) and one random unit vector per file is written with :meth:`EmbeddingStore.put` under
a given model key. The files are a few bytes of distinct content each (never decoded: every
one already has a vector), 1000 per subfolder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

PER_FOLDER = 1000


def build_catalogue(
    folder: Path, cache: Path, n: int, adapter_key: str, dim: int, *, verbose: bool = False
) -> None:
    """``n`` files under ``folder`` (1000 per subfolder), memo + vectors in ``cache``."""
    from galaxy_explorer.core.cache import EmbeddingStore, FileMemo
    from galaxy_explorer.core.catalog import scan
    from galaxy_explorer.core.imaging import RenderSettings

    t0 = time.perf_counter()
    for i in range(n):
        sub = folder / f"part{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            sub.mkdir(parents=True, exist_ok=True)
        (sub / f"g{i:07d}.png").write_bytes(b"synthetic cutout %d" % i)
    t1 = time.perf_counter()
    memo = FileMemo(cache)
    try:
        items = scan([folder], memo=memo).items
    finally:
        memo.close()
    assert len(items) == n, (len(items), n)
    t2 = time.perf_counter()
    rng = np.random.default_rng(n)
    store = EmbeddingStore(cache, adapter_key, RenderSettings().key(), dim)
    try:
        for start in range(0, n, 8192):
            chunk = items[start : start + 8192]
            v = rng.standard_normal((len(chunk), dim)).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            store.put([it.sha256 for it in chunk], v)
    finally:
        store.close()
    if verbose:
        print(
            f"  built {n:,} files: write {t1 - t0:.0f} s, first scan {t2 - t1:.0f} s, "
            f"vectors {time.perf_counter() - t2:.0f} s"
        )
