from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
from helpers import galaxy_array, write_fits, write_jpeg

from galaxy_explorer.core.cache import EmbeddingStore
from galaxy_explorer.core.catalog import scan
from galaxy_explorer.core.imaging import RenderSettings
from galaxy_explorer.core.jobs import embed_job, run_to_end
from galaxy_explorer.core.model import ClipAdapter


@pytest.fixture(scope="module")
def adapter(tiny_model):
    return ClipAdapter.load(str(tiny_model), device="cpu")


def _store(tmp_path, adapter, render=None):
    render = render or RenderSettings()
    return EmbeddingStore(tmp_path / "cache", adapter.model_key, render.key(), adapter.dim)


def test_embeds_everything_once_with_progress_per_batch(cutouts, tmp_path, adapter):
    items = scan(cutouts).items
    store = _store(tmp_path, adapter)
    progs = list(embed_job(items, adapter, store, batch_size=3))
    assert [p.done for p in progs] == [0, 3, 6, 8]
    assert progs[-1].finished and progs[-1].embedded == 8 and progs[-1].failed == 0
    assert sum(len(p.shas) for p in progs) == 8
    vecs, found = store.get([it.sha256 for it in items])
    assert found.all()
    direct = adapter.embed_images(
        [__import__("galaxy_explorer.core.imaging", fromlist=["x"]).load_rgb(items[0].path)]
    )
    assert float(vecs[0] @ direct[0]) > 0.999  # batched pipeline == one-at-a-time
    again = run_to_end(embed_job(items, adapter, store))
    assert again.embedded == 0 and again.cached == 8


def test_incremental_rename_and_change(cutouts, tmp_path, adapter):
    store = _store(tmp_path, adapter)
    run_to_end(embed_job(scan(cutouts).items, adapter, store))
    write_fits(cutouts / "new_a.fits", galaxy_array(40, seed=77))
    write_jpeg(cutouts / "sub_new.jpg", seed=78)
    shutil.move(cutouts / "gal_000.fits", cutouts / "renamed.fits")
    write_fits(
        cutouts / "gal_001.fits", galaxy_array(48, kind="spiral", seed=999)
    )  # changed content
    last = run_to_end(embed_job(scan(cutouts).items, adapter, store))
    assert last.embedded == 3  # two new files + one changed; the renamed one is reused
    assert last.cached == 7


def test_bad_files_are_skipped_recorded_and_not_retried(cutouts, tmp_path, adapter):
    (cutouts / "bad.fits").write_bytes(b"SIMPLE  = T" + b"\0" * 100)
    (cutouts / "zero.png").write_bytes(b"")
    store = _store(tmp_path, adapter)
    last = run_to_end(embed_job(scan(cutouts).items, adapter, store, batch_size=4))
    assert last.embedded == 8 and last.failed == 2
    reasons = store.failures()
    assert len(reasons) == 2 and any("empty" in r for r in reasons.values())
    first = next(iter(embed_job(scan(cutouts).items, adapter, store)))
    assert first.failed == 2 and first.finished  # known failures reported, not re-read
    assert {p.name for p, _ in first.errors} == {"bad.fits", "zero.png"}


def test_cancel_between_batches_keeps_finished_batches(cutouts, tmp_path, adapter):
    items = scan(cutouts).items
    store = _store(tmp_path, adapter)
    cancel = threading.Event()
    progs = []
    for p in embed_job(items, adapter, store, batch_size=2, cancel=cancel):
        progs.append(p)
        if p.embedded >= 2:
            cancel.set()
    assert progs[-1].cancelled
    assert len(store) == 2
    # closing the generator early also stops cleanly (no threads left running)
    job = embed_job(items, adapter, store, batch_size=2)
    next(job)
    next(job)
    job.close()
    assert len(store) == 4
    assert not [t for t in threading.enumerate() if t.name.startswith("ge-decode")]


def test_render_settings_make_a_separate_space(cutouts, tmp_path, adapter):
    items = scan(cutouts).items
    run_to_end(embed_job(items, adapter, _store(tmp_path, adapter)))
    lin = RenderSettings(stretch="linear", limits="minmax")
    last = run_to_end(embed_job(items, adapter, _store(tmp_path, adapter, lin), lin))
    assert last.embedded == 8  # FITS re-rendered; JPEG too (the space is per render key)
    a, _ = _store(tmp_path, adapter).get([items[0].sha256])
    b, _ = _store(tmp_path, adapter, lin).get([items[0].sha256])
    assert not np.allclose(a, b)


def test_duplicate_content_embedded_once(tmp_path, adapter):
    d = tmp_path / "dups"
    d.mkdir()
    write_jpeg(d / "a.jpg", seed=5)
    shutil.copy(d / "a.jpg", d / "b.jpg")
    last = run_to_end(embed_job(scan(d).items, adapter, _store(tmp_path, adapter)))
    assert last.total == 1 and last.embedded == 1


@pytest.mark.slow
def test_projection_job_pca_first_then_cached_umap(tmp_path):
    from galaxy_explorer.core.jobs import projection_job

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(20, 16)) for c in centers]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    progs = list(projection_job(emb, cache_dir=tmp_path))
    assert progs[0].stage == "pca" and progs[0].coords.shape == (60, 2)
    assert progs[-1].finished and not progs[-1].cancelled and progs[-1].error is None
    coords = progs[-1].coords
    assert coords.shape == (60, 2) and np.isfinite(coords).all()
    # clusters stay apart: mean intra-cluster distance < mean inter-cluster distance
    lab = np.repeat(np.arange(3), 20)
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    same = lab[:, None] == lab[None]
    assert d[same].mean() < 0.5 * d[~same].mean()
    again = list(projection_job(emb, cache_dir=tmp_path))  # cached: no process
    assert len(again) == 2 and np.array_equal(again[-1].coords, coords)


def test_projection_job_cancel_terminates_child(tmp_path):
    from galaxy_explorer.core.jobs import projection_job

    emb = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    cancel = threading.Event()
    job = projection_job(emb, cache_dir=tmp_path, cancel=cancel)
    assert next(job).stage == "pca"
    cancel.set()
    last = list(job)[-1]
    assert last.cancelled and last.coords is None
    import os
    from pathlib import Path

    children = []  # no UMAP child process of ours left running (Linux: look in /proc)
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            ppid = int((cmd.parent / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"galaxy_explorer.core._umap_child" in cmd.read_bytes():
                children.append(cmd)
        except (OSError, ValueError, IndexError):
            pass
    assert not children
