"""Embedding store writes and incremental scans at scale (run on demand).

    pytest tests/benchmarks/bench_store.py -m benchmark -s
    python tests/benchmarks/bench_store.py [N_VECTORS] [N_FILES]

Reports, for storing N float16 vectors of dim 384 in batches of 32 (the CLI's batch):
the time, the bytes written to the cache folder as a ratio to the vectors' own size, and
the rate of the last 10% of batches as a ratio to the first 10% (a store that rewrites
itself slows down as it grows). Baseline measured in the same run: writing the same bytes
with one ``np.save``.

For scans: the time to the first result of a cold scan (hashing every file) and of a
re-scan through the file memo (stat only), and the ratio between them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

DIM = 384


def _disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _io_written() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def store_writes(n: int = 100_000, batch: int = 32) -> dict[str, float]:
    from galaxy_explorer.core.cache import EmbeddingStore

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]  # random, like content
    tmp = Path(tempfile.mkdtemp(prefix="ge-bench-store-"))
    try:
        t0 = time.perf_counter()
        np.save(tmp / "baseline.npy", vecs.astype(np.float16))
        os.sync()
        base_s = time.perf_counter() - t0
        vec_bytes = n * DIM * 2
        io0 = _io_written()
        times = []
        t_all = time.perf_counter()
        with EmbeddingStore(tmp / "cache", "bench", "r", DIM) as st:
            for i in range(0, n, batch):
                t = time.perf_counter()
                st.put(keys[i : i + batch], vecs[i : i + batch])
                times.append(time.perf_counter() - t)
        total_s = time.perf_counter() - t_all
        io1 = _io_written()
        disk = _disk_bytes(tmp / "cache")
        tenth = max(1, len(times) // 10)
        first, last = sum(times[:tenth]), sum(times[-tenth:])
        with EmbeddingStore(tmp / "cache", "bench", "r", DIM) as st:
            t = time.perf_counter()
            got, found = st.get(keys)
            read_s = time.perf_counter() - t
            assert found.all()
        return {
            "n": n,
            "seconds": total_s,
            "baseline_np_save_s": base_s,
            "disk_bytes_over_vector_bytes": disk / vec_bytes,
            "io_written_over_vector_bytes": (io1 - io0) / vec_bytes if io0 >= 0 else float("nan"),
            "last_tenth_rate_over_first": first / last if last else float("nan"),
            "read_all_s": read_s,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scan_times(n_files: int = 100_000) -> dict[str, float]:
    from galaxy_explorer.core.cache import FileMemo
    from galaxy_explorer.core.catalog import scan

    tmp = Path(tempfile.mkdtemp(prefix="ge-bench-scan-"))
    try:
        folder = tmp / "cutouts"
        for d in range(0, n_files, 1000):
            sub = folder / f"d{d // 1000:04d}"
            sub.mkdir(parents=True)
            for i in range(d, min(d + 1000, n_files)):
                (sub / f"g{i:07d}.fits").write_bytes(i.to_bytes(8, "little") * 360)  # 2880 B
        t = time.perf_counter()
        first = scan(folder, memo=FileMemo(tmp / "cache"))
        cold = time.perf_counter() - t
        t = time.perf_counter()
        again = scan(folder, memo=FileMemo(tmp / "cache"))
        warm = time.perf_counter() - t
        t = time.perf_counter()
        for dirpath, _, names in os.walk(folder):
            for name in names:
                os.stat(os.path.join(dirpath, name))
        stat_only = time.perf_counter() - t
        assert len(first.items) == len(again.items) == n_files
        return {
            "files": n_files,
            "cold_scan_s": cold,
            "memo_rescan_s": warm,
            "walk_and_stat_s": stat_only,
            "rescan_over_stat": warm / stat_only,
            "cold_over_rescan": cold / warm,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.benchmark
def test_store_write_benchmark():
    res = store_writes()
    print("\nstore writes:", {k: round(v, 3) for k, v in res.items()})
    res = scan_times()
    print("scan:", {k: round(v, 3) for k, v in res.items()})


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    print("store writes:", {k: round(v, 3) for k, v in store_writes(n).items()})
    print("scan:", {k: round(v, 3) for k, v in scan_times(files).items()})
