"""Few-shot suggestions' halos on the map at scale: drawn over the density image too."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from test_map_scale import _controller, _map


def _suggest(c, rows, classes):
    """Suggestions as Propagate hands them over (class index per row of ``rows``)."""
    from galaxy_explorer.core.workflows import Propagation

    k = len(classes)
    probs = np.full((len(rows), k), 0.1, dtype=np.float32)
    probs[np.arange(len(rows)), np.arange(len(rows)) % k] = 0.9
    c.state.manual = [None] * c.n
    c.state.set_suggestions(
        Propagation(classes, np.asarray(rows), probs, dict.fromkeys(classes, 3))
    )


def _bins_of(m, xy):
    (x0, y0, w, h), (ny, nx) = m._density_grid
    ix = np.floor((xy[:, 0] - x0) * nx / w).astype(int)
    iy = np.floor((xy[:, 1] - y0) * ny / h).astype(int)
    return iy, ix


def test_suggestion_halos_show_over_the_density_image(qtbot):
    rng = np.random.default_rng(7)
    xy = rng.normal(size=(6000, 2))
    c = _controller(xy, rng.integers(0, 4, len(xy)))
    m = _map(qtbot, c, threshold=500)
    c.set_color_mode("manual")  # halos are drawn in the labels colouring, as with points
    names = c.label_names()
    sug_rows = np.flatnonzero((np.abs(xy[:, 0] - 1.0) < 0.05) & (np.abs(xy[:, 1]) < 0.5))
    assert 5 < len(sug_rows) < 200
    _suggest(c, sug_rows, names[:2])
    qtbot.waitUntil(lambda: m.density_shown and m.halo_density_item.isVisible(), timeout=10000)
    halo = m.halo_density_item.image
    assert halo.shape[:2] == m.density_item.image.shape[:2]  # the density image's bins
    assert m.halo_density_item.zValue() > m.density_item.zValue()  # drawn over it
    iy, ix = _bins_of(m, xy[sug_rows])
    assert (halo[iy, ix, 3] > 0).all()  # every suggested point's bin has its halo
    # the halo is in the suggested classes' colours, and only near the suggested points
    lit = np.argwhere(halo[..., 3] > 0)
    assert np.abs(lit[:, 0][:, None] - iy[None, :]).min(axis=1).max() <= 1
    assert np.abs(lit[:, 1][:, None] - ix[None, :]).min(axis=1).max() <= 1
    cols = {tuple(int(v) for v in c_) for c_ in halo[iy, ix, :3]}
    own = m._data.colors
    first = (own[0].red(), own[0].green(), own[0].blue())
    assert any(np.allclose(col, first, atol=90) for col in cols)
    # no halo in the predicted colouring (as in point mode), and none without suggestions
    c.set_color_mode("predicted")
    qtbot.waitUntil(lambda: not m.halo_density_item.isVisible(), timeout=10000)
    c.set_color_mode("manual")
    qtbot.waitUntil(lambda: m.halo_density_item.isVisible(), timeout=10000)
    c.state.set_suggestions(None)
    qtbot.waitUntil(lambda: not m.halo_density_item.isVisible(), timeout=10000)
    c.shutdown()


def test_zooming_in_turns_the_halo_image_back_into_point_halos(qtbot):
    rng = np.random.default_rng(8)
    xy = rng.normal(size=(4000, 2))
    c = _controller(xy, rng.integers(0, 4, len(xy)))
    m = _map(qtbot, c, threshold=400)
    c.set_color_mode("manual")
    sug_rows = np.flatnonzero(np.hypot(xy[:, 0], xy[:, 1]) < 0.1)
    _suggest(c, sug_rows, c.label_names()[:3])
    qtbot.waitUntil(lambda: m.halo_density_item.isVisible(), timeout=10000)
    assert m.sugg_cloud.point_count() == 0  # over density: the image, not point halos
    m.vb.setRange(QRectF(-0.15, -0.15, 0.3, 0.3), padding=0)
    qtbot.waitUntil(lambda: not m.density_shown, timeout=10000)
    assert not m.halo_density_item.isVisible()
    assert m.sugg_cloud.point_count() == len(sug_rows)  # each suggestion has its halo
    c.shutdown()
