"""The approximate index (core/ann.py): used only above the threshold, exact scores,
cached on disk by the exact rows, damage and staleness rebuilt, concurrent builders."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from galaxy_explorer.core import ann, workflows
from galaxy_explorer.core.search import top_k

pytest.importorskip("faiss")

SPACE = "model-x|render-y|32"


def clustered(n: int, d: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    lab = rng.integers(0, clusters, n)
    x = centres[lab] + rng.standard_normal((n, d)).astype(np.float32) * 0.35
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def keys_for(n: int, offset: int = 0) -> list[str]:
    return [f"{i + offset:064x}" for i in range(n)]


@pytest.fixture(autouse=True)
def _fresh_notice(monkeypatch):
    monkeypatch.setattr(ann, "_said_missing", False)
    monkeypatch.delenv(ann.ENV_MIN_ROWS, raising=False)


def test_index_used_above_threshold_and_not_below(tmp_path):
    vecs = clustered(3000)
    keys = keys_for(3000)
    assert ann.index_for(vecs, keys, SPACE, tmp_path, min_rows=3001) is None
    assert not (tmp_path / "ann").exists()
    brute = workflows.rank(vecs, positive=vecs[5], top=10, index=None).scores
    assert np.isfinite(brute).all()  # every row scored

    index = ann.index_for(vecs, keys, SPACE, tmp_path, min_rows=3000)
    assert index is not None and index.n == 3000
    got = workflows.rank(vecs, positive=vecs[5], top=10, index=index).scores
    scored = np.isfinite(got)
    assert scored.sum() == 10  # only the best of the index's candidates are scored
    assert list(top_k(got, 10)) == list(top_k(brute, 10))


def test_threshold_from_environment(tmp_path, monkeypatch):
    vecs = clustered(500)
    monkeypatch.setenv(ann.ENV_MIN_ROWS, "400")
    assert ann.ann_min_rows() == 400
    assert ann.index_for(vecs, keys_for(500), SPACE, tmp_path) is not None
    monkeypatch.setenv(ann.ENV_MIN_ROWS, "600")
    assert ann.index_for(vecs, keys_for(500), SPACE, tmp_path) is None
    monkeypatch.delenv(ann.ENV_MIN_ROWS)
    assert ann.ann_min_rows() == ann.ANN_MIN_ROWS


def test_top_k_matches_brute_force_with_exact_scores(tmp_path):
    vecs = clustered(6000, d=48, clusters=60, seed=3)
    index = ann.index_for(vecs, keys_for(6000), SPACE, tmp_path, min_rows=1)
    assert index is not None
    rng = np.random.default_rng(9)
    recalls = []
    for qi in rng.integers(0, 6000, 25):
        q = vecs[qi] + rng.standard_normal(48).astype(np.float32) * 0.05
        for k in (10, 100):
            r = workflows.rank(vecs, positive=q, top=k, index=index)
            got = top_k(r.scores, k)
            want = top_k(vecs @ r.query_vector, k)
            recalls.append(len(set(got) & set(want)) / k)
            # exact dot products (to float32 rounding), not the index's 8-bit estimates,
            # which are off by ~1e-3
            exact = (vecs @ r.query_vector)[got]
            np.testing.assert_allclose(r.scores[got], exact, rtol=0, atol=1e-6)
            assert np.all(np.diff(r.scores[got]) <= 0)
    assert min(recalls) >= 0.9 and np.mean(recalls) >= 0.98


def test_large_top_falls_back_to_brute_force(tmp_path):
    vecs = clustered(3000)
    index = ann.index_for(vecs, keys_for(3000), SPACE, tmp_path, min_rows=1)
    r = workflows.rank(vecs, positive=vecs[0], top=ann.MAX_TOP + 1, index=index)
    assert np.isfinite(r.scores).all()
    r = workflows.rank(vecs, positive=vecs[0], top=None, index=index)
    assert np.isfinite(r.scores).all()


def test_index_is_cached_and_rebuilt_when_rows_are_added(tmp_path, caplog):
    vecs = clustered(3000)
    keys = keys_for(3000)
    first = ann.index_for(vecs, keys, SPACE, tmp_path, min_rows=1)
    path = ann.index_path(tmp_path, SPACE, keys)
    assert path.is_file()
    mtime = path.stat().st_mtime_ns
    again = ann.index_for(vecs, keys, SPACE, tmp_path, min_rows=1)
    assert again is not None and again is not first and path.stat().st_mtime_ns == mtime

    more = np.concatenate([vecs, clustered(500, seed=11)])
    more_keys = keys + keys_for(500, offset=10_000)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        grown = ann.index_for(more, more_keys, SPACE, tmp_path, min_rows=1)
    assert not caplog.records  # rows added: a new index, not a damaged one
    assert grown is not None and grown.n == 3500
    assert ann.index_path(tmp_path, SPACE, more_keys).is_file()
    # an added row is found: it is its own best match
    r = workflows.rank(more, positive=more[3200], top=5, index=grown)
    assert top_k(r.scores, 1)[0] == 3200
    # another model space never shares a file
    assert ann.index_path(tmp_path, "other|space|32", keys) != path


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_damaged_index_file_is_rebuilt_with_one_warning(tmp_path, caplog, damage):
    vecs = clustered(3000)
    keys = keys_for(3000)
    ann.index_for(vecs, keys, SPACE, tmp_path, min_rows=1)
    path = ann.index_path(tmp_path, SPACE, keys)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) - 1000]
    elif damage == "garbage":
        data = bytearray(b"not an index at all" * 10)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="galaxy_explorer.core.ann"):
        index = ann.index_for(vecs, keys, SPACE, tmp_path, min_rows=1)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "rebuilding" in warnings[0].getMessage()
    assert index is not None
    r = workflows.rank(vecs, positive=vecs[42], top=10, index=index)
    assert top_k(r.scores, 1)[0] == 42
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="galaxy_explorer.core.ann"):
        assert ann.index_for(vecs, keys, SPACE, tmp_path, min_rows=1) is not None
    assert not caplog.records  # the rebuilt file is whole


def test_file_of_other_rows_under_this_name_is_not_used(tmp_path, caplog):
    """A file copied over another's name (same size rows, other content) is caught."""
    a, b = clustered(3000, seed=1), clustered(3000, seed=2)
    ka, kb = keys_for(3000), keys_for(3000, offset=50_000)
    ann.index_for(a, ka, SPACE, tmp_path, min_rows=1)
    ann.index_for(b, kb, SPACE, tmp_path, min_rows=1)
    pa, pb = ann.index_path(tmp_path, SPACE, ka), ann.index_path(tmp_path, SPACE, kb)
    pa.write_bytes(pb.read_bytes())
    with caplog.at_level(logging.WARNING, logger="galaxy_explorer.core.ann"):
        index = ann.index_for(a, ka, SPACE, tmp_path, min_rows=1)
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    r = workflows.rank(a, positive=a[7], top=3, index=index)
    assert top_k(r.scores, 1)[0] == 7


def test_missing_faiss_falls_back_with_one_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    vecs = clustered(3000)
    with caplog.at_level(logging.WARNING, logger="galaxy_explorer.core.ann"):
        assert ann.index_for(vecs, keys_for(3000), SPACE, tmp_path, min_rows=1) is None
        assert ann.index_for(vecs, keys_for(3000), SPACE, tmp_path, min_rows=1) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "galaxy-explorer[ann]" in lines[0]
    r = workflows.rank(vecs, positive=vecs[1], top=10, index=None)
    assert np.isfinite(r.scores).all()


def test_unwritable_cache_builds_in_memory(tmp_path, caplog):
    (tmp_path / "ann").write_text("a file where the index folder should be")
    vecs = clustered(3000)
    with caplog.at_level(logging.WARNING, logger="galaxy_explorer.core.ann"):
        index = ann.index_for(vecs, keys_for(3000), SPACE, tmp_path, min_rows=1)
    assert index is not None and len(caplog.records) == 1
    assert "in memory" in caplog.records[0].getMessage()
    assert index.top(vecs, vecs[9], 1)[0][0] == 9


_BUILDER = textwrap.dedent(
    """
    import logging, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[3])
    from tests.core.test_search_ann import clustered, keys_for, SPACE
    from galaxy_explorer.core import ann
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    vecs = clustered(20000, d=64)
    go = float(sys.argv[2])
    while time.time() < go:
        time.sleep(0.005)
    index = ann.index_for(vecs, keys_for(20000), SPACE, sys.argv[1], min_rows=1)
    cand = index.top(vecs, vecs[123], 5)[0]
    print("TOP", int(cand[0]))
    """
)


def test_two_processes_building_at_once(tmp_path):
    """Two real processes build the same index at the same moment: one builds, the
    other waits and loads it; the file is whole and gives the right answer."""
    import time

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    go = f"{time.time() + 4.0:.3f}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILDER, str(tmp_path), go, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "TOP 123" in out
        assert "damaged" not in out + err
    builds = sum(out.count("building the ANN index") for out, _ in outs)
    assert builds == 1  # the second waited for the first and loaded its file
    files = list((tmp_path / "ann").glob("*.ann"))
    assert len(files) == 1
    assert not [p for p in (tmp_path / "ann").iterdir() if p.name.endswith(".tmp")]
    vecs = clustered(20000, d=64)
    index = ann._read(files[0], ann.rows_digest(SPACE, keys_for(20000)), 20000, 64)
    assert index.top(vecs, vecs[77], 3)[0][0] == 77
