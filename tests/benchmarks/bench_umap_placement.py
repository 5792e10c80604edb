"""Placing points into a fitted UMAP map: umap's transform against neighbour placement.

    pytest tests/benchmarks/bench_umap_placement.py -m benchmark -s
    python tests/benchmarks/bench_umap_placement.py [N_PLACE] [DATA]

One fit of 20,000 points, then N_PLACE more (default 20,000) placed in chunks of 10,000,
in the same process: (a) umap's ``transform`` (pynndescent's query and 30 epochs: the
old placement, the baseline), (b) :mod:`galaxy_explorer.core._umap_place` with 0 and
with 30 epochs. Reports CPU and wall seconds and the quality of each, on a sample of
1,000 placed points:

- recall@15: the share of a point's 15 nearest neighbours in 384-D (among fitted and
  placed points) that are among its 15 nearest on the map (the same measure for 1,000
  fitted points is the ceiling: what the fit itself preserves);
- subcluster accuracy: the majority subcluster of a point's 10 nearest on the map is its
  own.

DATA ``sheets`` (default): 12 clusters of 8 subclusters, each a noisy 2-D sheet in 384-D
(local neighbourhoods mean something); ``blobs``: the isotropic blobs of
``bench_umap_scale.py`` (neighbours within a blob are nearly arbitrary).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pytest

D = 384
FIT = 20_000
CHUNK = 10_000


def sheets(n: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors on noisy 2-D sheets: 12 clusters x 8 subclusters; and subcluster ids."""
    rng = np.random.default_rng(seed)

    def g(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32) / np.sqrt(D)

    centres = g(12, D)
    subs = centres[:, None] + 0.6 * g(12, 8, D)
    axes = 0.8 * g(12, 8, 2, D)
    cl, sub = rng.integers(0, 12, n), rng.integers(0, 8, n)
    t = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    x = subs[cl, sub] + np.einsum("nk,nkd->nd", t, axes[cl, sub]) + 0.1 * g(n, D)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, cl * 8 + sub


def _quality(x, lab, coords, sample) -> tuple[float, float]:  # noqa: ANN001
    hi = x[sample] @ x.T
    hi[np.arange(len(sample)), sample] = -np.inf
    want = np.argpartition(-hi, 15, axis=1)[:, :15]
    d2 = ((coords[sample][:, None] - coords[None]) ** 2).sum(-1)
    d2[np.arange(len(sample)), sample] = np.inf
    got = np.argpartition(d2, 15, axis=1)[:, :15]
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(want, got, strict=True)])
    near = np.argsort(d2, axis=1)[:, :10]
    acc = np.mean(
        [np.bincount(lab[r]).argmax() == lab[s] for r, s in zip(near, sample, strict=True)]
    )
    return float(recall), float(acc)


def run(n_place: int = 20_000, data: str = "sheets") -> dict[str, float]:
    """Fit once, place ``n_place`` points three ways; print and return the numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap
    from galaxy_explorer.core.projection import (
        UMAPConfig,
        _init_graph_transform,
        _placer,
        enable_disk_cache,
    )

    enable_disk_cache()
    if data == "blobs":
        from tests.benchmarks.bench_umap_scale import _data

        n = FIT + n_place
        x = _data(n, 3)
        rng = np.random.default_rng(3)
        rng.normal(size=(12, D))
        lab = rng.integers(0, 12, n)
    else:
        x, lab = sheets(FIT + n_place)
    fit = x[:FIT]
    warnings.simplefilter("ignore")
    small = umap.UMAP(n_components=2, metric="cosine", random_state=0, n_jobs=1, low_memory=True)
    small.fit_transform(fit[:4200])  # compile (or load) before timing
    small.transform(fit[:50])
    reducer = umap.UMAP(
        n_components=2, metric="cosine", random_state=42, n_jobs=1, low_memory=True, min_dist=0.1
    )
    w, c = time.perf_counter(), time.process_time()
    fitted = reducer.fit_transform(fit).astype(np.float32)
    res = {"fit_wall_s": time.perf_counter() - w, "fit_cpu_s": time.process_time() - c}
    sample_new = np.random.default_rng(0).choice(n_place, 1000, replace=False) + FIT
    sample_fit = np.random.default_rng(1).choice(FIT, 1000, replace=False)

    import umap.umap_ as umap_module

    def old(xx: np.ndarray, chunk: int) -> np.ndarray:
        reducer.n_epochs = 90  # 30 per transform, as the old code fixed it
        slow, umap_module.init_graph_transform = (
            umap_module.init_graph_transform,
            _init_graph_transform,
        )
        try:
            return reducer.transform(xx)
        finally:
            umap_module.init_graph_transform = slow

    ways = {
        "umap transform (old)": lambda: old,
        "neighbours, 0 epochs": lambda: _placer(reducer, fit, fitted, UMAPConfig()),
        "neighbours, 30 epochs": lambda: _placer(reducer, fit, fitted, UMAPConfig(place_epochs=30)),
    }
    print(
        f"\nUMAP placement ({data}): fit {FIT:,} in {res['fit_wall_s']:.1f} s wall, {res['fit_cpu_s']:.1f} s CPU"
    )
    for name, make in ways.items():
        w, c = time.perf_counter(), time.process_time()
        place = make()
        coords = np.empty((FIT + n_place, 2), np.float32)
        coords[:FIT] = fitted
        for i, s in enumerate(range(FIT, FIT + n_place, CHUNK)):
            coords[s : s + CHUNK] = place(x[s : s + CHUNK], i)
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        rec, acc = _quality(x, lab, coords, sample_new)
        if name.startswith("umap"):
            ceiling = _quality(x, lab, coords, sample_fit)
            res["fitted_recall15"], res["fitted_acc"] = ceiling
            print(
                f"  fitted points (ceiling): recall@15 {ceiling[0]:.3f}, accuracy {ceiling[1]:.3f}"
            )
            base = cpu
        key = name.split(" (")[0].replace(",", "").replace(" ", "_")
        res.update(
            {f"{key}_cpu_s": cpu, f"{key}_wall_s": wall, f"{key}_recall15": rec, f"{key}_acc": acc}
        )
        print(
            f"  {name:24s} {n_place:,} placed: {wall:6.1f} s wall, {cpu:6.1f} s CPU "
            f"({cpu / base:.2f}x), recall@15 {rec:.3f}, accuracy {acc:.3f}",
            flush=True,
        )
    return res


@pytest.mark.benchmark
def test_umap_placement():
    res = run(n_place=20_000)
    assert res["neighbours_0_epochs_recall15"] > 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    run(int(argv[0]) if argv else 20_000, argv[1] if len(argv) > 1 else "sheets")
