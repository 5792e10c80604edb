"""The SAMP menu against astropy's hub and a TOPCAT-like client (qtbot, 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_embedded
from samp_fixtures import FakeTopcat, samp_env, samp_hub, topcat, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def _connect(qtbot, win):
    with qtbot.waitSignal(win.samp.clients_changed, timeout=15000):
        win.samp.connect_hub()
    qtbot.waitUntil(lambda: win.samp.link.connected, timeout=5000)


def test_send_selection_and_receive_select(qtbot, make_window, cutouts, topcat):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    samp = win.samp
    assert samp.status_label.text() == "SAMP: off"
    assert win.menuBar().actions()[-2].text() == "S&AMP"  # just before Help
    _connect(qtbot, win)
    assert samp.status_label.text().startswith("SAMP: connected (1 client")
    names = [a.text() for a in samp.send_menu.actions()]
    assert names == ["All Clients", "", "TOPCAT"]
    # select three galaxies and send them to TOPCAT by name (the menu's action)
    win.c.set_selection([1, 4, 6], source="test")
    samp._update_actions()
    assert samp.send_menu.isEnabled()
    with qtbot.waitSignal(samp.sent, timeout=20000) as sig:
        samp.send_menu.actions()[2].trigger()
    assert "sent 3 rows to TOPCAT" in sig.args[0]
    mtype, params = topcat.get()
    assert mtype == "table.load.votable"
    t = topcat.tables[-1]
    assert [str(s) for s in t["sha256"]] == [win.c.items[i].sha256 for i in (1, 4, 6)]
    assert str(t["ra"].unit) == "deg"
    # TOPCAT selects rows 2 and 0 of that table → galaxies 6 and 1 here
    app = topcat.app_id()
    with qtbot.waitSignal(samp.rows_selected, timeout=10000):
        reply = topcat.call(
            app,
            "table.select.rowList",
            **{"table-id": params["table-id"], "url": params["url"], "row-list": ["2", "0"]},
        )
    assert reply["samp.status"] == "samp.ok"
    assert sorted(win.c.selection) == [1, 6]
    assert win.gallery.selected_rows() == [1, 6]
    # TOPCAT highlights row 1 → galaxy 4 becomes current
    with qtbot.waitSignal(win.c.current_changed, timeout=10000):
        topcat.call(
            app,
            "table.highlight.row",
            **{"table-id": params["table-id"], "url": params["url"], "row": "1"},
        )
    assert win.c.current == 4
    assert win.last_error is None


def test_image_point_at_and_hub_loss(qtbot, make_window, cutouts, samp_hub, samp_env):
    aladin = FakeTopcat(samp_env, name="Aladin")
    try:
        win = make_window([cutouts])
        wait_embedded(qtbot, win)
        samp = win.samp
        _connect(qtbot, win)
        fits_row = next(i for i, it in enumerate(win.c.items) if it.name.endswith(".fits"))
        win.c.set_current(fits_row)
        samp._update_actions()
        assert samp.image_menu.isEnabled() and samp.point_menu.isEnabled()
        with qtbot.waitSignal(samp.sent, timeout=20000):
            samp.send_image(None)
        mtype, params = aladin.get()
        assert mtype == "image.load.fits"
        assert params["url"] == win.c.items[fits_row].path.resolve().as_uri()
        with qtbot.waitSignal(samp.sent, timeout=20000):
            samp.point_at(None)
        mtype, params = aladin.get()
        assert mtype == "coord.pointAt.sky"
        assert 150 <= float(params["ra"]) < 151 and 2 <= float(params["dec"]) < 3
        # the hub goes away: the status bar says so, and nothing freezes
        aladin.close()
        with qtbot.waitSignal(samp.state_changed, timeout=15000) as sig:
            samp_hub.stop()
        assert sig.args[0] == "hub lost"
        assert "hub lost" in samp.status_label.text()
    finally:
        aladin.close()


def test_not_running_hub_is_one_message(qtbot, make_window, cutouts, samp_env):
    win = make_window([cutouts])
    qtbot.waitUntil(lambda: win.c.n > 0, timeout=30000)
    win.samp.connect_hub()
    qtbot.waitUntil(lambda: win.last_error is not None, timeout=10000)
    assert win.last_error[0] == "SAMP"
    assert "no SAMP hub is running" in win.last_error[1]
    assert win.samp.status_label.text() == "SAMP: off"


def test_start_own_hub_from_the_menu(qtbot, make_window, cutouts, samp_env):
    win = make_window([cutouts])
    qtbot.waitUntil(lambda: win.c.n > 0, timeout=30000)
    with qtbot.waitSignal(win.samp.clients_changed, timeout=15000):
        win.samp.start_hub_action.trigger()
    assert win.samp.link.owns_hub
    assert "own hub" in win.samp.status_label.text()
    tc = FakeTopcat(samp_env)  # a client joining later shows up in the menu
    try:
        qtbot.waitUntil(
            lambda: "TOPCAT" in [a.text() for a in win.samp.send_menu.actions()], timeout=10000
        )
    finally:
        tc.close()
    win.close()
    assert wait_for(lambda: not samp_env.exists(), 10)  # closing the window stopped its hub


def test_incoming_table_goes_to_the_handler_on_the_gui_thread(
    qtbot, make_window, cutouts, topcat, tmp_path
):
    import threading

    win = make_window([cutouts])
    qtbot.waitUntil(lambda: win.c.n > 0, timeout=30000)
    _connect(qtbot, win)
    app = topcat.app_id()
    # no handler: refused, nothing opened
    win.samp.set_table_handler(None)
    reply = topcat.call(app, "table.load.votable", url=(tmp_path / "a.vot").as_uri())
    assert reply["samp.status"] == "samp.error"
    got = []
    win.samp.set_table_handler(
        lambda path, name: got.append((path, name, threading.current_thread()))
    )
    odd = tmp_path / "cat \udcff.vot"
    reply = topcat.call(app, "table.load.votable", url=odd.as_uri(), name="my cat")
    assert reply["samp.status"] == "samp.ok"
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got[0][:2] == (odd, "my cat")
    assert got[0][2] is threading.main_thread()
    # a URL on another machine is refused before the handler sees it
    reply = topcat.call(app, "table.load.votable", url="http://example.org/cat.vot")
    assert reply["samp.status"] == "samp.error" and len(got) == 1


def test_incoming_votable_opens_as_a_catalogue_over_the_open_cutouts(
    qtbot, make_window, cutouts, topcat, tmp_path
):
    """TOPCAT sends a table with RA/Dec: it is matched to the cutouts already open, and the
    app opens no other folder."""
    from astropy.table import Table

    from galaxy_explorer.core.imaging import sky_position

    fits = sorted(cutouts.glob("*.fits"))
    pos = [sky_position(p) for p in fits]
    t = Table(
        {
            "RAJ2000": [p[0] for p in pos],
            "DEJ2000": [p[1] for p in pos],
            "z": [0.01 * (i + 1) for i in range(len(pos))],
        }
    )
    vot = tmp_path / "from topcat.vot"
    t.write(vot, format="votable")
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    _connect(qtbot, win)
    reply = topcat.call(topcat.app_id(), "table.load.votable", url=vot.as_uri(), name="sel")
    assert reply["samp.status"] == "samp.ok"
    link = win.catalogue
    qtbot.waitUntil(lambda: link.match is not None, timeout=20000)
    assert link.match.method == "radec" and link.match.n_matched == len(fits)
    assert [Path(r) for r in win.c.roots] == [cutouts]  # nothing else was opened
