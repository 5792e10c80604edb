"""Label changes at 100,000 labels (run on demand).

    pytest tests/benchmarks/bench_labels.py -m benchmark -s
    python tests/benchmarks/bench_labels.py

What a GUI click costs: one :meth:`LabelStore.set` of one item (and of a 50-item selection),
an undo, a redo, and the window's incremental refresh (:meth:`LabelStore.changes_since`),
each timed as the median over many calls on a store that already holds 100k labels, and
the same with a second process writing to the store at the same time. Reported with the
ratio to the baseline the JSON store of earlier releases paid per change (serialising all
labels and rewriting the file atomically), measured in the same run. The issue's target
is at most 5 ms per change on the GUI thread.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

N, REPEATS = 100_000, 200
ROOT = Path(__file__).resolve().parents[2]

_OTHER_WRITER = r"""
import sys, time
from galaxy_explorer.core.labels import LabelStore
s = LabelStore(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    s.set([f"{'f' * 8}{i:056x}"], "from-other-process")
    i += 1
    time.sleep(0.002)
"""


def _median_ms(fn: Callable[[int], object], repeats: int = REPEATS) -> tuple[float, float]:
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000


def _json_rewrite_baseline(folder: Path, labels: dict[str, dict]) -> Callable[[int], None]:
    from galaxy_explorer.core._atomic import atomic_open

    path = folder / "old.json"

    def change(i: int) -> None:
        labels[f"{i:064x}"] = {"label": f"L{i % 7}", "path": f"/data/{i}.fits"}
        doc = {"format": "galaxy-explorer-labels", "version": 1, "labels": labels}
        with atomic_open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")

    return change


def run() -> dict[str, tuple[float, float]]:
    from galaxy_explorer.core.labels import LabelStore

    folder = Path(tempfile.mkdtemp(prefix="bench_labels_"))
    path = folder / "labels.sqlite"
    shas = [f"{i:064x}" for i in range(N)]
    legacy = {
        s: {"label": f"class{i % 5}", "path": f"/data/survey/{i}.fits"} for i, s in enumerate(shas)
    }
    (folder / "labels.json").write_text(
        json.dumps({"format": "galaxy-explorer-labels", "version": 1, "labels": legacy})
    )
    t0 = time.perf_counter()
    store = LabelStore(path)  # imports the 100k JSON labels once
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    store2 = LabelStore(path)
    t_open = time.perf_counter() - t0
    assert len(store2) == N
    t0 = time.perf_counter()
    store2.all()
    t_all = time.perf_counter() - t0
    store2.close()

    token = store.token
    results: dict[str, tuple[float, float]] = {
        "baseline: JSON rewrite per change": _median_ms(
            _json_rewrite_baseline(folder, dict(legacy)), repeats=10
        ),
        "set 1 item": _median_ms(lambda i: store.set([shas[i]], f"new{i % 3}")),
        "set 50 items (a selection)": _median_ms(
            lambda i: store.set(shas[1000 + 50 * i : 1050 + 50 * i], f"sel{i % 3}"), repeats=100
        ),
        "undo": _median_ms(lambda i: store.undo(), repeats=100),
        "redo": _median_ms(lambda i: store.redo(), repeats=100),
    }

    def pull(i: int) -> None:
        nonlocal token
        store.set([shas[5000 + i]], "x")
        token, changes = store.changes_since(token)
        assert shas[5000 + i] in changes

    results["set 1 + window refresh (changes_since)"] = _median_ms(pull)
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        results["set 1 item, another process writing"] = _median_ms(
            lambda i: store.set([shas[20000 + i]], f"busy{i % 3}")
        )
    finally:
        other.kill()
        other.wait()
    assert len(store) >= N
    store.close()

    base = results["baseline: JSON rewrite per change"][0]
    print(f"\nlabels benchmark: {N:,} labels; median and 95th percentile per call")
    print(
        f"  import of a {N:,}-label JSON file: {t_import:.2f} s (once); open: "
        f"{t_open * 1000:.0f} ms; all(): {t_all * 1000:.0f} ms"
    )
    for name, (med, p95) in results.items():
        print(f"  {name:42s} {med:8.3f} ms  (p95 {p95:8.3f})  baseline / this: {base / med:9,.0f}")
    return results


@pytest.mark.benchmark
def test_label_change_at_100k():
    """Reports times and ratios; the issue's target is <= 5 ms per change."""
    results = run()
    assert set(results) >= {"set 1 item", "undo", "redo"}


if __name__ == "__main__":
    run()
