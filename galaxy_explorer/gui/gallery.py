"""The gallery: a virtualised thumbnail grid linked to the controller's selection.

``GalleryModel`` is a flat list model over an *order* of catalogue rows (everything, or the
map selection), sorted by query score, zero-shot confidence, predicted class, name, manual
label or a column of the user's catalogue. Thumbnails are loaded lazily off-thread by
:class:`~galaxy_explorer.gui._thumbs.ThumbnailCache`, only for cells that are painted.

The view lays out one page of the order; the selection is the controller's and spans
pages: a change made in the grid is merged with the selected rows on other pages (a plain
click still starts a new selection), Shift+click selects the range from the anchor in
display order whatever pages lie between, and the page bar says which pages hold selected
rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelection,
    QItemSelectionModel,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QGuiApplication,
    QPainter,
    QPalette,
    QPen,
    QRegion,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from galaxy_explorer.core._arrays import difference_rows, union_rows
from galaxy_explorer.core.state import DISPLAY_SORTS, NO_PREDICTION, OrderInputs, display_order
from galaxy_explorer.gui import _style
from galaxy_explorer.gui.controller import Controller, open_in_file_manager
from galaxy_explorer.gui.workers import Runner

log = logging.getLogger(__name__)

__all__ = ["GalleryModel", "GalleryView", "ROWS_MIME", "rows_from_mime"]

ROWS_MIME = "application/x-galaxy-explorer-rows"
RowRole = Qt.ItemDataRole.UserRole + 1


def rows_from_mime(mime: QMimeData) -> list[int]:
    """Catalogue rows carried by a drag from the gallery (empty if none)."""
    if not mime.hasFormat(ROWS_MIME):
        return []
    try:
        return [int(r) for r in json.loads(bytes(mime.data(ROWS_MIME).data()).decode())["rows"]]
    except Exception:
        return []


class GalleryModel(QAbstractListModel):
    """Rows of the catalogue in display order, one page at a time.

    ``order`` is the whole display order (every shown row, a numpy array); the Qt model
    shows one *page* of it, at most :attr:`page_size` cells starting at :attr:`page_start`.
    Qt's list view lays out every cell it is given and asks the (Python) model its row
    count several times per cell, which took ~7 s for a million cells; a page keeps that
    bounded whatever N is. Positions (:meth:`position_of`, :meth:`row_at`) are positions
    in the whole order; :meth:`view_index` turns one into a cell of the page.

    Orders are computed by :func:`galaxy_explorer.core.state.display_order` (vectorised,
    no per-row Python); above :attr:`sync_limit` shown rows on a worker thread, and the
    result is applied when it arrives (a newer request supersedes an older one).

    Signals
    -------
    order_changed()
        The displayed order / filter changed (the view re-syncs its selection).
    reranked()
        Same rows, new order, changed in place by :meth:`rerank` (no model reset: the view
        keeps its layout and scroll position; positions now show other rows).
    repaint()
        Badges or scores changed, same order: views repaint the cells they show.
    page_changed()
        Another page of the order is shown (a model reset).
    sorting(bool)
        A sort started (True) or was applied (False) on the worker.
    """

    order_changed = Signal()
    reranked = Signal()
    repaint = Signal()
    page_changed = Signal()
    sorting = Signal(bool)

    SORTS = DISPLAY_SORTS
    #: Cells the view is given at once (one page of the order).
    page_size = 20_000
    #: Up to this many rows, orders are computed on the GUI thread (a few ms).
    sync_limit = 50_000

    def __init__(self, controller: Controller, thumbs: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.c = controller
        self.thumbs = thumbs
        self.sort = "score"
        self.show = "all"  # "all" | "selection"
        self._filter: np.ndarray | None = None
        self._mask: np.ndarray | None = None  # an outside filter (catalogue expression)
        self.order = np.zeros(0, dtype=np.int64)
        self._pos = np.zeros(0, dtype=np.int64)
        self.page_start = 0
        self._runner: Runner | None = None
        self.pending_sort = False
        #: the catalogue column of the ``"column"`` sort, and its direction
        self.sort_column: str | None = None
        self.descending = False
        #: ``source(column, descending)`` → a function that builds the column's float64 key
        #: per row (run where the order is computed), or None; set by the catalogue link
        self.column_key_source: Callable[[str, bool], Any] | None = None
        # cells of the page, counted once per reset: Qt asks ~3 times per cell when a
        # whole page is selected (0.44 s of Python for a 20k-cell page, "select all")
        self._count = 0
        self.modelReset.connect(self._recount)
        if thumbs is not None:
            thumbs.ready.connect(self._on_thumb_ready)

    # --------------------------------------------------------------- Qt model API
    def rowCount(self, parent: Any = None) -> int:  # noqa: N802
        if parent is not None and parent.isValid():
            return 0
        return self._count

    @Slot()
    def _recount(self) -> None:
        self._count = max(0, min(self.page_size, len(self.order) - self.page_start))

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
        )

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        pos = self.page_start + index.row()
        if pos >= len(self.order):
            return None
        row = int(self.order[pos])
        item = self.c.items[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.name
        if role == RowRole:
            return row
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.get(item.sha256, item.path) if self.thumbs is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        return None

    def _tooltip(self, row: int) -> str:
        c = self.c
        it = c.items[row]
        lines = [f"<b>{it.name}</b>", str(it.path)]
        if c.scores is not None and np.isfinite(c.scores[row]):
            lines.append(f"query score: {c.scores[row]:.3f}")
        pred = c.predicted_label(row)
        if pred:
            lines.append(f"predicted: {pred} ({c.confidence[row]:.2f})")
        man = c.manual_label(row)
        if man:
            lines.append(f"label: {man}")
        sug = c.suggestion(row)
        if sug:
            lines.append(f"suggested: {sug[0]} ({sug[1]:.2f})")
        err = (
            row in c.failed
            and c.failed[row]
            or (self.thumbs.error(it.sha256) if self.thumbs is not None else None)
        )
        if err:
            lines.append(f"<i>cannot read: {err}</i>")
        elif not c.have[row]:
            lines.append("<i>not embedded yet</i>")
        return "<br>".join(lines)

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return [ROWS_MIME, "text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:  # noqa: N802
        rows = sorted({int(self.order[self.page_start + i.row()]) for i in indexes if i.isValid()})
        sel = self.c.selection
        if rows and len(sel) > len(rows) and not len(difference_rows(np.array(rows), sel)):
            rows = sel.tolist()  # the selected cells drag the whole selection, every page
        mime = QMimeData()
        mime.setData(ROWS_MIME, json.dumps({"rows": rows}).encode())
        mime.setUrls([QUrl.fromLocalFile(str(self.c.items[r].path)) for r in rows[:500]])
        return mime

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802
        return Qt.DropAction.CopyAction

    # --------------------------------------------------------------- pages
    @property
    def pages(self) -> int:
        """How many pages the order has (at least 1)."""
        return max(1, -(-len(self.order) // self.page_size))

    @property
    def page(self) -> int:
        return self.page_start // self.page_size

    def page_rows(self) -> np.ndarray:
        """Catalogue rows of the cells on the current page, in display order."""
        return self.order[self.page_start : self.page_start + self.page_size]

    def set_page(self, page: int) -> bool:
        """Show page ``page`` (clamped); returns True if another page is now shown."""
        start = max(0, min(int(page), self.pages - 1)) * self.page_size
        if start == self.page_start:
            return False
        self.beginResetModel()
        self.page_start = start
        self.endResetModel()
        self.page_changed.emit()
        return True

    def view_index(self, pos: int) -> QModelIndex:
        """The cell of display position ``pos`` (invalid if it is on another page)."""
        i = int(pos) - self.page_start
        if pos < 0 or not 0 <= i < self.rowCount():
            return QModelIndex()
        return self.index(i)

    def show_position(self, pos: int) -> QModelIndex:
        """The cell of display position ``pos``, turning to its page first if need be."""
        if 0 <= pos < len(self.order):
            self.set_page(pos // self.page_size)
        return self.view_index(pos)

    # --------------------------------------------------------------- ordering
    def row_at(self, position: int) -> int:
        return int(self.order[position])

    def position_of(self, row: int) -> int:
        """Display position of a catalogue row in the whole order (-1 if not shown)."""
        if 0 <= row < len(self._pos):
            return int(self._pos[row])
        return -1

    def reset_catalogue(self) -> None:
        # name order and content-hash rows come from the state (built on the open worker)
        self._filter = None
        self.resort()

    def set_sort(self, key: str) -> None:
        if key not in self.SORTS:
            raise ValueError(key)
        self.sort = key
        self.resort()

    def set_filter(self, rows: np.ndarray | None) -> None:
        """Show only these rows (None = everything)."""
        self._filter = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.resort()

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Also hide the rows where ``mask`` (bool per catalogue row) is False; None = none."""
        self._mask = None if mask is None else np.asarray(mask, dtype=bool)
        self.resort()

    def compute_order(self) -> np.ndarray:
        """The display order now, computed here (the worker runs the same function)."""
        return _order_and_positions(*self._order_request())[0]

    def set_sort_column(self, column: str | None, descending: bool | None = None) -> None:
        """The catalogue column (and direction) of the ``"column"`` sort; re-sorts if shown."""
        changed = column != self.sort_column
        if descending is not None and bool(descending) != self.descending:
            self.descending = bool(descending)
            changed = True
        self.sort_column = column
        if changed and self.sort == "column":
            self.resort()

    def _order_request(self) -> tuple[OrderInputs, str, np.ndarray | None, np.ndarray | None]:
        inputs = self.c.state.order_inputs(labels=self.sort == "label")
        if self.sort == "column" and self.sort_column and self.column_key_source is not None:
            # only references here: the key is built where the order is (the worker at 1M)
            inputs.column_key = self.column_key_source(self.sort_column, self.descending)
        return inputs, self.sort, self._filter, self._mask

    def _runs_async(self) -> bool:
        return self.c.n > self.sync_limit

    def _request(self, apply: Any) -> None:
        """Compute the order (here, or on the worker at scale) and ``apply(order, pos)``."""
        req = self._order_request()
        key = req[0].column_key
        big_key = getattr(key, "rows", 0) > self.sync_limit  # a big catalogue, few cutouts
        if not self._runs_async() and not big_key:
            if self._runner is not None:
                self._runner.bump("order")  # an older big sort must not land after this
            apply(*_order_and_positions(*req))
            return
        if self._runner is None:
            self._runner = Runner(1, "gallery", self)
        self.pending_sort = True
        self.sorting.emit(True)
        n = self.c.n

        def done(result: tuple[np.ndarray, np.ndarray]) -> None:
            self.pending_sort = False
            self.sorting.emit(False)
            if self.c.n == n:  # not for a catalogue opened since
                apply(*result)

        self._runner.start(
            "order",
            lambda: _order_and_positions(*req),
            on_result=done,
            on_error=lambda m, d: log.warning("sorting the gallery failed: %s", m),
        )

    def resort(self) -> None:
        """A new order or filter: the view is reset (page 1 unless the order is the same)."""
        self._request(self._apply_reset)

    def _apply_reset(self, order: np.ndarray, pos: np.ndarray) -> None:
        if np.array_equal(order, self.order):
            self._pos = pos
            return
        self.beginResetModel()
        self.order = order
        self._pos = pos
        self.page_start = 0
        self.endResetModel()
        self.order_changed.emit()

    def rerank(self, install: Any = None) -> bool:
        """Re-rank without a model reset (rows stream in while a query is active).

        The number of cells is unchanged, so only the position → row mapping changes and the
        view repaints what is visible: no relayout, no blank frame, O(visible) painting.
        Falls back to a reset when the number of shown rows changed.

        ``install(apply)``, if given, is called when the new order is ready (at once, or
        when the worker delivers it) with a function that installs it and returns True if
        the order changed: the view keeps its anchor and current item around that call.
        Returns True if the order changed here and now (False when it was handed to the
        worker).
        """
        changed: list[bool] = []

        def ready(order: np.ndarray, pos: np.ndarray) -> None:
            def apply() -> bool:
                ok = self._apply_rerank(order, pos)
                changed.append(ok)
                return ok

            if install is None:
                apply()
            else:
                install(apply)

        self._request(ready)
        return bool(changed and changed[0])

    def _apply_rerank(self, order: np.ndarray, pos: np.ndarray) -> bool:
        if np.array_equal(order, self.order):
            return False
        if len(order) != len(self.order):
            self._apply_reset(order, pos)
            return True
        self.order = order
        self._pos = pos
        self.repaint.emit()  # cells read their data when painted: O(visible), not O(N)
        self.reranked.emit()
        return True

    def refresh_visible(self) -> None:
        """Repaint badges (labels / predictions changed, same order).

        Only the cells on screen are repainted (cells read their data when painted, tool
        tips when shown): O(visible), where a ``dataChanged`` over every row made the
        icon-mode list walk all N items on the GUI thread.
        """
        self.repaint.emit()

    @Slot(str)
    def _on_thumb_ready(self, key: str) -> None:
        for row in self.c.state.rows_of(key):
            idx = self.view_index(self.position_of(row))
            if idx.isValid():
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


def _order_and_positions(
    inputs: OrderInputs, sort: str, rows: np.ndarray | None, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(display order, position of every catalogue row or -1): vectorised, worker-safe."""
    order = display_order(inputs, sort, rows=rows, mask=mask)
    pos = np.full(inputs.n, -1, dtype=np.int64)
    pos[order] = np.arange(len(order), dtype=np.int64)
    return order, pos


class _Delegate(QStyledItemDelegate):
    """Paints a thumbnail cell: image, name, label badges, score."""

    def __init__(self, view: GalleryView) -> None:
        super().__init__(view)
        self.v = view

    def sizeHint(self, option: QStyleOptionViewItem, index: Any) -> QSize:  # noqa: N802
        s = self.v.thumb_size
        return QSize(s + 12, s + 34)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: Any) -> None:
        c = self.v.c
        row = index.data(RowRole)
        if row is None:
            return
        r: QRect = option.rect.adjusted(2, 2, -2, -2)
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if selected:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(pal.color(QPalette.ColorRole.Highlight))
            p.drawRoundedRect(r, 5, 5)
        if option.state & QStyle.StateFlag.State_HasFocus:
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight).lighter(130), 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(r, 5, 5)
        s = self.v.thumb_size
        img_rect = QRect(r.x() + (r.width() - s) // 2, r.y() + 4, s, s)
        pix = index.data(Qt.ItemDataRole.DecorationRole)
        if pix is not None and not pix.isNull():
            scaled = pix.size().scaled(img_rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(img_rect.center())
            p.drawPixmap(target, pix)
        else:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(pal.color(QPalette.ColorRole.AlternateBase))
            p.drawRect(img_rect)
            it = c.items[row]
            err = self.v.thumbs.error(it.sha256) if self.v.thumbs is not None else None
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(img_rect, Qt.AlignmentFlag.AlignCenter, "unreadable" if err else "…")
        # bottom strip: predicted label colour
        pi = int(c.predicted[row]) if row < len(c.predicted) else NO_PREDICTION
        if pi != NO_PREDICTION:
            col = _style.label_color(-1 if c.uncertain[row] else pi)  # -1: uncertain grey
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(col)
            p.drawRect(QRect(img_rect.left(), img_rect.bottom() - 3, img_rect.width(), 4))
        # name
        text_rect = QRect(r.x() + 2, img_rect.bottom() + 3, r.width() - 4, 16)
        p.setPen(
            pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        )
        f = QFont(option.font)
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.85))
        p.setFont(f)
        fm = p.fontMetrics()
        p.drawText(
            text_rect,
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            fm.elidedText(str(index.data()), Qt.TextElideMode.ElideMiddle, text_rect.width()),
        )
        # badges
        man = c.manual_label(row)
        y = img_rect.top() + 2
        if man:
            self._badge(p, img_rect.left() + 2, y, man, self._color_of(man), filled=True)
        else:
            sug = c.suggestion(row)
            if sug:
                self._badge(
                    p,
                    img_rect.left() + 2,
                    y,
                    f"{sug[0]}?",
                    self._color_of(sug[0]),
                    filled=False,
                    italic=True,
                )
        if c.scores is not None and np.isfinite(c.scores[row]):
            txt = f"{c.scores[row]:.3f}"
            w = fm.horizontalAdvance(txt) + 6
            br = QRect(img_rect.right() - w - 1, img_rect.bottom() - 20, w, 15)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 170))
            p.drawRoundedRect(br, 3, 3)
            p.setPen(QColor("white"))
            p.drawText(br, Qt.AlignmentFlag.AlignCenter, txt)
        p.restore()

    def _color_of(self, name: str) -> QColor:
        names = self.v.c.label_names()
        return _style.label_color(names.index(name) if name in names else len(names))

    @staticmethod
    def _badge(
        p: QPainter, x: int, y: int, text: str, color: QColor, *, filled: bool, italic: bool = False
    ) -> None:
        f = p.font()
        f.setItalic(italic)
        f.setBold(filled)
        p.setFont(f)
        fm = p.fontMetrics()
        w = min(fm.horizontalAdvance(text) + 8, 120)
        rect = QRect(x, y, w, fm.height() + 2)
        if filled:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(rect, 4, 4)
            p.setPen(QColor("black") if color.lightness() > 140 else QColor("white"))
        else:
            p.setPen(QPen(color, 1.5, Qt.PenStyle.DashLine))
            p.setBrush(QColor(0, 0, 0, 150))
            p.drawRoundedRect(rect, 4, 4)
            p.setPen(color.lighter(130))
        p.drawText(
            rect,
            Qt.AlignmentFlag.AlignCenter,
            fm.elidedText(text, Qt.TextElideMode.ElideRight, w - 4),
        )
        f.setItalic(False)
        f.setBold(False)
        p.setFont(f)


class _ListView(QListView):
    def __init__(self, owner: GalleryView) -> None:
        super().__init__(owner)
        self._owner = owner
        #: the selection command of the user event being handled (None outside one): a
        #: command without Clear changes the page's cells only, the rest of the selection
        #: (other pages) stays
        self.event_command: Any = None
        self._in_event = False
        #: True while a Shift event moves the current cell (the range anchor stays)
        self.extending = False

    def selectionCommand(self, index: Any, event: Any = None) -> Any:  # noqa: N802 - Qt API
        flags = super().selectionCommand(index, event)
        if self._in_event:
            self.event_command = flags
        return flags

    def _handle(self, handler: Any, ev: Any) -> None:
        self._in_event = True
        self.event_command = None
        self.extending = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        try:
            handler(ev)
        finally:
            self._in_event = False
            self.event_command = None
            self.extending = False

    def mousePressEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        mods = ev.modifiers()
        if ev.button() == Qt.MouseButton.LeftButton and mods & Qt.KeyboardModifier.ShiftModifier:
            idx = self.indexAt(ev.position().toPoint())
            if idx.isValid() and self._owner.select_range_to(
                self._owner.model.page_start + idx.row(),
                add=bool(mods & Qt.KeyboardModifier.ControlModifier),
            ):
                ev.accept()
                return
        self._handle(super().mousePressEvent, ev)

    def mouseMoveEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self._handle(super().mouseMoveEvent, ev)

    def mouseReleaseEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self._handle(super().mouseReleaseEvent, ev)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:  # noqa: N802
        """The whole viewport for a large selection change: Qt's own walks every cell of
        the ranges (~0.4 s for a 20k-cell page), and repainting the viewport is O(visible)."""
        if len(selection) > 64 or any(r.height() > 256 for r in selection):
            return QRegion(self.viewport().rect())
        return super().visualRegionForSelection(selection)

    def selectAll(self) -> None:  # noqa: N802 - Qt API
        """Every row the gallery shows, on every page (not only the cells laid out)."""
        self._owner.select_all_shown()

    def contextMenuEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self._owner.show_context_menu(ev.globalPos())

    def keyPressEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self._handle(self._key_press, ev)

    def _key_press(self, ev: Any) -> None:
        """Page Down on a page's last cell turns to the next page (Page Up: the previous);
        with Shift the selection runs on from the anchor into that page."""
        m = self._owner.model
        cur = self.currentIndex()
        key = ev.key()
        last = m.rowCount() - 1
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if (
            key == Qt.Key.Key_PageDown
            and cur.isValid()
            and cur.row() == last
            and m.page < m.pages - 1
        ):
            self._owner.turn_page(1)
            if not (shift and self._owner.select_range_to(m.page_start)):
                self.setCurrentIndex(m.index(0))
            return
        if key == Qt.Key.Key_PageUp and cur.isValid() and cur.row() == 0 and m.page > 0:
            self._owner.turn_page(-1)
            end = m.rowCount() - 1
            if not (shift and self._owner.select_range_to(m.page_start + end)):
                self.setCurrentIndex(m.index(end))
            return
        super().keyPressEvent(ev)


class GalleryView(QWidget):
    """Thumbnail grid with sort / show controls and a context menu (actions go straight to
    the controller)."""

    def __init__(self, controller: Controller, thumbs: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.c = controller
        self.thumbs = thumbs
        self.thumb_size = 112
        self._syncing = False
        self.model = GalleryModel(controller, thumbs, self)
        self._anchor_row = -1  # where a Shift+click range starts (the last current row)
        self._sel_pos = np.zeros(0, dtype=np.int64)  # selected rows' display positions

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        self.show_combo = QComboBox()
        self.show_combo.addItem("All images", "all")
        self.show_combo.addItem("Selection", "selection")
        self.show_combo.setToolTip("Show the whole catalogue or only what is selected on the map")
        self.show_combo.currentIndexChanged.connect(self._on_show_combo)
        bar.addWidget(self.show_combo)
        bar.addSpacing(4)
        self.sort_combo = QComboBox()
        for key, text in (
            ("score", "By score"),
            ("confidence", "By confidence"),
            ("class", "By class"),
            ("name", "By name"),
            ("label", "By label"),
        ):
            self.sort_combo.addItem(text, key)
        self.sort_combo.setToolTip(
            "Order of the thumbnails (query score falls back to name without a query; "
            "class: grouped by predicted class, most confident first; label: grouped by "
            "your labels, unlabelled last; a catalogue column once a catalogue is open)"
        )
        self.sort_combo.currentIndexChanged.connect(self._on_sort_combo)
        bar.addWidget(self.sort_combo)
        # the catalogue column of "By column", and its direction (shown with that sort)
        self.column_combo = QComboBox()
        self.column_combo.setToolTip(
            "Catalogue column to sort by: numbers (with any unit) by value, text "
            "alphabetically; rows without a value last"
        )
        self.column_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.column_combo.currentIndexChanged.connect(self._on_column_combo)
        bar.addWidget(self.column_combo)
        self.direction_button = QToolButton()
        self.direction_button.setCheckable(True)
        self.direction_button.setAutoRaise(True)
        self.direction_button.setToolTip("Ascending / descending (rows without a value last)")
        self.direction_button.toggled.connect(self._on_direction)
        bar.addWidget(self.direction_button)
        self._set_direction_text()
        self.column_combo.hide()
        self.direction_button.hide()
        bar.addStretch(1)
        # pages of the order (a page is what the view lays out); hidden with one page
        self.prev_page = QToolButton()
        self.prev_page.setArrowType(Qt.ArrowType.LeftArrow)
        self.prev_page.setToolTip("Previous page of thumbnails")
        self.prev_page.clicked.connect(lambda: self.turn_page(-1))
        self.page_label = QLabel("")
        self.next_page = QToolButton()
        self.next_page.setArrowType(Qt.ArrowType.RightArrow)
        self.next_page.setToolTip("Next page of thumbnails")
        self.next_page.clicked.connect(lambda: self.turn_page(1))
        for w in (self.prev_page, self.page_label, self.next_page):
            bar.addWidget(w)
        # which pages hold selected rows (a menu turns to one); shown when any is off-page
        self.sel_pages_button = QToolButton()
        self.sel_pages_button.setAutoRaise(True)
        self.sel_pages_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.sel_pages_button.setToolTip("Pages with selected rows: choose one to turn to it")
        self.sel_pages_menu = QMenu(self.sel_pages_button)
        self.sel_pages_button.setMenu(self.sel_pages_menu)
        self.sel_pages_menu.aboutToShow.connect(self._fill_sel_pages_menu)
        self.sel_pages_button.hide()
        bar.addWidget(self.sel_pages_button)
        self.count_label = QLabel("")
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(self.count_label)
        lay.addLayout(bar)

        self.view = _ListView(self)
        v = self.view
        v.setModel(self.model)
        v.setItemDelegate(_Delegate(self))
        v.setViewMode(QListView.ViewMode.IconMode)
        v.setMovement(QListView.Movement.Static)
        v.setResizeMode(QListView.ResizeMode.Adjust)
        v.setUniformItemSizes(True)
        v.setLayoutMode(QListView.LayoutMode.Batched)
        v.setBatchSize(500)
        v.setSpacing(2)
        v.setWordWrap(False)
        v.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        v.setDragEnabled(True)
        v.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        v.setDefaultDropAction(Qt.DropAction.CopyAction)
        v.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        v.setToolTip("")
        lay.addWidget(v, 1)
        v.selectionModel().selectionChanged.connect(self._on_view_selection)
        v.selectionModel().currentChanged.connect(self._on_view_current)
        v.doubleClicked.connect(self._on_double_clicked)
        self.model.order_changed.connect(self._on_order_changed)
        self.model.page_changed.connect(self._on_page_changed)
        self.model.sorting.connect(self._on_sorting)
        self.model.repaint.connect(v.viewport().update)
        self._update_pages()

        # While rows stream in, re-rank at most twice a second, in place (see _rerank_now)
        self._resort_timer = QTimer(self, singleShot=True, interval=500)
        self._resort_timer.timeout.connect(self._rerank_now)
        self._scores_seen: object = None  # the controller's scores array last ranked by
        c = controller
        c.catalogue_opened.connect(self._on_catalogue)
        c.embeddings_changed.connect(self._on_embeddings)
        c.scores_changed.connect(self._on_scores)
        c.predictions_changed.connect(self._on_predictions)
        c.labels_changed.connect(self._on_labels)
        c.suggestions_changed.connect(self.model.refresh_visible)
        c.selection_changed.connect(self._on_selection)
        c.current_changed.connect(self._on_current_row)

    # --------------------------------------------------------------- API
    def displayed_rows(self) -> list[int]:
        """Catalogue rows in display order (every page)."""
        return [int(r) for r in self.model.order]

    def selected_rows(self) -> list[int]:
        """Catalogue rows selected in the grid (sorted); read from ranges, fast at 100k."""
        order = self.model.page_rows()
        parts = [order[r.top() : r.bottom() + 1] for r in self.view.selectionModel().selection()]
        if not parts:
            return []
        return np.unique(np.concatenate(parts)).astype(int).tolist()

    def set_sort(self, key: str) -> None:
        self.sort_combo.setCurrentIndex(self.sort_combo.findData(key))

    def set_sort_columns(self, columns: list[str], source: Any = None) -> None:
        """Offer "By column" over these catalogue columns (none: the entry goes).

        ``source(column, descending)`` gives the function that builds a column's key (see
        :attr:`GalleryModel.column_key_source`).
        """
        m = self.model
        m.column_key_source = source if columns else None
        keep = m.sort_column if m.sort_column in columns else (columns[0] if columns else None)
        self.column_combo.blockSignals(True)
        self.column_combo.clear()
        for col in columns:
            self.column_combo.addItem(col, col)
        self.column_combo.setCurrentIndex(max(self.column_combo.findData(keep), 0))
        self.column_combo.blockSignals(False)
        i = self.sort_combo.findData("column")
        if columns and i < 0:
            self.sort_combo.addItem("By column", "column")
        elif not columns and i >= 0:
            if m.sort == "column":
                self.set_sort("name")
            self.sort_combo.removeItem(i)
        m.sort_column = keep
        if m.sort == "column":
            m.resort()  # a catalogue (re)matched: the keys of the rows changed
        self._show_column_controls()

    def set_sort_column(self, column: str, descending: bool | None = None) -> None:
        """Sort by a catalogue column (it must be one offered by :meth:`set_sort_columns`)."""
        i = self.column_combo.findData(column)
        if i < 0:
            raise ValueError(f"no catalogue column {column!r} to sort by")
        if descending is not None:
            self.direction_button.setChecked(bool(descending))
        self.column_combo.setCurrentIndex(i)
        self.set_sort("column")

    def selected_on_pages(self) -> np.ndarray:
        """Selected rows shown on each page (one count per page)."""
        m = self.model
        bounds = np.arange(m.pages + 1, dtype=np.int64) * m.page_size
        return np.diff(np.searchsorted(self._sel_pos, bounds))

    def select_all_shown(self) -> None:
        """Select every row the gallery shows (all pages)."""
        self.c.set_selection(self.model.order, source="gallery-all")

    def select_range_to(self, pos: int, add: bool = False) -> bool:
        """Select display positions from the anchor (the last current row) to ``pos``,
        across pages; ``add`` keeps the rest of the selection. False if there is no anchor
        shown."""
        m = self.model
        a = m.position_of(self._anchor_row)
        if a < 0 or not 0 <= pos < len(m.order):
            return False
        lo, hi = sorted((a, int(pos)))
        rows = m.order[lo : hi + 1]
        if add:
            rows = union_rows(self.c.selection, rows)
        row = m.row_at(pos)
        self.view.extending = True  # the anchor stays where it was
        try:
            self.c.set_selection(rows, source="gallery")
            self.c.set_current(row)
        finally:
            self.view.extending = False
        self._sync_selection_from_controller(scroll=False)
        self._set_current_cell(row)
        return True

    def set_show(self, mode: str) -> None:
        self.show_combo.setCurrentIndex(self.show_combo.findData(mode))

    def scroll_to_row(self, row: int) -> None:
        """Bring a row's cell into view (turning to its page if need be)."""
        idx = self.model.show_position(self.model.position_of(row))
        if idx.isValid():
            self.view.scrollTo(idx, QAbstractItemView.ScrollHint.EnsureVisible)

    def turn_page(self, step: int) -> None:
        """Show the next (``step=1``) or previous (``-1``) page of the order."""
        if self.model.set_page(self.model.page + step):
            self.view.scrollToTop()

    # --------------------------------------------------------------- controller slots
    @Slot()
    def _on_catalogue(self) -> None:
        self.model.reset_catalogue()
        self._update_count()

    def _schedule_rerank(self) -> None:
        if not self._resort_timer.isActive():  # coalesce: never postponed by more batches
            self._resort_timer.start()

    @Slot()
    def _on_embeddings(self) -> None:
        if self.model.sort not in ("name", "label", "column"):  # those do not need vectors
            self._schedule_rerank()
        self.model.refresh_visible()

    @Slot()
    def _on_labels(self) -> None:
        if self.model.sort == "label":
            self._schedule_rerank()  # in place, coalesced, keeping the anchor
        self.model.refresh_visible()

    @Slot(int)
    def _on_current_row(self, row: int) -> None:
        # a Shift+click or Shift+arrow extends from the anchor, which stays
        if not self.view.extending or self.model.position_of(self._anchor_row) < 0:
            self._anchor_row = row

    @Slot()
    def _on_scores(self) -> None:
        new_query = self.c.scores is not self._scores_seen  # a new array = a new query
        self._scores_seen = self.c.scores
        if self.model.sort == "score":
            if new_query:  # the user asked: best matches at the top, at once
                self._resort_timer.stop()
                self._rerank(keep_anchor=False)
                if len(self.model.order):
                    self.view.scrollToTop()
            else:  # more rows scored while embedding: in place, coalesced
                self._schedule_rerank()
        self.model.refresh_visible()

    @Slot()
    def _on_predictions(self) -> None:
        if self.model.sort == "confidence":
            self._schedule_rerank()
        self.model.refresh_visible()

    @Slot()
    def _rerank_now(self) -> None:
        """Re-rank in place, keeping the scroll anchor, the selection and the current item.

        Anchor: at the top of the list the best matches stay in view; scrolled down, the
        cell at the top-left keeps its place on screen. Never while a mouse button is down
        (a drag or a click in progress): tried again a moment later.
        """
        if QApplication.mouseButtons() != Qt.MouseButton.NoButton:
            self._resort_timer.start()
            return
        self._rerank(keep_anchor=True)

    def _rerank(self, keep_anchor: bool) -> None:
        # the order may come from the worker: anchor and current are read when it lands
        self.model.rerank(lambda apply: self._install_rerank(apply, keep_anchor))

    def _install_rerank(self, apply: Any, keep_anchor: bool) -> None:
        v = self.view
        sb = v.verticalScrollBar()
        anchor_row, anchor_top = -1, 0
        if keep_anchor and sb.value() > sb.minimum():
            probe = v.indexAt(QPoint(v.spacing() + 6, v.spacing() + 6))
            if probe.isValid():
                anchor_row = int(probe.data(RowRole))
                anchor_top = v.visualRect(probe).top()
        cur = v.currentIndex()
        cur_row = int(cur.data(RowRole)) if cur.isValid() else -1
        if not apply():
            return
        self._set_current_cell(cur_row)
        self._sync_selection_from_controller(scroll=False)
        idx = self.model.view_index(self.model.position_of(anchor_row))
        if idx.isValid():
            rect = v.visualRect(idx)
            if rect.isValid():
                sb.setValue(sb.value() + rect.top() - anchor_top)

    def _set_current_cell(self, row: int) -> None:
        """Make ``row``'s cell (if on this page) the view's current one, without scrolling."""
        v = self.view
        idx = self.model.view_index(self.model.position_of(row))
        if not idx.isValid():
            return
        self._syncing = True
        auto = v.hasAutoScroll()
        v.setAutoScroll(False)  # moving the current index must not scroll the view
        try:
            v.selectionModel().setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.NoUpdate)
        finally:
            v.setAutoScroll(auto)
            self._syncing = False

    @Slot(str)
    def _on_selection(self, source: str) -> None:
        if source == "gallery":
            self._update_sel_pages()
            return
        if self.model.show == "selection":
            self.model.set_filter(self.c.selection)
        self._sync_selection_from_controller()

    @Slot()
    def _on_order_changed(self) -> None:
        # a new order starts at its first page: the current item stays current (and in
        # view if it is on that page), the selection stays selected
        self._sync_selection_from_controller()
        self._set_current_cell(self.c.current)
        self._update_count()

    @Slot()
    def _on_page_changed(self) -> None:
        self._sync_selection_from_controller(scroll=False)
        self._set_current_cell(self.c.current)
        self._update_pages()

    @Slot(bool)
    def _on_sorting(self, busy: bool) -> None:
        self.count_label.setText("sorting…" if busy else "")
        if not busy:
            self._update_count()

    def _update_count(self) -> None:
        shown = len(self.model.order)
        self.count_label.setText(
            f"{shown:,} shown" if shown == self.c.n else f"{shown:,} of {self.c.n:,} shown"
        )
        self._update_pages()

    def _update_pages(self) -> None:
        m = self.model
        many = m.pages > 1
        for w in (self.prev_page, self.page_label, self.next_page):
            w.setVisible(many)
        if many:
            last = min(len(m.order), m.page_start + m.page_size)
            self.page_label.setText(f"{m.page_start + 1:,}–{last:,} of {len(m.order):,}")
            self.prev_page.setEnabled(m.page > 0)
            self.next_page.setEnabled(m.page < m.pages - 1)
        self._update_sel_pages()

    def _selection_positions(self) -> np.ndarray:
        """Display positions of the selected rows that are shown, ascending."""
        sel = np.asarray(self.c.selection, dtype=np.int64)
        known = self.model._pos
        n = len(self.model.order)
        if len(sel) == len(known) and n:  # every row (sorted, unique): all shown ones
            return np.arange(n, dtype=np.int64)
        sel = sel[(sel >= 0) & (sel < len(known))]
        pos = known[sel] if len(sel) else np.zeros(0, dtype=np.int64)
        pos = pos[pos >= 0]
        if len(pos) * 16 < n:
            return np.sort(pos)
        mask = np.zeros(n, dtype=bool)  # a mask, not a sort, for a large selection
        mask[pos] = True
        return np.flatnonzero(mask)

    def _update_sel_pages(self, pos: np.ndarray | None = None) -> None:
        """Say which pages hold selected rows (on the page bar, when there are pages)."""
        m = self.model
        self._sel_pos = self._selection_positions() if pos is None else pos
        b = self.sel_pages_button
        if m.pages <= 1 or not len(self._sel_pos):
            b.hide()
            self.prev_page.setToolTip("Previous page of thumbnails")
            self.next_page.setToolTip("Next page of thumbnails")
            return
        per_page = self.selected_on_pages()
        pages = np.flatnonzero(per_page)
        here = int(per_page[m.page])
        total = int(per_page.sum())
        if len(pages) == 1:
            text = f"{total:,} selected, on page {int(pages[0]) + 1}"
        else:
            text = f"{total:,} selected on {len(pages)} of {m.pages} pages"
        if here < total:
            text += f" ({here:,} here)"
        b.setText(text + " ▾")
        b.show()
        before, after = pages[pages < m.page], pages[pages > m.page]
        self.prev_page.setToolTip(
            "Previous page of thumbnails"
            + (f" (selected rows on page {int(before[-1]) + 1})" if len(before) else "")
        )
        self.next_page.setToolTip(
            "Next page of thumbnails"
            + (f" (selected rows on page {int(after[0]) + 1})" if len(after) else "")
        )

    @Slot()
    def _fill_sel_pages_menu(self) -> None:
        menu = self.sel_pages_menu
        menu.clear()
        per_page = self.selected_on_pages()
        m = self.model
        for p in np.flatnonzero(per_page).tolist():  # at most N / page_size pages
            a = p * m.page_size
            b = min(len(m.order), a + m.page_size)
            act = menu.addAction(
                f"Page {p + 1} ({a + 1:,}–{b:,}): {int(per_page[p]):,} selected",
                lambda _=False, page=p: self._turn_to(page),
            )
            act.setCheckable(True)
            act.setChecked(p == m.page)

    def _turn_to(self, page: int) -> None:
        if self.model.set_page(page):
            self.view.scrollToTop()
        first = self._sel_pos[self._sel_pos >= self.model.page_start]
        idx = self.model.view_index(int(first[0])) if len(first) else QModelIndex()
        if idx.isValid():
            self.view.scrollTo(idx, QAbstractItemView.ScrollHint.EnsureVisible)

    def _sync_selection_from_controller(self, scroll: bool = True) -> None:
        pos = all_pos = self._selection_positions()
        m = self.model
        if scroll and len(pos):
            on_page = pos[(pos >= m.page_start) & (pos < m.page_start + m.page_size)]
            if not len(on_page):  # nothing selected on this page: turn to the first one
                m.set_page(int(pos[0]) // m.page_size)
        first = int(pos[0]) if len(pos) else -1
        pos = pos[(pos >= m.page_start) & (pos < m.page_start + m.page_size)] - m.page_start
        qsel = QItemSelection()
        if len(pos):
            breaks = np.flatnonzero(np.diff(pos) != 1)
            starts = np.concatenate([[pos[0]], pos[breaks + 1]])
            ends = np.concatenate([pos[breaks], [pos[-1]]])
            for a, b in zip(starts, ends, strict=False):
                qsel.select(self.model.index(int(a)), self.model.index(int(b)))
        self._syncing = True
        try:
            sm = self.view.selectionModel()
            sm.select(qsel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            idx = m.view_index(first)
            if idx.isValid() and scroll:
                self.view.scrollTo(idx, QAbstractItemView.ScrollHint.EnsureVisible)
        finally:
            self._syncing = False
        self._update_sel_pages(all_pos)

    # --------------------------------------------------------------- view slots
    @Slot(int)
    def _on_sort_combo(self, i: int) -> None:
        self.model.set_sort(self.sort_combo.itemData(i))
        self._show_column_controls()

    def _show_column_controls(self) -> None:
        on = self.model.sort == "column"
        self.column_combo.setVisible(on)
        self.direction_button.setVisible(on)

    @Slot(int)
    def _on_column_combo(self, i: int) -> None:
        col = self.column_combo.itemData(i)
        if col:
            self.model.set_sort_column(col)

    def _set_direction_text(self) -> None:
        down = self.direction_button.isChecked()
        self.direction_button.setText("↓ desc" if down else "↑ asc")

    @Slot(bool)
    def _on_direction(self, descending: bool) -> None:
        self._set_direction_text()
        self.model.set_sort_column(self.model.sort_column, descending)

    @Slot(int)
    def _on_show_combo(self, i: int) -> None:
        mode = self.show_combo.itemData(i)
        self.model.show = mode
        self.model.set_filter(self.c.selection if mode == "selection" else None)

    @Slot(QItemSelection, QItemSelection)
    def _on_view_selection(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        if self._syncing:
            return
        cmd = self.view.event_command
        clear = QItemSelectionModel.SelectionFlag.Clear
        if cmd is None or cmd & clear:  # a plain click, a drag: a new selection
            self.c.set_selection(self.selected_rows(), source="gallery")
            return
        # Ctrl+click, Shift+arrows: change this page's cells, keep the other pages' rows
        order = self.model.page_rows()

        def rows_of(ranges: QItemSelection) -> np.ndarray:
            parts = [order[r.top() : r.bottom() + 1] for r in ranges]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

        rows = difference_rows(self.c.selection, rows_of(deselected))
        self.c.set_selection(union_rows(rows, rows_of(selected)), source="gallery")

    @Slot(QModelIndex, QModelIndex)
    def _on_view_current(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self._syncing or not current.isValid():
            return
        self.c.set_current(int(current.data(RowRole)))

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.c.set_current(int(index.data(RowRole)))
            self.window().findChild(QWidget, "DetailDock") and self._raise_detail()

    def _raise_detail(self) -> None:
        dock = self.window().findChild(QWidget, "DetailDock")
        if dock is not None:
            dock.show()
            dock.raise_()

    # --------------------------------------------------------------- context menu
    def context_rows(self) -> list[int]:
        """The selected rows, on every page (else the current cell's row)."""
        rows = self.c.selection.tolist()
        if not rows:
            cur = self.view.currentIndex()
            if cur.isValid():
                rows = [int(cur.data(RowRole))]
        return rows

    def build_context_menu(self) -> QMenu:
        rows = self.context_rows()
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one per right click
        n = len(rows)
        sim = menu.addAction("Find similar", lambda: self.c.find_similar(rows))
        have = self.c.have
        sim.setEnabled(bool(n) and bool(have[np.asarray(rows, dtype=np.int64)].any()))
        pos = menu.addAction(
            "Add to query as positive example", lambda: self.c.add_examples(rows, True)
        )
        neg = menu.addAction(
            "Add to query as negative example", lambda: self.c.add_examples(rows, False)
        )
        pos.setEnabled(bool(n))
        neg.setEnabled(bool(n))
        menu.addSeparator()
        lab = menu.addMenu(f"Label {n} as…" if n != 1 else "Label as…")
        lab.setEnabled(bool(n))
        for i, name in enumerate(self.c.label_names()):
            act = QAction(name, lab)
            if _style.class_key(i):
                act.setShortcut(_style.class_key(i))
            act.triggered.connect(lambda _=False, nm=name: self.c.set_manual_label(rows, nm))
            lab.addAction(act)
        lab.addSeparator()
        lab.addAction("Clear label", lambda: self.c.set_manual_label(rows, None))
        menu.addSeparator()
        op = menu.addAction(
            "Open file location", lambda: open_in_file_manager(self.c.items[rows[0]].path)
        )
        op.setEnabled(bool(n))
        cp = menu.addAction(
            "Copy path" if n <= 1 else f"Copy {n} paths", lambda: self.copy_paths(rows)
        )
        cp.setEnabled(bool(n))
        shown = len(self.model.order)
        if self.model.pages > 1:
            menu.addSeparator()
            menu.addAction(f"Select all {shown:,} shown (every page)", self.select_all_shown)
        return menu

    def show_context_menu(self, global_pos: Any) -> None:
        self.build_context_menu().popup(global_pos)

    def copy_paths(self, rows: list[int]) -> None:
        text = "\n".join(str(self.c.items[r].path) for r in rows)
        QGuiApplication.clipboard().setText(text)
        self.c.status.emit(f"Copied {len(rows)} path{'s' if len(rows) != 1 else ''}")
