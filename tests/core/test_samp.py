"""core/samp.py against astropy's SAMPHubServer and a TOPCAT-like client on 127.0.0.1."""

from __future__ import annotations

import os
import queue

import pytest
from samp_fixtures import FakeTopcat, samp_env, samp_hub, topcat, wait_for  # noqa: F401

from galaxy_explorer.core.export import ExportRow, Provenance
from galaxy_explorer.core.samp import CONNECTED, HUB_LOST, SampError, SampLink, hub_lockfile
from galaxy_explorer.core.tables import votable_bytes

pytestmark = pytest.mark.timeout(60)


def _rows(n: int = 4) -> list[ExportRow]:
    return [
        ExportRow(
            path=f"/d/g{i}.fits", name=f"g{i}.fits", sha256=f"{i:02d}" * 32, ra=10.0 + i, dec=-5.0
        )
        for i in range(n)
    ]


@pytest.fixture
def link(samp_env, tmp_path):
    events: queue.Queue = queue.Queue()
    lk = SampLink(
        workdir=tmp_path / "sent",
        on_state=lambda s, d: events.put(("state", s)),
        on_highlight=lambda tid, key: events.put(("highlight", key)),
        on_select=lambda tid, keys: events.put(("select", keys)),
    )
    lk.events = events
    yield lk
    lk.close()


def _next(q: queue.Queue, kind: str, timeout: float = 10.0):
    while True:
        k, v = q.get(timeout=timeout)
        if k == kind:
            return v


def test_lockfile_from_env(samp_env):
    assert hub_lockfile() == samp_env
    assert hub_lockfile(samp_env.parent / "x") == samp_env.parent / "x"


def test_no_hub_is_a_clear_error(link):
    with pytest.raises(SampError, match="no SAMP hub is running"):
        link.connect()
    assert not link.connected


def test_web_profile_not_accepted(monkeypatch):
    monkeypatch.setenv("SAMP_HUB", "web-profile:whatever")
    with pytest.raises(SampError, match="only the Standard Profile"):
        hub_lockfile()


def test_send_table_select_and_highlight(link, topcat):
    link.connect()
    assert link.state == CONNECTED
    assert "TOPCAT" in [c.name for c in link.clients()]
    rows = _rows(4)
    keys = [40, 41, 42, 43]  # the app's row numbers of the sent rows
    sent, results = link.send_table(
        votable_bytes(rows, Provenance(model="m"), None), name="sel", keys=keys, wait=10
    )
    assert results == {"TOPCAT": "ok"}
    mtype, params = topcat.get()
    assert mtype == "table.load.votable" and params["table-id"] == sent.table_id
    t = topcat.tables[-1]
    assert len(t) == 4 and str(t["ra"].unit) == "deg"
    assert os.stat(sent.path.parent).st_mode & 0o077 == 0  # private folder

    app = topcat.app_id()
    reply = topcat.call(
        app,
        "table.select.rowList",
        **{"table-id": sent.table_id, "url": sent.url, "row-list": ["3", "1", "9"]},
    )
    assert reply["samp.status"] == "samp.ok"
    assert _next(link.events, "select") == [43, 41]  # out-of-range 9 dropped
    reply = topcat.call(
        app, "table.highlight.row", **{"table-id": sent.table_id, "url": sent.url, "row": "2"}
    )
    assert reply["samp.status"] == "samp.ok"
    assert _next(link.events, "highlight") == 42
    # matched by URL when the id is unknown (TOPCAT may send either)
    topcat.call(
        app, "table.select.rowList", **{"table-id": "x", "url": sent.url, "row-list": ["0"]}
    )
    assert _next(link.events, "select") == [40]


def test_unknown_table_and_incoming_votable_refused(link, topcat, tmp_path):
    link.connect()
    app = topcat.app_id()
    reply = topcat.call(
        app,
        "table.select.rowList",
        **{"table-id": "nope", "url": "file:///etc/passwd", "row-list": ["0"]},
    )
    assert reply["samp.status"] == "samp.error"
    assert "not a table sent by this application" in reply["samp.error"]["samp.errortxt"]
    # no on_load_table callback: an incoming table is refused, nothing read
    reply = topcat.call(
        app, "table.load.votable", url=(tmp_path / "t.vot").as_uri(), **{"table-id": "t"}
    )
    assert reply["samp.status"] == "samp.error"
    assert link.events.empty() or all(k == "state" for k, _ in list(link.events.queue))


def test_incoming_votable_only_local_urls(link, topcat, tmp_path):
    got: queue.Queue = queue.Queue()
    link.on_load_table = lambda url, tid, name: got.put((url, tid, name))
    link.connect()
    app = topcat.app_id()
    url = (tmp_path / "cat.vot").as_uri()
    reply = topcat.call(app, "table.load.votable", url=url, name="cat", **{"table-id": "t1"})
    assert reply["samp.status"] == "samp.ok"
    assert got.get(timeout=5) == (url, "t1", "cat")
    reply = topcat.call(
        app, "table.load.votable", url="http://example.org/x.vot", **{"table-id": "t2"}
    )
    assert reply["samp.status"] == "samp.error"
    assert "only local tables" in reply["samp.error"]["samp.errortxt"]
    assert got.empty()


def test_named_client_image_and_point_at(link, topcat, samp_env):
    other = FakeTopcat(samp_env, name="Aladin")
    try:
        link.connect()
        res = link.send_image("/data/g\udcff.fits", client="aladin", wait=10)
        assert res == {"Aladin": "ok"}
        mtype, params = other.get()
        assert mtype == "image.load.fits"
        assert params["url"] == "file:///data/g%FF.fits"  # any bytes, as a file URL
        assert topcat.received.empty()  # only the named client got it
        assert link.point_at(150.5, -2.25, wait=10) == {"Aladin": "ok", "TOPCAT": "ok"}
        assert other.get()[1] == {"ra": "150.5", "dec": "-2.25"}
        with pytest.raises(SampError, match="no SAMP client named 'DS9'"):
            link.send_image("/a.fits", client="DS9")
        with pytest.raises(SampError, match="not a FITS file"):
            link.send_image("/a.jpg")
        with pytest.raises(SampError, match="not a sky position"):
            link.point_at(1.0, 95.0)
    finally:
        other.close()


def test_reconnects_when_the_hub_comes_back(link, samp_env):
    from astropy.samp import SAMPHubServer

    def new_hub():
        h = SAMPHubServer(addr="127.0.0.1", lockfile=os.fspath(samp_env), web_profile=False)
        h.start(wait=False)
        return h

    hub = new_hub()
    try:
        link.connect()
        assert _next(link.events, "state") == CONNECTED
        link.start_watch(interval=0.1)
        hub.stop()
        assert _next(link.events, "state") == HUB_LOST
        assert not link.connected
        hub = new_hub()
        assert _next(link.events, "state") == CONNECTED
        assert link.connected
    finally:
        link.close()
        hub.stop()


def test_start_own_hub_standard_profile_only(link, samp_env):
    link.connect(start_hub=True)
    try:
        assert link.owns_hub and link.connected
        assert link._hub._web_profile is False  # no web profile port opened
        text = samp_env.read_text()
        assert "127.0.0.1" in text and "samp.hub.xmlrpc.url" in text
        assert link.clients() == []
    finally:
        link.close()
    assert wait_for(lambda: not samp_env.exists(), 5)  # stopping the own hub removed its lockfile


def test_client_that_never_replies_times_out(link, samp_hub, samp_env):
    from astropy.samp import SAMPIntegratedClient
    from samp_fixtures import read_lockfile_params

    mute = SAMPIntegratedClient(name="Mute", metadata={"samp.name": "Mute"}, addr="127.0.0.1")
    mute.connect(hub_params=read_lockfile_params(samp_env))
    mute.bind_receive_call("table.load.votable", lambda *a: None)  # never replies
    try:
        link.connect()
        sent, results = link.send_table(b"<VOTABLE/>", name="x", wait=1)
        assert results == {"Mute": "no reply within 1 s"}
    finally:
        mute.disconnect()
