"""Ranking latency at 100,000 x 512, and brute force against the ANN index (on demand).

    pytest tests/benchmarks/bench_search.py -m benchmark -s
    python tests/benchmarks/bench_search.py [--threshold] [--ann [N ...]] [--dim D]

``--ann`` compares brute force with the faiss index of ``core/ann.py`` on clustered
synthetic unit vectors (a mixture of 300 Gaussian clusters of varied width, normalised:
real embeddings are clustered, uniform noise is the worst case of any index) at 100k and
1M rows (or the given sizes): build time, index size, query latency for the top 10 and
top 100 (candidates re-ranked exactly, as the app does) and recall against brute force.

Times are reported as the median of several repeats and as a ratio to a plain ``emb @ q``
measured in the same run, so machine load affects both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import pytest

N, D, K, REPEATS = 100_000, 512, 100, 15


def _median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def run() -> dict[str, float]:
    from galaxy_explorer.core.search import (
        combined_query,
        rank_by_examples,
        rank_by_text,
        top_k,
        zero_shot,
    )

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((N, D), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    q = emb[123] + 0.1 * rng.standard_normal(D, dtype=np.float32)
    q /= np.linalg.norm(q)
    labels = emb[:10].copy()
    emb16 = emb.astype(np.float16)

    results = {
        "baseline emb @ q": _median_ms(lambda: emb @ q),
        "rank_by_text": _median_ms(lambda: rank_by_text(q, emb)),
        "top_k(100) on scores": _median_ms(lambda s=emb @ q: top_k(s, K)),
        "rank_by_text + top_k": _median_ms(lambda: top_k(rank_by_text(q, emb), K)),
        "combined text+3 pos+2 neg + top_k": _median_ms(
            lambda: top_k(combined_query(emb, q, emb[[1, 2, 3]], emb[[4, 5]]), K)
        ),
        "rank_by_examples(5) + top_k": _median_ms(lambda: top_k(rank_by_examples(emb, emb[:5]), K)),
        "zero_shot 10 labels": _median_ms(lambda: zero_shot(emb, labels, 100.0), repeats=5),
        "float16 input (upcast each call) + top_k": _median_ms(
            lambda: top_k(rank_by_text(q, emb16), K), repeats=5
        ),
        "float16 -> float32 once (what loading does)": _median_ms(
            lambda: emb16.astype(np.float32), repeats=5
        ),
    }
    base = results["baseline emb @ q"]
    print(f"\nsearch benchmark: N={N:,} D={D} float32, median of repeats")
    for name, ms in results.items():
        print(f"  {name:44s} {ms:8.2f} ms   {ms / base:6.2f}x baseline")
    return results


def threshold(dims: tuple[int, ...] = (384, 512), limit_ms: float = 150.0) -> dict:
    """Brute-force text ranking (``rank_by_text`` + ``top_k(10)``, float32) against N.

    Returns, per dimension, the measured times and the N where the time crosses
    ``limit_ms`` (linear interpolation between the measured sizes; ranking is one
    memory-bound pass, so time is close to linear in N).
    """
    from galaxy_explorer.core.search import rank_by_text, top_k

    sizes = (100_000, 250_000, 500_000, 1_000_000)
    rng = np.random.default_rng(1)
    out: dict = {}
    for d in dims:
        big = rng.standard_normal((sizes[-1], d), dtype=np.float32)
        big /= np.linalg.norm(big, axis=1, keepdims=True)
        q = big[7].copy()
        times = {}
        for n in sizes:
            emb = big[:n]
            times[n] = _median_ms(lambda e=emb, v=q: top_k(rank_by_text(v, e), 10), repeats=7)
        head = big[:100_000]
        base = _median_ms(lambda e=head, v=q: e @ v, repeats=7)
        cross = None
        ns = list(sizes)
        for a, b in zip(ns, ns[1:], strict=False):
            if times[a] <= limit_ms < times[b]:
                cross = a + (b - a) * (limit_ms - times[a]) / (times[b] - times[a])
        if cross is None and times[ns[-1]] <= limit_ms:
            cross = ns[-1] * limit_ms / times[ns[-1]]  # extrapolated beyond 1M
        if cross is None and times[ns[0]] > limit_ms:
            cross = ns[0] * limit_ms / times[ns[0]]
        out[d] = {"times_ms": times, "crossing_n": cross, "matvec_100k_ms": base}
        print(f"\nbrute force rank + top 10, float32, D={d} (same-run 100k matvec {base:.1f} ms)")
        for n, ms in times.items():
            print(f"  N={n:>9,}: {ms:8.1f} ms  ({ms / base:5.1f}x the 100k matvec)")
        print(f"  {limit_ms:.0f} ms is reached near N = {cross:,.0f}")
        del big, head
    return out


def clustered(n: int, d: int, clusters: int = 300, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors from ``clusters`` Gaussian clusters of varied width."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    lab = rng.integers(0, clusters, n)
    width = rng.uniform(0.5, 1.2, clusters).astype(np.float32) / np.sqrt(d)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        x = rng.standard_normal((e - s, d), dtype=np.float32) * width[lab[s:e], None]
        x += centres[lab[s:e]]
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def ann(sizes: tuple[int, ...] = (100_000, 1_000_000), d: int = 384, nq: int = 50) -> dict:
    """Brute force against the ANN index at each size (see the module docstring)."""
    import os
    import tempfile

    from galaxy_explorer.core import ann as ann_mod
    from galaxy_explorer.core.search import rank_by_text, top_k

    out: dict = {}
    for n in sizes:
        emb = clustered(n, d)
        rng = np.random.default_rng(5)
        qs = emb[rng.integers(0, n, nq)] + rng.standard_normal((nq, d), dtype=np.float32) * (
            0.7 / np.sqrt(d)
        )
        qs /= np.linalg.norm(qs, axis=1, keepdims=True)
        t0 = time.perf_counter()
        index = ann_mod.build_index(emb, "bench")
        build = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.ann")
            ann_mod._write(ann_mod.Path(path), index, "bench")
            size_mb = os.path.getsize(path) / 2**20
            t0 = time.perf_counter()
            ann_mod._read(ann_mod.Path(path), "bench", n, d)
            load = time.perf_counter() - t0
        row: dict = {"build_s": build, "load_s": load, "file_mb": size_mb}
        for k in (10, 100):
            brute_t, ann_t, rec = [], [], []
            for q in qs:
                t0 = time.perf_counter()
                truth = top_k(rank_by_text(q, emb), k)
                brute_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                found = index.top(emb, q, k)
                rows = truth if found is None else found[0]  # None: rank falls back to brute
                ann_t.append(time.perf_counter() - t0)
                rec.append(len(set(truth.tolist()) & set(rows.tolist())) / k)
            row[f"brute_top{k}_ms"] = statistics.median(brute_t) * 1000
            row[f"ann_top{k}_ms"] = statistics.median(ann_t) * 1000
            row[f"recall@{k}"] = float(np.mean(rec))
        out[n] = row
        print(
            f"\nN={n:,} D={d} clustered: index built in {row['build_s']:.1f} s "
            f"({row['file_mb']:.0f} MB on disk, loaded in {row['load_s']:.2f} s; "
            f"vectors {emb.nbytes / 2**20:.0f} MB)"
        )
        for k in (10, 100):
            b, a = row[f"brute_top{k}_ms"], row[f"ann_top{k}_ms"]
            print(
                f"  top {k:3d}: brute {b:7.1f} ms   ANN+re-rank {a:6.2f} ms "
                f"({b / a:5.0f}x faster)   recall {row[f'recall@{k}']:.3f}"
            )
        del emb, index
    return out


@pytest.mark.benchmark
def test_ann_against_brute_force():
    """Build time, latency and recall of the index against brute force at 100k and 1M."""
    pytest.importorskip("faiss")
    res = ann()
    assert all(r["recall@10"] > 0 for r in res.values())


@pytest.mark.benchmark
def test_brute_force_threshold():
    """Where brute-force ranking stops meeting 150 ms per query on this machine."""
    res = threshold()
    assert all(v["crossing_n"] for v in res.values())


@pytest.mark.benchmark
def test_rank_100k():
    """Reports times and ratios to the baseline; the issue's target is well under 100 ms."""
    results = run()
    assert set(results) >= {"baseline emb @ q", "rank_by_text + top_k"}


if __name__ == "__main__":
    import sys

    argv = sys.argv[1:]
    dim = 384
    if "--dim" in argv:
        dim = int(argv[argv.index("--dim") + 1])
    if "--ann" in argv:
        sizes = ()
        for a in argv[argv.index("--ann") + 1 :]:
            if not a.isdigit():
                break
            sizes += (int(a),)
        ann(sizes or (100_000, 1_000_000), dim)
    else:
        run()
    if "--threshold" in argv:
        threshold()
