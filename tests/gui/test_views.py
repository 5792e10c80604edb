"""Views in detail: map clicks / hover, detail stretch, gallery menu, propagate, drops, settings."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import wait_embedded, wait_predictions
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QMenu


def _drop(widget, mime, modifiers=Qt.KeyboardModifier.NoModifier):
    pos = QPointF(widget.rect().center())
    enter = QDragEnterEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, modifiers
    )
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, modifiers)
    QApplication.sendEvent(widget, drop)
    return enter, drop


def _fits_row(c):
    return next(r for r in range(c.n) if c.items[r].name.endswith(".fits"))


def test_map_click_selects_and_detail_renders(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    row = _fits_row(c)
    x, y = win.map.row_position(row)
    win.map.vb.sigClickedAt.emit(QPointF(x, y), Qt.KeyboardModifier.NoModifier)
    assert list(c.selection) == [row] and c.current == row
    assert c.items[row].name in win.detail.title.text()
    qtbot.waitUntil(lambda: win.detail.last_result is not None, timeout=10000)
    assert win.detail.image.pixmap() is not None and not win.detail.image.pixmap().isNull()
    assert "RA 150.0" in win.detail.info.text()
    assert win.detail.header.toPlainText()
    # single-band FITS: stretch controls are live and change the rendering
    assert win.detail.stretch_combo.isEnabled()
    first = win.detail.last_result["rgb"].copy()
    win.detail.stretch_combo.setCurrentText("linear")
    win.detail.limits_combo.setCurrentText("minmax")
    qtbot.waitUntil(
        lambda: (
            win.detail.last_result is not None
            and not np.array_equal(win.detail.last_result["rgb"], first)
        ),
        timeout=10000,
    )
    # the top-similar strip lists neighbours; clicking one moves the detail there
    assert win.detail.similar.count() == 7
    item = win.detail.similar.item(0)
    target = int(item.data(Qt.ItemDataRole.UserRole))
    win.detail.similar.itemClicked.emit(item)
    qtbot.waitUntil(lambda: c.current == target, timeout=2000)
    # shift-click adds to the selection
    other = c.current
    x2, y2 = win.map.row_position(row)
    win.map.vb.sigClickedAt.emit(QPointF(x2, y2), Qt.KeyboardModifier.ShiftModifier)
    assert set(c.selection) == {row, other}
    # right click on an unselected point selects it and offers the gallery's actions
    third = next(r for r in range(c.n) if r not in (row, other))
    x3, y3 = win.map.row_position(third)
    with qtbot.waitSignal(win.map.context_menu_requested, timeout=1000):
        win.map.vb.sigContextMenu.emit(
            QPointF(x3, y3), win.map.mapToGlobal(win.map.rect().center())
        )
    assert list(c.selection) == [third]
    menus = [m for m in win.gallery.findChildren(QMenu) if m.isVisible()]
    assert any("Find similar" in [a.text() for a in m.actions()] for m in menus)
    for m in menus:
        m.close()


def test_map_hover_shows_thumbnail_card(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    m = win.map
    row = int(m.drawn_rows()[0])
    x, y = m.row_position(row)
    scene_pos = m.vb.mapViewToScene(QPointF(x, y))
    m._on_mouse_moved((scene_pos,))
    assert m._tip.isVisible()
    assert win.c.items[row].name in m._tip_text.text()
    qtbot.waitUntil(
        lambda: m._tip_image.pixmap() is not None and not m._tip_image.pixmap().isNull(),
        timeout=10000,
    )


def test_gallery_context_menu_and_lazy_thumbnails(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g = win.gallery
    # thumbnails arrive off-thread for the painted cells
    idx = g.model.index(0)
    qtbot.waitUntil(
        lambda: g.model.data(idx, Qt.ItemDataRole.DecorationRole) is not None, timeout=10000
    )
    row = g.model.row_at(2)
    win.c.set_selection([row], "test")
    assert g.selected_rows() == [row]
    menu = g.build_context_menu()
    texts = [a.text() for a in menu.actions()]
    assert {"Find similar", "Open file location", "Copy path", "Label as…"} <= set(texts)
    next(a for a in menu.actions() if a.text() == "Copy path").trigger()
    assert QGuiApplication.clipboard().text() == str(win.c.items[row].path)
    label_menu = next(a for a in menu.actions() if a.text() == "Label as…").menu()
    label_menu.actions()[1].trigger()
    assert win.c.manual_label(row) == win.c.label_names()[1]
    next(a for a in menu.actions() if a.text() == "Find similar").trigger()
    qtbot.waitUntil(lambda: win.c.scores is not None, timeout=10000)
    assert g.displayed_rows()[0] == row  # an image is most similar to itself
    assert win.query.chips.count() == 1
    # sorting by name and by confidence
    g.set_sort("name")
    names = [win.c.items[r].name for r in g.displayed_rows()]
    assert names == sorted(names)
    wait_predictions(qtbot, win)
    g.set_sort("confidence")
    conf = [win.c.confidence[r] for r in g.displayed_rows()]
    assert conf == sorted(conf, reverse=True)
    # keyboard navigation moves the current item (and the detail view) along the grid
    g.view.setFocus()
    g.view.setCurrentIndex(g.model.index(0))
    qtbot.keyClick(g.view, Qt.Key.Key_Right)
    assert win.c.current == g.model.row_at(1)
    qtbot.keyClick(g.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert sorted(win.c.selection) == sorted([g.model.row_at(1), g.model.row_at(2)])
    # "Map selection" shows only what is selected
    win.c.set_selection([0, 1, 2], "map")
    g.set_show("selection")
    assert sorted(g.displayed_rows()) == [0, 1, 2]


def test_query_box_accepts_dropped_thumbnails_as_examples(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g = win.gallery
    mime = g.model.mimeData([g.model.index(g.model.position_of(3))])
    _drop(win.query, mime)
    qtbot.waitUntil(lambda: win.c.scores is not None, timeout=10000)
    assert [n for n, _ in win.c.query.positive] == [win.c.items[3].name]
    assert g.displayed_rows()[0] == 3
    mime = g.model.mimeData([g.model.index(g.model.position_of(5))])
    _drop(win.query, mime, Qt.KeyboardModifier.AltModifier)  # Alt: negative example
    assert [n for n, _ in win.c.query.negative] == [win.c.items[5].name]
    from galaxy_explorer.core import search

    v = win.c.vectors
    expected = search.combined_query(v, positive=v[3], negative=v[5])
    qtbot.waitUntil(lambda: np.allclose(win.c.scores, expected, atol=1e-5), timeout=10000)
    assert g.displayed_rows() == [int(i) for i in search.top_k(expected, 8)]
    # an image file from outside the catalogue is embedded and used as an example
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from helpers import write_jpeg

    outside = write_jpeg(cutouts.parent / "outside.jpg", seed=999)
    win.query.clear()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(outside))])
    _drop(win.query, mime)
    qtbot.waitUntil(lambda: win.c.scores is not None, timeout=10000)
    assert [n for n, _ in win.c.query.positive] == ["outside.jpg"]
    from galaxy_explorer.core.imaging import load_rgb

    vec = win.c.adapter.embed_images([load_rgb(outside)])[0]
    np.testing.assert_allclose(win.c.scores, search.combined_query(v, positive=vec), atol=1e-4)


def test_propagate_suggests_labels_distinct_from_manual(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    fits = [r for r in range(c.n) if c.items[r].name.endswith(".fits")]
    jpgs = [r for r in range(c.n) if c.items[r].name.endswith(".jpg")]
    c.set_manual_label(fits[:2], "elliptical")
    c.set_manual_label(jpgs[:2], "spiral")
    with qtbot.waitSignal(c.suggestions_changed, timeout=15000):
        win.labels.propagate_button.click()
    rest = fits[2:] + jpgs[2:]
    assert all(c.suggestion(r) is not None for r in rest)
    assert all(c.suggestion(r) is None for r in fits[:2] + jpgs[:2])
    assert all(c.manual_label(r) is None for r in rest)  # suggestions are not labels
    c.set_color_mode("manual")
    qtbot.wait(20)
    assert win.map.sugg_cloud.point_count() == len(rest)
    # accepting turns them into manual labels (undoable)
    c.accept_suggestions(rest)
    assert all(c.manual_label(r) in ("elliptical", "spiral") for r in rest)
    assert all(c.suggestion(r) is None for r in rest)


def test_drop_folder_on_window_adds_images(qtbot, make_window, cutouts, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from helpers import write_jpeg

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(3):
        write_jpeg(extra / f"new_{i}.jpg", seed=500 + i)
    win.query.set_text("round galaxy")
    qtbot.waitUntil(lambda: win.c.scores is not None, timeout=10000)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(extra))])
    enter, drop = _drop(win, mime)
    assert enter.isAccepted()
    qtbot.waitUntil(lambda: win.c.n == 11, timeout=20000)
    wait_embedded(qtbot, win)
    assert win.map.point_count == 11
    # the query survives the rescan and covers the new images too
    qtbot.waitUntil(
        lambda: win.c.scores is not None and np.isfinite(win.c.scores).all(), timeout=10000
    )
    assert win.c.query.text == "round galaxy" and len(win.c.scores) == 11


def test_settings_are_remembered(qtbot, make_window, cutouts):
    from galaxy_explorer.gui.controller import LabelDef

    win = make_window([cutouts])
    win.labels.set_labels([LabelDef("ring", "ring galaxy"), LabelDef("blob", "")], ["{}"])
    win.labels.threshold.setValue(0.4)
    win.detail.stretch_combo.setCurrentText("sqrt")
    win.detail.limits_combo.setCurrentText("zscale")
    win.resize(1234, 777)
    win.close()
    again = make_window([cutouts], size=None)
    assert again.c.label_names() == ["ring", "blob"]
    assert again.c.templates == ["{}"]
    assert abs(again.c.threshold - 0.4) < 1e-9
    assert again.detail.stretch_combo.currentText() == "sqrt"
    assert again.detail.limits_combo.currentText() == "zscale"
    assert again.settings.value("geometry") is not None  # offscreen clamps the size itself
    assert again.settings.value("window_state") is not None
    assert win.settings.value("last_folder") == str(cutouts.resolve())


def _mouse(widget, kind, pos, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent

    types = {
        "press": QEvent.Type.MouseButtonPress,
        "move": QEvent.Type.MouseMove,
        "release": QEvent.Type.MouseButtonRelease,
    }
    button = Qt.MouseButton.LeftButton if kind != "move" else Qt.MouseButton.NoButton
    ev = QMouseEvent(
        types[kind], QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers
    )
    QApplication.sendEvent(widget, ev)


def test_lasso_drawn_with_the_mouse_selects_points(qtbot, make_window, cutouts):
    """A real press-move-release through pyqtgraph's scene, in lasso mode."""
    from galaxy_explorer.gui.scatter import points_in_polygon

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    m = win.map
    m.fit()
    qtbot.wait(50)
    view = m.plot.viewport()
    m.set_mode("lasso")
    # a lasso round the right part of the plot (the legend sits top-left), in widget pixels
    w, h = view.width(), view.height()
    path = [(0.45, 0.03), (0.98, 0.03), (0.98, 0.97), (0.45, 0.97), (0.45, 0.08)]
    pts = [QPointF(w * x, h * y).toPoint() for x, y in path]
    left = Qt.MouseButton.LeftButton
    _mouse(view, "press", pts[0], left)
    for a, b in zip(pts, pts[1:], strict=False):
        for t in np.linspace(0, 1, 6)[1:]:
            p = QPointF(a.x() + (b.x() - a.x()) * t, a.y() + (b.y() - a.y()) * t).toPoint()
            qtbot.wait(25)  # pyqtgraph drops mouse moves that come too fast
            _mouse(view, "move", p, left)
    _mouse(view, "release", pts[-1], Qt.MouseButton.NoButton)
    poly = np.array(
        [
            [
                m.vb.mapSceneToView(m.plot.mapToScene(p)).x(),
                m.vb.mapSceneToView(m.plot.mapToScene(p)).y(),
            ]
            for p in pts
        ]
    )
    expected = np.flatnonzero(points_in_polygon(win.c.coords, poly))
    assert len(expected) > 0
    assert set(win.c.selection) == set(expected)
    # File ▸ Export Selection… writes exactly those rows
    from galaxy_explorer.core.export import read_csv
    from galaxy_explorer.gui import main_window

    out = win.settings.fileName() + ".csv"
    monkey = pytest.MonkeyPatch()
    monkey.setattr(
        main_window.QFileDialog,
        "getSaveFileName",
        staticmethod(lambda *a, **k: (out, "CSV files (*.csv)")),
    )
    try:
        with qtbot.waitSignal(win.c.export_finished, timeout=10000):
            win.export_sel_action.trigger()
    finally:
        monkey.undo()
    _, rows = read_csv(out)
    assert sorted(r["path"] for r in rows) == sorted(str(win.c.items[i].path) for i in expected)


def test_default_labels_resource_is_valid():
    import json

    from galaxy_explorer.gui.controller import load_default_labels, resources_dir

    data = json.loads((resources_dir() / "default_labels.json").read_text())
    defs, templates = load_default_labels()
    assert [d.name for d in defs] == [d["name"] for d in data["labels"]]
    assert 5 <= len(defs) <= 9  # keys 1-9 reach every default class
    assert len({d.name for d in defs}) == len(defs)
    assert all("{}" in t for t in templates)
