from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from galaxy_explorer.core import cache as cache_mod
from galaxy_explorer.core.cache import EmbeddingStore


def _vecs(n, d=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_put_get_roundtrip_float16_precision(tmp_path):
    with EmbeddingStore(tmp_path, "m@1", "r1", 8) as st:
        v = _vecs(5)
        st.put([f"s{i}" for i in range(5)], v)
        got, found = st.get(["s3", "zz", "s0"])
        assert found.tolist() == [True, False, True]
        np.testing.assert_allclose(got[0], v[3], atol=2e-3)
        assert np.all(got[1] == 0)
        assert got.dtype == np.float32
        assert st.missing(["s1", "x", "s1", "y"]) == ["x", "y"]
        assert len(st) == 5


def test_spaces_are_separate_and_persist(tmp_path):
    with EmbeddingStore(tmp_path, "m@1", "r1", 8) as a:
        a.put(["s"], _vecs(1))
    with EmbeddingStore(tmp_path, "m@1", "r2", 8) as b:  # other stretch
        assert b.missing(["s"]) == ["s"]
    with EmbeddingStore(tmp_path, "m@2", "r1", 8) as c:  # other model
        assert c.missing(["s"]) == ["s"]
    with EmbeddingStore(tmp_path, "m@1", "r1", 8) as a2:  # reopened
        assert a2.missing(["s"]) == []


def test_dimension_mismatch_is_refused(tmp_path):
    EmbeddingStore(tmp_path, "m", "r", 8).close()
    with pytest.raises(ValueError, match="dim 8"):
        EmbeddingStore(tmp_path, "m", "r", 16)
    with EmbeddingStore(tmp_path, "m", "r", 8) as st, pytest.raises(ValueError, match="shape"):
        st.put(["a"], np.zeros((1, 4)))


def test_failures_recorded_and_cleared_by_success(tmp_path):
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put_failure("bad", "truncated FITS file", "/x/bad.fits")
        assert st.failures() == {"bad": "truncated FITS file"}
        st.put(["bad"], _vecs(1))
        assert st.failures() == {}


def test_compaction_keeps_every_vector(tmp_path, monkeypatch):
    monkeypatch.setattr(EmbeddingStore, "COMPACT_AT", 4)
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        allv = _vecs(20)
        for i in range(10):
            st.put([f"s{2 * i}", f"s{2 * i + 1}"], allv[2 * i:2 * i + 2])
        assert st._shard_count() <= 4
        got, found = st.get([f"s{i}" for i in range(20)])
        assert found.all()
        np.testing.assert_allclose(got, allv, atol=2e-3)


def test_crash_while_writing_shard_leaves_store_intact(tmp_path, monkeypatch):
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put(["a"], _vecs(1))

        def boom(*a, **k):
            raise OSError("disk full")

        monkeypatch.setattr(cache_mod.os, "replace", boom)
        with pytest.raises(OSError):
            st.put(["b"], _vecs(1, seed=1))
        monkeypatch.undo()
        assert st.missing(["a", "b"]) == ["b"]
        assert not list(st.shard_dir.glob(".*tmp"))  # no temp litter
        _, found = st.get(["a"])
        assert found.all()


def _writer(root, n_batches):
    st = EmbeddingStore(root, "m", "r", 8)
    for i in range(n_batches):
        st.put([f"k{i}-{j}" for j in range(4)], _vecs(4, seed=i))
        time.sleep(0.01)


@pytest.mark.slow
def test_killed_writer_never_corrupts_and_readers_work(tmp_path):
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_writer, args=(str(tmp_path), 10_000))
    p.start()
    deadline = time.time() + 20
    seen = 0
    while time.time() < deadline and seen < 20:
        if (tmp_path / "index.sqlite").exists():
            try:
                with EmbeddingStore(tmp_path, "m", "r", 8) as rd:  # concurrent reader
                    seen = len(rd)
            except Exception:  # the writer may still be creating the schema
                pass
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        n = len(st)
        assert n >= 20 and n % 4 == 0  # whole batches only
        shas = [r[0] for r in st._db.execute("SELECT sha FROM vectors")]
        vecs, found = st.get(shas)
        assert found.all()
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=5e-3)
