from __future__ import annotations

import os

import numpy as np
import pytest

from galaxy_explorer.core import projection
from galaxy_explorer.core.projection import (
    UMAPConfig,
    cached_umap,
    load_cached_umap,
    pca_2d,
    umap_2d,
    umap_cache_path,
)


def _blobs(n: int = 60, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 3
    x = centres[np.arange(n) % 3] + rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def test_pca_matches_svd():
    x = _blobs(200)
    p = pca_2d(x)
    assert p.shape == (200, 2) and p.dtype == np.float32
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:2].T
    np.testing.assert_allclose(np.abs(p), np.abs(ref), atol=1e-4)
    # sign convention: largest-magnitude loading positive → same result every call / order
    np.testing.assert_array_equal(p, pca_2d(x))
    np.testing.assert_allclose(pca_2d(x[::-1])[::-1], p, atol=1e-4)


def test_pca_large_uses_subsample_and_agrees():
    rng = np.random.default_rng(1)
    scale = np.ones(64)
    scale[:2] = [6.0, 3.0]
    x = (rng.normal(size=(30_000, 64)) * scale).astype(np.float32)
    p = pca_2d(x)
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc[:5000], full_matrices=False)
    ref = xc @ vt[:2].T
    for j in range(2):
        assert abs(np.corrcoef(p[:, j], ref[:, j])[0, 1]) > 0.99


def test_pca_tiny_and_degenerate():
    assert pca_2d(np.zeros((0, 8))).shape == (0, 2)
    np.testing.assert_array_equal(pca_2d(np.ones((1, 8))), np.zeros((1, 2)))
    two = pca_2d(np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32))
    assert two.shape == (2, 2)
    np.testing.assert_allclose(two[:, 1], 0, atol=1e-6)
    assert abs(two[0, 0] - two[1, 0]) == pytest.approx(np.sqrt(2), rel=1e-5)
    np.testing.assert_array_equal(pca_2d(np.ones((5, 4))), np.zeros((5, 2)))
    one_dim = pca_2d(np.arange(6, dtype=np.float32)[:, None])
    assert one_dim.shape == (6, 2) and (one_dim[:, 1] == 0).all()


def test_pca_float16():
    x = _blobs(50)
    np.testing.assert_allclose(pca_2d(x.astype(np.float16)), pca_2d(x), atol=5e-3)


def test_pca_rejects_1d():
    with pytest.raises(ValueError):
        pca_2d(np.ones(5))


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_umap_tiny_n_falls_back_to_pca(n):
    x = _blobs(60)[:n]
    out = umap_2d(x)
    assert out.shape == (n, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out, pca_2d(x))


@pytest.mark.slow  # first umap call in a process compiles numba code (seconds)
def test_umap_deterministic_and_small_n():
    x = _blobs(60)
    a = umap_2d(x, UMAPConfig(seed=7))
    b = umap_2d(x, UMAPConfig(seed=7))
    assert a.shape == (60, 2) and a.dtype == np.float32
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    # the three blobs stay apart: each point's nearest neighbour is in its own blob
    d = np.linalg.norm(a[:, None] - a[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nearest = d.argmin(axis=1)
    assert (nearest % 3 == np.arange(60) % 3).mean() > 0.9
    # n_neighbors larger than N - 1 is reduced, not an error
    for n in (4, 5, 10):
        out = umap_2d(x[:n], UMAPConfig(n_neighbors=15))
        assert out.shape == (n, 2) and np.isfinite(out).all()


def _fake_umap(calls):
    def fake(emb, config=None, **_kw):
        calls.append(config)
        return pca_2d(emb) + 1.0

    return fake


def test_cached_umap_writes_and_reuses(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(projection, "umap_2d", _fake_umap(calls))
    x = _blobs(30)
    cfg = UMAPConfig(n_neighbors=5)
    first = cached_umap(x, cfg, tmp_path)
    assert len(calls) == 1
    path = umap_cache_path(x, cfg, tmp_path)
    assert path.exists() and path.suffix == ".npy" and path.parent == tmp_path / "projections"
    np.testing.assert_array_equal(np.load(path), first)
    again = cached_umap(x, cfg, tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(load_cached_umap(x, cfg, tmp_path), first)
    # float16 of the same values is a different embedding set only if the bytes differ
    assert load_cached_umap(x.astype(np.float16), cfg, tmp_path) is None
    # a different config or different embeddings → a new entry
    cached_umap(x, UMAPConfig(n_neighbors=6), tmp_path)
    cached_umap(x[:-1], cfg, tmp_path)
    assert len(calls) == 3
    assert len(list((tmp_path / "projections").glob("umap-*.npy"))) == 3
    # no cache dir → computed every time, nothing written
    cached_umap(x, cfg, None)
    assert len(calls) == 4
    assert load_cached_umap(x, cfg, None) is None


def test_cache_key_depends_on_content_and_config(tmp_path):
    x = _blobs(20)
    p = umap_cache_path(x, UMAPConfig(), tmp_path)
    assert umap_cache_path(x.copy(), UMAPConfig(), tmp_path) == p
    y = x.copy()
    y[3, 4] += 1e-3
    assert umap_cache_path(y, UMAPConfig(), tmp_path) != p
    assert umap_cache_path(x, UMAPConfig(seed=1), tmp_path) != p
    assert umap_cache_path(x, UMAPConfig(min_dist=0.2), tmp_path) != p
    assert umap_cache_path(x.reshape(40, 8), UMAPConfig(), tmp_path) != p


def test_corrupt_cache_is_recomputed(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(projection, "umap_2d", _fake_umap(calls))
    x = _blobs(12)
    path = umap_cache_path(x, None, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    out = cached_umap(x, None, tmp_path)
    assert len(calls) == 1 and out.shape == (12, 2)
    np.testing.assert_array_equal(np.load(path), out)
    np.save(path, np.zeros((5, 2), np.float32))  # wrong shape
    cached_umap(x, None, tmp_path)
    assert len(calls) == 2


def test_cache_write_failure_is_not_fatal_and_atomic(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(projection, "umap_2d", _fake_umap(calls))
    x = _blobs(12)

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(projection.os, "replace", fail)
    out = cached_umap(x, None, tmp_path)
    assert out.shape == (12, 2)
    assert os.listdir(tmp_path / "projections") == []  # no partial file, no temp left


def test_imports_stay_light():
    import subprocess
    import sys

    code = (
        "import sys; import galaxy_explorer.core.projection, galaxy_explorer.core.search, "
        "galaxy_explorer.core.labels, galaxy_explorer.core.export; "
        "heavy = [m for m in ('umap', 'numba', 'sklearn', 'torch', 'astropy', 'PySide6', "
        "'pyqtgraph') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pca_fit_and_apply_on_rows_match_pca_of_those_rows():
    """A basis fitted on ``rows`` of a matrix gives pca_2d of ``matrix[rows]``, whichever
    way it reads them (most rows: whole blocks; few rows: gathered; float16 storage)."""
    from galaxy_explorer.core import projection
    from galaxy_explorer.core.projection import pca_apply, pca_fit

    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 16)).astype(np.float32) * np.linspace(3, 0.1, 16)
    many = np.sort(rng.choice(3000, 2500, replace=False))
    few = np.sort(rng.choice(3000, 200, replace=False))
    for rows in (many, few):
        want = pca_2d(x[rows])
        got = pca_apply(pca_fit(x, rows), x, rows)
        np.testing.assert_allclose(got, want, atol=1e-4)
    half = x.astype(np.float16)
    np.testing.assert_allclose(
        pca_apply(pca_fit(half, many), half, many), pca_2d(half[many]), atol=1e-3
    )
    # block boundaries: the rows of each block are found however the blocks fall
    old = projection._APPLY_BLOCK
    projection._APPLY_BLOCK = 97
    try:
        np.testing.assert_allclose(pca_apply(pca_fit(x, many), x, many), pca_2d(x[many]), atol=1e-4)
    finally:
        projection._APPLY_BLOCK = old


def test_pca_of_most_rows_never_copies_the_matrix():
    """Projecting the embedded rows of a big matrix reads it in blocks: the memory it
    allocates stays far below the matrix (a ``vectors[rows]`` copy of 10^6 x 384 float32
    is 1.5 GB, redone every second while images stream in)."""
    import tracemalloc

    from galaxy_explorer.core.projection import pca_apply, pca_fit

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300_000, 64)).astype(np.float32)  # 77 MB
    rows = np.flatnonzero(rng.random(len(x)) < 0.97)
    tracemalloc.start()
    try:
        xy = pca_apply(pca_fit(x, rows), x, rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert xy.shape == (len(rows), 2)
    assert peak < 0.5 * x.nbytes, (
        f"{peak / 2**20:.0f} MB allocated for a {x.nbytes / 2**20:.0f} MB matrix"
    )
    # the old way, for scale: a copy of the rows is as big as the matrix
    assert x[rows].nbytes > 0.9 * x.nbytes
