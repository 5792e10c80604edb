"""Soak: many writers, random kill -9 and damage against one cache and one labels store.

    pytest tests/benchmarks/bench_soak.py -m benchmark -s
    python tests/benchmarks/bench_soak.py [ROUNDS]

Each round starts two store writers and two label writers as real processes, kills one of
each with SIGKILL at a random moment, lets the others finish, sometimes damages a shard,
then checks the invariants: every vector a writer acknowledged (printed after ``put``
returned) is served or recomputed-as-missing (never wrong), every acknowledged label is
there, the stores open cleanly. Reports rounds, writes and the worst time per round.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

STORE_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from galaxy_explorer.core.cache import EmbeddingStore
    root, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    st = EmbeddingStore(root, "soak", "r", 16)
    for i in range(n):
        keys = [f"{tag}-{i:05d}-{j}" for j in range(8)]
        v = np.random.default_rng(abs(hash(keys[0])) % 2**32).normal(size=(8, 16))
        st.put(keys, v / np.linalg.norm(v, axis=1, keepdims=True))
        print(i, flush=True)
    st.close()
""")

LABEL_WRITER = textwrap.dedent("""
    import sys
    from galaxy_explorer.core.labels import LabelStore
    path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    st = LabelStore(path)
    for i in range(n):
        st.set([f"{tag}{i:05d}"], f"label-{i % 5}")
        print(i, flush=True)
""")


def _start(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _acked(p: subprocess.Popen[str]) -> int:
    out, _ = p.communicate()
    lines = [ln for ln in out.splitlines() if ln.strip().isdigit()]
    return int(lines[-1]) + 1 if lines else 0


def soak(rounds: int = 20, seed: int = 0) -> dict[str, float]:
    from galaxy_explorer.core.cache import EmbeddingStore
    from galaxy_explorer.core.labels import LabelStore

    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="ge-soak-"))
    cache, labels = tmp / "cache", tmp / "labels.sqlite"
    acked_vecs: dict[str, int] = {}
    acked_labels: dict[str, int] = {}
    worst = 0.0
    damaged_rounds = 0
    for r in range(rounds):
        t0 = time.perf_counter()
        procs = {
            f"s{r}a": _start(STORE_WRITER, str(cache), f"s{r}a", "200"),
            f"s{r}b": _start(STORE_WRITER, str(cache), f"s{r}b", "200"),
            f"l{r}a": _start(LABEL_WRITER, str(labels), f"l{r}a", "3000"),
            f"l{r}b": _start(LABEL_WRITER, str(labels), f"l{r}b", "200"),
        }
        time.sleep(rng.uniform(0.5, 3.0))
        for victim in (f"s{r}a", f"l{r}a"):
            procs[victim].send_signal(signal.SIGKILL)
        for tag, p in procs.items():
            (acked_vecs if tag.startswith("s") else acked_labels)[tag] = _acked(p)
        if rng.random() < 0.3:  # damage a shard now and then: it must be found, not served
            shards = sorted((cache / "store-v2" / "shards").glob("*/*.gxs"))
            if shards:
                victim = rng.choice(shards)
                raw = bytearray(victim.read_bytes())
                if len(raw) > 200:
                    raw[100:140] = os.urandom(40)
                    victim.write_bytes(bytes(raw))
                    damaged_rounds += 1
        with EmbeddingStore(cache, "soak", "r", 16) as st:
            for tag, n in acked_vecs.items():
                keys = [f"{tag}-{i:05d}-{j}" for i in range(n) for j in range(8)]
                vecs, found = st.get(keys)
                norms = np.linalg.norm(vecs[found], axis=1)
                assert np.allclose(norms, 1, atol=5e-3), "a damaged record was served"
                st.put(
                    [k for k, f in zip(keys, found, strict=True) if not f],
                    np.tile(np.eye(16)[:1], (int((~found).sum()), 1)),
                )
        ls = LabelStore(labels)
        for tag, n in acked_labels.items():
            for i in range(n):
                assert ls.get(f"{tag}{i:05d}") == f"label-{i % 5}", "an acknowledged label was lost"
        ls.close()
        worst = max(worst, time.perf_counter() - t0)
    return {
        "rounds": rounds,
        "vectors_acknowledged": sum(acked_vecs.values()) * 8,
        "labels_acknowledged": sum(acked_labels.values()),
        "damaged_rounds": damaged_rounds,
        "worst_round_s": worst,
    }


@pytest.mark.benchmark
def test_soak():
    print("\nsoak:", soak(int(os.environ.get("SOAK_ROUNDS", "20"))))


if __name__ == "__main__":
    print("soak:", soak(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
