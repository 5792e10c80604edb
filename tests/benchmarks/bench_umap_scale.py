"""UMAP at scale through ``projection_job`` (run on demand).

    pytest tests/benchmarks/bench_umap_scale.py -m benchmark -s
    python tests/benchmarks/bench_umap_scale.py [N_BIG] [FIT_ROWS] [AGAIN]

(``AGAIN=0`` skips step 4, e.g. for one map of 1M; ``BENCH_PRESTART=1`` prestarts the
worker and waits for its warm-up first, as an app does when a catalogue opens.)

Synthetic clustered unit vectors (D=384, the bundled model's dimension). In one process:

1. 1k points, first map of the session: starts the UMAP worker and pays numba's compiling
   (what every map cost before the worker was kept: the baseline);
2. another 1k points: the same worker, already compiled (target <= 5 s);
3. N_BIG points (default 100k): fitted on ``FIT_ROWS`` (default: the config's), the rest
   placed in chunks (target <= 60 s). The first large map of a session also compiles
   pynndescent's nearest-neighbour descent (the 1k maps use exact neighbours), so:
4. another N_BIG points, the steady state. Reports the peak RSS of the worker process.

Each map goes to an empty cache folder, so nothing is a cache hit. Ratios are to step 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

D = 384


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, D)).astype(np.float32)
    lab = rng.integers(0, 12, n)
    emb = centers[lab] + 0.6 * rng.standard_normal((n, D), dtype=np.float32)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def _peak_rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) the process has used so far."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


CPU: dict[str, float] = {}


def _map(emb: np.ndarray, config, tmp: Path, name: str = "") -> tuple[float, float]:
    """Seconds to the finished map, and to the end of the fit (first points placed).

    The worker's CPU seconds for the map go to ``CPU[name]``.
    """
    from galaxy_explorer.core._umap_child import worker
    from galaxy_explorer.core.jobs import projection_job

    pid = worker().pid
    cpu0 = _cpu_s(pid) if pid is not None else 0.0
    t0 = time.perf_counter()
    last = None
    fitted = float("nan")
    with tempfile.TemporaryDirectory(dir=tmp) as cache:
        for prog in projection_job(emb, config, Path(cache), cancel=threading.Event(), poll=0.2):
            last = prog
            if prog.placed and fitted != fitted:
                fitted = time.perf_counter() - t0
    assert last is not None and last.error is None and last.coords is not None, last
    CPU[name] = _cpu_s(worker().pid) - cpu0
    print(f"  ({name}: worker CPU {CPU[name]:.1f} s, load {os.getloadavg()[0]:.1f})", flush=True)
    return time.perf_counter() - t0, fitted


def run(n_big: int = 100_000, fit_rows: int | None = None, again: int = 1) -> dict[str, float]:
    """Run the steps above; ``again=0`` skips step 4 (for a single 1M map)."""
    from galaxy_explorer.core._arrays import limit_blas_threads
    from galaxy_explorer.core._umap_child import worker
    from galaxy_explorer.core.projection import UMAPConfig

    limit_blas_threads()  # as the app does (its PCA of each map runs in this process)
    cfg = UMAPConfig() if fit_rows is None else UMAPConfig(fit_rows=fit_rows)
    tmp = Path(tempfile.mkdtemp(prefix="ge-bench-umap-"))
    res: dict[str, float] = {}
    if os.environ.get("BENCH_PRESTART") == "1":  # as an app would when a catalogue opens
        t0 = time.perf_counter()
        worker().prestart()
        while worker().warm is None and time.perf_counter() - t0 < 1200:
            time.sleep(0.2)
        res["warm_up_s"] = time.perf_counter() - t0
        print(f"prestarted worker warmed up in {res['warm_up_s']:.1f} s: {worker().warm}")
    res["first_1k_s"], _ = _map(_data(1000, 1), cfg, tmp, "first_1k")
    print(f"1k first: {res['first_1k_s']:.1f} s", flush=True)
    res["second_1k_s"], _ = _map(_data(1000, 2), cfg, tmp, "second_1k")
    print(f"1k second: {res['second_1k_s']:.1f} s", flush=True)
    res["big_s"], res["big_fit_s"] = _map(_data(n_big, 3), cfg, tmp, "big")
    print(f"big first: {res['big_s']:.1f} s", flush=True)
    nan = float("nan")
    res["big_again_s"], res["big_again_fit_s"] = (
        _map(_data(n_big, 4), cfg, tmp, "big_again") if again else (nan, nan)
    )
    res["worker_peak_rss_mb"] = _peak_rss_mb(worker().pid)
    res["workers_started"] = worker().started
    res.update({f"{k}_cpu_s": v for k, v in CPU.items()})
    res["load_avg_1m"] = os.getloadavg()[0]
    base = res["first_1k_s"]
    print(f"\nUMAP benchmark (fit_rows={cfg.fit_rows:,}, chunk {cfg.transform_chunk:,}, D={D})")
    print(f"  1k, first of the session (compiles): {base:7.1f} s   1.00x")
    print(
        f"  1k, worker reused:                   {res['second_1k_s']:7.1f} s   "
        f"{res['second_1k_s'] / base:.2f}x   (target <= 5 s)"
    )
    print(
        f"  {n_big:,}:                          {res['big_s']:7.1f} s   "
        f"{res['big_s'] / base:.2f}x   (target <= 60 s at 100k); fit ended at "
        f"{res['big_fit_s']:.1f} s, placing the rest took {res['big_s'] - res['big_fit_s']:.1f} s"
    )
    print(
        f"  {n_big:,} again (pynndescent compiled): {res['big_again_s']:7.1f} s   "
        f"{res['big_again_s'] / base:.2f}x; fit ended at {res['big_again_fit_s']:.1f} s"
    )
    print(
        f"  worker peak RSS {res['worker_peak_rss_mb']:.0f} MB; "
        f"worker processes started: {res['workers_started']}"
    )
    print(f"  worker CPU seconds per map: {CPU}; load average now {res['load_avg_1m']:.1f}")
    worker().stop()
    return res


@pytest.mark.benchmark
def test_umap_scale():
    res = run()
    assert res["workers_started"] == 1


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    run(*args)
