"""The UMAP worker warms up (compiles) while idle, and gives way to a real request."""

from __future__ import annotations

import time

import numpy as np
import pytest


def test_warm_up_stops_before_a_stage_when_a_request_waits():
    from galaxy_explorer.core._umap_child import warm_up

    assert warm_up(pending=lambda: True) == []  # a request already waits: nothing runs
    asked = []

    def after_first() -> bool:
        asked.append(1)
        return len(asked) > 1

    stages = warm_up(pending=after_first)
    assert [name for name, _ in stages] == ["import"]  # stopped before the next stage


def test_small_warm_up_skips_the_large_stage():
    from galaxy_explorer.core._umap_child import ENV_WARM, _child_env, warm_up

    assert [n for n, _ in warm_up(large=False)] == ["import", "small fit"]
    assert _child_env(large=False)[ENV_WARM] == "small"
    assert _child_env(large=True).get(ENV_WARM, "1") != "small"


def test_large_warm_up_prepares_the_placement_not_umaps_transform(monkeypatch):
    """Maps place points by neighbours now: compiling pynndescent's query would be waste."""
    import umap

    from galaxy_explorer.core import _umap_child, _umap_place
    from galaxy_explorer.core._umap_child import warm_up

    monkeypatch.setattr(_umap_child, "WARM_POINTS", 400)  # the stage's path, not its size

    def no_transform(self, x):  # noqa: ANN001
        raise AssertionError("umap's transform was called")

    placed = []
    real_place = _umap_place.place
    monkeypatch.setattr(umap.UMAP, "transform", no_transform)
    monkeypatch.setattr(
        _umap_place, "place", lambda *a, **k: placed.append(1) or real_place(*a, **k)
    )
    stages = [name for name, _ in warm_up(large=True)]
    assert stages == ["import", "small fit", "large fit + placement"]
    assert placed == [1]


def test_disk_cache_is_switched_on_for_umaps_functions():
    import umap.layouts
    from numba.core.dispatcher import Dispatcher

    from galaxy_explorer.core import projection

    projection.enable_disk_cache()
    fn = umap.layouts._nb_optimize_layout_euclidean_single_epoch  # the layout's epochs
    assert isinstance(fn, Dispatcher)
    assert type(fn._cache).__name__ != "NullCache"  # compiled code goes to numba's cache
    assert projection.enable_disk_cache() == 0  # once per process


@pytest.mark.slow  # a real worker process compiles
def test_prestarted_worker_warms_up_then_serves(tmp_path):
    from galaxy_explorer.core._umap_child import umap_steps, worker

    w = worker()
    w.stop()
    w.prestart(large=False)  # a small catalogue: no pynndescent compile to wait for
    pid = w.pid
    assert pid is not None
    deadline = time.monotonic() + 600
    while w.warm is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert w.warm is not None
    assert [n for n, _ in w.warm] == ["import", "small fit"]
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((300, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out = [c for c in umap_steps(emb, tmp_path, {"fit_rows": 200}) if c is not None]
    assert out and out[-1].shape == (300, 2) and np.isfinite(out[-1]).all()
    assert w.pid == pid and w.started >= 1  # the warmed process served it


def test_the_umap_worker_starts_its_blas_with_a_core_left(tmp_path):
    """The worker's BLAS libraries (numpy's and scipy's, which umap loads) use one thread
    less than the CPUs: two spinning OpenBLAS threads made a 1k map's PCA and spectral
    start 5x slower whenever anything else ran on a 2-core machine (#12)."""
    import json
    import os
    import subprocess
    import sys

    from galaxy_explorer.core._umap_child import _child_env

    code = (
        "import json, numpy, scipy.linalg; from threadpoolctl import threadpool_info;"
        "print(json.dumps([i['num_threads'] for i in threadpool_info()"
        " if i.get('user_api') == 'blas']))"
    )
    env = _child_env()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    threads = json.loads(out.stdout)
    want = max(1, (os.cpu_count() or 2) - 1)
    assert threads and all(t <= want for t in threads), threads
