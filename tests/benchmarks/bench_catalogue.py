"""Catalogue matching, filters and export columns at 100,000 rows (run on demand).

    pytest tests/benchmarks/bench_catalogue.py -m benchmark -s
    python tests/benchmarks/bench_catalogue.py [N]

Times are medians of a few repeats, and ratios to a baseline measured in the same run:
building a ``{name: index}`` dict of the N file names (the least any name match must do).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPEATS = 3


def _median_s(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(n: int = 100_000) -> dict[str, float]:
    from astropy.table import Table

    from galaxy_explorer.core import catalogue as C
    from galaxy_explorer.core.catalog import Item

    rng = np.random.default_rng(0)
    items = [
        Item(Path(f"/data/survey/f{i // 1000:03d}/g{i:07d}.fits"), f"{i:064x}", 1, 0.0)
        for i in range(n)
    ]
    ra = rng.uniform(150, 152, n)
    dec = rng.uniform(1, 3, n)
    positions = list(zip(ra.tolist(), dec.tolist(), strict=True))
    order = rng.permutation(n)
    t = Table(
        {
            "path": [f"f{i // 1000:03d}/g{i:07d}.fits" for i in order],
            "ra": ra[order] + rng.normal(0, 0.3 / 3600, n),
            "dec": dec[order] + rng.normal(0, 0.3 / 3600, n),
            "z": rng.uniform(0, 0.2, n),
            "mag_r": rng.uniform(12, 20, n),
            "cls": rng.choice(["spiral", "elliptical", "merger", "ring"], n),
        }
    )
    cat = C.open_catalogue(t)
    names = [it.path.name for it in items]
    out = {"baseline {name: index} dict": _median_s(lambda: {x: i for i, x in enumerate(names)})}
    out["match by path"] = _median_s(lambda: C.match_catalogue(cat, items))
    m = C.match_catalogue(cat, items)
    assert m.n_matched == n
    out["match by RA/Dec (match_coordinates_sky)"] = _median_s(
        lambda: C.match_catalogue(cat, items, positions, C.MatchOptions(by="radec"))
    )
    expr = "z < 0.05 and mag_r < 17 and cls in ('spiral', 'ring')"
    out["filter (compile + evaluate)"] = _median_s(lambda: C.filter_rows(cat, expr))
    out["export_values for all rows"] = _median_s(
        lambda: C.export_values(cat, m, np.arange(n)), repeats=1
    )
    return out


@pytest.mark.benchmark
def test_catalogue_benchmark():
    res = run()
    base = res["baseline {name: index} dict"]
    for k, v in res.items():
        print(f"{k:45s} {v * 1000:9.1f} ms  ({v / base:6.1f}x baseline)")


if __name__ == "__main__":
    res = run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    base = res["baseline {name: index} dict"]
    for k, v in res.items():
        print(f"{k:45s} {v * 1000:9.1f} ms  ({v / base:6.1f}x baseline)")
