"""The Ray engine: a local Ray cluster (2 CPUs, 127.0.0.1) embedding with the tiny model.

One Ray instance serves the whole module (starting one costs 20-30 s here); each embedding
run starts its own actor pool. The tests without Ray (pool sizing, the actor in-process, the
install hint) run everywhere; the others are skipped where Ray is not installed.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import write_jpeg

from galaxy_explorer.core.cache import EmbeddingStore, write_shard_file
from galaxy_explorer.core.catalog import scan
from galaxy_explorer.core.imaging import RenderSettings
from galaxy_explorer.core.jobs import embed_job, run_to_end
from galaxy_explorer.core.model import ClipAdapter
from galaxy_explorer.core.ray_engine import (
    EmbedActor,
    PoolPlan,
    RayEngineError,
    default_staging_root,
    plan_pool,
    ray_embed_job,
    shard_rows,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapter(tiny_model):
    return ClipAdapter.load(str(tiny_model), device="cpu")


def _store(cache: Path, adapter: ClipAdapter) -> EmbeddingStore:
    return EmbeddingStore(cache, adapter.model_key, RenderSettings().key(), adapter.dim)


def _ray_processes(session_dir: str) -> list[int]:
    """Pids of live processes that belong to a Ray session (their command line names it)."""
    name = os.path.basename(session_dir).encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                if name in fh.read():
                    pids.append(int(d))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module; afterwards no process of it may be left."""
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'galaxy-explorer[ray]'")
    import logging

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    session_dir = ray._private.worker._global_node.get_session_dir_path()
    assert _ray_processes(session_dir)  # the check below can see Ray's processes
    yield ray
    ray.shutdown()
    deadline = time.monotonic() + 60
    while _ray_processes(session_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes(session_dir), "Ray left processes behind after shutdown"


# ------------------------------------------------------------------ without Ray
def test_pool_plan_from_cluster_resources():
    # several 2-CPU actors share each GPU, as the GPU nodes' CPUs per GPU allow (a GPU-less
    # head does not count)
    plan = plan_pool([{"CPU": 16}, {"CPU": 32, "GPU": 4}, {"CPU": 8, "GPU": 1}])
    assert plan == PoolPlan(actors=20, num_cpus=2.0, num_gpus=0.25) and plan.device == "cuda"
    assert plan_pool([{"CPU": 112, "GPU": 8}]) == PoolPlan(56, 2.0, 1 / 7)
    assert plan_pool([{"CPU": 256, "GPU": 8}]) == PoolPlan(64, 2.0, 1 / 8)  # at most 8 per GPU
    assert plan_pool([{"CPU": 2, "GPU": 4}]) == PoolPlan(4, 0.0, 1.0)  # fewer CPUs than GPUs
    assert plan_pool([{"CPU": 32, "GPU": 4}], actors=2).actors == 2
    # CPU actors of up to 4 CPUs, never more than the cluster holds
    assert plan_pool([{"CPU": 2}]) == PoolPlan(actors=2, num_cpus=1.0, num_gpus=0.0)
    assert plan_pool([{"CPU": 16}, {"CPU": 16}]) == PoolPlan(8, 4.0, 0.0)
    assert plan_pool([{"CPU": 2}], actors=10).actors == 2
    assert plan_pool([{"CPU": 8, "GPU": 2}], use_gpu=False).device == "cpu"
    with pytest.raises(RayEngineError, match="no GPU"):
        plan_pool([{"CPU": 8}], use_gpu=True)
    with pytest.raises(RayEngineError, match="no CPU"):
        plan_pool([{"memory": 1e9}])
    assert shard_rows(8, 2) == 1 and shard_rows(100, 2) == 13 and shard_rows(10**8, 8) == 2048


def test_actor_writes_one_shard_and_reports_failures(cutouts, tmp_path, adapter, tiny_model):
    """The actor, run in-process: same vectors as a local run, bad files named with a reason."""
    (cutouts / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    items = scan(cutouts).items
    act = EmbedActor(
        str(tiny_model),
        "cpu",
        "auto",
        adapter.model_key,
        RenderSettings(),
        str(tmp_path / "staging"),
        batch_size=3,
        workers=2,
    )
    out = act(
        {
            "sha": np.array([it.sha256 for it in items]),
            "path": np.array([os.fsencode(it.path) for it in items], dtype=object),
        }
    )
    import json

    keys = json.loads(out["keys"][0])
    fails = dict(json.loads(out["failures"][0]))
    bad = next(it for it in items if it.path.name == "bad.jpg")
    assert len(keys) == 8 and list(fails) == [bad.sha256] and fails[bad.sha256]
    store = _store(tmp_path / "cache", adapter)
    assert store.adopt_shard(out["shard"][0]) == 8
    local = _store(tmp_path / "local", adapter)
    last = run_to_end(embed_job(items, adapter, local))
    assert last.failed == 1 and local.failures()[bad.sha256] == fails[bad.sha256]
    a, fa = store.get(keys)
    b, fb = local.get(keys)
    assert fa.all() and fb.all()
    assert float(np.min(np.sum(a * b, axis=1))) >= 0.999


def test_actor_refuses_other_weights(tmp_path, tiny_model):
    with pytest.raises(RayEngineError, match="same weights on every node"):
        EmbedActor(
            str(tiny_model),
            "cpu",
            "fp32",
            "folder@0000#other",
            RenderSettings(),
            str(tmp_path),
            batch_size=4,
            workers=1,
        )


def test_without_ray_the_engine_gives_a_one_line_hint(cutouts, tiny_model, tmp_path):
    """Ray blocked from importing (as if not installed): exit 2, one line, no traceback."""
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from galaxy_explorer.cli import main\n"
        f"raise SystemExit(main(['embed', {str(cutouts)!r}, '--model', {str(tiny_model)!r},"
        f" '--cache', {str(tmp_path / 'cache')!r}, '--engine', 'ray']))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'galaxy-explorer[ray]'" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "cache").exists()  # nothing was started or written


def test_ray_options_need_the_ray_engine(cutouts, tmp_path, capsys):
    from galaxy_explorer.cli import main

    code = main(
        [
            "embed",
            str(cutouts),
            "--cache",
            str(tmp_path / "c"),
            "--actors",
            "2",
            "--staging",
            str(tmp_path / "s"),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == "error: --actors, --staging only go with --engine ray"
    assert not (tmp_path / "c").exists()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_fast(cutouts, tiny_model, tmp_path):
    """ray.init would retry a dead address for minutes: one line and exit 2 within seconds."""
    from galaxy_explorer.core.ray_engine import check_reachable

    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(RayEngineError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(RayEngineError, match="cannot reach"):
        check_reachable(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - t0 < 10
    with pytest.raises(RayEngineError, match="expected auto, HOST:PORT"):
        check_reachable("nonsense")
    check_reachable("auto")  # left to Ray
    pytest.importorskip("ray")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "galaxy_explorer",
            "embed",
            str(cutouts),
            "--model",
            str(tiny_model),
            "--cache",
            str(tmp_path / "cache"),
            "--engine",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        },
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"
    ]


# --------------------------------------------------------------------- with Ray
@pytest.mark.slow
def test_cli_ray_then_local_reports_nothing_to_embed(
    ray_cluster, cutouts, tiny_model, tmp_path, capsys, adapter
):
    from galaxy_explorer.cli import main

    cache = tmp_path / "cache"
    args = ["--model", str(tiny_model), "--cache", str(cache)]
    assert main(["embed", str(cutouts), *args, "--engine", "ray", "--actors", "1"]) == 0
    err = capsys.readouterr().err
    assert "ray: 1 actor(s) on cpu" in err
    assert "embedding:" in err and "8/8" in err  # the progress bar, on stderr
    assert "8 embedded, 0 cached, 0 failed" in err
    assert main(["embed", str(cutouts), *args]) == 0  # the local engine finds it all cached
    assert "0 embedded, 8 cached, 0 failed" in capsys.readouterr().err
    assert not any(default_staging_root(cache).iterdir())  # staging cleaned up

    local = tmp_path / "local"
    assert main(["embed", str(cutouts), "--model", str(tiny_model), "--cache", str(local)]) == 0
    capsys.readouterr()
    shas = [it.sha256 for it in scan(cutouts).items]
    with _store(cache, adapter) as a, _store(local, adapter) as b:
        assert sorted(a.keys()) == sorted(b.keys()) == sorted(set(shas))
        va, _ = a.get(shas)
        vb, _ = b.get(shas)
    assert float(np.min(np.sum(va * vb, axis=1))) >= 0.999


@pytest.mark.slow
def test_resume_embeds_only_what_is_missing(ray_cluster, cutouts, tmp_path, adapter):
    """Part cached, a shard left by a killed run adopted, a live run's folder left alone."""
    for i in range(4):
        write_jpeg(cutouts / f"extra_{i}.jpg", seed=200 + i)
    items = scan(cutouts).items  # 12 files
    cache = tmp_path / "cache"
    store = _store(cache, adapter)
    run_to_end(embed_job(items[:5], adapter, store))  # 5 embedded by an earlier local run
    # a run killed after a worker wrote its shard but before the driver adopted it
    dead = default_staging_root(cache) / "run-killed"
    left = items[5:7]
    vecs = adapter.embed_images(
        [
            __import__("galaxy_explorer.core.imaging", fromlist=["load_rgb"]).load_rgb(it.path)
            for it in left
        ]
    )
    write_shard_file(
        dead,
        adapter.model_key,
        RenderSettings().key(),
        adapter.dim,
        [it.sha256 for it in left],
        vecs,
    )
    # a live run (its driver holds the lock): its shard must not be taken
    live = default_staging_root(cache) / "run-live"
    live.mkdir()
    fd = os.open(live / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    live_shard = write_shard_file(
        live,
        adapter.model_key,
        RenderSettings().key(),
        adapter.dim,
        [items[7].sha256],
        adapter.embed_images([np.zeros((8, 8, 3), np.uint8)]),
    )
    # a failure recorded before (a transient read error): --retry-failed tries it again
    store.put_failure(items[8].sha256, "transient: I/O error", items[8].path)
    try:
        progs = list(ray_embed_job(items, adapter, store, actors=2, retry_failed=True))
    finally:
        os.close(fd)
    first, last = progs[0], progs[-1]
    assert first.cached == 7  # 5 from the index + 2 adopted from the killed run's shard
    assert last.embedded == 5 and last.cached == 7 and last.failed == 0 and last.finished
    assert sum(len(p.shas) for p in progs) == 5
    assert [p.done for p in progs] == sorted(p.done for p in progs) and last.done == 12
    assert not dead.exists() and live_shard.exists()
    assert store.missing([it.sha256 for it in items]) == []
    assert store.failures() == {}  # the retried file succeeded: its failure is cleared
    again = list(ray_embed_job(items, adapter, store))  # nothing left: no actors started
    assert len(again) == 1 and again[0].cached == 12 and again[0].finished
    store.close()


@pytest.mark.slow
def test_failures_recorded_like_local_runs_and_skipped_after(
    ray_cluster, cutouts, tmp_path, adapter
):
    (cutouts / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    odd_bad = os.fsdecode(b"same_bad_\xff\xfe.jpg")  # any bytes a filesystem allows
    (cutouts / odd_bad).write_bytes(b"\xff\xd8 not really a jpeg")
    (cutouts / "empty.png").write_bytes(b"")
    write_jpeg(cutouts / os.fsdecode(b"good_\xe9\x80.jpg"), seed=300)
    items = scan(cutouts).items
    with _store(tmp_path / "local", adapter) as local:
        run_to_end(embed_job(items, adapter, local))
        local_reasons = local.failures()
        local_paths = sorted(p.name for p, _, _ in local.failure_paths())
    store = _store(tmp_path / "cache", adapter)
    progs = list(ray_embed_job(items, adapter, store, actors=2, rows_per_shard=4))
    last = progs[-1]
    assert last.embedded == 9 and last.failed == 2
    named = sorted(p.name for prog in progs for p, _ in prog.errors)
    assert named == sorted(["bad.jpg", "empty.png", odd_bad])  # every path of a bad content
    assert store.failures() == local_reasons and all(local_reasons.values())
    assert sorted(p.name for p, _, _ in store.failure_paths()) == local_paths
    again = list(ray_embed_job(items, adapter, store))
    assert len(again) == 1 and again[0].failed == 2 and again[0].cached == 9
    assert sorted(p.name for p, _ in again[0].errors) == named  # reported, not retried
    store.close()
