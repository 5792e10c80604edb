"""The sky panel: an RA/Dec scatter of the catalogue, linked to selection and hover.

Every catalogue row with coordinates is a point (RA increasing to the left, as on the
sky); rows with a cutout take the map's colours (a catalogue column, when the map is
coloured by one), rows without one are grey. The selection is ringed, the current cutout
crossed, and the point under the mouse on the map is marked here too. Click, Shift-drag
(box) or Ctrl-drag (lasso) select cutouts, as on the map.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from galaxy_explorer.gui import _style
from galaxy_explorer.gui.scatter import PointCloud, _SelectViewBox, points_in_polygon

log = logging.getLogger(__name__)

__all__ = ["SkyPanel", "unwrap_ra"]


def unwrap_ra(ra: np.ndarray) -> np.ndarray:
    """RA for plotting: a field that straddles RA 0 is cut at its widest gap instead.

    Values above the cut become negative, so the field is one piece on the plot; a field
    spread all over the sky is left as it is.
    """
    ra = np.asarray(ra, dtype=np.float64)
    if len(ra) < 2:
        return ra
    s = np.sort(ra)
    gaps = np.diff(s)
    k = int(np.argmax(gaps))
    natural = s[-1] - s[0]
    if 360.0 - gaps[k] < 0.5 * natural:  # cutting at the gap makes the field much smaller
        return np.where(ra >= s[k + 1], ra - 360.0, ra)
    return ra


class _RAAxis(pg.AxisItem):
    """RA ticks in 0–360° whatever the plotted (unwrapped) value."""

    def tickStrings(self, values: Any, scale: float, spacing: float) -> list[str]:  # noqa: N802
        return super().tickStrings([v % 360.0 for v in values], scale, spacing)


class SkyPanel(QWidget):
    """RA/Dec of the catalogue's rows, linked to the controller's selection and hover.

    Signals
    -------
    hovered(int)
        The controller row under the mouse (-1 for none, or a row without a cutout).
    """

    hovered = Signal(int)

    def __init__(
        self, controller: Any, link: Any, thumbs: Any = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.c = controller
        self.link = link
        self.thumbs = thumbs
        self._x = np.zeros(0)
        self._y = np.zeros(0)
        self._item = np.zeros(0, dtype=np.int64)  # controller row per point (-1: no cutout)
        self._row = np.zeros(0, dtype=np.int64)  # catalogue row per point
        self._point_of_item = np.zeros(0, dtype=np.int64)
        self._hover_point = -1

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.info = QLabel("Open a catalogue with RA/Dec to see it on the sky")
        self.info.setContentsMargins(4, 2, 4, 0)
        lay.addWidget(self.info)
        bg, fg = _style.plot_colors()
        self.vb = _SelectViewBox()
        self.plot = pg.PlotWidget(
            viewBox=self.vb, background=bg, axisItems={"bottom": _RAAxis("bottom")}
        )
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        pi = self.plot.getPlotItem()
        pi.setLabel("bottom", "RA (deg)")
        pi.setLabel("left", "Dec (deg)")
        self.vb.invertX(True)  # east to the left, as on the sky
        lay.addWidget(self.plot, 1)
        self.hover_text = QLabel("")
        self.hover_text.setContentsMargins(4, 0, 4, 2)
        lay.addWidget(self.hover_text)

        self.unmatched_cloud = PointCloud()
        self.unmatched_cloud.setZValue(5)
        self.cloud = PointCloud()
        self.cloud.setZValue(10)
        self.sel_cloud = PointCloud(ring=True)
        self.sel_cloud.setZValue(20)
        self.cur_item = pg.ScatterPlotItem(
            size=18, symbol="+", pen=pg.mkPen(_style.CURRENT_COLOR, width=2.5), pxMode=True
        )
        self.cur_item.setZValue(30)
        self.hover_item = pg.ScatterPlotItem(
            size=16,
            symbol="o",
            pen=pg.mkPen(_style.HIGHLIGHT_COLOR, width=2),
            brush=pg.mkBrush(None),
            pxMode=True,
        )
        self.hover_item.setZValue(40)
        for it in (
            self.unmatched_cloud,
            self.cloud,
            self.sel_cloud,
            self.cur_item,
            self.hover_item,
        ):
            self.vb.addItem(it)

        self.vb.sigClickedAt.connect(self._on_clicked_at)
        self.vb.sigSelectPolygon.connect(self._on_polygon)
        self._hover_proxy = pg.SignalProxy(
            self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )
        link.changed.connect(self.refresh)
        link.colour_changed.connect(self._draw_points)
        controller.selection_changed.connect(self._draw_selection)
        controller.current_changed.connect(self._draw_current)

    # ------------------------------------------------------------------ data
    @property
    def point_count(self) -> int:
        return int(len(self._x))

    @Slot()
    def refresh(self) -> None:
        """Take the link's sky arrays (built off-thread) and redraw everything."""
        sky = self.link.sky
        n_items = self.c.n
        if sky is None:
            self._x = self._y = np.zeros(0)
            self._item = self._row = np.zeros(0, dtype=np.int64)
            cat = self.link.cat
            self.info.setText(
                "This catalogue has no RA/Dec columns" if cat is not None else "No catalogue"
            )
        else:
            self._x = unwrap_ra(sky["ra"])
            self._y = np.asarray(sky["dec"], dtype=np.float64)
            self._item = np.asarray(sky["item"], dtype=np.int64)
            self._row = np.asarray(sky["row"], dtype=np.int64)
            with_cutout = int((self._item >= 0).sum())
            self.info.setText(
                f"{len(self._x)} catalogue rows on the sky, {with_cutout} with a cutout"
            )
        self._point_of_item = np.full(n_items, -1, dtype=np.int64)
        ok = (self._item >= 0) & (self._item < n_items)
        self._point_of_item[self._item[ok]] = np.flatnonzero(ok)
        self._hover_point = -1
        self._draw_points()
        self._draw_selection()
        self._draw_current()
        self.hover_item.setData([], [])
        if len(self._x):
            self.vb.autoRange(padding=0.05)

    @Slot()
    def _draw_points(self) -> None:
        size = 7.0 if len(self._x) < 5000 else 4.0
        has = self._item >= 0
        xy = np.column_stack([self._x, self._y]) if len(self._x) else np.zeros((0, 2))
        grey = QColor(_style.UNLABELLED_COLOR)
        grey.setAlpha(140)
        self.unmatched_cloud.set_points(xy[~has], np.zeros(int((~has).sum()), int), [grey], size)
        src = self.link.colour
        if src is not None and len(src.category) == self.c.n and has.any():
            cat = src.category[self._item[has]]
            self.cloud.set_points(xy[has], cat, list(src.colors), size)
        else:
            self.cloud.set_points(
                xy[has], np.zeros(int(has.sum()), int), [QColor(_style.label_color(0))], size
            )

    @Slot()
    def _draw_selection(self) -> None:
        sel = np.asarray(self.c.selection, dtype=np.int64)
        sel = sel[(sel >= 0) & (sel < len(self._point_of_item))]
        pts = self._point_of_item[sel] if len(sel) else np.zeros(0, dtype=np.int64)
        pts = pts[pts >= 0]
        xy = np.column_stack([self._x[pts], self._y[pts]]) if len(pts) else np.zeros((0, 2))
        self.sel_cloud.set_points(xy, np.zeros(len(pts), int), [QColor(_style.SELECTION_COLOR)], 13)

    @Slot()
    def _draw_current(self, *args: Any) -> None:
        r = self.c.current
        p = self._point_of_item[r] if 0 <= r < len(self._point_of_item) else -1
        if p >= 0:
            self.cur_item.setData(x=[self._x[p]], y=[self._y[p]])
        else:
            self.cur_item.setData([], [])

    @Slot(int)
    def set_hover(self, row: int) -> None:
        """Mark controller row ``row`` (hovered elsewhere, e.g. on the map); -1 clears."""
        p = self._point_of_item[row] if 0 <= row < len(self._point_of_item) else -1
        self._show_hover(int(p))

    def _show_hover(self, p: int) -> None:
        self._hover_point = p
        if p < 0:
            self.hover_item.setData([], [])
            self.hover_text.setText("")
            return
        self.hover_item.setData(x=[self._x[p]], y=[self._y[p]])
        i = int(self._item[p])
        ra = self._x[p] % 360.0
        text = f"row {int(self._row[p])}  RA {ra:.5f}°  Dec {self._y[p]:+.5f}°"
        if 0 <= i < self.c.n:
            text = f"{self.c.items[i].name} · " + text
        else:
            text += " · no cutout"
        self.hover_text.setText(text)

    # ------------------------------------------------------------------ mouse
    def nearest_point(self, x: float, y: float, max_px: float = 10.0) -> int:
        """Index of the point nearest to data point (x, y) within ``max_px`` pixels."""
        if not len(self._x):
            return -1
        pw, ph = self.vb.viewPixelSize()
        d2 = ((self._x - x) / (pw or 1.0)) ** 2 + ((self._y - y) / (ph or 1.0)) ** 2
        k = int(np.argmin(d2))
        return k if d2[k] <= max_px * max_px else -1

    def _on_mouse_moved(self, args: Any) -> None:
        pos = args[0]
        if not self.plot.sceneBoundingRect().contains(pos):
            return
        p = self.vb.mapSceneToView(pos)
        k = self.nearest_point(p.x(), p.y(), max_px=8)
        if k != self._hover_point:
            self._show_hover(k)
            self.hovered.emit(int(self._item[k]) if k >= 0 else -1)

    @Slot(object, object)
    def _on_clicked_at(self, pos: QPointF, mods: Any) -> None:
        k = self.nearest_point(pos.x(), pos.y())
        if k < 0 or self._item[k] < 0:
            if k < 0 and not mods & (
                Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier
            ):
                self.c.set_selection([], source="sky")
            return
        row = int(self._item[k])
        if mods & Qt.KeyboardModifier.ShiftModifier:
            self.c.set_selection(np.union1d(self.c.selection, [row]), source="sky")
        else:
            self.c.set_selection([row], source="sky")
        self.c.set_current(row)

    @Slot(object, object)
    def _on_polygon(self, poly: np.ndarray, mods: Any) -> None:
        if not len(self._x):
            return
        inside = points_in_polygon(np.column_stack([self._x, self._y]), np.asarray(poly, float))
        rows = self._item[inside & (self._item >= 0)]
        if mods & Qt.KeyboardModifier.ShiftModifier:
            rows = np.union1d(self.c.selection, rows)
        elif mods & Qt.KeyboardModifier.ControlModifier and self.vb.mode != "pan":
            rows = np.setdiff1d(self.c.selection, rows)
        self.c.set_selection(rows, source="sky")
        self.c.status.emit(f"{len(self.c.selection)} selected on the sky")
