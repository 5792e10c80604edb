from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from galaxy_explorer.core.cache import STORE_DIR, EmbeddingStore, FileMemo


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


def _keys(n, tag="k"):
    return [f"{tag}{i:06d}" for i in range(n)]


def test_small_writes_reuse_one_shard_and_write_linear_bytes(tmp_path):
    """50 separate writers of 2 vectors each: no file per batch, and no rewriting."""
    allv = _vecs(100, d=64)
    for i in range(50):
        with EmbeddingStore(tmp_path, "m", "r", 64) as st:
            st.put(_keys(100)[2 * i : 2 * i + 2], allv[2 * i : 2 * i + 2])
    with EmbeddingStore(tmp_path, "m", "r", 64) as st:
        assert len(st.shard_files()) == 1
        got, found = st.get(_keys(100))
        assert found.all()
        np.testing.assert_allclose(got, allv, atol=2e-3)
        size = sum(f.stat().st_size for f in st.shard_files())
        assert size <= 64 + 100 * (64 + 2 * 64)  # header + one record per vector


def test_index_rebuilt_from_self_describing_shards(tmp_path, caplog):
    v = _vecs(40)
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put(_keys(40), v)
    idx = tmp_path / STORE_DIR / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        idx.with_name(idx.name + suffix).unlink(missing_ok=True)
    idx.write_bytes(os.urandom(8192))  # garbled: "file is not a database"
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        got, found = st.get(_keys(40))
    assert found.all()
    np.testing.assert_allclose(got, v, atol=2e-3)
    assert "rebuilt from the shards" in caplog.text
    assert list((tmp_path / STORE_DIR / "damaged").glob("index-*.sqlite"))


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete", "short_by_one"])
def test_damaged_shard_rows_count_as_missing_and_are_moved_aside(tmp_path, damage, caplog):
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put(_keys(20), _vecs(20))
        (shard,) = st.shard_files()
    raw = shard.read_bytes()
    rec = 64 + 16
    if damage == "truncate":
        shard.write_bytes(raw[: 64 + 10 * rec])
    elif damage == "garble":
        shard.write_bytes(raw[: 64 + 5 * rec] + os.urandom(rec) + raw[64 + 6 * rec :])
    elif damage == "delete":
        shard.unlink()
    else:
        shard.write_bytes(raw[:-rec])
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        miss = st.missing(_keys(20))
        expected = {"truncate": 10, "garble": 20, "delete": 20, "short_by_one": 1}[damage]
        assert len(miss) == expected
        assert "damaged" in caplog.text
        # the same store can take them again, and then serves all of them
        st.put(miss, _vecs(len(miss), seed=3))
        assert st.missing(_keys(20)) == []
        _, found = st.get(_keys(20))
        assert found.all()
    if damage == "garble":
        assert list((tmp_path / STORE_DIR / "damaged").iterdir())


def test_failures_keep_every_path_and_any_bytes(tmp_path):
    odd = os.fsdecode(b"/data/bad\xff\xfe\x1b[31m.png")
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put_failure("dead", "empty file", odd)
        st.put_failure("dead", "empty file", "/data/also_empty.png")
        assert st.failures() == {"dead": "empty file"}
        paths = [p for p, _, _ in st.failure_paths()]
        assert [os.fsencode(p) for p in paths] == [
            b"/data/also_empty.png",
            b"/data/bad\xff\xfe\x1b[31m.png",
        ]


def test_file_memo_round_trips_any_bytes_and_prefix_lookup(tmp_path):
    memo = FileMemo(tmp_path)
    memo.record(
        [
            (b"/a/x\xff.fits", 1, 2, 3, 4, "s1"),
            (b"/a/y.fits", 5, 6, 7, 8, "s2"),
            (b"/ab/z.fits", 9, 9, 9, 9, "s3"),
        ]
    )
    got = memo.lookup("/a")
    assert set(got) == {b"/a/x\xff.fits", b"/a/y.fits"}
    assert got[b"/a/x\xff.fits"] == (1, 2, 3, 4, "s1")
    memo.close()


def test_cache_path_that_is_a_file_is_a_clear_error(tmp_path):
    from galaxy_explorer.core.cache import CacheError

    f = tmp_path / "not_a_folder"
    f.write_text("x")
    with pytest.raises(CacheError, match="must be a folder"):
        EmbeddingStore(f, "m", "r", 8)


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path):
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put(["a"], _vecs(1))
        stale = st.shard_dir / ".dead.gxs.tmp"
        stale.write_bytes(b"x")
        os.utime(stale, (time.time() - 3600, time.time() - 3600))
        fresh = st.shard_dir / ".live.gxs.tmp"
        fresh.write_bytes(b"x")
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put(["b"], _vecs(1))
    assert not stale.exists() and fresh.exists()


def test_unused_shards_are_deleted(tmp_path):
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        st.put(["a"], _vecs(1))
        old = st.shard_dir / ("0" * 32 + ".gxs")
        old.write_bytes((st.shard_files()[0]).read_bytes())  # a copy nothing references
        os.utime(old, (time.time() - 3600, time.time() - 3600))
        assert st.gc() == 1
        assert not old.exists()
        assert st.missing(["a"]) == []


def _writer(root, tag, n_batches, batch=32):
    st = EmbeddingStore(root, "m", "r", 8)
    for i in range(n_batches):
        keys = [f"{tag}{i:04d}-{j:02d}" for j in range(batch)]
        st.put(keys, _vecs(batch, seed=i))
    st.close()


def test_two_writer_processes_lose_nothing(tmp_path):
    """Two processes storing 1,600 vectors each into one cache at once: all 3,200 stay."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), tag, 50)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with EmbeddingStore(tmp_path, "m", "r", 8) as st:
        keys = [f"{t}{i:04d}-{j:02d}" for t in "ab" for i in range(50) for j in range(32)]
        assert len(st) == 3200
        _, found = st.get(keys)
        assert found.all()
        assert len(st.shard_files()) <= 2  # at most one per writer, never one per batch


def _slow_writer(root, n_batches):
    st = EmbeddingStore(root, "m", "r", 8)
    for i in range(n_batches):
        st.put([f"k{i}-{j}" for j in range(4)], _vecs(4, seed=i))
        time.sleep(0.01)


@pytest.mark.slow
def test_killed_writer_never_corrupts_and_readers_work(tmp_path):
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_slow_writer, args=(str(tmp_path), 10_000))
    p.start()
    deadline = time.time() + 20
    seen = 0
    while time.time() < deadline and seen < 20:
        if (tmp_path / STORE_DIR / "index.sqlite").exists():
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
        vecs, found = st.get(st.keys())
        assert found.all()
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=5e-3)
        st.put(["after"], _vecs(1))  # the killed writer's shard is taken over
        assert st.missing(["after"]) == []


def test_shards_written_elsewhere_are_adopted(tmp_path):
    from galaxy_explorer.core.cache import write_shard_file

    v = _vecs(3)
    p = write_shard_file(tmp_path / "worker-out", "m", "r", 8, ["a", "b", "c"], v)
    with EmbeddingStore(tmp_path / "cache", "m", "r", 8) as st:
        assert st.adopt_shard(p) == 3
        got, found = st.get(["c", "a", "x"])
        assert found.tolist() == [True, True, False]
        np.testing.assert_allclose(got[:2], v[[2, 0]], atol=2e-3)
        other = write_shard_file(tmp_path / "w2", "other-model", "r", 8, ["z"], _vecs(1))
        with pytest.raises(ValueError, match="another model"):
            st.adopt_shard(other)
