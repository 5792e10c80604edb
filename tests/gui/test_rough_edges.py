"""Rough edges a newcomer hit in the app (issue 14, section 2), one test each (offscreen)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
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


@pytest.mark.filterwarnings("error::DeprecationWarning")
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
        local,  # a QPointF: the QPoint constructor is deprecated
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


def test_gallery_reranks_in_place_while_rows_stream_in(qtbot, make_window, tmp_path):
    """Edge 1: a flush of new scores (rows embedded while a query is active) re-ranks the
    gallery in place, coalesced: no model reset (the blank frame), the scroll anchor, the
    selection and the current item stay."""
    from helpers import make_cutout_folder

    folder = make_cutout_folder(tmp_path / "many", n_fits=20, n_jpeg=40)
    win = make_window([folder])
    wait_embedded(qtbot, win)
    c, g = win.c, win.gallery
    c.set_query_text("a spiral galaxy")
    qtbot.waitUntil(lambda: c.scores is not None and np.isfinite(c.scores).all(), timeout=10000)
    qtbot.wait(1000)  # every pending re-rank / repaint has run
    v = g.view
    sb = v.verticalScrollBar()
    assert sb.maximum() > 0, "the grid must scroll for this test"
    cur_row = int(g.model.order[40])
    v.setCurrentIndex(g.model.index(40))
    assert c.current == cur_row
    sel_rows = [int(g.model.order[7]), int(g.model.order[30])]
    c.set_selection(sel_rows, "map")
    sb.setValue(sb.maximum() // 2)
    qtbot.wait(20)
    probe = v.indexAt(QPoint(v.spacing() + 6, v.spacing() + 6))
    anchor_row, anchor_top = (
        int(probe.data(Qt.ItemDataRole.UserRole + 1)),
        v.visualRect(probe).top(),
    )
    resets, reranks = [], []
    g.model.modelAboutToBeReset.connect(lambda: resets.append(1))
    g.model.reranked.connect(lambda: reranks.append(1))
    # rows "arrive": their scores change in place (the controller's flush), ten times fast
    rng = np.random.default_rng(1)
    scores = c.scores
    qtbot.waitUntil(lambda: not g._resort_timer.isActive(), timeout=3000)  # nothing pending
    for _ in range(10):
        assert c.scores is scores
        c.scores[:] = rng.random(c.n).astype(np.float32)
        c.scores_changed.emit()  # a burst of flushes: one re-rank, later
    assert reranks == [], "coalesced: not once per flush"
    qtbot.waitUntil(lambda: len(reranks) == 1, timeout=3000)
    qtbot.wait(700)
    assert len(reranks) == 1 and resets == []
    expected = np.argsort(-c.scores, kind="stable")
    assert list(g.model.order) == [int(r) for r in g.model.compute_order()]
    assert set(g.model.order[:5]) == set(expected[:5])
    pos = g.model.position_of(anchor_row)
    assert v.visualRect(g.model.index(pos)).top() == anchor_top  # anchor kept on screen
    assert g.selected_rows() == sorted(sel_rows)
    assert int(v.currentIndex().data(Qt.ItemDataRole.UserRole + 1)) == cur_row
    assert c.current == cur_row
    assert sorted(int(r) for r in c.selection) == sorted(sel_rows)


def _delta_e(a, b) -> float:
    """CIE76 colour difference of two QColors (sRGB → Lab, D65)."""

    def lab(q):
        lin = [
            c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
            for c in (q.redF(), q.greenF(), q.blueF())
        ]
        x = (0.4124 * lin[0] + 0.3576 * lin[1] + 0.1805 * lin[2]) / 0.95047
        y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
        z = (0.0193 * lin[0] + 0.1192 * lin[1] + 0.9505 * lin[2]) / 1.08883

        def f(t):
            return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

        return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))

    return sum((p - q) ** 2 for p, q in zip(lab(a), lab(b), strict=True)) ** 0.5


def test_class_colours_differ_from_the_map_markers():
    """Edge 5: the 10th class was cyan like the selection ring."""
    from PySide6.QtGui import QColor

    from galaxy_explorer.gui import _style

    marks = [QColor(_style.SELECTION_COLOR), QColor(_style.HIGHLIGHT_COLOR)]
    marks.append(QColor(_style.CURRENT_COLOR))
    classes = [_style.label_color(i) for i in range(10)]
    for i, col in enumerate(classes):
        for m in marks:
            assert _delta_e(col, m) >= 25, (i, col.name(), m.name())
        for j in range(i):
            assert _delta_e(col, classes[j]) >= 15, (i, j)


def test_tenth_class_has_hotkey_zero_and_delete_clears(qtbot, make_window, cutouts):
    from galaxy_explorer.gui.controller import LabelDef

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    names = [f"class {i}" for i in range(1, 11)]
    c.set_label_defs([LabelDef(n, "") for n in names])
    qtbot.waitUntil(lambda: len(win.labels.bins) == 11, timeout=5000)
    c.set_selection([2], "test")
    win.activateWindow()
    qtbot.keyClick(win.gallery.view, Qt.Key.Key_0)
    assert c.manual_label(2) == "class 10"
    assert win.labels.bin_for("class 10").key == "0"
    qtbot.keyClick(win.gallery.view, Qt.Key.Key_Delete)
    assert c.manual_label(2) is None
    # with fewer than 10 classes, 0 still clears (as before)
    c.set_label_defs([LabelDef(n, "") for n in names[:3]])
    c.set_manual_label([2], "class 1")
    qtbot.keyClick(win.gallery.view, Qt.Key.Key_0)
    assert c.manual_label(2) is None


def test_hover_card_hides_when_the_pointer_leaves_the_map(qtbot, make_window, cutouts):
    from PySide6.QtCore import QEvent

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    m = win.map
    row = int(m.drawn_rows()[0])
    scene_pos = m.vb.mapViewToScene(QPointF(*m.row_position(row)))
    m._on_mouse_moved((scene_pos,))
    assert m._tip.isVisible()
    QApplication.sendEvent(m.plot.viewport(), QEvent(QEvent.Type.Leave))
    assert not m._tip.isVisible()
    m._on_mouse_moved((scene_pos,))  # a rate-limited move delivered after the leave
    assert not m._tip.isVisible()


def test_legend_counts_match_the_table_while_the_map_lags(qtbot, make_window, cutouts):
    """Edge 5: the legend counted drawn points only; the projection lags the predictions
    while embedding, so the legend lagged the label table."""
    from conftest import wait_predictions

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    wait_predictions(qtbot, win)
    c, m = win.c, win.map
    lagging = c.coords.copy()
    lagging[: c.n // 2] = np.nan  # these rows are predicted but not yet on the map
    c.coords = lagging  # a projection arrives as a new array (the map keys its index on it)
    c.predictions_changed.emit()
    qtbot.waitUntil(lambda: m.point_count == c.n - c.n // 2, timeout=3000)
    counts = c.predicted_counts()
    legend = {label.text.rsplit(" (", 1)[0]: label.text for _, label in m.legend.items}
    for i, d in enumerate(c.label_defs):
        assert legend[d.name] == f"{d.name} ({counts[d.name]})", i
    table = {
        win.labels.table.item(i, 0).text(): int(win.labels.table.item(i, 2).text())
        for i in range(win.labels.table.rowCount())
    }
    assert table == {d.name: counts[d.name] for d in c.label_defs}


def test_window_lays_out_for_1280x800(qtbot, make_window, cutouts):
    """Edge 2: at 1280×800 bins show their counts, prompts and templates are readable,
    the RGB field is not elided; the first-start size fits a 1280×800 screen."""
    from PySide6.QtCore import QRect

    from galaxy_explorer.gui.main_window import DEFAULT_SIZE

    win = make_window([cutouts], size=None)  # first start: no remembered geometry
    assert win.width() <= 1280 and win.height() <= 800 - 40
    assert DEFAULT_SIZE[0] <= 1280 and DEFAULT_SIZE[1] <= 760
    qtbot.wait(100)  # the first-start dock widths are applied after show
    win.resize(1280, 800)  # the offscreen screen is smaller than 1280×800: lay out as a
    win._apply_initial_dock_sizes()  # first start on a 1280×800 screen does
    wait_embedded(qtbot, win)
    qtbot.wait(100)
    assert win.minimumSizeHint().width() <= 1280 and win.minimumSizeHint().height() <= 800
    panel = win.labels
    for b in panel.bins:
        fm = b.fontMetrics()
        assert fm.horizontalAdvance(b.text()) <= b.text_room(), b.text()
        if b.label is not None:
            assert b.text().endswith(f"({b.count})"), b.text()
    assert any(b.label == "barred spiral" and "barred spiral" in b.text() for b in panel.bins), (
        [b.text() for b in panel.bins],
        [b.width() for b in panel.bins],
        win.labels_dock.width(),
    )
    t = panel.table
    col = t.columnWidth(1)
    for i in range(t.rowCount()):
        prompt = t.item(i, 1).text()
        fm = t.fontMetrics()
        need = fm.boundingRect(QRect(0, 0, col - 8, 10000), Qt.TextFlag.TextWordWrap, prompt)
        assert need.width() <= col - 6 and need.height() <= t.rowHeight(i), prompt
    tpl = panel.templates_edit
    fm = tpl.fontMetrics()
    shown = "; ".join(win.c.templates[:2])
    assert tpl.cursorPosition() == 0 and fm.horizontalAdvance(shown) <= tpl.width() - 12
    rgb = win.detail.bands_edit
    for text in ("auto", "2,1,0"):
        assert rgb.fontMetrics().horizontalAdvance(text) <= rgb.width() - 10, text
    assert win.map.width() >= 350


def test_detail_changes_do_not_resize_the_panels(qtbot, make_window, cutouts):
    """Edge 5: a long file name or another kind of file in the detail panel resized the
    docks."""
    import shutil

    long_name = "a_very_long_cutout_file_name_from_a_survey_pipeline_" * 3 + ".jpg"
    shutil.copy(cutouts / "img_000.jpg", cutouts / long_name)
    win = make_window([cutouts], size=(1280, 800))
    wait_embedded(qtbot, win)
    qtbot.wait(100)
    c = win.c

    def widths():
        return (
            win.labels_dock.width(),
            win.map.width(),
            win.gallery_dock.width(),
            win.detail_dock.width(),
        )

    c.set_current(0)
    qtbot.wait(300)
    before = widths()
    min_size = win.minimumSizeHint()
    long_row = next(r for r, it in enumerate(c.items) if it.name == long_name)
    fits_row = next(r for r, it in enumerate(c.items) if it.name.endswith(".fits"))
    for row in (long_row, fits_row, long_row, 0):
        c.set_current(row)
        qtbot.waitUntil(lambda: win.detail.last_result is not None, timeout=10000)
        qtbot.wait(150)
        assert widths() == before, c.items[row].name
        # the content never raises the window's minimum size (that resized the docks)
        assert win.minimumSizeHint() == min_size, c.items[row].name


def test_similar_thumbnails_never_overlap(qtbot, make_window, cutouts):
    """Edge 3: 'Most similar' icons overlapped (cells sized before the icons arrived)."""
    win = make_window([cutouts], size=(1280, 800))
    wait_embedded(qtbot, win)
    win.thumbs._pix.clear()  # thumbnails arrive after the list is filled (as on a big set)
    win.c.set_current(0)
    sim = win.detail.similar
    qtbot.waitUntil(lambda: sim.count() >= 3, timeout=10000)
    qtbot.wait(500)  # thumbnails arrive
    rects = [sim.visualRect(sim.indexFromItem(sim.item(i))) for i in range(sim.count())]
    for i, r in enumerate(rects):
        assert r.width() >= sim.iconSize().width(), r
        for q in rects[:i]:
            assert not r.intersects(q), (r, q)


def test_stretch_controls_say_why_they_are_off_for_colour_fits(qtbot, make_window, tmp_path):
    """Edge 3: for colour FITS the Stretch / Limits controls were greyed out with no hint."""
    from helpers import write_fits

    folder = tmp_path / "cube"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_fits(folder / "cube.fits", rng.random((3, 32, 32)).astype(np.float32), {})
    win = make_window([folder])
    qtbot.waitUntil(lambda: win.c.n == 1, timeout=20000)
    d = win.detail
    d.lupton_check.setChecked(True)
    win.c.set_current(0)
    qtbot.waitUntil(lambda: d.last_result is not None, timeout=10000)
    assert not d.stretch_combo.isEnabled() and not d.limits_combo.isEnabled()
    assert "Lupton" in d.stretch_combo.toolTip() and "Lupton" in d.limits_combo.toolTip()
    assert d.stretch_hint.isVisible() and "Lupton" in d.stretch_hint.text()
    d.lupton_check.setChecked(False)
    qtbot.waitUntil(lambda: d.stretch_combo.isEnabled(), timeout=10000)
    assert not d.stretch_hint.isVisible() and "Lupton" not in d.stretch_combo.toolTip()


def test_status_bar_says_loading_model_then_the_model(qtbot, make_window, cutouts):
    """Edge 4: the status bar said 'model: not loaded' while the model loaded."""
    win = make_window([cutouts])
    assert win.c.adapter is None and win.model_label.text() == "loading model…"
    wait_embedded(qtbot, win)
    assert "tiny" in win.model_label.text()


def test_umap_computation_shows_progress(qtbot, make_window):
    """Edge 4: 'Computing UMAP map…' sat still for a minute: now a busy bar and the time
    taken so far, and a tooltip that says why it takes long."""
    win = make_window(None)
    win.c.busy_changed.emit("Computing UMAP map…")
    assert win.busy_bar.isVisible() and "UMAP" in win.busy_label.toolTip()
    qtbot.waitUntil(lambda: win.busy_label.text().endswith("1s"), timeout=4000)
    win.c.busy_changed.emit("")
    assert not win.busy_bar.isVisible() and win.busy_label.text() == ""


def test_show_log_says_where_the_log_is_without_a_file_opener(
    qtbot, make_window, monkeypatch, tmp_path
):
    from PySide6.QtGui import QDesktopServices, QGuiApplication

    win = make_window(None)
    win.log_path = tmp_path / "logs" / "galaxy-explorer.log"
    win.log_path.parent.mkdir()
    win.log_path.write_text("x\n")
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: False))
    win.show_log()
    assert str(win.log_path) in win.statusBar().currentMessage()
    assert win.last_info is not None and str(win.log_path) in win.last_info[1]
    assert QGuiApplication.clipboard().text() == str(win.log_path)


def test_map_legend_is_not_rebuilt_per_batch_with_an_active_query(qtbot, make_window, cutouts):
    """Edge 1 (embed rate): with a query, the legend's extra 'query top k' entry made every
    refresh rebuild the whole legend (~0.3 s of GUI thread per batch)."""
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c, m = win.c, win.map
    c.set_query_text("a spiral galaxy")
    qtbot.waitUntil(lambda: c.scores is not None, timeout=10000)
    qtbot.waitUntil(lambda: any("query top" in lab.text for _, lab in m.legend.items), timeout=5000)
    labels = [id(lab) for _, lab in m.legend.items]
    for _ in range(3):
        c.predictions_changed.emit()
        m.refresh()
    assert [id(lab) for _, lab in m.legend.items] == labels
    assert any("query top" in lab.text for _, lab in m.legend.items)


def test_gallery_does_not_rerank_under_a_pressed_mouse_button(
    qtbot, make_window, cutouts, monkeypatch
):
    """Edge 1: items re-sorted under the cursor (a click or drag start hit another image)."""
    from galaxy_explorer.gui import gallery as gallery_mod

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c, g = win.c, win.gallery
    c.set_query_text("a spiral galaxy")
    qtbot.waitUntil(lambda: c.scores is not None and np.isfinite(c.scores).all(), timeout=10000)
    qtbot.wait(800)
    reranks = []
    g.model.reranked.connect(lambda: reranks.append(1))
    pressed = Qt.MouseButton.LeftButton
    monkeypatch.setattr(gallery_mod.QApplication, "mouseButtons", staticmethod(lambda: pressed))
    c.scores[:] = -c.scores  # reverses the ranking
    c.scores_changed.emit()
    qtbot.wait(1300)
    assert reranks == []
    pressed = Qt.MouseButton.NoButton  # released: the pending re-rank runs
    qtbot.waitUntil(lambda: reranks == [1], timeout=3000)
    assert [int(r) for r in g.model.order] == [int(r) for r in g.model.compute_order()]
