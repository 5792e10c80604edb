"""Rough edges of issue 14 that live in the app's state: stale query state, Propagate's
report, exports without manual labels, unreadable files in the detail view."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
from conftest import wait_embedded

from galaxy_explorer.core.export import read_csv

sys.path.insert(0, str(Path(__file__).parents[1]))
from helpers import make_cutout_folder  # noqa: E402


def _export(qtbot, win, out, rows=None):
    with qtbot.waitSignal(win.c.export_finished, timeout=20000):
        win.c.export_csv(out, rows)
    return out.read_text(encoding="utf-8")


def test_example_chips_do_not_follow_into_another_folder(qtbot, make_window, cutouts, tmp_path):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    with qtbot.waitSignal(c.scores_changed, timeout=10000):
        c.add_examples([0])
    example = c.items[0].name
    assert [n for n, _ in c.query.positive] == [example]
    assert win.query.chips.count() == 1
    assert f"+{example}" in _export(qtbot, win, tmp_path / "a.csv")

    other = make_cutout_folder(tmp_path / "other", n_fits=2, n_jpeg=2)
    win.c.open_paths([other])
    qtbot.waitUntil(lambda: c.n == 4 and not c.job_running, timeout=30000)
    assert c.query.positive == [] and not c.query.active
    assert win.query.chips.count() == 0
    text = _export(qtbot, win, tmp_path / "b.csv")
    assert f"+{example}" not in text and "# query:" not in text

    # a rescan of the same folder keeps the chips
    c.add_examples([1])
    qtbot.waitUntil(lambda: c.scores is not None, timeout=10000)
    c.reopen()
    qtbot.waitUntil(lambda: not c.job_running and c.have.all(), timeout=30000)
    assert len(c.query.positive) == 1


def test_detail_drops_query_score_after_clear(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    c.set_selection([2], "test")
    win.query.set_text("spiral galaxy")
    qtbot.waitUntil(lambda: "Query score" in win.detail.info.text(), timeout=10000)
    win.query.clear()
    qtbot.waitUntil(lambda: c.scores is None, timeout=5000)
    assert "Query score" not in win.detail.info.text()


def test_propagate_reports_examples_warns_and_shows_confidence(qtbot, make_window, tmp_path):
    folder = make_cutout_folder(tmp_path / "many", n_fits=10, n_jpeg=10)
    win = make_window([folder])
    wait_embedded(qtbot, win)
    c = win.c
    c.set_manual_label([0, 1, 2], "round")
    c.set_manual_label([3], "armed")
    with qtbot.waitSignal(c.propagated, timeout=20000) as blocker:
        c.propagate()
    res = blocker.args[0]
    assert res.examples == {"armed": 1, "round": 3}
    assert len(res.rows) == 16 and len(res.confidence) == 16
    # the window says how many examples, and warns about the class with one
    assert "from 4 examples (armed 1, round 3)" in win.statusBar().currentMessage()
    title, message = win.last_error
    assert "Few examples" in title and "'armed' (1)" in message
    # each suggestion's confidence is shown where the image is shown
    row = int(res.rows[0])
    name, conf = c.suggestion(row)
    assert conf == np.float32(res.confidence[0]).item()
    c.set_selection([row], "test")
    qtbot.waitUntil(lambda: "Suggested" in win.detail.info.text(), timeout=5000)
    assert f"{name}</i> ({conf:.2f})" in win.detail.info.text()
    assert f"suggested: {name} ({conf:.2f})" in win.gallery.model._tooltip(row)


def test_export_all_without_manual_labels_has_a_label_column(qtbot, make_window, cutouts, tmp_path):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    win.c.set_label_defs([], None)  # no zero-shot classes either
    out = tmp_path / "all.csv"
    _export(qtbot, win, out)
    _, rows = read_csv(out)
    assert len(rows) == 8 and "label" in rows[0] and all(r["label"] == "" for r in rows)


def test_unreadable_file_in_detail_logs_no_traceback(qtbot, make_window, cutouts, caplog):
    bad = cutouts / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    win = make_window([cutouts])
    qtbot.waitUntil(lambda: win.c.n == 9 and not win.c.job_running, timeout=30000)
    row = next(r for r, it in enumerate(win.c.items) if it.path.name == "broken.fits")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        with qtbot.waitSignal(win.c.detail_ready, timeout=10000) as blocker:
            win.c.request_detail(row, win.detail.render_settings())
    assert blocker.args[0] == -1 and blocker.args[1]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert "Traceback" not in caplog.text


def test_outside_example_file_is_cached_like_any_image(qtbot, make_window, cutouts, tmp_path):
    from helpers import write_jpeg

    from galaxy_explorer.core.cache import EmbeddingStore
    from galaxy_explorer.core.catalog import scan

    outside = write_jpeg(tmp_path / "outside.jpg", seed=77)
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    c.add_example_file(outside)
    qtbot.waitUntil(lambda: len(c.query.positive) == 1 and c.scores is not None, timeout=15000)
    a, s = c.adapter, c.session
    store = EmbeddingStore(s.cache_dir, a.model_key, s.render.key(), a.dim)
    try:
        vec, found = store.get([scan([outside]).items[0].sha256])
    finally:
        store.close()
    assert found[0]
    np.testing.assert_allclose(vec[0], c.query.positive[0][1], atol=1e-3)


def test_pca_map_reads_the_vectors_off_the_gui_thread_without_a_copy(
    qtbot, make_window, cutouts, monkeypatch
):
    """The quick PCA map gets the state's own matrix on a worker thread (no copy of N rows)."""
    import threading

    from galaxy_explorer.core import projection

    calls = []
    real = projection.pca_apply

    def spy(basis, emb, rows=None):
        calls.append((threading.current_thread() is threading.main_thread(), emb))
        return real(basis, emb, rows)

    monkeypatch.setattr(projection, "pca_apply", spy)
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    c = win.c
    assert c.have.all()
    qtbot.waitUntil(lambda: any(e is c.vectors for _, e in calls), timeout=10000)
    assert calls and not any(on_gui for on_gui, _ in calls)
