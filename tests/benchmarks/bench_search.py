"""Ranking latency at 100,000 x 512 (run on demand).

    pytest tests/benchmarks/bench_search.py -m benchmark -s
    python tests/benchmarks/bench_search.py [--threshold]

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

    run()
    if "--threshold" in sys.argv:
        threshold()
