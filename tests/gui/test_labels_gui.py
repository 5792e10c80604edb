"""Manual labels in the window: incremental updates and other windows' changes."""

from __future__ import annotations

from galaxy_explorer.core.labels import LabelStore


def test_label_change_is_incremental_and_other_writers_show_up(qtbot, make_window, cutouts):
    win = make_window([cutouts])
    qtbot.waitUntil(lambda: win.c.n == 8, timeout=20000)
    c = win.c
    assert c.manual_counts() == {}  # builds the per-row cache once

    def no_full_read():
        raise AssertionError("all() read on a label change: O(N) on the GUI thread")

    c.label_store.all = no_full_read
    c.set_manual_label([0, 1], "spiral")
    assert c.manual_label(0) == "spiral" and c.manual_counts() == {"spiral": 2}
    assert c.undo_labels() and c.manual_label(0) is None and c.manual_counts() == {}
    assert c.redo_labels() and c.manual_counts() == {"spiral": 2}

    # another window (or a script) labels the same catalogue: this window picks it up
    other = LabelStore(c.label_store.path)
    other.set([c.items[5].sha256], "merger")
    other.set([c.items[0].sha256], None)
    with qtbot.waitSignal(c.labels_changed, timeout=10000):
        pass
    assert c.manual_label(5) == "merger" and c.manual_label(0) is None
    assert c.manual_counts() == {"spiral": 1, "merger": 1}
    win.close()
