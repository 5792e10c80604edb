"""Gallery sorts by manual label and catalogue column, select all, and the map's few-shot
halo at 1M rows against 100k, in one run (on demand).

    pytest tests/benchmarks/bench_gallery_sort.py -m benchmark -s
    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_gallery_sort.py [N_BIG] [N_SMALL]

A real :class:`GalleryView` over ``n`` rows (items are plain values, as the open worker
hands them over) with four labels on 3/4 of the rows and a matched catalogue of a number
column and a text column. For each sort: the time from choosing it until the order is
applied (it runs on the gallery's worker above 50k rows) and the longest event-loop freeze
meanwhile (``bench_map_scale``'s 10 ms lateness probe). The text column is sorted twice:
the first time ranks its strings, the second reuses the key from the catalogue's cache.
Then "select all" (every row, every page): the GUI-thread time of the call. And the map's
density re-bin with and without the suggestions' halo (``MapView._bin_view`` /
``_bin_halo`` as the map's worker runs them), median of 5.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/: _gui_helpers

from _gui_helpers import LatenessProbe  # noqa: E402
from bench_map_scale import make_controller  # noqa: E402


class _Item:
    __slots__ = ("name", "path", "sha256")

    def __init__(self, i: int) -> None:
        self.name = f"g{i:07d}.png"
        self.path = f"/nowhere/g{i:07d}.png"
        self.sha256 = f"{i:064x}"


def _wait(app, pred, timeout=600.0) -> float:
    t0 = time.perf_counter()
    while not pred():
        app.processEvents()
        time.sleep(0.002)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError
    return time.perf_counter() - t0


def measure(n: int) -> dict:
    from astropy.table import Table
    from PySide6.QtWidgets import QApplication

    from galaxy_explorer.core.catalogue import Catalogue
    from galaxy_explorer.core.sort_keys import item_sort_key
    from galaxy_explorer.gui.controller import Controller
    from galaxy_explorer.gui.gallery import GalleryView

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    c = Controller(umap=False)
    g = GalleryView(c, None)
    g.resize(1100, 700)
    g.show()
    names = c.label_names()
    pick = rng.integers(0, 4, n)
    labels = [names[0], names[1], "zebra", None]
    items = [_Item(i) for i in range(n)]
    c.state.open(items, sha_rows={}, name_order=rng.permutation(n).astype(np.int64))
    c.state.manual = [labels[i] for i in pick.tolist()]
    c.state.manual_counts = {lab: int((pick == i).sum()) for i, lab in enumerate(labels) if lab}
    _wait(app, lambda: len(g.model.order) == n and not g.model.pending_sort)
    z = rng.random(n)
    z[rng.random(n) < 0.05] = np.nan
    morph = np.array([f"NGC {v}" for v in rng.integers(0, 10**6, n).tolist()], dtype=object)
    cat = Catalogue(Table({"z": z, "morph": morph}), "bench.fits")
    for col in cat.columns:  # as the catalogue link does on its worker when it opens one
        cat.kind(col)
    row_of_item = rng.permutation(n).astype(np.int64)
    g.set_sort_columns(
        ["z", "morph"],
        lambda col, desc: lambda: item_sort_key(cat, col, row_of_item, descending=desc),
    )
    probe = LatenessProbe()
    out: dict = {"n": n}

    def timed(name: str, change) -> None:
        _wait(app, lambda: not g.model.pending_sort)
        before = g.model.order
        probe.max_late = 0.0
        probe.start()
        t0 = time.perf_counter()
        change()
        _wait(app, lambda: not g.model.pending_sort and g.model.order is not before)
        out[name] = time.perf_counter() - t0
        probe.timer.stop()
        out[name + "_freeze"] = probe.max_late

    timed("label", lambda: g.set_sort("label"))
    timed("column_number", lambda: g.set_sort_column("z"))
    timed("column_text_first", lambda: g.set_sort_column("morph"))
    timed("name", lambda: g.set_sort("name"))
    timed("column_text_cached", lambda: g.set_sort("column"))
    t0 = time.perf_counter()
    g.view.selectAll()
    out["select_all"] = time.perf_counter() - t0
    assert len(c.selection) == n
    c.shutdown()
    g.close()

    # the map's worker: density re-bin, and the halo binned over it
    from galaxy_explorer.gui.scatter import MapView

    mc, xy = make_controller(n)
    mc.coords = xy.astype(np.float32)
    mc.suggested = np.where(rng.random(n) < 0.1, rng.integers(0, 3, n), -1).astype(np.int32)
    mc.state.suggestion_classes = names[:3]
    mc.set_color_mode("manual")
    m = MapView(mc)
    m.resize(1200, 800)
    data = m._build_data(None)
    m.vb.setRange(xRange=(-14, 14), yRange=(-14, 14), padding=0)
    grid = m._view_grid()
    t_bin, t_halo = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        dens = m._bin_view(data, grid)
        t_bin.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        halo = m._bin_halo(data, grid, dens.counts)
        t_halo.append(time.perf_counter() - t0)
    assert halo is not None
    out["density_bin"] = float(np.median(t_bin))
    out["halo_bin"] = float(np.median(t_halo))
    mc.shutdown()
    return out


def run(n_big: int = 1_000_000, n_small: int = 100_000) -> tuple[dict, dict]:
    small = measure(n_small)
    big = measure(n_big)
    print(f"\n{'':28s}{n_small:>12,}{n_big:>12,}   ratio")
    for key in small:
        if key == "n":
            continue
        a, b = small[key], big[key]
        unit = 1000.0
        print(f"{key:28s}{a * unit:10.0f}ms{b * unit:10.0f}ms   {b / max(a, 1e-9):5.1f}x")
    print(f"load average: {os.getloadavg()}")
    return small, big


@pytest.mark.benchmark
def test_gallery_sorts_and_halos_at_scale():
    small, big = run()
    assert big["label"] > 0 and big["halo_bin"] > 0


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    run(*args)
