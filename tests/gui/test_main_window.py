"""The real main window driven with the tiny test model (offscreen)."""

from __future__ import annotations

import json

import numpy as np
from conftest import wait_embedded, wait_predictions  # noqa: F401  (tests/gui/conftest.py)
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from galaxy_explorer.core import search
from galaxy_explorer.gui.controller import LabelDef


def _core_vectors(win):
    """Vectors per row straight from the core session (independent of the GUI's copy)."""
    items, vecs = win.c.session.embeddings()
    by_sha = {it.sha256: v for it, v in zip(items, vecs, strict=True)}
    return np.stack([by_sha[it.sha256] for it in win.c.items])


def test_open_folder_embeds_and_maps_every_image(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    assert c.n == 8 and int(c.have.sum()) == 8
    assert win.map.point_count == 8
    assert sorted(win.map.drawn_rows()) == list(range(8))
    assert len(win.gallery.displayed_rows()) == 8
    assert "tiny" in win.model_label.text() and "cpu" in win.model_label.text()
    wait_predictions(qtbot, win)
    assert win.last_error is None


def test_query_orders_gallery_like_core_ranking(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    qtbot.keyClicks(win.query.edit, "spiral galaxy with arms")
    qtbot.waitUntil(
        lambda: win.c.scores is not None and win.query.state.text() == "ranked", timeout=10000
    )
    emb = _core_vectors(win)
    text = win.c.adapter.embed_texts(["spiral galaxy with arms"])
    scores = search.combined_query(emb, text_vecs=text)
    expected = [int(i) for i in search.top_k(scores, len(scores))]
    assert win.gallery.displayed_rows() == expected
    np.testing.assert_allclose(win.c.scores, scores, rtol=1e-5, atol=1e-6)
    # Esc in the search box clears the query (and not the selection); name order is back
    win.c.set_selection([1, 2], "test")
    qtbot.keyClick(win.query.edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: win.c.scores is None, timeout=5000)
    assert win.query.edit.text() == "" and list(win.c.selection) == [1, 2]
    names = [win.c.items[r].name for r in win.gallery.displayed_rows()]
    assert names == sorted(names)


def test_changing_labels_updates_predictions(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    wait_predictions(qtbot, win)
    defs = [
        LabelDef("round", "round smooth galaxy"),
        LabelDef("armed", "galaxy with arms"),
        LabelDef("star", ""),
    ]
    with qtbot.waitSignal(win.c.predictions_changed, timeout=10000):
        win.labels.set_labels(defs, ["{}"])
    qtbot.waitUntil(lambda: win.c.probs is not None and win.c.probs.shape == (8, 3), timeout=10000)
    emb = _core_vectors(win)
    lv = win.c.adapter.embed_labels(["round smooth galaxy", "galaxy with arms", "star"], ["{}"])
    expected = search.zero_shot(emb, lv, win.c.adapter.logit_scale)
    np.testing.assert_allclose(win.c.probs, expected, atol=1e-5)
    assert [win.c.predicted_label(r) for r in range(8)] == [
        ["round", "armed", "star"][i] for i in expected.argmax(1)
    ]
    # the panel shows the new classes with per-label counts, and the bins follow
    assert win.labels.table.rowCount() == 3
    counts = [int(win.labels.table.item(i, 2).text()) for i in range(3)]
    assert sum(counts) == 8
    assert [b.label for b in win.labels.bins] == ["round", "armed", "star", None]
    # a threshold above every confidence makes everything uncertain
    win.labels.threshold.setValue(1.0)
    assert win.c.predicted_counts()["uncertain"] == 8


def _drop(widget, mime):
    pos = QPointF(widget.rect().center())
    enter = QDragEnterEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        pos,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, drop)
    return drop


def test_drop_on_bin_labels_and_survives_reopen(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g = win.gallery
    rows = g.displayed_rows()[:3]
    indexes = [g.model.index(g.model.position_of(r)) for r in rows]
    mime = g.model.mimeData(indexes)
    target = win.labels.bin_for("elliptical")
    drop = _drop(target, mime)
    assert drop.isAccepted()
    shas = [win.c.items[r].sha256 for r in rows]
    assert [win.c.session.labels.get(s) for s in shas] == ["elliptical"] * 3
    assert win.c.manual_counts() == {"elliptical": 3}
    assert "(3)" in target.text()
    # keys 1-9 label the selection; Ctrl+Z / Ctrl+Shift+Z undo and redo
    other = [r for r in range(8) if r not in rows][0]
    win.c.set_selection([other], "test")
    win.activateWindow()
    qtbot.keyClick(win.gallery.view, Qt.Key.Key_1)
    assert win.c.manual_label(other) == win.c.label_names()[0]
    qtbot.keyClick(win.gallery.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.c.manual_label(other) is None
    qtbot.keyClick(
        win.gallery.view,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert win.c.manual_label(other) == win.c.label_names()[0]
    win.close()

    again = make_window([cutouts])
    qtbot.waitUntil(lambda: again.c.n == 8, timeout=20000)
    by_sha = {it.sha256: r for r, it in enumerate(again.c.items)}
    assert [again.c.manual_label(by_sha[s]) for s in shas] == ["elliptical"] * 3
    assert again.c.manual_label(by_sha[win.c.items[other].sha256]) == again.c.label_names()[0]
    wait_embedded(qtbot, again)


def test_lasso_and_box_select_then_export_selection(qtbot, make_window, cutouts, tmp_path):
    from galaxy_explorer.core.export import read_csv

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    wait_predictions(qtbot, win)
    m = win.map
    xy = win.c.coords
    # box around the points left of the median x
    med = float(np.median(xy[:, 0]))
    lo, hi = np.nanmin(xy, axis=0) - 1, np.nanmax(xy, axis=0) + 1
    box_rows = m.select_rect(QRectF(QPointF(lo[0], lo[1]), QPointF(med + 1e-6, hi[1])))
    assert sorted(win.c.selection) == sorted(np.flatnonzero(xy[:, 0] <= med + 1e-6))
    assert len(box_rows) >= 4
    # a lasso (triangle) drawn through the viewbox's drag signal, as the mouse does
    tri = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [lo[0], hi[1]]])
    m.set_mode("lasso")
    m.vb.sigSelectPolygon.emit(tri, Qt.KeyboardModifier.NoModifier)
    from galaxy_explorer.gui.scatter import points_in_polygon

    expected = np.flatnonzero(points_in_polygon(xy, tri))
    assert list(win.c.selection) == list(expected)
    assert len(expected) > 0
    # the gallery shows the same selection
    assert win.gallery.selected_rows() == list(expected)
    out = tmp_path / "sel.csv"
    with qtbot.waitSignal(win.c.export_finished, timeout=10000):
        win.c.export_csv(out, win.c.selection)
    meta, rows = read_csv(out)
    assert [r["path"] for r in rows] == [str(win.c.items[i].path) for i in expected]
    # the same provenance block as the command line writes
    assert meta["model"] == win.c.adapter.spec and meta["model_revision"] == win.c.adapter.revision
    assert meta["render"] == win.c.session.render.key()
    assert json.loads(meta["labels"]) == win.c.label_names()
    assert json.loads(meta["prompts"]) == win.c.templates
    assert meta["command"] == "gui export"
    assert all(r["predicted_label"] for r in rows)
    assert win.last_error is None


def test_cancel_running_job(qtbot, make_window, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from helpers import make_cutout_folder

    folder = make_cutout_folder(tmp_path / "many", n_fits=40, n_jpeg=0)
    win = make_window([folder], batch_size=2)
    qtbot.waitUntil(lambda: win.c.have.any(), timeout=20000)
    with qtbot.waitSignal(win.c.job_finished, timeout=10000) as blocker:
        win.cancel_button.click()
    assert blocker.args == ["cancelled"]
    assert 0 < int(win.c.have.sum()) < 40
    assert win.cancel_button.isHidden()
    qtbot.waitUntil(lambda: not win.c.jobs.pending(), timeout=10000)


def test_no_sample_catalogue_opens_empty_window_with_hint(qtbot, make_window, monkeypatch):
    import galaxy_explorer.gui.app as app_mod

    monkeypatch.setattr(app_mod, "sample_catalogue", lambda: None)
    win = make_window(None)
    assert win.c.n == 0 and not win.c.job_running
    assert "Open Folder" in win.map.hint.textItem.toPlainText()


def test_missing_folder_reports_error_not_traceback(qtbot, make_window, tmp_path):
    win = make_window([tmp_path / "nope"])
    assert win.last_error is not None
    assert "no such file or directory" in win.last_error[1]
    assert "Traceback" not in win.statusBar().currentMessage()


def test_reopen_shows_cached_vectors_before_the_model_loads(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    win.close()
    again = make_window([cutouts])
    seen = []
    again.c.model_info.connect(lambda _text: seen.append(int(again.c.have.sum())))
    wait_embedded(qtbot, again)
    assert seen == [8]  # every point was known before the model had loaded
    assert again.map.point_count == 8
    np.testing.assert_allclose(again.c.vectors, _core_vectors(again), atol=1e-6)


def test_unloadable_model_is_reported_and_images_still_listed(
    qtbot, make_window, cutouts, tmp_path
):
    from PySide6.QtCore import QSettings

    from galaxy_explorer.gui.app import create_window

    bad = tmp_path / "not_a_model"
    bad.mkdir()
    win = create_window(
        [cutouts],
        model=str(bad),
        cache_dir=tmp_path / "c",
        settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
        umap=False,
    )
    win.quiet_errors = True
    win.show()
    try:
        with qtbot.waitSignal(win.c.job_finished, timeout=20000) as blocker:
            pass
        assert blocker.args == ["failed"]
        assert win.last_error[0] == "Could not load the model"
        assert "not a model folder" in win.last_error[1]
        assert len(win.gallery.displayed_rows()) == 8  # the catalogue is still browsable
        assert "Nothing could be embedded" in win.map.hint.textItem.toPlainText()
    finally:
        win.close()


def test_switching_model_reembeds(qtbot, make_window, cutouts, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from helpers import make_tiny_clip

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    other = make_tiny_clip(tmp_path / "other_clip", seed=1, projection_dim=8)
    win.set_model(str(other))
    qtbot.waitUntil(
        lambda: (
            win.c.vectors is not None
            and win.c.vectors.shape[1] == 8
            and int(win.c.have.sum()) == 8
            and not win.c.job_running
        ),
        timeout=30000,
    )
    assert win.settings.value("model") == str(other)
    assert "other_clip" in win.model_label.text()


def test_renaming_a_class_renames_its_manual_labels(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    c.set_manual_label([0, 1], "spiral")
    row = c.label_names().index("spiral")
    win.labels.table.item(row, 0).setText("grand design")
    win.labels.apply()
    assert c.label_names()[row] == "grand design"
    assert [c.manual_label(0), c.manual_label(1)] == ["grand design", "grand design"]
    assert win.labels.bin_for("grand design") is not None
    c.undo_labels()
    assert c.manual_label(0) == "spiral"


def test_detail_counts_cube_planes_from_the_header(qtbot, make_window, tmp_path, monkeypatch):
    """The detail panel learns a cube's band count from its header: the data are not read
    whole just to count planes (a big cube cost a full read per click)."""
    import numpy as np
    from helpers import galaxy_array, write_fits

    from galaxy_explorer.core import imaging

    folder = tmp_path / "cubes"
    folder.mkdir()
    write_fits(folder / "cube.fits", np.stack([galaxy_array(48, seed=s) for s in range(3)]))
    calls = []
    monkeypatch.setattr(
        imaging,
        "load_fits_data",
        lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(AssertionError),
    )
    win = make_window([folder])
    wait_embedded(qtbot, win)
    win.c.set_current(0)
    qtbot.waitUntil(lambda: win.detail.planes_label.text() == "3 bands", timeout=20000)
    assert calls == []
