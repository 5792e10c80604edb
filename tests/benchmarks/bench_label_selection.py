"""Labelling a huge selection: what the window's GUI thread pays (issue #12; on demand).

    pytest tests/benchmarks/bench_label_selection.py -m benchmark -s
    python tests/benchmarks/bench_label_selection.py [N ...]

For each N (default 100,000 and 1,000,000 rows) a controller on a real label store labels
every row, relabels half of them, and undoes that. Reported per action: the time the call
itself held the GUI thread, the longest stall of a 10 ms heartbeat timer while the action
ran (what the user feels), and the time until the rows show the new labels. Baseline in the
same run: the same action done on the GUI thread (``big_label_rows`` above N).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


class _Item:
    __slots__ = ("path", "sha256")

    def __init__(self, i: int) -> None:
        self.path = Path(f"/cat/g{i:07d}.png")
        self.sha256 = f"{i:064x}"


def _run(n: int, on_worker: bool) -> list[tuple[str, float, float, float]]:
    from PySide6.QtCore import QCoreApplication, QTimer
    from PySide6.QtWidgets import QApplication

    from galaxy_explorer.core.labels import LabelStore
    from galaxy_explorer.gui.controller import Controller

    app = QApplication.instance() or QApplication([])
    c = Controller(umap=False)
    c.state.open([_Item(i) for i in range(n)], manual=[None] * n)
    c.session = SimpleNamespace()
    tmp = tempfile.mkdtemp()
    c.label_store = LabelStore(Path(tmp) / "labels.sqlite")
    if not on_worker:
        c.big_label_rows = n + 1
    gaps = [0.0]
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps[0] = max(gaps[0], now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(beat)
    timer.start()
    out = []
    half = np.arange(0, n, 2)
    for name, action in (
        ("label all", lambda: c.set_manual_label(np.arange(n), "spiral")),
        ("relabel half", lambda: c.set_manual_label(half, "elliptical")),
        ("undo", c.undo_labels),
    ):
        QCoreApplication.processEvents()
        gaps[0], last[0] = 0.0, time.perf_counter()
        t0 = time.perf_counter()
        action()
        call = time.perf_counter() - t0
        beat()
        while c._label_busy():
            app.processEvents()
            time.sleep(0.002)
        app.processEvents()
        out.append((name, call, gaps[0], time.perf_counter() - t0))
    assert c.manual_counts() == {"spiral": n}
    timer.stop()
    c.shutdown()
    c.label_store.close()
    return out


def main(ns: list[int]) -> None:
    import os

    print(f"load average {os.getloadavg()[0]:.1f}")
    for n in ns:
        for on_worker in (False, True):
            if not on_worker and n > 200_000:
                print(f"N={n:,} on the GUI thread: skipped (minutes; see N=100k for the ratio)")
                continue
            where = "worker" if on_worker else "GUI thread (baseline)"
            for name, call, gap, total in _run(n, on_worker):
                print(
                    f"N={n:>9,} {where:22s} {name:13s} call {call:6.2f} s  "
                    f"longest stall {gap:6.2f} s  until shown {total:6.2f} s"
                )


@pytest.mark.benchmark
def test_bench_label_selection() -> None:
    main([100_000])


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
