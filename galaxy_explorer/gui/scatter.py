"""The map: a 2-D embedding scatter (PCA first, UMAP when ready) with linked selection.

Performance: one ``ScatterPlotItem`` per colour class (a single brush each, so pyqtgraph
draws every point from one cached symbol), plus small overlay items for the query's top-k,
the selection and the current item. Hit testing (click / hover) is a vectorised nearest
point search in screen units, so it stays fast at 100k points.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from pyqtgraph.Qt.internals import PrimitiveArray
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QGraphicsPathItem,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from galaxy_explorer.core._arrays import difference_rows, union_rows
from galaxy_explorer.core.density import (
    PointIndex,
    bin_classes,
    density_image,
    halo_image,
    points_in_polygon,
)
from galaxy_explorer.core.state import NO_PREDICTION, UNCERTAIN
from galaxy_explorer.gui import _style
from galaxy_explorer.gui.controller import Controller
from galaxy_explorer.gui.workers import Runner

log = logging.getLogger(__name__)

__all__ = ["DENSITY_THRESHOLD", "MapView", "points_in_polygon"]

#: Above this many points in view the map draws a class-mix density image instead of
#: points. Measured on the 2-core test machine (offscreen grab of a 1000 x 700 plot):
#: painting points took 44 ms at 30k, 80 ms at 100k and 137 ms at 200k, so 50k keeps a
#: repaint (every pan / zoom frame) near 50 ms.
DENSITY_THRESHOLD = 50_000
#: Up to this many points the map's arrays are rebuilt inline on the GUI thread (a few ms);
#: above, on the map's worker, and handed over whole.
INLINE_POINTS = 50_000
#: Screen pixels per density bin, and the margin binned around the view (a fraction of its
#: size each side) so that a small pan shows density before the re-bin arrives.
DENSITY_BIN_PX = 3
DENSITY_MARGIN = 0.25
#: Quiet time after the last view change before the map re-bins / re-selects.
VIEW_DEBOUNCE_MS = 40


@dataclass(eq=False)
class _MapData:
    """Everything the map draws from, built inline or on the map's worker."""

    coords: Any  # the controller's coords array this was built from (identity = cache key)
    kind: str
    rows: np.ndarray  # drawn rows (finite coordinates), ascending
    xy: np.ndarray  # (N, 2) float64 coordinates of the drawn rows
    index: PointIndex
    cat: np.ndarray  # colour class per drawn point
    cat_sorted: np.ndarray  # the same in the index's y order
    names: list[str]
    colors: list[QColor]
    rgb: np.ndarray  # (C, 3) class colours for the density image
    counts: np.ndarray  # legend counts per class
    sug: np.ndarray | None  # suggested class per drawn point (manual colour mode)
    sug_sorted: np.ndarray | None = None  # the same in the index's y order
    sug_rgb: np.ndarray | None = None  # (S, 3) halo colour per suggestion class


@dataclass(eq=False)
class _ViewResult:
    data: _MapData
    density: Any = None  # core.density.DensityImage
    positions: np.ndarray | None = None  # drawn positions in view (point mode)
    selection: Any = None  # the controller's selection array this was computed with
    sel_counts: np.ndarray | None = None  # selected points per density bin
    halo: np.ndarray | None = None  # few-shot suggestions' halo over the density (RGBA)


class PointCloud(pg.GraphicsObject):
    """Many round points in a few colours, drawn as pixmap fragments (one call per colour).

    Setting data costs a few numpy copies (no per-point Python objects), so a 100k-point
    map can be recoloured while batches stream in without stalling the event loop; painting
    stamps one pre-rendered antialiased disc per point, as pyqtgraph's own scatter does.
    Point sizes are in screen pixels whatever the zoom.
    """

    def __init__(self, ring: bool = False) -> None:
        super().__init__()
        self.ring = ring  # draw circles (outlines) instead of discs
        self._groups: list[tuple[QColor, np.ndarray]] = []
        self._size = 6.0
        self._bounds = QRectF()
        self._sprites: dict[tuple[int, float, float], QPixmap] = {}
        self._frags = PrimitiveArray(QPainter.PixmapFragment, 10)
        #: points stamped by the last paint (those on the paint device)
        self.painted = 0

    def set_points(
        self,
        xy: np.ndarray,
        cat: np.ndarray,
        colors: list[QColor],
        size: float,
        bounds: tuple[float, float, float, float] | None = None,
    ) -> None:
        """``xy`` (N, 2) data coordinates, ``cat`` (N,) colour index into ``colors``.

        ``bounds`` (x0, y0, x1, y1) overrides the data bounds (the map at scale draws only
        the points in view, but reports the bounds of all of them).
        """
        self.prepareGeometryChange()
        self._groups = []
        self._size = float(size)
        if len(xy):
            order = np.argsort(cat, kind="stable")
            cats, starts = np.unique(cat[order], return_index=True)
            ends = [*starts[1:], len(order)]
            for ci, a, b in zip(cats, starts, ends, strict=True):
                if 0 <= ci < len(colors):
                    pts = np.ascontiguousarray(xy[order[a:b]].T, dtype=np.float64)  # (2, k)
                    self._groups.append((QColor(colors[ci]), pts))
            if bounds is not None:
                lo, hi = np.array(bounds[:2]), np.array(bounds[2:])
            else:
                lo, hi = np.nanmin(xy, axis=0), np.nanmax(xy, axis=0)
            self._bounds = QRectF(
                float(lo[0]),
                float(lo[1]),
                float(hi[0] - lo[0]) or 1e-9,
                float(hi[1] - lo[1]) or 1e-9,
            )
        else:
            self._bounds = QRectF()
        self.update()

    def point_count(self) -> int:
        return int(sum(pts.shape[1] for _, pts in self._groups))

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        if self._bounds.isNull():
            return QRectF()
        px = self.pixelVectors()  # pad by the point radius so edge points are not clipped
        pad_x = abs(px[0].x()) * self._size if px[0] is not None else 0.0
        pad_y = abs(px[1].y()) * self._size if px[1] is not None else 0.0
        return self._bounds.adjusted(-pad_x, -pad_y, pad_x, pad_y)

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> Any:  # noqa: N802,N803
        if self._bounds.isNull():
            return None
        b = self._bounds
        return (b.left(), b.right()) if ax == 0 else (b.top(), b.bottom())

    def _sprite(self, color: QColor, dpr: float) -> QPixmap:
        key = (color.rgba(), self._size, dpr)
        pix = self._sprites.get(key)
        if pix is None:
            side = int(np.ceil((self._size + 2) * dpr))
            pix = QPixmap(side, side)
            pix.fill(Qt.GlobalColor.transparent)
            qp = QPainter(pix)
            qp.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            d = self._size * dpr
            if self.ring:
                w = 2.0 * dpr
                qp.setPen(QPen(color, w))
                qp.setBrush(Qt.BrushStyle.NoBrush)
                d -= w
            else:
                qp.setPen(Qt.PenStyle.NoPen)
                qp.setBrush(color)
            qp.drawEllipse(QRectF((side - d) / 2, (side - d) / 2, d, d))
            qp.end()
            if len(self._sprites) > 64:
                self._sprites.clear()
            self._sprites[key] = pix
        return pix

    def paint(self, p: Any, option: Any = None, widget: Any = None) -> None:
        self.painted = 0
        if not self._groups:
            return
        dpr = float(widget.devicePixelRatioF()) if widget is not None else 1.0
        tr = p.transform()
        p.resetTransform()
        # only the points on the paint device: the map at scale hands over the points in a
        # margin around the view too (up to twice the density threshold), and Qt stamped
        # every one of them each frame before clipping (#12: pan / zoom over points froze)
        dev = p.device()
        w = float(dev.width()) if dev is not None else float("inf")
        h = float(dev.height()) if dev is not None else float("inf")
        pad = (self._size + 2) * dpr
        for color, pts in self._groups:
            xy = fn.clip_array(fn.transformCoordinates(tr, pts), -(2**30), 2**30)
            on = (xy[0] >= -pad) & (xy[0] <= w + pad) & (xy[1] >= -pad) & (xy[1] <= h + pad)
            if not on.all():
                xy = xy[:, on]
            pix = self._sprite(color, dpr)
            k = xy.shape[1]
            self.painted += k
            if not k:
                continue
            self._frags.resize(k)
            frags = self._frags.ndarray()
            frags[:, 0] = xy[0]
            frags[:, 1] = xy[1]
            frags[:, 2:6] = [0.0, 0.0, pix.width(), pix.height()]
            frags[:, 6:10] = [1 / dpr, 1 / dpr, 0.0, 1.0]
            p.drawPixmapFragments(*self._frags.drawargs(), pix)
        p.setTransform(tr)


class _SelectViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a box or lasso in select modes.

    Signals
    -------
    sigSelectPolygon(object, object)
        ``(polygon (K, 2) in data coordinates, keyboard modifiers)`` after a box / lasso drag.
    sigClickedAt(object, object)
        ``(QPointF in data coordinates, modifiers)`` after a left click.
    sigContextMenu(object, object)
        ``(QPointF in data coordinates, QPoint on screen)`` after a right click.
    """

    sigSelectPolygon = Signal(object, object)
    sigClickedAt = Signal(object, object)
    sigContextMenu = Signal(object, object)

    def __init__(self) -> None:
        super().__init__()
        self.mode = "pan"
        self._drag: list[QPointF] = []
        self._shape = QGraphicsPathItem()
        self._shape.setPen(pg.mkPen(_style.SELECTION_COLOR, width=1.5, style=Qt.PenStyle.DashLine))
        self._shape.setBrush(QBrush(QColor(0, 229, 255, 40)))
        self._shape.setZValue(1e9)
        self._shape.hide()
        self.addItem(self._shape, ignoreBounds=True)

    def _drag_kind(self, ev: Any) -> str:
        mods = ev.modifiers()
        if self.mode != "pan":
            return self.mode
        if mods & Qt.KeyboardModifier.ShiftModifier:
            return "box"
        if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            return "lasso"
        return "pan"

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - Qt API
        if ev.button() != Qt.MouseButton.LeftButton or axis is not None:
            return super().mouseDragEvent(ev, axis)
        kind = self._drag_kind(ev) if ev.isStart() or not self._drag else self._kind
        if kind == "pan":
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        self._kind = kind
        p = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._drag = [self.mapSceneToView(ev.buttonDownScenePos()), p]
        else:
            self._drag.append(p)
        poly = self._polygon()
        path = QPainterPath()
        if len(poly):
            path.moveTo(QPointF(*poly[0]))
            for x, y in poly[1:]:
                path.lineTo(QPointF(x, y))
            path.closeSubpath()
        self._shape.setPath(path)
        self._shape.show()
        if ev.isFinish():
            self._shape.hide()
            self._drag = []
            self.sigSelectPolygon.emit(poly, ev.modifiers())

    def _polygon(self) -> np.ndarray:
        if not self._drag:
            return np.zeros((0, 2))
        if self._kind == "box":
            a, b = self._drag[0], self._drag[-1]
            return np.array([[a.x(), a.y()], [b.x(), a.y()], [b.x(), b.y()], [a.x(), b.y()]])
        return np.array([[p.x(), p.y()] for p in self._drag])

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigClickedAt.emit(self.mapSceneToView(ev.scenePos()), ev.modifiers())
            return
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            self.sigContextMenu.emit(self.mapSceneToView(ev.scenePos()), ev.screenPos().toPoint())
            return
        super().mouseClickEvent(ev)


class MapView(QWidget):
    """Scatter map of the embedded rows, linked to the controller's selection.

    Signals
    -------
    context_menu_requested(object)
        Global position of a right click (after a click on an unselected point selected it).
    hovered(int)
        The row under the mouse (-1 when the mouse leaves the points).
    color_source_cleared()
        The user went back to label colours from a catalogue column's colouring.

    Parameters
    ----------
    controller : Controller
        Shared state; the map subscribes to its signals.
    thumbs : ThumbnailCache, optional
        Source of hover thumbnails.
    """

    context_menu_requested = Signal(object)
    #: the row under the mouse (-1 when none); other views (the sky panel) mark it too
    hovered = Signal(int)
    #: the user chose label colours again over a catalogue column
    color_source_cleared = Signal()

    def __init__(
        self, controller: Controller, thumbs: Any = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.c = controller
        self.thumbs = thumbs
        self.top_k = 50
        self._rows = np.zeros(0, dtype=np.int64)  # rows currently drawn
        self._xy = np.zeros((0, 2), dtype=np.float64)
        self._data: _MapData | None = None
        #: points in view above which the map shows density (tests inject a small one)
        self.density_threshold = DENSITY_THRESHOLD
        #: points up to which the map's arrays are rebuilt inline
        self.inline_limit = INLINE_POINTS
        self._density_shown = False
        self._density_grid: tuple[tuple[float, float, float, float], tuple[int, int]] | None = None
        self._visible = np.zeros(0, dtype=np.int64)  # drawn positions in view (point mode)
        self._fit_on_data = False
        self._view_task: Any = None  # the re-bin / re-select in flight
        self._view_dirty = False  # the view changed while it ran
        # the map's own worker: data builds, re-binning and re-selection on view changes
        self._runner = Runner(1, "map", self)
        self._class_items: list[pg.ScatterPlotItem] = []
        self._legend_key: tuple = ()
        self._top_in_legend = ""
        self._last_kind = ""
        self._hover_row = -1
        # an outside colouring (a catalogue column, see set_color_source) and its colour bar
        self.color_source: Any = None
        self.colorbar: Any = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        self._mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QToolButton] = {}
        for mode, text, tip in (
            ("pan", "Pan", "Pan and zoom (drag, wheel). Shift-drag: box select, Ctrl-drag: lasso"),
            ("box", "Box", "Drag a rectangle to select (Shift adds, Ctrl removes)"),
            ("lasso", "Lasso", "Draw a free-hand lasso to select (Shift adds, Ctrl removes)"),
        ):
            b = QToolButton(text=text, checkable=True)
            b.setToolTip(tip)
            b.setAutoRaise(True)
            self._mode_group.addButton(b)
            self.mode_buttons[mode] = b
            bar.addWidget(b)
        self.mode_buttons["pan"].setChecked(True)
        self._mode_group.buttonClicked.connect(self._on_mode_clicked)
        self.color_combo = QComboBox()
        self.color_combo.addItem("Colour: predicted", "predicted")
        self.color_combo.addItem("Colour: manual", "manual")
        self.color_combo.setToolTip(
            "Colour points by zero-shot prediction or by your labels\n"
            "(few-shot suggestions are drawn as a coloured halo)"
        )
        self.color_combo.currentIndexChanged.connect(self._on_color_combo)
        self.color_combo.setMinimumWidth(90)  # may shrink below its text at 1280 px
        bar.addWidget(self.color_combo)
        self.topk_spin = QSpinBox(minimum=1, maximum=9999, value=self.top_k)
        self.topk_spin.setPrefix("top ")
        self.topk_spin.setToolTip("How many best query matches are highlighted")
        self.topk_spin.valueChanged.connect(self._on_topk)
        bar.addWidget(self.topk_spin)
        bar.addStretch(1)
        self.fit_button = QToolButton(text="Fit")
        self.fit_button.setToolTip("Zoom to show all points")
        self.fit_button.setAutoRaise(True)
        self.fit_button.clicked.connect(self.fit)
        bar.addWidget(self.fit_button)
        self.info = QLabel("")
        self.info.setToolTip("Projection shown")
        self.info.setMinimumWidth(1)  # the first thing to give way in a narrow window
        self.info.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(self.info)
        lay.addLayout(bar)

        bg, fg = _style.plot_colors()
        self.vb = _SelectViewBox()
        self.plot = pg.PlotWidget(viewBox=self.vb, background=bg)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for ax in ("left", "bottom"):
            self.plot.getPlotItem().hideAxis(ax)
        self.vb.setAspectLocked(False)
        self.legend = pg.LegendItem(
            offset=(10, 10),
            labelTextColor=fg,
            brush=pg.mkBrush(bg.red(), bg.green(), bg.blue(), 190),
        )
        self.legend.setParentItem(self.plot.getPlotItem().vb)
        # pyqtgraph's GraphicsView ignores drag-enter before QGraphicsView sees it, so Qt
        # printed "drag leave received before drag enter" on every drag across the map. The
        # map takes no drops itself: files dropped on it go to the main window.
        self.plot.setAcceptDrops(False)
        self.plot.viewport().setAcceptDrops(False)
        lay.addWidget(self.plot, 1)

        self.hint = pg.TextItem("", color=fg, anchor=(0.5, 0.5))
        self.vb.addItem(self.hint, ignoreBounds=True)

        self.cloud = PointCloud()
        self.cloud.setZValue(10)
        self.vb.addItem(self.cloud)
        # the map at scale: a class-mix density image, and the selection's bins over it
        # (ignoreBounds: the image covers a margin around the view, never a reason to zoom)
        self.density_item = pg.ImageItem(axisOrder="row-major")
        self.density_item.setZValue(8)
        self.density_item.hide()
        self.vb.addItem(self.density_item, ignoreBounds=True)
        self.sel_density_item = pg.ImageItem(axisOrder="row-major")
        self.sel_density_item.setZValue(29)
        self.sel_density_item.hide()
        self.vb.addItem(self.sel_density_item, ignoreBounds=True)
        # few-shot suggestions' halos over the density image (sugg_cloud in point mode)
        self.halo_density_item = pg.ImageItem(axisOrder="row-major")
        self.halo_density_item.setZValue(9)
        self.halo_density_item.hide()
        self.vb.addItem(self.halo_density_item, ignoreBounds=True)
        self.sugg_cloud = PointCloud()
        self.sugg_cloud.setZValue(5)
        self.vb.addItem(self.sugg_cloud)
        self.top_item = pg.ScatterPlotItem(
            size=11,
            pen=pg.mkPen("#202020", width=1),
            brush=pg.mkBrush(_style.HIGHLIGHT_COLOR),
            pxMode=True,
        )
        self.top_item.setZValue(20)
        self.sel_item = PointCloud(ring=True)
        self.sel_item.setZValue(30)
        self.cur_item = pg.ScatterPlotItem(
            size=22,
            symbol="+",
            pen=pg.mkPen(_style.CURRENT_COLOR, width=2.5),
            brush=pg.mkBrush(_style.CURRENT_COLOR),
            pxMode=True,
        )
        self.cur_item.setZValue(40)
        self.hover_mark = pg.ScatterPlotItem(  # a row hovered in another view (the sky)
            size=18,
            symbol="o",
            pen=pg.mkPen(_style.HIGHLIGHT_COLOR, width=2),
            brush=pg.mkBrush(None),
            pxMode=True,
        )
        self.hover_mark.setZValue(45)
        for it in (self.top_item, self.sel_item, self.cur_item, self.hover_mark):
            self.vb.addItem(it)

        self._tip = QFrame(self.plot)
        self._tip.setFrameShape(QFrame.Shape.StyledPanel)
        self._tip.setAutoFillBackground(True)
        self._tip.setBackgroundRole(QPalette.ColorRole.ToolTipBase)
        tip_lay = QVBoxLayout(self._tip)
        tip_lay.setContentsMargins(4, 4, 4, 4)
        tip_lay.setSpacing(2)
        self._tip_image = QLabel()
        self._tip_image.setFixedSize(128, 128)
        self._tip_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._tip_text = QLabel()
        self._tip_text.setForegroundRole(QPalette.ColorRole.ToolTipText)
        tip_lay.addWidget(self._tip_image)
        tip_lay.addWidget(self._tip_text)
        self._tip.hide()
        self._tip.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

        self.vb.sigSelectPolygon.connect(self._on_polygon)
        self.vb.sigClickedAt.connect(self._on_clicked_at)
        self.vb.sigContextMenu.connect(self._on_context_menu)
        self._pointer_inside = True
        self.plot.viewport().installEventFilter(self)  # Leave hides the hover card
        self._hover_proxy = pg.SignalProxy(
            self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )

        self._refresh_timer = QTimer(self, singleShot=True, interval=0)
        self._refresh_timer.timeout.connect(self.refresh)
        self._view_timer = QTimer(self, singleShot=True, interval=VIEW_DEBOUNCE_MS)
        self._view_timer.timeout.connect(self._start_view_update)
        self.vb.sigRangeChanged.connect(self._on_view_changed)
        self.vb.sigResized.connect(self._on_view_changed)
        c = controller
        c.catalogue_opened.connect(self._on_catalogue)
        c.projection_changed.connect(self._on_projection)
        c.predictions_changed.connect(self._schedule_refresh)
        c.labels_changed.connect(self._on_labels_changed)
        c.suggestions_changed.connect(self._schedule_refresh)
        c.label_defs_changed.connect(self._schedule_refresh)
        c.color_mode_changed.connect(self._on_color_mode)
        c.scores_changed.connect(self._on_scores)
        c.selection_changed.connect(self._on_selection)
        c.current_changed.connect(self._on_current)
        c.job_finished.connect(self._on_job_finished)
        if thumbs is not None:
            thumbs.ready.connect(self._on_thumb_ready)
        self._set_hint("Open a folder of cutouts\n(File ▸ Open Folder…)\nor drop it here")
        self.vb.sigResized.connect(self._place_hint)
        self.vb.sigRangeChanged.connect(self._place_hint)

    def eventFilter(self, obj: Any, ev: Any) -> bool:  # noqa: N802 - Qt API
        """The hover card goes when the pointer leaves the map (no move event says so)."""
        from PySide6.QtCore import QEvent

        if obj is self.plot.viewport():
            t = ev.type()
            if t == QEvent.Type.Leave:
                self._pointer_inside = False
                self._hide_tip()
            elif t in (QEvent.Type.Enter, QEvent.Type.MouseMove):
                self._pointer_inside = True
        return super().eventFilter(obj, ev)

    def changeEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        """Follow light / dark palette switches (the plot does not by itself)."""
        from PySide6.QtCore import QEvent

        if ev.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.apply_palette()
        super().changeEvent(ev)

    def apply_palette(self) -> None:
        bg, fg = _style.plot_colors()
        self.plot.setBackground(bg)
        self.hint.setColor(fg)
        self.legend.setBrush(pg.mkBrush(bg.red(), bg.green(), bg.blue(), 190))
        self.legend.setLabelTextColor(fg)
        for _, label in self.legend.items:
            label.setText(label.text, color=fg)

    # ------------------------------------------------------------------ API
    @property
    def point_count(self) -> int:
        """Number of points drawn (= embedded rows with coordinates)."""
        return int(len(self._rows))

    def drawn_rows(self) -> np.ndarray:
        return self._rows.copy()

    def set_mode(self, mode: str) -> None:
        self.vb.mode = mode
        self.mode_buttons[mode].setChecked(True)

    @property
    def density_shown(self) -> bool:
        """Whether the map shows the density image (too many points in view)."""
        return self._density_shown

    def shutdown(self) -> None:
        """Stop the map's worker (call before the window goes away)."""
        self._view_timer.stop()
        self._runner.shutdown()

    def closeEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        """A map closed on its own (not inside the main window) stops its worker too."""
        self.shutdown()
        super().closeEvent(ev)

    def select_polygon(self, poly: np.ndarray, mode: str = "replace") -> np.ndarray:
        """Select drawn points inside ``poly`` (data coordinates, even-odd); returns the rows.

        Through the map's :class:`PointIndex`: a y-slice for the bounding box, then only the
        points each edge spans (≈ 0.1 s for a lasso over 1M points).
        """
        data = self._data
        if data is None:
            return np.zeros(0, dtype=np.int64)
        inside = data.rows[data.index.in_polygon(np.asarray(poly, dtype=float))]
        self._combine(inside, mode)
        return inside

    def select_rect(self, rect: QRectF, mode: str = "replace") -> np.ndarray:
        """Select drawn points inside ``rect`` (data coordinates); returns the rows."""
        data = self._data
        if data is None:
            return np.zeros(0, dtype=np.int64)
        inside = data.rows[data.index.in_rect(rect.left(), rect.right(), rect.top(), rect.bottom())]
        self._combine(inside, mode)
        return inside

    @Slot(int)
    def mark_row(self, row: int) -> None:
        """Ring ``row`` (hovered in another view, e.g. the sky panel); -1 clears the ring."""
        pos = self.row_position(row) if row >= 0 else None
        if pos is None:
            self.hover_mark.setData([], [])
        else:
            self.hover_mark.setData(x=[pos[0]], y=[pos[1]])

    def row_position(self, row: int) -> tuple[float, float] | None:
        xy = self.c.coords[row] if 0 <= row < len(self.c.coords) else None
        if xy is None or not np.isfinite(xy).all():
            return None
        return float(xy[0]), float(xy[1])

    def nearest_row(self, x: float, y: float, max_px: float = 10.0) -> int:
        """Row of the drawn point nearest to data point (x, y) within ``max_px`` pixels."""
        data = self._data
        if data is None or not len(data.rows):
            return -1
        pw, ph = self.vb.viewPixelSize()
        i = data.index.nearest(x, y, pw or 1.0, ph or 1.0, max_dist=max_px)
        return int(data.rows[i]) if i >= 0 else -1

    @Slot()
    def fit(self) -> None:
        """Show all points, leaving the legend's strip on the left free."""
        if self._data is not None and len(self._data.rows):
            lo = np.array(self._data.index.lo)
            hi = np.array(self._data.index.hi)
            span = np.maximum(hi - lo, 1e-6)
            width_px = max(float(self.vb.width()), 1.0)
            legend_px = float(self.legend.boundingRect().width()) + 20 if self.legend.items else 0
            # fraction of the view the legend covers (never more than 45 %)
            frac = min(legend_px / width_px, 0.45)
            data_w = 1.1 * span[0] / (1.0 - frac)
            self.vb.setRange(
                QRectF(
                    hi[0] + 0.05 * span[0] - data_w, lo[1] - 0.05 * span[1], data_w, 1.1 * span[1]
                ),
                padding=0,
            )

    # ------------------------------------------------------------------ drawing
    def _set_hint(self, text: str) -> None:
        import html

        _, fg = _style.plot_colors()
        lines = "<br>".join(html.escape(t) for t in text.split("\n"))
        self.hint.setHtml(f"<div style='text-align:center; color:{fg.name()}'>{lines}</div>")
        self.hint.setVisible(bool(text))
        self._place_hint()

    def _place_hint(self, *args: Any) -> None:
        if self.hint.isVisible():
            self.hint.setPos(self.vb.viewRect().center())

    @Slot()
    def _schedule_refresh(self) -> None:
        self._refresh_timer.start()

    def set_color_source(self, source: Any) -> None:
        """Colour the points by ``source`` instead of the labels; None goes back to labels.

        ``source`` has ``names`` and ``colors`` (one per class), ``category`` (class index
        per controller row), ``legend`` (the class indices the legend lists), ``title`` and
        ``colorbar``: None, or ``(low, high, pyqtgraph ColorMap)`` for a continuous scale.
        """
        self.color_source = source
        self.color_combo.blockSignals(True)
        i = self.color_combo.findData("source")
        if source is None and i >= 0:
            self.color_combo.removeItem(i)
            self.color_combo.setCurrentIndex(self.color_combo.findData(self.c.color_mode))
        elif source is not None:
            if i < 0:
                self.color_combo.addItem("", "source")
                i = self.color_combo.count() - 1
            self.color_combo.setItemText(i, f"Colour: {source.title}")
            self.color_combo.setCurrentIndex(i)
        self.color_combo.blockSignals(False)
        self._update_colorbar()
        self._schedule_refresh()

    def _update_colorbar(self) -> None:
        src = self.color_source
        bar_spec = getattr(src, "colorbar", None) if src is not None else None
        layout = self.plot.getPlotItem().layout
        if bar_spec is None:
            if self.colorbar is not None and self.colorbar.isVisible():
                layout.removeItem(self.colorbar)
                self.colorbar.hide()
            return
        lo, hi, cmap = bar_spec
        if self.colorbar is None:
            self.colorbar = pg.ColorBarItem(
                values=(lo, hi), colorMap=cmap, interactive=False, width=14, colorMapMenu=False
            )
        bar = self.colorbar
        bar.setColorMap(cmap)
        bar.setLevels((lo, hi))
        bar.axis.setLabel(src.title)
        if not bar.isVisible() or bar.parentItem() is None:
            layout.addItem(bar, 2, 5)
            bar.show()

    def _legend_rows(self, drawn: np.ndarray) -> np.ndarray:
        """Rows the legend counts: those the label table / bins count, not only the drawn
        points (the projection lags the predictions while embedding)."""
        c = self.c
        if c.color_mode == "manual":
            return np.arange(c.n)
        return np.flatnonzero(c.have) if len(c.have) == c.n else drawn

    def _categories(self, rows: np.ndarray) -> tuple[list[str], list[QColor], np.ndarray]:
        """(names, colours, category per row of ``rows`` (-1 = none))."""
        c = self.c
        src = self.color_source
        if src is not None and len(src.category) == c.n:
            return list(src.names), list(src.colors), src.category[rows]
        names = c.label_names()
        colors = [_style.label_color(i) for i in range(len(names))]
        if c.color_mode == "manual":
            # O(labels) in Python; the per-row work runs in numpy
            counts = c.manual_counts()
            extra = sorted(m for m, k in counts.items() if k > 0 and m not in names)
            names = names + extra
            colors += [_style.label_color(len(colors) + i) for i in range(len(extra))]
            index = {n: i for i, n in enumerate(names)}
            names = names + ["unlabelled"]
            colors.append(QColor(_style.UNLABELLED_COLOR))
            unlabelled = len(names) - 1
            cat = np.full(len(rows), unlabelled, dtype=np.int64)
            manual = c.state.manual
            if counts and len(rows) and len(manual) == c.n:
                # integer label codes: a lookup table of O(labels), the rows in numpy (the
                # per-row string compares took 1.4-2.1 s at 1M, #12)
                # (codes first: a label added meanwhile on the GUI thread is named before
                # its code is written, so the names read next cover every code read)
                codes = manual.codes[rows]
                lut = np.array(
                    [index.get(name, unlabelled) for name in list(manual.names)] + [unlabelled],
                    dtype=np.int64,
                )
                cat = lut[codes]  # code -1 reads the last entry: unlabelled
        else:
            ok = len(c.predicted) == c.n
            pred = c.predicted[rows] if ok else np.full(len(rows), NO_PREDICTION)
            unc = c.uncertain[rows] if ok else np.zeros(len(rows), bool)
            names = names + [UNCERTAIN]
            colors.append(QColor(_style.UNCERTAIN_COLOR))
            cat = np.where(unc, len(names) - 1, pred).astype(np.int64)
            if (cat == NO_PREDICTION).any():  # no prediction yet (model / labels loading)
                names = names + ["not classified"]
                colors.append(QColor(_style.UNLABELLED_COLOR))
                cat[cat == NO_PREDICTION] = len(names) - 1
        return names, colors, cat

    def _point_size(self, n: int | None = None) -> float:
        n = len(self._rows) if n is None else n
        return 8.0 if n < 2000 else 6.0 if n < 20000 else 4.0 if n < 60000 else 3.0

    def _large(self) -> bool:
        """Whether the map draws only what is in view (more points than the threshold)."""
        return self._data is not None and len(self._data.rows) > self.density_threshold

    def _build_data(self, prev: _MapData | None) -> _MapData:
        """The map's arrays from controller state: vectorised, safe on a worker thread.

        Reuses ``prev``'s points and index when the coordinates are the same array (a
        colour change re-classes the points without re-sorting them).
        """
        c = self.c
        coords = c.coords
        if prev is not None and prev.coords is coords and prev.kind == c.coords_kind:
            rows, xy, index = prev.rows, prev.xy, prev.index
        else:
            ok = np.isfinite(coords[:, 0]) if len(coords) else np.zeros(0, dtype=bool)
            rows = np.flatnonzero(ok)
            xy = coords[rows].astype(np.float64) if len(rows) else np.zeros((0, 2))
            index = PointIndex(xy)
        counted = self._legend_rows(rows)
        if len(counted) and len(rows):  # every drawn point has a category
            mask = np.zeros(max(c.n, int(rows[-1]) + 1), dtype=bool)
            mask[counted] = True
            if not mask[rows].all():
                mask[rows] = True
                counted = np.flatnonzero(mask)
        names, colors, cat_all = self._categories(counted)
        by_row = np.full(max(c.n, int(rows[-1]) + 1 if len(rows) else 0), -1, dtype=np.int64)
        by_row[counted] = cat_all
        cat = by_row[rows]
        counts = (
            np.bincount(cat_all[cat_all >= 0], minlength=len(names))
            if len(cat_all)
            else np.zeros(len(names), int)
        )
        sug = sug_rgb = None
        if c.color_mode == "manual" and len(c.suggested) == c.n and len(rows):
            sug = c.suggested[rows]
            sug_rgb = self._halo_rgb(names, colors)
        rgb = np.array([[q.red(), q.green(), q.blue()] for q in colors], dtype=np.float32)
        return _MapData(
            coords=coords,
            kind=c.coords_kind,
            rows=rows,
            xy=xy,
            index=index,
            cat=cat,
            cat_sorted=cat[index.order],
            names=names,
            colors=colors,
            rgb=rgb.reshape(-1, 3),
            counts=counts,
            sug=sug,
            sug_sorted=None if sug is None else sug[index.order],
            sug_rgb=sug_rgb,
        )

    def _halo_rgb(self, names: list[str], colors: list[QColor]) -> np.ndarray:
        """(S, 3) colour of each suggestion class: its label's colour (O(classes))."""
        index = {n: i for i, n in enumerate(names)}
        out = []
        for n in self.c.suggestion_classes:
            q = QColor(colors[index[n]]) if n in index else QColor(_style.UNCERTAIN_COLOR)
            out.append([q.red(), q.green(), q.blue()])
        return np.array(out, dtype=np.float32).reshape(-1, 3)

    @Slot()
    def refresh(self) -> None:
        """Rebuild the map from controller state.

        Up to ``inline_limit`` points inline; above, the arrays (categories, the spatial
        index) are built on the map's worker and handed over whole, newest request wins.
        """
        prev = self._data
        if len(self.c.coords) <= self.inline_limit:
            self._runner.bump("map-data")  # an older build still running must not land
            self._apply_data(self._build_data(prev))
        else:
            self._runner.start(
                "map-data", lambda: self._build_data(prev), on_result=self._apply_data
            )

    def _apply_data(self, data: _MapData) -> None:
        c = self.c
        self._data = data
        self._rows = data.rows
        self._xy = data.xy
        names, colors, counts = data.names, data.colors, data.counts
        entries: list[tuple[int, str]] = []
        while len(self._class_items) < len(names):  # legend samples only (never drawn)
            self._class_items.append(pg.ScatterPlotItem(pen=None, size=8, symbol="o"))
        legend = getattr(self.color_source, "legend", None)
        for i in range(len(names)):
            self._class_items[i].setBrush(pg.mkBrush(colors[i]))
            if (counts[i] or i < len(c.label_defs)) if legend is None else (i in legend):
                entries.append((i, f"{names[i]} ({int(counts[i])})"))
        self._update_legend(entries, [colors[i].name() for i, _ in entries])
        if self._large():
            self._start_view_update()  # density or the points in view, on the worker
        else:
            self._show_density(None)
            self._visible = np.arange(len(data.rows))
            self.cloud.set_points(data.xy, data.cat, colors, self._point_size())
            self._draw_suggestions()
        self._apply_dim()
        self._draw_top()
        self._draw_selection()
        self._draw_current()
        if len(self._rows):
            self._set_hint("")
            self.info.setText({"pca": "PCA…", "umap": "UMAP"}.get(c.coords_kind, ""))
            self.info.setToolTip(
                {
                    "pca": "Quick PCA view; the UMAP map replaces it when ready",
                    "umap": "UMAP of the image embeddings",
                }.get(c.coords_kind, "")
            )
        elif c.n and c.job_running:
            self._set_hint("Embedding… points appear as batches finish")
        if self._fit_on_data:
            self._fit_on_data = False
            self.fit()

    # ------------------------------------------------------------------ the map at scale
    @Slot()
    def _on_view_changed(self, *args: Any) -> None:
        # throttled, not restarted: a continuous drag or wheel still re-bins as it goes
        if self._large() and not self._view_timer.isActive():
            self._view_timer.start()

    def _view_grid(self) -> tuple[tuple[float, float, float, float], tuple[int, int]]:
        """The binned region (the view plus a margin) and its (ny, nx) bins."""
        r = self.vb.viewRect()
        w_px = max(float(self.vb.width()), 1.0)
        h_px = max(float(self.vb.height()), 1.0)
        m = DENSITY_MARGIN
        rect = (
            r.left() - m * r.width(),
            r.top() - m * r.height(),
            (1 + 2 * m) * r.width(),
            (1 + 2 * m) * r.height(),
        )
        nx = max(1, math.ceil((1 + 2 * m) * w_px / DENSITY_BIN_PX))
        ny = max(1, math.ceil((1 + 2 * m) * h_px / DENSITY_BIN_PX))
        return rect, (ny, nx)

    @Slot()
    def _start_view_update(self) -> None:
        """On the worker: count the points in view; above the threshold bin them into a
        density image, else pick the points in view. Stale results are dropped."""
        self._view_timer.stop()
        data = self._data
        if data is None or not self._large():
            return
        if self._view_task is not None and not self._view_task.is_finished():
            # one re-bin in flight at a time; the newest view follows when it is done (a
            # new task per view change would supersede each other and none would land
            # while a drag goes on)
            self._view_dirty = True
            return
        self._view_dirty = False
        r = self.vb.viewRect()
        view = (r.left(), r.right(), r.top(), r.bottom())
        m = DENSITY_MARGIN
        wide = (
            r.left() - m * r.width(),
            r.right() + m * r.width(),
            r.top() - m * r.height(),
            r.bottom() + m * r.height(),
        )
        grid = self._view_grid()
        sel = self.c.selection
        threshold = self.density_threshold

        def run() -> _ViewResult:
            if data.index.count_in_rect(*view) > threshold:
                density = self._bin_view(data, grid)
                return _ViewResult(
                    data,
                    density=density,
                    selection=sel,
                    sel_counts=self._bin_selection(data, sel, grid),
                    halo=self._bin_halo(data, grid, density.counts),
                )
            # points in view plus a margin (a small pan shows points at once), unless
            # the margin holds too many to paint quickly
            if data.index.count_in_rect(*wide) <= 2 * threshold:
                return _ViewResult(data, positions=data.index.in_rect(*wide), selection=sel)
            return _ViewResult(data, positions=data.index.in_rect(*view), selection=sel)

        self._view_task = self._runner.start(
            "map-view", run, on_result=self._on_view_result, on_done=self._on_view_done
        )

    def _on_view_done(self, cancelled: bool) -> None:
        self._view_task = None  # its thread may not have marked itself finished yet
        if self._view_dirty:
            self._start_view_update()

    @staticmethod
    def _bin_view(data: _MapData, grid: Any) -> Any:
        (x0, y0, w, h), shape = grid
        a, b = data.index._yslice(y0, y0 + h)  # only the points in the y-band
        return density_image(
            data.index.xs[a:b],
            data.index.ys[a:b],
            data.cat_sorted[a:b],
            data.rgb,
            (x0, y0, w, h),
            shape,
        )

    @staticmethod
    def _bin_halo(data: _MapData, grid: Any, totals: np.ndarray) -> np.ndarray | None:
        """The suggestions' halo over the density image (None without suggestions): a
        tint by the share of suggested points in a bin, a rim around them."""
        sug, rgb = data.sug_sorted, data.sug_rgb
        if sug is None or rgb is None or not len(rgb):
            return None
        (x0, y0, w, h), shape = grid
        a, b = data.index._yslice(y0, y0 + h)  # only the points in the y-band
        part = sug[a:b]
        m = part >= 0
        if not m.any():
            return None
        rgba, core = halo_image(
            data.index.xs[a:b][m],
            data.index.ys[a:b][m],
            part[m],
            rgb,
            (x0, y0, w, h),
            shape,
            totals=totals,
        )
        return rgba if core.any() else None

    @staticmethod
    def _bin_selection(data: _MapData, sel: np.ndarray, grid: Any) -> np.ndarray | None:
        if not len(sel) or not len(data.rows):
            return None
        pos = np.searchsorted(data.rows, sel)  # both ascending: O(|sel| log N)
        ok = pos < len(data.rows)
        pos, rows = pos[ok], sel[ok]
        pos = pos[data.rows[pos] == rows]  # selected rows that are drawn
        if not len(pos):
            return None
        rect, shape = grid
        xy = data.xy[pos]
        return bin_classes(xy[:, 0], xy[:, 1], np.zeros(len(pos), np.int64), 1, rect, shape)[
            :, :, 0
        ]

    def _on_view_result(self, res: _ViewResult) -> None:
        if res.data is not self._data:
            return  # built from older data
        if res.density is not None:
            self._show_density(res.density)
            self._visible = np.zeros(0, dtype=np.int64)
            self.cloud.set_points(np.zeros((0, 2)), np.zeros(0, int), [], self._point_size(0))
            self._draw_suggestions()
            self._show_halo(res.halo, res.density.rect)
            self._show_sel_density(res.sel_counts, res.density.rect)
            if res.selection is not self.c.selection:
                self._start_sel_overlay()
        else:
            self._show_density(None)
            pos = res.positions if res.positions is not None else np.zeros(0, np.int64)
            self._visible = pos
            d = self._data
            lo, hi = d.index.lo, d.index.hi
            self.cloud.set_points(
                d.xy[pos],
                d.cat[pos],
                d.colors,
                self._point_size(len(pos)),
                bounds=(lo[0], lo[1], hi[0], hi[1]),
            )
            self._draw_suggestions()
            self._draw_selection()
        self._apply_dim()

    def _show_density(self, img: Any) -> None:
        if img is None:
            self._density_shown = False
            self._density_grid = None
            self.density_item.hide()
            self.sel_density_item.hide()
            self.halo_density_item.hide()
            return
        self._density_shown = True
        self._density_grid = (img.rect, img.counts.shape)
        self.density_item.setImage(img.rgba, autoLevels=False)
        self.density_item.setRect(QRectF(*img.rect))
        self.density_item.show()

    def _show_halo(self, rgba: np.ndarray | None, rect: Any) -> None:
        if rgba is None:
            self.halo_density_item.hide()
            return
        self.halo_density_item.setImage(rgba, autoLevels=False)
        self.halo_density_item.setRect(QRectF(*rect))
        self.halo_density_item.show()

    def _show_sel_density(self, counts: np.ndarray | None, rect: Any) -> None:
        if counts is None or not counts.any():
            self.sel_density_item.hide()
            return
        col = QColor(_style.SELECTION_COLOR)
        rgba = np.zeros((*counts.shape, 4), dtype=np.uint8)
        has = counts > 0
        rgba[has] = (col.red(), col.green(), col.blue(), 110)  # classes show through
        self.sel_density_item.setImage(rgba, autoLevels=False)
        self.sel_density_item.setRect(QRectF(*rect))
        self.sel_density_item.show()

    def _start_sel_overlay(self) -> None:
        """Re-bin only the selection over the density image shown (on the worker)."""
        data, grid, sel = self._data, self._density_grid, self.c.selection
        if data is None or grid is None:
            return

        def run() -> tuple[Any, Any, np.ndarray | None]:
            return data, grid, self._bin_selection(data, sel, grid)

        self._runner.start("map-sel", run, on_result=self._on_sel_overlay)

    def _on_sel_overlay(self, res: tuple[Any, Any, np.ndarray | None]) -> None:
        data, grid, counts = res
        if data is self._data and self._density_shown and grid == self._density_grid:
            self._show_sel_density(counts, grid[0])

    def _update_legend(self, entries: list[tuple[int, str]], colors: list[str]) -> None:
        """Rebuild the legend only when its entries change; else just update the counts."""
        key = (tuple(i for i, _ in entries), tuple(colors))
        # the "query top k" entry sits after the classes: not a reason to rebuild (a rebuild
        # per batch while a query was active cost ~0.3 s of GUI thread each: the embedding
        # rate fell by more than half once a query was typed)
        n_classes = len(self.legend.items) - (1 if self._top_in_legend else 0)
        if key == self._legend_key and n_classes == len(entries):
            for (_, label), (_, text) in zip(self.legend.items[:n_classes], entries, strict=True):
                if label.text != text:
                    label.setText(text)
            self._sync_top_legend()
            return
        self._legend_key = key
        self.legend.clear()
        self._top_in_legend = ""
        for i, text in entries:
            self.legend.addItem(self._class_items[i], text)
        self._sync_top_legend()

    def _sync_top_legend(self) -> None:
        text = f"query top {self.top_k}" if self.c.scores is not None else ""
        if text == self._top_in_legend:
            return
        if self._top_in_legend:
            self.legend.removeItem(self.top_item)
        if text:
            self.legend.addItem(self.top_item, text)
        self._top_in_legend = text

    def _draw_suggestions(self) -> None:
        """Few-shot suggestions as a translucent halo in the suggested colour around the
        (unlabelled, grey) point: distinct from manual labels (solid colour). Only for the
        points drawn; over the density image the halo is an image of its own, binned with
        it on the worker (``_bin_halo``)."""
        c, data = self.c, self._data
        size = self._point_size(len(self._visible) if self._large() else None)
        if data is None or data.sug is None or self._density_shown or not len(self._visible):
            self.sugg_cloud.set_points(np.zeros((0, 2)), np.zeros(0, int), [], size)
            return
        index = {n: i for i, n in enumerate(data.names)}
        halo = []
        for n in c.suggestion_classes:
            col = QColor(data.colors[index[n]]) if n in index else QColor(_style.UNCERTAIN_COLOR)
            col.setAlpha(120)
            halo.append(col)
        sug = data.sug[self._visible]
        m = sug >= 0
        self.sugg_cloud.set_points(data.xy[self._visible][m], sug[m], halo, size + 7)

    def _apply_dim(self) -> None:
        # dimming by item opacity costs nothing, unlike re-setting 100k brushes
        op = 0.45 if self.c.scores is not None else 1.0
        self.cloud.setOpacity(op)
        self.sugg_cloud.setOpacity(op)
        self.density_item.setOpacity(op)
        self.halo_density_item.setOpacity(op)

    def _draw_top(self) -> None:
        c = self.c
        self._sync_top_legend()
        if c.scores is None or not len(self._rows):
            self.top_item.setData([], [])
            return
        rows = c.ranking(self.top_k)
        xy = c.coords[rows]
        ok = np.isfinite(xy[:, 0])
        self.top_item.setData(x=xy[ok, 0], y=xy[ok, 1], data=rows[ok])

    def _draw_selection(self) -> None:
        """Rings around the selected points drawn; over the density image, the selected
        points' bins (re-binned on the worker)."""
        sel = self.c.selection
        data = self._data
        if self._density_shown:
            self.sel_item.set_points(np.zeros((0, 2)), np.zeros(0, int), [], 1.0)
            self._start_sel_overlay()
            return
        size = self._point_size(len(self._visible) if self._large() else None) + 6
        if not len(sel) or data is None or not len(self._visible):
            self.sel_item.set_points(np.zeros((0, 2)), np.zeros(0, int), [], size)
            return
        # vectorised: a mask over rows, read at the points drawn (≤ the threshold)
        mask = np.zeros(max(self.c.n, int(data.rows[-1]) + 1), dtype=bool)
        mask[sel[sel < len(mask)]] = True
        pos = self._visible[mask[data.rows[self._visible]]]
        self.sel_item.set_points(
            data.xy[pos], np.zeros(len(pos), int), [QColor(_style.SELECTION_COLOR)], size
        )

    def _draw_current(self) -> None:
        pos = self.row_position(self.c.current) if self.c.current >= 0 else None
        if pos is None:
            self.cur_item.setData([], [])
        else:
            self.cur_item.setData(x=[pos[0]], y=[pos[1]])

    # ------------------------------------------------------------------ controller slots
    @Slot()
    def _on_catalogue(self) -> None:
        self._last_kind = ""
        self.refresh()
        self._set_hint("Scanning and embedding…" if self.c.n else "No images found")

    @Slot(str)
    def _on_job_finished(self, status: str) -> None:
        if not len(self._rows):
            self._set_hint(
                {
                    "failed": "Nothing could be embedded.\nSee the status bar;\n"
                    "details in Help ▸ Show Log File.",
                    "cancelled": "Embedding cancelled.\nFile ▸ Rescan (F5) resumes.",
                }.get(status, "" if self.c.n else "No images found")
            )

    @Slot(str)
    def _on_projection(self, kind: str) -> None:
        if kind != self._last_kind:
            self._last_kind = kind
            self._fit_on_data = True  # once the new points are in (the build may be async)
        self.refresh()

    @Slot()
    def _on_labels_changed(self) -> None:
        if self.c.color_mode == "manual":
            self._schedule_refresh()

    @Slot(str)
    def _on_color_mode(self, mode: str) -> None:
        if self.color_source is not None:
            self.set_color_source(None)
            self.color_source_cleared.emit()
        i = self.color_combo.findData(mode)
        if i != self.color_combo.currentIndex():
            self.color_combo.setCurrentIndex(i)
        self._schedule_refresh()

    @Slot()
    def _on_scores(self) -> None:
        self._apply_dim()
        self._draw_top()

    @Slot(str)
    def _on_selection(self, source: str) -> None:
        self._draw_selection()

    @Slot(int)
    def _on_current(self, row: int) -> None:
        self._draw_current()

    # ------------------------------------------------------------------ UI slots
    @Slot(object)
    def _on_mode_clicked(self, button: QToolButton) -> None:
        for mode, b in self.mode_buttons.items():
            if b is button:
                self.vb.mode = mode

    @Slot(int)
    def _on_color_combo(self, index: int) -> None:
        mode = self.color_combo.itemData(index)
        if mode == "source":
            return
        if self.color_source is not None:
            self.set_color_source(None)
            self.color_source_cleared.emit()
        self.c.set_color_mode(mode)

    @Slot(int)
    def _on_topk(self, k: int) -> None:
        self.top_k = k
        self._draw_top()

    def _combine(self, rows: np.ndarray, mode: str) -> None:
        cur = self.c.selection
        if mode == "add":
            rows = union_rows(cur, rows)
        elif mode == "remove":
            rows = difference_rows(cur, rows)
        self.c.set_selection(rows, source="map")

    @staticmethod
    def _mode_from(mods: Any) -> str:
        if mods & Qt.KeyboardModifier.ControlModifier:
            return "remove" if mods & Qt.KeyboardModifier.ShiftModifier else "toggle"
        if mods & Qt.KeyboardModifier.ShiftModifier:
            return "add"
        return "replace"

    @Slot(object, object)
    def _on_polygon(self, poly: np.ndarray, mods: Any) -> None:
        mode = "replace"
        if self.vb.mode != "pan":
            if mods & Qt.KeyboardModifier.ShiftModifier:
                mode = "add"
            elif mods & Qt.KeyboardModifier.ControlModifier:
                mode = "remove"
        rows = self.select_polygon(poly, mode)
        self.c.status.emit(f"{len(self.c.selection)} selected ({len(rows)} in the shape)")

    @Slot(object, object)
    def _on_clicked_at(self, pos: QPointF, mods: Any) -> None:
        row = self.nearest_row(pos.x(), pos.y())
        mode = self._mode_from(mods)
        if row < 0:
            if mode == "replace":
                self.c.set_selection([], source="map")
            return
        if mode == "toggle":
            sel = self.c.selection
            i = int(np.searchsorted(sel, row))
            picked = i < len(sel) and sel[i] == row
            rows = np.delete(sel, i) if picked else np.insert(sel, i, row)
            self.c.set_selection(rows, source="map")
        elif mode == "add":
            self.c.set_selection(union_rows(self.c.selection, [row]), source="map")
        else:
            self.c.set_selection([row], source="map")
        self.c.set_current(row)

    @Slot(object, object)
    def _on_context_menu(self, pos: QPointF, screen_pos: Any) -> None:
        row = self.nearest_row(pos.x(), pos.y())
        if row >= 0 and row not in self.c.selection:
            self.c.set_selection([row], source="map")
            self.c.set_current(row)
        self.context_menu_requested.emit(screen_pos)

    def _on_mouse_moved(self, args: Any) -> None:
        pos = args[0]
        if (
            not self._pointer_inside  # a rate-limited move delivered after the pointer left
            or not self.plot.sceneBoundingRect().contains(pos)
            or not len(self._rows)
            or self._density_shown  # no single galaxy under the pointer in a density bin
        ):
            self._hide_tip()
            return
        p = self.vb.mapSceneToView(pos)
        row = self.nearest_row(p.x(), p.y(), max_px=8)
        if row < 0:
            self._hide_tip()
            return
        if row != self._hover_row:
            self.hovered.emit(row)
        self._hover_row = row
        self._show_tip(row, self.plot.mapFromScene(pos))

    def _hide_tip(self) -> None:
        if self._hover_row != -1:
            self.hovered.emit(-1)
        self._hover_row = -1
        self._tip.hide()

    def _show_tip(self, row: int, at: Any) -> None:
        c = self.c
        it = c.items[row]
        text = it.name
        pred = c.predicted_label(row)
        if pred:
            text += f"\npredicted: {pred} ({c.confidence[row]:.2f})"
        man = c.manual_label(row)
        if man:
            text += f"\nlabel: {man}"
        if c.scores is not None and np.isfinite(c.scores[row]):
            text += f"\nscore: {c.scores[row]:.3f}"
        pix = self.thumbs.get(it.sha256, it.path) if self.thumbs is not None else None
        if pix is not None:
            self._tip_image.setPixmap(pix)
        else:
            self._tip_image.setText("…")
        self._tip_text.setText(text)
        self._tip.adjustSize()
        x = min(int(at.x()) + 16, max(0, self.plot.width() - self._tip.width() - 2))
        y = min(int(at.y()) + 16, max(0, self.plot.height() - self._tip.height() - 2))
        self._tip.move(x, y)
        self._tip.show()
        self._tip.raise_()

    @Slot(str)
    def _on_thumb_ready(self, key: str) -> None:
        r = self._hover_row
        if r >= 0 and r < self.c.n and self.c.items[r].sha256 == key and self._tip.isVisible():
            pix = self.thumbs.peek(key)
            if pix is not None:
                self._tip_image.setPixmap(pix)
