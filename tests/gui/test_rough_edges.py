"""Rough edges a newcomer hit in the app (issue 14, section 2), one test each (offscreen)."""

from __future__ import annotations

import logging

from conftest import wait_embedded
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent
from PySide6.QtWidgets import QApplication, QWidget


def _drop_target(win, widget_pos_in_win: QPoint) -> QWidget | None:
    """The widget Qt's QWidgetWindow picks for a drag at a point: the first up the parent
    chain (from the child under the cursor) that accepts drops."""
    w = win.childAt(widget_pos_in_win) or win
    while w is not None and not w.isWindow() and not w.acceptDrops():
        w = w.parentWidget()
    return w if w is not None and w.acceptDrops() else None


def test_dragging_across_the_map_prints_no_qt_warning(qtbot, qtlog, make_window, cutouts):
    """Every drag over the map printed 'QGraphicsView::dragLeaveEvent: drag leave received
    before drag enter'; dropped files still reach the main window."""
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    view = win.map.plot.viewport()
    centre = view.mapTo(win, view.rect().center())
    target = _drop_target(win, centre)
    assert target is not None
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(cutouts / "gal_000.fits"))])
    local = QPointF(target.mapFrom(win, centre))
    enter = QDragEnterEvent(
        local.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, enter)
    QApplication.sendEvent(target, QDragLeaveEvent())
    qtbot.wait(10)
    noisy = [r.message for r in qtlog.records if "drag leave" in r.message]
    assert noisy == []
    assert target is win and enter.isAccepted()  # files dropped on the map still open


def test_clicking_an_unreadable_file_logs_one_line(qtbot, make_window, cutouts, caplog):
    (cutouts / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 50)
    win = make_window([cutouts])
    qtbot.waitUntil(lambda: win.c.n == 9 and not win.c.job_running, timeout=30000)
    row = next(r for r, it in enumerate(win.c.items) if it.name == "broken.fits")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        win.c.set_current(row)
        qtbot.waitUntil(lambda: "Cannot show" in win.detail.image.text(), timeout=10000)
    mine = [r for r in caplog.records if "broken.fits" in r.getMessage()]
    assert mine, "the failure is logged"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in mine)
    assert all("\n" not in r.getMessage() for r in mine)
