"""The gallery at 1M: sorting by manual label and by catalogue column on a worker, and a
selection that spans pages (map, select all, Ctrl/Shift clicks, labels, drags)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import wait_embedded
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_gallery_scale import _million_row_gallery

N = 1_000_000


def _spy_threads(monkeypatch, n):
    import galaxy_explorer.gui.gallery as gallery

    threads: list[str] = []
    real = gallery.display_order

    def spy(inputs, *a, **k):
        if inputs.n == n:
            threads.append(threading.current_thread().name)
        return real(inputs, *a, **k)

    monkeypatch.setattr(gallery, "display_order", spy)
    return threads


def _click(qtbot, g, pos, mods=Qt.KeyboardModifier.NoModifier):
    """Click display position ``pos`` (on the page shown) once the view has laid it out."""
    v, m = g.view, g.model
    idx = m.view_index(pos)
    assert idx.isValid()
    qtbot.waitUntil(lambda: v.indexAt(v.visualRect(idx).center()) == idx, timeout=10000)
    QTest.mouseClick(v.viewport(), Qt.MouseButton.LeftButton, mods, v.visualRect(idx).center())


def _settled(qtbot, g, n):
    qtbot.waitUntil(lambda: len(g.model.order) == n and not g.model.pending_sort, timeout=30000)


def test_a_million_rows_sort_by_manual_label_on_a_worker(qtbot, monkeypatch):
    threads = _spy_threads(monkeypatch, N)
    c, g = _million_row_gallery(qtbot, N)
    m = g.model
    _settled(qtbot, g, N)
    names = c.label_names()
    rng = np.random.default_rng(0)
    pick = rng.integers(0, 4, N)
    labels = [names[1], "zebra", names[0], None]
    manual = [labels[i] for i in pick.tolist()]
    c.state.manual = manual
    c.state.manual_counts = {lab: int((pick == i).sum()) for i, lab in enumerate(labels) if lab}
    threads.clear()
    g.set_sort("label")
    # classes in their order, other labels after them, unlabelled last; ties in name order
    group = np.array([1, 2, 0, 3])[pick]
    expected = np.argsort(group, kind="stable")
    qtbot.waitUntil(lambda: np.array_equal(m.order, expected), timeout=30000)
    assert threads and threading.main_thread().name not in threads  # sorted off the GUI
    # a label change re-sorts in place (coalesced), still on the worker
    threads.clear()
    row = int(np.flatnonzero(pick == 3)[0])  # an unlabelled row
    c.state.manual[row] = names[0]
    c.state.labels_changed.emit()
    qtbot.waitUntil(lambda: m.position_of(row) < int((group == 0).sum()) + 1, timeout=30000)
    assert threads and threading.main_thread().name not in threads
    c.shutdown()


def test_a_million_rows_sort_by_catalogue_column_on_a_worker(qtbot, monkeypatch):
    from astropy.table import Table

    from galaxy_explorer.core.catalogue import Catalogue
    from galaxy_explorer.core.sort_keys import item_sort_key

    threads = _spy_threads(monkeypatch, N)
    c, g = _million_row_gallery(qtbot, N)
    m = g.model
    _settled(qtbot, g, N)
    rng = np.random.default_rng(1)
    z = rng.random(N).round(3)  # many ties: they keep name order
    z[rng.random(N) < 0.05] = np.nan
    morph = np.array(["Spiral", "elliptical", "ring", "", "irregular"])[rng.integers(0, 5, N)]
    cat = Catalogue(Table({"z": z, "morph": morph}), "big.fits")
    row_of_item = rng.permutation(N).astype(np.int64)  # catalogue rows in another order
    row_of_item[:1000] = -1  # cutouts without a catalogue row: no value, last
    built: list[str] = []

    def source(column, descending):
        def build():
            built.append(threading.current_thread().name)
            return item_sort_key(cat, column, row_of_item, descending=descending)

        return build

    g.set_sort_columns(["z", "morph"], source)
    assert g.sort_combo.findData("column") >= 0
    threads.clear()
    g.set_sort_column("z")
    assert g.column_combo.isVisibleTo(g) and g.direction_button.isVisibleTo(g)
    key = np.full(N, np.nan)
    has = row_of_item >= 0
    key[has] = z[row_of_item[has]]
    expected = np.argsort(key, kind="stable")  # numpy puts NaN last, ties stay in row order
    qtbot.waitUntil(lambda: np.array_equal(m.order, expected), timeout=60000)
    assert threads and threading.main_thread().name not in threads
    assert built and threading.main_thread().name not in built  # the key too
    miss = int(np.isnan(key).sum())
    assert np.isnan(key[m.order[-miss:]]).all()  # missing values last
    assert not np.isnan(key[m.order[:-miss]]).any()
    # descending: largest first, missing values still last
    g.direction_button.setChecked(True)
    expected = np.argsort(-key, kind="stable")
    qtbot.waitUntil(lambda: np.array_equal(m.order, expected), timeout=60000)
    # text, case-insensitive; empty cells last
    g.column_combo.setCurrentIndex(g.column_combo.findData("morph"))
    g.direction_button.setChecked(False)
    text = np.full(N, "", dtype=object)
    text[has] = morph[row_of_item[has]]
    rank = {"elliptical": 0, "irregular": 1, "ring": 2, "Spiral": 3, "": 4}
    qtbot.waitUntil(
        lambda: (
            not m.pending_sort
            and m.descending is False
            and m.sort_column == "morph"
            and np.array_equal(m.order[:5], np.flatnonzero(text == "elliptical")[:5])
        ),
        timeout=60000,
    )
    codes = np.array([rank[t] for t in text[m.order].tolist()])
    assert (np.diff(codes) >= 0).all()
    # the catalogue closes: "By column" goes, the gallery falls back to name order
    g.set_sort_columns([], None)
    assert g.sort_combo.findData("column") < 0 and m.sort == "name"
    c.shutdown()


def test_a_selection_spans_pages_at_a_million_rows(qtbot):
    c, g = _million_row_gallery(qtbot, N)
    m = g.model
    _settled(qtbot, g, N)
    ps = m.page_size
    # a map selection on pages 1, 3 and 50
    rows = np.array([5, 7, 2 * ps + 1, 2 * ps + 9, N - 1])
    c.set_selection(rows, source="map")
    assert m.page == 0  # the first selected row's page
    assert g.selected_on_pages()[[0, 2, 49]].tolist() == [2, 2, 1]
    assert g.sel_pages_button.isVisibleTo(g)
    assert "5 selected on 3 of 50 pages" in g.sel_pages_button.text()
    assert "(2 here)" in g.sel_pages_button.text()
    assert "page 3" in g.next_page.toolTip()
    # the menu lists the pages with selected rows and turns to one
    g._fill_sel_pages_menu()
    acts = g.sel_pages_menu.actions()
    assert [a.text().split(" (")[0] for a in acts] == ["Page 1", "Page 3", "Page 50"]
    acts[1].trigger()
    assert m.page == 2 and g.selected_rows() == [2 * ps + 1, 2 * ps + 9]
    assert list(c.selection) == rows.tolist()  # turning pages changes no selection
    # Ctrl+click a cell on this page: added, the other pages' rows stay
    v = g.view
    v.setFocus()
    _click(qtbot, g, 2 * ps + 3, Qt.KeyboardModifier.ControlModifier)
    assert sorted(c.selection) == sorted([*rows.tolist(), 2 * ps + 3])
    # Ctrl+click a selected one: only it goes
    _click(qtbot, g, 2 * ps + 1, Qt.KeyboardModifier.ControlModifier)
    assert sorted(c.selection) == sorted([5, 7, 2 * ps + 3, 2 * ps + 9, N - 1])
    # a plain click starts a new selection (not merged with other pages)
    _click(qtbot, g, 2 * ps + 3)
    assert list(c.selection) == [2 * ps + 3] and c.current == 2 * ps + 3
    assert not g.sel_pages_button.isVisibleTo(g) or "on page 3" in g.sel_pages_button.text()
    # Shift+click two pages on: the range from the anchor across the pages between
    g.turn_page(1)
    g.turn_page(1)
    assert m.page == 4
    _click(qtbot, g, 4 * ps + 10, Qt.KeyboardModifier.ShiftModifier)
    sel = c.selection
    assert len(sel) == 2 * ps + 8 and sel[0] == 2 * ps + 3 and sel[-1] == 4 * ps + 10
    assert np.array_equal(sel, np.arange(2 * ps + 3, 4 * ps + 11))
    assert c.current == 4 * ps + 10
    assert "on 3 of 50 pages" in g.sel_pages_button.text()
    # the anchor stays: Shift+click back on page 3 shrinks the range to it
    g.turn_page(-1)
    g.turn_page(-1)
    _click(qtbot, g, 2 * ps + 5, Qt.KeyboardModifier.ShiftModifier)
    assert c.selection.tolist() == [2 * ps + 3, 2 * ps + 4, 2 * ps + 5]
    # Ctrl+A in the grid: every shown row, on every page
    QTest.keyClick(v, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(c.selection) == N
    assert "1,000,000 selected on 50 of 50 pages" in g.sel_pages_button.text()
    # the context menu acts on all of them, and a drag carries all of them
    menu = g.build_context_menu()
    assert any(a.text() == f"Label {N} as…" for a in menu.actions())
    mime = m.mimeData([m.index(0), m.index(1)])
    from galaxy_explorer.gui.gallery import rows_from_mime

    assert len(rows_from_mime(mime)) == N
    menu.close()
    c.shutdown()


@pytest.fixture
def paged(monkeypatch):
    from galaxy_explorer.gui.gallery import GalleryModel

    monkeypatch.setattr(GalleryModel, "page_size", 3)


def test_labels_and_exports_act_on_every_selected_row_on_every_page(
    qtbot, make_window, cutouts, paged, tmp_path
):
    import csv

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g, c = win.gallery, win.c
    g.set_sort("name")
    m = g.model
    assert m.pages >= 3
    rows = [int(m.order[0]), int(m.order[4]), int(m.order[len(m.order) - 1])]
    c.set_selection(rows, "map")
    assert m.page == 0 and len(g.selected_rows()) == 1  # one of them is on this page
    # the gallery's menu labels all three
    menu = g.build_context_menu()
    lab = next(a for a in menu.actions() if a.text() == "Label 3 as…").menu()
    name = c.label_names()[2]
    next(a for a in lab.actions() if a.text() == name).trigger()
    assert [c.manual_label(r) for r in rows] == [name] * 3
    assert sum(1 for r in range(c.n) if c.manual_label(r) == name) == 3
    # Shift+Page Down on a page's last cell: the range runs on into the next page
    v = g.view
    v.setFocus()
    m.set_page(0)
    last = m.index(m.rowCount() - 1)  # Qt's Shift+arrow range is a rectangle of laid-out cells
    qtbot.waitUntil(lambda: v.indexAt(v.visualRect(last).center()) == last, timeout=10000)
    # the anchor: the page's second cell, clicked (an event with no modifiers: Qt takes
    # a programmatic current change's modifiers from the last input event)
    _click(qtbot, g, 1)
    assert list(c.selection) == [int(m.order[1])]
    QTest.keyClick(v, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)  # to the last
    assert sorted(c.selection) == sorted(m.order[1:3].tolist())
    QTest.keyClick(v, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ShiftModifier)  # next page
    assert m.page == 1 and sorted(c.selection) == sorted(m.order[1:4].tolist())
    assert c.current == int(m.order[3])
    QTest.keyClick(v, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ShiftModifier)  # back again
    assert m.page == 0 and sorted(c.selection) == sorted(m.order[1:3].tolist())
    c.set_selection(rows, "map")
    # sorted by label, the three come first (a re-sort on the label change)
    g.set_sort("label")
    qtbot.waitUntil(lambda: sorted(m.order[:3].tolist()) == sorted(rows), timeout=5000)
    # the selection survives the re-sort, and an export writes all of it
    assert sorted(c.selection) == sorted(rows)
    out = tmp_path / "sel.csv"
    with qtbot.waitSignal(c.export_finished, timeout=20000):
        c.export_csv(out, c.selection)
    with open(out, newline="") as f:
        written = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    assert len(written) == 1 + 3
    menu.close()


def test_catalogue_column_sort_in_the_app(qtbot, make_window, cutouts, tmp_path):
    """The catalogue link offers its columns to the gallery once matched; numbers with
    units sort by value, cutouts without a value come last."""
    import astropy.units as u
    from astropy.table import MaskedColumn, Table

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    names = sorted(p.name for p in cutouts.iterdir())
    k = len(names)
    dist = MaskedColumn(np.arange(k, 0, -1) * 10.0, unit=u.Mpc, mask=[i == 1 for i in range(k)])
    size = [f"{(i % 3) + 1} kpc" if i % 2 else f"{(i % 3) + 1}00 pc" for i in range(k)]
    t = Table({"path": [f"cutouts/{n}" for n in names[:-1]], "dist": dist[:-1], "size": size[:-1]})
    t.write(tmp_path / "cat.ecsv")
    link = win.catalogue
    link.open(tmp_path / "cat.ecsv", images=[cutouts])
    qtbot.waitUntil(
        lambda: link.match is not None and win.gallery.sort_combo.findData("column") >= 0,
        timeout=20000,
    )
    g = win.gallery
    assert [g.column_combo.itemData(i) for i in range(g.column_combo.count())] == [
        "path",
        "dist",
        "size",
    ]
    g.set_sort_column("dist")
    order = [win.c.items[r].name for r in g.displayed_rows()]
    # dist falls with the name's index; names[1] has no value, the last name no row
    want = [names[i] for i in range(k - 2, -1, -1) if i != 1] + [names[1], names[-1]]
    assert order == want
    g.set_sort_column("size")
    vals = {n: s for n, s in zip(names, size, strict=True)}
    got = [vals[win.c.items[r].name] for r in g.displayed_rows()[: k - 1]]
    pc = [float(s.split()[0]) * (1000 if s.endswith("kpc") else 1) for s in got]
    assert pc == sorted(pc)  # "100 pc" < "2 kpc" < "300 pc" would be text order


def test_a_big_catalogue_is_ranked_off_the_gui_thread_even_for_few_cutouts(qtbot, monkeypatch):
    """A 60k-row catalogue matched to 300 cutouts: the column's key (ranking every catalogue
    row) is built on the gallery's worker, not on the GUI thread as a small sort is."""
    from astropy.table import Table

    import galaxy_explorer.core.sort_keys as sort_keys
    from galaxy_explorer.core.catalogue import Catalogue
    from galaxy_explorer.gui.catalogue_panel import CatalogueLink

    n, rows = 300, 60_000
    c, g = _million_row_gallery(qtbot, n)
    _settled(qtbot, g, n)
    rng = np.random.default_rng(4)
    link = CatalogueLink(c)
    link.cat = Catalogue(Table({"id": [f"G{i}" for i in rng.permutation(rows)]}), "big.csv")
    link.row_of_item = rng.choice(rows, n, replace=False).astype(np.int64)
    link.match = object()  # matched (sort_columns asks)
    threads: list[str] = []
    real = sort_keys.item_sort_key

    def spy(*a, **k):
        if a and a[0] is link.cat:  # not a gallery of an earlier test's window
            threads.append(threading.current_thread().name)
        return real(*a, **k)

    monkeypatch.setattr(sort_keys, "item_sort_key", spy)
    assert link.sort_key_fn("id").rows == rows
    g.set_sort_columns(link.sort_columns(), link.sort_key_fn)
    g.set_sort_column("id")
    ids = np.array(link.cat.table["id"])[link.row_of_item]
    qtbot.waitUntil(lambda: not g.model.pending_sort and len(threads) > 0, timeout=30000)
    qtbot.waitUntil(
        lambda: [ids[r] for r in g.model.order] == sorted(ids.tolist(), key=str.casefold),
        timeout=30000,
    )
    assert threading.main_thread().name not in threads
    link.tasks.shutdown()
    c.shutdown()
