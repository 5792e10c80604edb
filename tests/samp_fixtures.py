"""A private SAMP hub and a TOPCAT-like astropy client, for tests (127.0.0.1 only).

The hub's lockfile is in ``tmp_path`` and ``SAMP_HUB`` / ``HOME`` point there, so a user's
real hub (``~/.samp``) is never read, written or cleaned up by a test.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from galaxy_explorer.core.samp import _samp

_samp()  # astropy.samp, imported once without its deprecation warning


def read_lockfile_params(lock: Path) -> dict[str, str]:
    """The hub parameters in a lockfile (how a client finds the hub)."""
    from astropy.samp.lockfile_helpers import read_lockfile

    return read_lockfile(os.fspath(lock))


def wait_for(pred, timeout: float = 10.0, step: float = 0.02) -> bool:
    """Poll ``pred`` until true or ``timeout``; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


@pytest.fixture
def samp_env(tmp_path, monkeypatch) -> Path:
    """A private lockfile path; ``SAMP_HUB`` and ``HOME`` point into ``tmp_path``."""
    from astropy.samp import conf

    home = tmp_path / "home"
    home.mkdir()
    lock = tmp_path / "samp-lock"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lock.as_uri()}")
    monkeypatch.setattr(conf, "use_internet", False)
    return lock


@pytest.fixture
def samp_hub(samp_env):
    """A running astropy hub, Standard Profile only, on 127.0.0.1."""
    from astropy.samp import SAMPHubServer

    hub = SAMPHubServer(addr="127.0.0.1", lockfile=os.fspath(samp_env), web_profile=False)
    hub.start(wait=False)
    assert wait_for(samp_env.is_file, 5)
    yield hub
    hub.stop()


class FakeTopcat:
    """A SAMP client that behaves like TOPCAT / Aladin for the messages we use.

    It loads tables (``table.load.votable``: reads the VOTable from the URL and replies
    ``samp.ok``), accepts ``image.load.fits`` and ``coord.pointAt.sky``, and can send
    ``table.select.rowList`` / ``table.highlight.row`` / ``table.load.votable`` back.
    """

    def __init__(self, lock: Path, name: str = "TOPCAT") -> None:
        from astropy.samp import SAMPIntegratedClient
        from astropy.samp.lockfile_helpers import read_lockfile

        self.name = name
        self.received: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.tables: list[Any] = []
        self.client = SAMPIntegratedClient(
            name=name, metadata={"samp.name": name}, addr="127.0.0.1"
        )
        self.client.connect(hub_params=read_lockfile(os.fspath(lock)))
        for mtype in ("table.load.votable", "image.load.fits", "coord.pointAt.sky"):
            self.client.bind_receive_call(mtype, self._on_call)
        self._lock = threading.Lock()

    def _on_call(self, private_key, sender_id, msg_id, mtype, params, extra):
        if mtype == "table.load.votable":
            from urllib.parse import unquote, urlparse

            from astropy.table import Table

            path = unquote(urlparse(params["url"]).path)
            t = Table.read(path, format="votable")
            with self._lock:
                self.tables.append(t)
        self.received.put((mtype, dict(params)))
        self.client.ereply(msg_id, "samp.ok", result={})

    def get(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        return self.received.get(timeout=timeout)

    def app_id(self, name: str = "Galaxy Explorer") -> str:
        for cid in self.client.get_registered_clients():
            if self.client.get_metadata(cid).get("samp.name") == name:
                return cid
        raise LookupError(name)

    def call(self, recipient: str, mtype: str, **params: Any) -> dict[str, Any]:
        """Call and wait for the reply (an async call: astropy's hub-side callAndWait can
        miss a reply that comes back very fast)."""
        import uuid

        tag = f"t-{uuid.uuid4().hex[:8]}"
        box: queue.Queue = queue.Queue()
        self.client.bind_receive_response(tag, lambda pk, rid, t, resp: box.put(resp))
        self.client.ecall(recipient, tag, mtype, **params)
        return box.get(timeout=10)

    def close(self) -> None:
        if self.client.is_connected:
            self.client.disconnect()


@pytest.fixture
def topcat(samp_hub, samp_env):
    """A connected :class:`FakeTopcat`."""
    tc = FakeTopcat(samp_env)
    yield tc
    tc.close()
