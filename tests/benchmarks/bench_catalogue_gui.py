"""GUI-thread cost of a 100,000-row catalogue (run on demand).

    pytest tests/benchmarks/bench_catalogue_gui.py -m benchmark -s
    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_catalogue_gui.py

What the GUI thread does when the catalogue's worker hands its arrays over (panel update,
sky panel redraw, recolour, selection rings), each including the repaint, as a ratio to
the map's own point cloud taking 100,000 points and repainting, measured in the same run.
Reading, matching, filtering and colour classes run on the worker and are not included.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def run(n: int = 100_000) -> dict[str, float]:
    import pyqtgraph as pg
    from astropy.table import Table
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QApplication

    from galaxy_explorer.core import catalogue as C
    from galaxy_explorer.core.catalog import Item
    from galaxy_explorer.gui.catalogue_panel import (
        CatalogueLink,
        CataloguePanel,
        _colour_classes,
        _colour_source,
        _sky_arrays,
    )
    from galaxy_explorer.gui.controller import Controller
    from galaxy_explorer.gui.scatter import PointCloud
    from galaxy_explorer.gui.sky_panel import SkyPanel

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    c = Controller()
    c.items = [Item(Path(f"/d/g{i:07d}.fits"), f"{i:064x}", 1, 0.0) for i in range(n)]
    link = CatalogueLink(c)
    panel = CataloguePanel(link)
    sky = SkyPanel(c, link)
    sky.resize(400, 400)
    sky.show()
    panel.show()
    t = Table(
        {
            "path": [f"g{i:07d}.fits" for i in range(n)],
            "ra": rng.uniform(150, 152, n),
            "dec": rng.uniform(1, 3, n),
            "z": rng.uniform(0, 0.2, n),
            "cls": rng.choice(["a", "b", "c"], n),
        }
    )
    for k in range(20):
        t[f"x{k}"] = rng.normal(size=n)
    cat = C.open_catalogue(t)
    for col in cat.columns:
        cat.kind(col)
    m = C.match_catalogue(cat, c.items)
    pw = pg.PlotWidget()
    pw.resize(400, 400)
    pw.show()
    pc = PointCloud()
    pw.addItem(pc)
    xy = np.column_stack([rng.uniform(0, 1, n), rng.uniform(0, 1, n)])
    cls = rng.integers(0, 17, n)
    colors = [QColor(i * 10, 100, 100) for i in range(17)]

    def gui_ms(fn: Callable[[], object], repeats: int = 3) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            app.processEvents()
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000)

    out = {
        "baseline: map point cloud, 100k points + paint": gui_ms(
            lambda: pc.set_points(xy, cls, colors, 4.0)
        )
    }
    link.cat = cat
    link.match, link.row_of_item = m, m.row_of_item
    link.unmatched = C.unmatched_lines(cat, m, 1000)
    link.sky = _sky_arrays(cat, m, None)
    out["matched: panel + sky panel (100k points)"] = gui_ms(link.changed.emit)
    link.colour = _colour_source("z", _colour_classes(cat, "z", m.row_of_item))
    out["recolour sky panel by a column"] = gui_ms(link.colour_changed.emit)
    c.selection = np.arange(0, n, 7)
    out["selection rings on the sky (14k rows)"] = gui_ms(lambda: c.selection_changed.emit("x"))
    out["filter compile (the only GUI-thread part)"] = gui_ms(
        lambda: C.compile_filter("z < 0.05 and cls == 'a'")
    )
    for w in (panel, sky, pw):
        w.close()
    c.shutdown()
    link.shutdown()
    return out


def _report(res: dict[str, float]) -> None:
    base = next(iter(res.values()))
    for k, v in res.items():
        print(f"{k:48s} {v:8.1f} ms  ({v / base:5.2f}x baseline)")


@pytest.mark.benchmark
def test_catalogue_gui_benchmark(qapp):
    _report(run())


if __name__ == "__main__":
    _report(run())
