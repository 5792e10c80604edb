"""UMAP at scale: subsample fit + chunked transform, progress, cancel, one reused worker."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from galaxy_explorer.core.projection import UMAPCancelled, UMAPConfig, umap_2d


def _clusters(n_per: int, seed: int = 0, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, dim))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(n_per, dim)) for c in centers])
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    return emb, np.repeat(np.arange(3), n_per)


def _apart(coords: np.ndarray, lab: np.ndarray) -> bool:
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    same = lab[:, None] == lab[None]
    return bool(d[same].mean() < 0.5 * d[~same].mean())


@pytest.mark.slow  # numba compiles on the first UMAP of a process
def test_subsample_fit_then_chunked_transform_with_progress():
    emb, lab = _clusters(100)
    calls: list[tuple[int, int]] = []
    cfg = UMAPConfig(fit_rows=120, transform_chunk=80)
    coords = umap_2d(emb, cfg, progress=lambda d, t: calls.append((d, t)))
    # fitted on 120 points, the other 180 placed 80, 80, 20 at a time
    assert calls == [(120, 300), (200, 300), (280, 300), (300, 300)]
    assert coords.shape == (300, 2) and np.isfinite(coords).all()
    assert _apart(coords, lab)  # placed points land with their own cluster
    # deterministic: the same subsample and the same chunks
    np.testing.assert_array_equal(coords, umap_2d(emb, cfg))
    # cancelled between chunks: stops, with no coordinates
    seen: list[int] = []
    with pytest.raises(UMAPCancelled):
        umap_2d(emb, cfg, progress=lambda d, t: seen.append(d), cancelled=lambda: len(seen) >= 2)
    assert seen == [120, 200]


@pytest.mark.slow
def test_rest_is_placed_by_neighbours_not_by_umaps_transform(monkeypatch):
    """umap's transform (pynndescent's query + 30 epochs, ~10x the cost) is not used."""
    import umap

    def no_transform(self, x):  # noqa: ANN001
        raise AssertionError("umap's transform was called")

    monkeypatch.setattr(umap.UMAP, "transform", no_transform)
    emb, lab = _clusters(100, seed=5)
    calls: list[int] = []
    coords = umap_2d(
        emb, UMAPConfig(fit_rows=90, transform_chunk=100), progress=lambda d, t: calls.append(d)
    )
    assert calls == [90, 190, 290, 300]
    assert coords.shape == (300, 2) and np.isfinite(coords).all()
    assert _apart(coords, lab)
    refined = umap_2d(emb, UMAPConfig(fit_rows=90, transform_chunk=100, place_epochs=10))
    assert _apart(refined, lab)
    rest = np.ones(300, bool)
    rest[np.random.default_rng(42).choice(300, 90, replace=False)] = False
    assert not np.allclose(refined[rest], coords[rest])  # the epochs moved the placed points
    np.testing.assert_array_equal(refined[~rest], coords[~rest])  # not the fitted ones


def _pid_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_projection_job_reuses_one_worker_and_cancels_between_chunks(tmp_path):
    from galaxy_explorer.core._umap_child import worker
    from galaxy_explorer.core.jobs import projection_job

    cfg = UMAPConfig(fit_rows=120, transform_chunk=60)
    emb, lab = _clusters(100, seed=1)
    progs = list(projection_job(emb, cfg, cache_dir=tmp_path))
    assert progs[-1].finished and progs[-1].error is None, progs[-1]
    assert progs[-1].placed == progs[-1].total == 300
    assert _apart(progs[-1].coords, lab)
    placed = [p.placed for p in progs if p.stage == "umap"]
    assert placed == sorted(placed)  # progress only goes forward
    w = worker()
    pid, started = w.pid, w.started
    assert pid is not None and _pid_alive(pid)

    # a second, different set: served by the same process (numba compiled once)
    emb2, lab2 = _clusters(100, seed=2)
    progs2 = list(projection_job(emb2, cfg, cache_dir=tmp_path))
    assert progs2[-1].finished and progs2[-1].error is None
    assert _apart(progs2[-1].coords, lab2)
    assert w.pid == pid and w.started == started

    # cancelled once points are being placed: the request stops, the worker stays (9,000
    # points in 445 chunks: placing them all takes far longer than a cancel takes to arrive;
    # 1,200 points were sometimes all placed before it did)
    emb3, _ = _clusters(3000, seed=3)
    cancel = threading.Event()
    last = None
    for prog in projection_job(
        emb3, UMAPConfig(fit_rows=120, transform_chunk=20), tmp_path, cancel=cancel, poll=0.01
    ):
        last = prog
        if prog.stage == "umap" and prog.placed >= 120:
            cancel.set()
    assert last is not None and last.cancelled and last.coords is None
    assert last.placed < last.total
    assert w.pid == pid and w.started == started
    # and it still serves requests afterwards
    emb4, lab4 = _clusters(60, seed=4)
    progs4 = list(projection_job(emb4, cfg, cache_dir=tmp_path))
    assert progs4[-1].error is None and _apart(progs4[-1].coords, lab4)
    assert w.pid == pid and w.started == started


def test_worker_failure_is_an_error_not_a_hang(tmp_path):
    """A worker that dies mid-request gives an error; the next request starts a new one."""
    from galaxy_explorer.core._umap_child import UMAPWorker

    w = UMAPWorker()
    bad = tmp_path / "not.npy"
    bad.write_bytes(b"this is not an array")
    with pytest.raises(RuntimeError, match="UMAP failed"):
        for _ in w.run(str(bad), str(tmp_path), {}, poll=0.05):
            pass
    pid = w.pid
    assert pid is not None  # a failed request leaves the worker serving
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="UMAP process failed"):
        for _ in w.run(str(bad), str(tmp_path), {}, poll=0.05):
            pass
    w.stop()


def test_vectorised_graph_init_matches_umaps():
    """The vectorised start positions of placed points equal umap's own loop's."""
    import scipy.sparse as sp
    from umap.umap_ import init_graph_transform

    from galaxy_explorer.core.projection import _init_graph_transform

    g = sp.random(400, 250, density=0.05, random_state=1, format="csr").astype(np.float32)
    g.data[::13] = 1.0  # exact matches: placed on that neighbour
    g = g.tolil()
    g[7, :] = 0  # no neighbours: NaN
    g = g.tocsr()
    g.eliminate_zeros()
    emb = np.random.default_rng(0).normal(size=(250, 2)).astype(np.float32)
    ours, theirs = _init_graph_transform(g, emb), init_graph_transform(g, emb)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.isnan(ours[7]).all()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
