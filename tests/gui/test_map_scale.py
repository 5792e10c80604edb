"""The map at scale: density image above a threshold, points when zoomed in, fast selection.

The thresholds are injected small (``density_threshold``, ``inline_limit``) so these run
in a second; ``tests/benchmarks/bench_map_scale.py`` measures the real sizes (1M points).
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from _gui_helpers import map_controller
from PySide6.QtCore import QPointF, QRectF, Qt

from tests.helpers import LineCounter


def _controller(xy: np.ndarray, predicted: np.ndarray):
    c = map_controller(predicted, xy)
    assert len(c.label_names()) >= 4  # the default classes
    return c


def _map(qtbot, c, threshold: int, inline_limit: int = 1_000_000):
    from galaxy_explorer.gui.scatter import MapView

    m = MapView(c)
    m.density_threshold = threshold
    m.inline_limit = inline_limit
    qtbot.addWidget(m)
    m.resize(800, 600)
    m.show()
    qtbot.waitExposed(m)
    m.refresh()
    qtbot.waitUntil(lambda: m.point_count == len(c.coords), timeout=10000)
    m.fit()
    return m


def _in_view(m, xy: np.ndarray) -> np.ndarray:
    r = m.vb.viewRect()
    return np.flatnonzero(
        (xy[:, 0] >= r.left())
        & (xy[:, 0] <= r.right())
        & (xy[:, 1] >= r.top())
        & (xy[:, 1] <= r.bottom())
    )


def test_density_above_threshold_points_when_zoomed_in(qtbot):
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(5000, 2))
    c = _controller(xy, rng.integers(0, 4, len(xy)))
    m = _map(qtbot, c, threshold=500)
    qtbot.waitUntil(lambda: m.density_shown, timeout=10000)
    assert m.density_item.isVisible() and m.density_item.image is not None
    assert m.cloud.point_count() == 0  # no 5000 points painted
    # the image holds every point in view, in bins
    assert m._density_grid is not None

    # zoom in: fewer than 500 points in view -> points, only those in view
    m.vb.setRange(QRectF(-0.2, -0.2, 0.4, 0.4), padding=0)
    qtbot.waitUntil(lambda: not m.density_shown, timeout=10000)
    want = _in_view(m, xy)
    assert 0 < len(want) < 500
    assert not m.density_item.isVisible()
    # the points in view, plus those in a margin around it (a small pan shows them)
    r = m.vb.viewRect()
    g = 0.25
    wide = np.flatnonzero(
        (xy[:, 0] >= r.left() - g * r.width())
        & (xy[:, 0] <= r.right() + g * r.width())
        & (xy[:, 1] >= r.top() - g * r.height())
        & (xy[:, 1] <= r.bottom() + g * r.height())
    )
    assert m._visible.tolist() == wide.tolist()
    assert m.cloud.point_count() == len(wide) < 5000

    # hover / click on one point work in point mode
    row = int(want[0])
    x, y = xy[row]
    assert m.nearest_row(x, y, max_px=3) == row
    m.vb.sigClickedAt.emit(QPointF(x, y), Qt.KeyboardModifier.NoModifier)
    assert c.selection.tolist() == [row] and c.current == row
    assert m.sel_item.point_count() == 1  # the selection ring is drawn

    # zoom out again: back to density
    m.fit()
    qtbot.waitUntil(lambda: m.density_shown, timeout=10000)
    assert m.cloud.point_count() == 0

    # a click in density mode selects the nearest point and makes it current
    far = int(np.argmax(np.abs(xy).sum(axis=1)))
    m.vb.sigClickedAt.emit(QPointF(*xy[far]), Qt.KeyboardModifier.NoModifier)
    assert c.selection.tolist() == [far] and c.current == far
    # and the selected point's bin is drawn over the density image
    qtbot.waitUntil(lambda: m.sel_density_item.isVisible(), timeout=10000)
    assert int((m.sel_density_item.image[..., 3] > 0).sum()) == 1
    c.shutdown()


def test_density_bins_are_coloured_by_class_mix(qtbot):
    rng = np.random.default_rng(1)
    n = 3000
    # class 0 on the left, class 1 on the right, a 50/50 mix in the middle
    left = np.c_[rng.uniform(-3, -2, n), rng.uniform(-1, 1, n)]
    right = np.c_[rng.uniform(2, 3, n), rng.uniform(-1, 1, n)]
    mid = np.c_[rng.uniform(-0.5, 0.5, n), rng.uniform(-1, 1, n)]
    xy = np.r_[left, right, mid]
    cls = np.r_[np.zeros(n), np.ones(n), rng.integers(0, 2, n)].astype(int)
    c = _controller(xy, cls)
    m = _map(qtbot, c, threshold=1000)
    qtbot.waitUntil(lambda: m.density_shown, timeout=10000)
    data = m._data
    c0 = np.array([data.colors[0].red(), data.colors[0].green(), data.colors[0].blue()])
    c1 = np.array([data.colors[1].red(), data.colors[1].green(), data.colors[1].blue()])
    img = m.density_item.image  # (ny, nx, 4), row 0 = lowest y
    (x0, y0, w, h), (ny, nx) = m._density_grid

    def bins(xa: float, xb: float) -> np.ndarray:
        ia, ib = int((xa - x0) / w * nx), int((xb - x0) / w * nx)
        block = img[:, ia:ib].reshape(-1, 4)
        block = block[block[:, 3] > 0]
        assert len(block) > 10
        # undo the brightness scale: compare hues (unit RGB vectors)
        rgb = block[:, :3].astype(float)
        return rgb / np.linalg.norm(rgb, axis=1, keepdims=True)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    assert np.allclose(bins(-2.9, -2.1), unit(c0), atol=0.02)
    assert np.allclose(bins(2.1, 2.9), unit(c1), atol=0.02)
    # mixed bins: between the two hues (closer to the mean than to either class)
    mix = bins(-0.4, 0.4).mean(axis=0)
    half = unit((c0 + c1) / 2)
    assert np.linalg.norm(mix - half) < np.linalg.norm(mix - unit(c0))
    assert np.linalg.norm(mix - half) < np.linalg.norm(mix - unit(c1))
    # empty space between the clusters is transparent
    ia = int((-1.5 - x0) / w * nx)
    ib = int((-1.0 - x0) / w * nx)
    assert (img[:, ia:ib, 3] == 0).all()
    c.shutdown()


def _brute(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    x, y = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    for k in range(len(poly)):
        (x1, y1), (x2, y2) = poly[k], poly[(k + 1) % len(poly)]
        if y1 == y2:
            continue
        cond = (y1 > y) != (y2 > y)
        xc = x1 + (y - y1) * (x2 - x1) / np.where(cond, y2 - y1, 1.0)
        inside ^= cond & (x < xc)
    return inside


def test_box_and_lasso_at_scale_are_exact_and_vectorised(qtbot, monkeypatch):
    """200k points: box and lasso (concave, self-intersecting) equal the brute-force
    even-odd answer; the lasso's work is the edge crossings of the candidates (not points x
    edges) and the Python calls made do not grow with the points."""
    import galaxy_explorer.core.density as density

    rng = np.random.default_rng(2)
    n = 200_000
    xy = rng.normal(size=(n, 2)).astype(np.float32)
    c = _controller(xy, rng.integers(0, 4, n))
    m = _map(qtbot, c, threshold=50_000)
    xy64 = xy.astype(np.float64)
    touched = []
    real = density._crossings

    def counting(cx, cy, poly):
        lo = np.minimum(poly[:, 1], np.roll(poly[:, 1], -1))
        hi = np.maximum(poly[:, 1], np.roll(poly[:, 1], -1))
        touched.append(int((np.searchsorted(cy, hi) - np.searchsorted(cy, lo)).sum()))
        return real(cx, cy, poly)

    monkeypatch.setattr(density, "_crossings", counting)
    ang = np.linspace(0, 2 * np.pi, 800, endpoint=False)
    lassos = [
        np.c_[1.5 * np.cos(ang) * (1 + 0.4 * np.sin(5 * ang)), 1.5 * np.sin(ang)],  # concave
        np.array([[-2, -2], [2, 2], [2, -2], [-2, 2]], float),  # bow tie
        np.cumsum(rng.normal(scale=0.4, size=(300, 2)), axis=0),  # random walk
    ]
    for poly in lassos:
        calls = 0

        def prof(frame, event, arg):
            nonlocal calls
            calls += 1

        sys.setprofile(prof)
        try:
            rows = m.select_polygon(poly)
        finally:
            sys.setprofile(None)
        ref = np.flatnonzero(_brute(xy64, poly))
        assert rows.tolist() == ref.tolist()
        assert c.selection.tolist() == ref.tolist()
        # no per-point Python: far fewer calls than points (the edges are looped over)
        assert calls < 20 * len(poly) + 2000, calls
    assert touched and max(touched) <= 12 * n
    # box
    box = m.select_rect(QRectF(-0.5, -1.0, 1.2, 0.7))
    ref = np.flatnonzero(
        (xy64[:, 0] >= -0.5) & (xy64[:, 0] <= 0.7) & (xy64[:, 1] >= -1.0) & (xy64[:, 1] <= -0.3)
    )
    assert box.tolist() == ref.tolist()
    c.shutdown()


def test_large_refresh_and_colour_change_build_off_the_gui_thread(qtbot):
    rng = np.random.default_rng(3)
    xy = rng.normal(size=(4000, 2))
    c = _controller(xy, rng.integers(0, 4, len(xy)))
    from galaxy_explorer.gui.scatter import MapView

    threads = []
    real = MapView._build_data

    def spy(self, prev):
        threads.append(threading.current_thread())
        return real(self, prev)

    MapView._build_data = spy
    try:
        m = _map(qtbot, c, threshold=500, inline_limit=1000)
        assert threads and threads[-1] is not threading.main_thread()
        index = m._data.index
        c.set_color_mode("manual")
        qtbot.waitUntil(lambda: m._data.names[-1] == "unlabelled", timeout=10000)
        assert threads[-1] is not threading.main_thread()
        assert m._data.index is index  # same coordinates: the spatial index is reused
        assert (m._data.cat == len(m._data.names) - 1).all()
    finally:
        MapView._build_data = real
    c.shutdown()


def test_stale_view_results_are_dropped(qtbot, monkeypatch):
    """While a slow re-bin runs, newer views wait for it (one in flight) and the newest
    one lands last; results built from older data are ignored."""
    from galaxy_explorer.gui.scatter import MapView, _ViewResult

    rng = np.random.default_rng(4)
    xy = rng.normal(size=(5000, 2))
    c = _controller(xy, rng.integers(0, 4, len(xy)))
    m = _map(qtbot, c, threshold=200)
    qtbot.waitUntil(lambda: m.density_shown and m._view_task is None, timeout=10000)
    real = MapView._bin_view
    first = threading.Event()
    binned = []

    def slow(data, grid):
        binned.append(grid)
        if not first.is_set():
            first.set()
            time.sleep(0.5)  # the older view is still binning when newer ones come
        return real(data, grid)

    monkeypatch.setattr(MapView, "_bin_view", staticmethod(slow))
    m.vb.setRange(QRectF(-3, -3, 6, 6), padding=0)
    m._start_view_update()
    assert first.wait(5)
    for half in (2.5, 2.0, 1.5):  # three view changes while the first is binning
        m.vb.setRange(QRectF(-half, -half, 2 * half, 2 * half), padding=0)
        m._start_view_update()
    newest = m._view_grid()
    qtbot.waitUntil(lambda: m._density_grid == newest and m._view_task is None, timeout=10000)
    qtbot.wait(100)
    assert m._density_grid == newest
    # the intermediate views were never binned: only the slow first and the newest
    assert len(binned) == 2 and binned[-1] == newest
    # a result from older data (the points moved meanwhile) is not shown
    old = m._data
    stale = _ViewResult(old, positions=np.arange(10))
    c.coords = (xy + 10).astype(np.float32)
    m.refresh()
    assert m._data is not old
    before = m.cloud.point_count()
    m._on_view_result(stale)
    assert m.cloud.point_count() == before
    c.shutdown()


@pytest.mark.parametrize("mode", ["predicted", "manual"])
def test_colour_mode_switch_recolours_density(qtbot, mode):
    rng = np.random.default_rng(5)
    xy = rng.normal(size=(3000, 2))
    c = _controller(xy, np.zeros(len(xy), int))
    m = _map(qtbot, c, threshold=300)
    qtbot.waitUntil(lambda: m.density_shown, timeout=10000)
    before = m.density_item.image.copy()
    c.set_color_mode("manual" if mode == "predicted" else "predicted")
    c.set_color_mode(mode)
    if mode == "manual":
        qtbot.waitUntil(lambda: not np.array_equal(m.density_item.image, before), timeout=10000)
        assert m._data.names[-1] == "unlabelled"
    else:
        qtbot.waitUntil(lambda: m._data.names[-1] != "unlabelled", timeout=10000)
        # the re-binned image arrives from the map's worker (later under load): wait for
        # it, then the same bins are occupied as before the round trip
        qtbot.waitUntil(
            lambda: np.array_equal(m.density_item.image[..., 3] > 0, before[..., 3] > 0),
            timeout=10000,
        )
    c.shutdown()


def test_manual_colours_come_from_label_codes_without_per_row_python(qtbot):
    """Colouring a million points by manual label compared strings row by row (1.4-2.1 s
    at 1M, #12); the state keeps integer codes, so the categories are numpy lookups."""
    from types import SimpleNamespace

    from galaxy_explorer.gui.scatter import MapView

    n = 200_000
    rng = np.random.default_rng(6)
    c = _controller(rng.normal(size=(n, 2)), np.zeros(n, int))
    c.session = SimpleNamespace(close=lambda: None)  # manual labels are read with a session
    names = c.label_names()
    labels = [None] * n
    labels[3], labels[10], labels[n - 1] = names[1], "my own", names[1]
    c.state.manual = labels
    c.state.manual_counts = {names[1]: 2, "my own": 1}
    c.state.color_mode = "manual"
    m = MapView(c)
    qtbot.addWidget(m)
    with LineCounter() as calls:
        got, colors, cat = m._categories(np.arange(n))
    assert calls.n < 5000, calls.n
    assert got[-1] == "unlabelled" and "my own" in got
    assert cat[3] == cat[n - 1] == 1 and cat[10] == got.index("my own")
    assert (np.delete(cat, [3, 10, n - 1]) == len(got) - 1).all()
    c.shutdown()


def test_points_outside_the_view_are_not_stamped(qtbot):
    """Zoomed in, the map hands over the points in a margin around the view as well (up
    to twice the density threshold); painting stamps only those on screen (#12)."""
    rng = np.random.default_rng(7)
    xy = rng.uniform(-1, 1, size=(4000, 2))
    c = _controller(xy, rng.integers(0, 4, len(xy)))
    m = _map(qtbot, c, threshold=100_000)  # points, all of them handed to the cloud
    m.vb.setRange(QRectF(-0.5, -0.5, 1.0, 1.0), padding=0)
    qtbot.wait(50)
    m.plot.grab()
    assert m.cloud.point_count() == len(xy)
    in_view = len(_in_view(m, xy))
    assert 0 < in_view < len(xy) // 2
    # on screen, plus the few within a point's radius of the edge
    assert in_view <= m.cloud.painted <= in_view * 1.2, (m.cloud.painted, in_view)
    m.fit()
    qtbot.wait(50)
    m.plot.grab()
    assert m.cloud.painted == len(xy)
    c.shutdown()
