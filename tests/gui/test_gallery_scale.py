"""Gallery work on the GUI thread stays proportional to what is on screen, not to N."""

from __future__ import annotations

from conftest import wait_embedded
from PySide6.QtCore import QEvent, QObject


class _Paints(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.n += 1
        return False


def test_label_change_repaints_visible_cells_without_touching_every_row(
    qtbot, make_window, cutouts
):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g = win.gallery
    changed: list[tuple[int, int]] = []
    g.model.dataChanged.connect(lambda a, b, roles=(): changed.append((a.row(), b.row())))
    paints = _Paints()
    g.view.viewport().installEventFilter(paints)
    qtbot.wait(50)
    paints.n = 0
    g.model.refresh_visible()  # what a label or prediction change calls
    qtbot.waitUntil(lambda: paints.n > 0, timeout=5000)  # the visible cells are repainted
    # and no change notice spans rows: Qt's icon-mode list walks every row of such a range
    assert not [r for r in changed if r[1] - r[0] + 1 == g.model.rowCount() > 1]


class _FakeItem:
    __slots__ = ("name", "path", "sha256")

    def __init__(self, i: int) -> None:
        self.name = f"g{i:07d}.png"
        self.path = f"/nowhere/g{i:07d}.png"
        self.sha256 = f"{i:064x}"


def _million_row_gallery(qtbot, n=1_000_000):
    """A real controller and gallery over n rows (no files: items are plain values)."""
    import numpy as np

    from galaxy_explorer.gui.controller import Controller
    from galaxy_explorer.gui.gallery import GalleryView

    c = Controller(umap=False)
    g = GalleryView(c, None)
    qtbot.addWidget(g)
    g.resize(900, 700)
    g.show()
    # the open worker builds these; here they are given directly (sorted names = row order)
    items = [_FakeItem(0)] * n
    c.state.open(items, sha_rows={}, name_order=np.arange(n, dtype=np.int64))
    return c, g


def test_a_million_rows_are_shown_one_page_at_a_time_sorted_on_a_worker(qtbot, monkeypatch):
    """1M rows: the view gets one page of cells; sorting runs on a worker thread, is
    correct, and keeps the selection and the current item."""
    import threading

    import numpy as np

    import galaxy_explorer.gui.gallery as gallery

    threads: list[str] = []
    real = gallery.display_order

    def spy(inputs, *a, **k):
        if inputs.n == n:  # not another test's window closing meanwhile
            threads.append(threading.current_thread().name)
        return real(inputs, *a, **k)

    n = 1_000_000
    monkeypatch.setattr(gallery, "display_order", spy)
    c, g = _million_row_gallery(qtbot, n)
    m = g.model
    qtbot.waitUntil(lambda: len(m.order) == n, timeout=20000)
    assert threads and threading.main_thread().name not in threads  # sorted off the GUI thread
    assert m.rowCount() == m.page_size < n and m.pages == -(-n // m.page_size)
    assert g.view.model().rowCount() == m.page_size  # what Qt lays out: a page, not N
    # page through: the second page starts where the first ended
    g.turn_page(1)
    assert m.page == 1 and m.index(0).data(gallery.RowRole) == m.page_size
    g.turn_page(-1)
    # select two rows and make one current, then sort by score: a new order from the worker
    rng = np.random.default_rng(1)
    scores = rng.random(n).astype(np.float32)
    keep = [int(m.order[3]), int(m.order[10])]
    c.set_selection(keep, source="map")
    c.set_current(keep[0])
    g.set_sort("score")
    threads.clear()
    c.state.scores = scores
    c.state.scores_changed.emit()
    expected = np.argsort(-scores, kind="stable")
    qtbot.waitUntil(lambda: np.array_equal(m.order, expected), timeout=20000)
    assert threads and threading.main_thread().name not in threads
    assert list(c.selection) == sorted(keep)  # the selection survives the re-sort
    assert c.current == keep[0]
    for r in keep:
        assert m.position_of(r) == int(np.flatnonzero(expected == r)[0])
    # the map asks for a row on a far page: the gallery turns to it and shows it selected
    far = int(expected[n - 5])
    c.set_selection([far], source="map")
    assert m.page == m.pages - 1
    assert g.selected_rows() == [far]
    c.shutdown()


def test_the_current_item_stays_current_when_the_sort_changes(qtbot, make_window, cutouts):
    from galaxy_explorer.gui.gallery import RowRole

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g = win.gallery
    g.set_sort("name")
    row = int(g.model.order[len(g.model.order) - 1])
    g.view.setCurrentIndex(g.model.index(len(g.model.order) - 1))
    assert win.c.current == row
    g.set_sort("confidence")  # a new order: a model reset
    assert g.model.sort == "confidence"
    assert g.view.currentIndex().isValid()
    assert g.view.currentIndex().data(RowRole) == row
    assert win.c.current == row


def test_pages_of_a_small_gallery_turn_and_follow_the_map(qtbot, make_window, cutouts, monkeypatch):
    """With a page smaller than the catalogue, the view holds one page; turning pages and
    a selection made elsewhere show the right cells."""
    from galaxy_explorer.gui.gallery import GalleryModel, RowRole

    monkeypatch.setattr(GalleryModel, "page_size", 3)  # this window's model pages by 3
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g = win.gallery
    g.set_sort("name")
    m = g.model
    n = len(m.order)
    assert n > 3 and m.rowCount() == 3 and m.pages == -(-n // 3)
    assert g.next_page.isVisibleTo(g) and not g.prev_page.isEnabled()
    g.turn_page(1)
    assert [m.index(i).data(RowRole) for i in range(m.rowCount())] == list(m.order[3:6])
    assert g.page_label.text().startswith("4–")
    last = int(m.order[n - 1])
    win.c.set_selection([last], source="map")
    assert m.page == m.pages - 1 and g.selected_rows() == [last]
    g.scroll_to_row(int(m.order[0]))
    assert m.page == 0
    # Page Down on the page's last cell turns the page; Page Up on the first turns back
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    g.view.setFocus()
    g.view.setCurrentIndex(m.index(2))
    QTest.keyClick(g.view, Qt.Key.Key_PageDown)
    assert m.page == 1 and g.view.currentIndex().data(RowRole) == int(m.order[3])
    QTest.keyClick(g.view, Qt.Key.Key_PageUp)
    assert m.page == 0 and g.view.currentIndex().data(RowRole) == int(m.order[2])
    # selecting in the grid selects the page's rows
    g.view.selectionModel().select(m.index(1), g.view.selectionModel().SelectionFlag.ClearAndSelect)
    assert list(win.c.selection) == [int(m.order[1])]
