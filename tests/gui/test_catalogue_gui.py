"""A catalogue table in the app: match, detail tab, map colours, gallery filter, sky panel."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from astropy.table import Table
from conftest import wait_embedded

from galaxy_explorer.core.imaging import sky_position


@pytest.fixture
def catalogue(cutouts, tmp_path):
    """Rows for every cutout by relative path (FITS have RA/Dec), plus one without a cutout."""
    names = sorted(p.name for p in cutouts.iterdir())
    rows = [f"cutouts/{n}" for n in names] + ["cutouts/missing.jpg"]
    ra, dec = [], []
    for n in names:
        r, d = sky_position(cutouts / n)
        ra.append(np.nan if r is None else r)
        dec.append(np.nan if d is None else d)
    ra.append(150.5)
    dec.append(2.5)
    t = Table(
        {
            "path": rows,
            "z": np.round(np.linspace(0.01, 0.09, len(rows)), 3),
            "morph": ["spiral" if i % 2 else "elliptical" for i in range(len(rows))],
            "ra": ra,
            "dec": dec,
        }
    )
    path = tmp_path / "cat.ecsv"
    t.write(path)
    return path, names


def _wait_matched(qtbot, win, timeout=20000):
    link = win.catalogue
    qtbot.waitUntil(
        lambda: link.match is not None and len(link.row_of_item) == win.c.n and win.c.n > 0,
        timeout=timeout,
    )


def test_catalogue_opens_its_images_and_links_every_view(qtbot, make_window, catalogue, tmp_path):
    path, names = catalogue
    win = make_window([])
    assert win.sky_dock.isHidden()  # no catalogue yet: the labels keep the left column
    win.catalogue.open(path)  # no folder open: the one its path column points into
    _wait_matched(qtbot, win)
    qtbot.waitUntil(lambda: not win.sky_dock.isHidden(), timeout=5000)
    wait_embedded(qtbot, win)
    link, c = win.catalogue, win.c
    assert c.n == 8 and link.match.n_matched == 8
    assert "8 of 9 catalogue rows matched" in link.match.summary()
    # the row without a cutout is listed, not dropped
    assert win.catalogue_panel.unmatched_list.count() == 1
    assert "missing.jpg" in win.catalogue_panel.unmatched_list.item(0).text()
    assert "1" in win.catalogue_panel.unmatched_label.text()

    # detail tab: the current cutout's catalogue row
    row = next(r for r in range(c.n) if c.items[r].name == names[3])
    c.set_selection([row], "test")
    c.set_current(row)
    values = dict(win.catalogue_row_view.values())
    assert values["morph"] == "spiral" and values["path"] == f"cutouts/{names[3]}"
    assert float(values["z"]) == pytest.approx(0.01 + 3 * 0.01)

    # colour the map by a numeric column: colour bar, classes follow z
    with qtbot.waitSignal(link.colour_changed, timeout=10000):
        win.catalogue_panel.colour_combo.setCurrentIndex(
            win.catalogue_panel.colour_combo.findData("z")
        )
    src = win.map.color_source
    assert src is not None and src.colorbar is not None
    z = np.array([0.01 + 0.01 * names.index(it.name) for it in c.items])
    order = np.argsort(z)
    assert np.all(np.diff(src.category[order]) >= 0)  # monotone in z
    assert win.map.colorbar is not None and win.map.colorbar.isVisible()
    qtbot.waitUntil(lambda: win.map.point_count == c.n)
    assert "Colour: z" in win.map.color_combo.currentText()
    # a text column: one colour per value, no colour bar
    with qtbot.waitSignal(link.colour_changed, timeout=10000):
        win.catalogue_panel.colour_combo.setCurrentIndex(
            win.catalogue_panel.colour_combo.findData("morph")
        )
    src = win.map.color_source
    assert src.colorbar is None and src.names[:2] == ["elliptical", "spiral"]
    assert not win.map.colorbar.isVisible()
    # back to labels from the map's own combo
    win.map.color_combo.setCurrentIndex(win.map.color_combo.findData("manual"))
    assert win.map.color_source is None and win.catalogue_panel.colour_combo.currentIndex() == 0

    # filter the gallery
    win.catalogue_panel.filter_edit.setText("z < 0.045 and morph == 'spiral'")
    with qtbot.waitSignal(link.filter_changed, timeout=10000):
        win.catalogue_panel.filter_edit.returnPressed.emit()
    shown = sorted(c.items[r].name for r in win.gallery.displayed_rows())
    assert shown == [names[1], names[3]]
    assert "2 cutouts shown" in win.catalogue_panel.filter_status.text()
    # a bad filter: one-line message, gallery unchanged
    win.catalogue_panel.filter_edit.setText("z = 1")
    win.catalogue_panel.filter_edit.returnPressed.emit()
    assert "==" in win.catalogue_panel.filter_status.text()
    assert sorted(c.items[r].name for r in win.gallery.displayed_rows()) == shown
    win.catalogue_panel.filter_edit.setText("__import__('os').getcwd()")
    win.catalogue_panel.filter_edit.returnPressed.emit()
    assert "can be called" in win.catalogue_panel.filter_status.text()
    win.catalogue_panel.filter_edit.clear()
    qtbot.waitUntil(lambda: len(win.gallery.displayed_rows()) == c.n)

    # sky panel: the rows with RA/Dec (4 FITS cutouts + the one without a cutout)
    sky = win.sky_panel
    qtbot.waitUntil(lambda: sky.point_count == 5)
    assert win.sky_dock.isVisible()
    fits_row = next(r for r in range(c.n) if c.items[r].name.endswith(".fits"))
    p = sky._point_of_item[fits_row]
    assert p >= 0
    from PySide6.QtCore import QPointF, Qt

    sky._on_clicked_at(QPointF(sky._x[p], sky._y[p]), Qt.KeyboardModifier.NoModifier)
    assert list(c.selection) == [fits_row] and c.current == fits_row
    assert sky.sel_cloud.point_count() == 1
    # hover on the map marks the point on the sky
    win.map.hovered.emit(fits_row)
    assert c.items[fits_row].name in sky.hover_text.text()
    win.map.hovered.emit(-1)
    assert sky.hover_text.text() == ""
    # and hover on the sky rings the galaxy on the map
    sky.hovered.emit(fits_row)
    assert len(win.map.hover_mark.data) == 1
    assert win.map.hover_mark.data[0]["x"] == pytest.approx(float(c.coords[fits_row, 0]))
    sky.hovered.emit(-1)
    assert len(win.map.hover_mark.data) == 0
    # a JPEG (no RA/Dec) selected: nothing ringed on the sky
    jpg_row = next(r for r in range(c.n) if c.items[r].name.endswith(".jpg"))
    c.set_selection([jpg_row], "test")
    assert sky.sel_cloud.point_count() == 0

    # export carries the catalogue's columns
    out = tmp_path / "sel.csv"
    with qtbot.waitSignal(c.export_finished, timeout=10000):
        c.export_csv(out, None)
    lines = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    assert list(rows[0])[-5:] == ["cat_path", "z", "morph", "cat_ra", "cat_dec"]
    by = {r["name"]: r for r in rows}
    assert by[names[2]]["morph"] == "elliptical" and by[names[2]]["z"] == "0.03"


def test_bad_catalogue_is_reported_and_the_window_keeps_working(
    qtbot, make_window, cutouts, tmp_path, caplog
):
    bad = tmp_path / "bad.vot"
    bad.write_bytes(b"<VOTABLE>not really")
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    with qtbot.waitSignal(win.catalogue.error, timeout=10000) as blocker:
        win.catalogue.open(bad)
    assert "bad.vot" in blocker.args[0] and "\n" not in blocker.args[0]
    # a user's damaged file: no ERROR with a traceback on stderr (galaxy-explorer gui bad.vot)
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]
    assert win.last_error[0] == "Catalogue"
    assert win.catalogue.cat is None and win.c.n == 8
    nomatch = tmp_path / "nomatch.csv"
    Table({"zz": [1.0, 2.0]}).write(nomatch)
    with qtbot.waitSignal(win.catalogue.error, timeout=10000) as blocker:
        win.catalogue.open(nomatch)
    assert "nothing to match" in blocker.args[0]


def test_catalogue_without_paths_needs_an_images_folder(qtbot, make_window, tmp_path):
    t = tmp_path / "radec.csv"
    Table({"ra": [150.0], "dec": [2.0]}).write(t)
    win = make_window([])
    with qtbot.waitSignal(win.catalogue.error, timeout=10000) as blocker:
        win.catalogue.open(t)
    assert "open the images folder too" in blocker.args[0]
    gone = tmp_path / "gone.csv"
    Table({"path": ["nowhere/x.jpg"]}).write(gone)
    with qtbot.waitSignal(win.catalogue.error, timeout=10000) as blocker:
        win.catalogue.open(gone)
    assert "none of the files in column 'path' exists" in blocker.args[0]


def test_view_menu_colour_actions_leave_the_catalogue_colouring(qtbot, make_window, catalogue):
    path, _ = catalogue
    win = make_window([])
    win.catalogue.open(path)
    _wait_matched(qtbot, win)
    with qtbot.waitSignal(win.catalogue.colour_changed, timeout=10000):
        win.catalogue.set_colour("morph")
    assert win.map.color_source is not None
    view = next(a.menu() for a in win.menuBar().actions() if a.text() == "&View")
    act = next(a for a in view.actions() if a.text() == "Colour by &Predicted Label")
    act.trigger()  # the mode was "predicted" already: still back to label colours
    assert win.map.color_source is None
    assert win.catalogue_panel.colour_combo.currentIndex() == 0


def test_samp_style_table_opens_by_radec(qtbot, make_window, cutouts):
    """An in-memory table (as SAMP's table.load.votable delivers) matched by RA/Dec."""
    fits = sorted(cutouts.glob("*.fits"))
    pos = [sky_position(p) for p in fits]
    t = Table({"RAJ2000": [p[0] for p in pos], "DEJ2000": [p[1] for p in pos], "mag": [1, 2, 3, 4]})
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    win.catalogue.open(t, name="from TOPCAT")
    _wait_matched(qtbot, win)
    link = win.catalogue
    assert link.match.method == "radec" and link.match.n_matched == 4
    assert win.catalogue_panel.title.text() == "<b>from TOPCAT</b>"
    qtbot.waitUntil(lambda: win.sky_panel.point_count == 4)


def test_cli_gui_splits_catalogue_from_images(monkeypatch, catalogue, cutouts, tmp_path):
    from galaxy_explorer import cli

    seen = {}

    def fake_run_app(paths, **kw):
        seen.update(paths=paths, **kw)
        return 0

    import galaxy_explorer.gui.app as app

    monkeypatch.setattr(app, "run_app", fake_run_app)
    path, _ = catalogue
    assert cli.main(["gui", str(path)]) == 0
    assert seen["catalogue"] == path and seen["paths"] == []
    assert cli.main(["gui", str(path), "--images", str(cutouts)]) == 0
    assert seen["paths"] == [cutouts]
    assert cli.main(["gui", str(path), "--images", str(tmp_path / "nope")]) == 2
    assert cli.main(["gui", str(cutouts), "--images", str(cutouts)]) == 2
    assert cli.main(["gui", str(cutouts)]) == 0
    assert seen["catalogue"] is None and seen["paths"] == [cutouts]


def test_unwrap_ra_keeps_a_field_across_ra_zero_in_one_piece():
    from galaxy_explorer.gui.sky_panel import unwrap_ra

    field = np.array([359.0, 359.5, 0.2, 0.8])
    out = unwrap_ra(field)
    assert out.max() - out.min() == pytest.approx(1.8)
    spread = np.linspace(0, 350, 36)  # all over the sky: unchanged
    assert np.array_equal(unwrap_ra(spread), spread)
    plain = np.array([10.0, 11.0, 12.5])
    assert np.array_equal(unwrap_ra(plain), plain)
