"""SAMP (Simple Application Messaging Protocol) with TOPCAT, Aladin, DS9: no Qt.

:class:`SampLink` is one connection to a SAMP hub through ``astropy.samp``, Standard
Profile only: it never starts or uses the Web Profile (an HTTP port that web pages could
reach). It binds to 127.0.0.1 and never looks for the internet.

Sending
    :meth:`SampLink.send_table` writes the rows as a VOTable file in a private folder and
    sends ``table.load.votable`` to every subscribed client or to one named client;
    :meth:`SampLink.send_image` sends ``image.load.fits`` for a FITS cutout and
    :meth:`SampLink.point_at` sends ``coord.pointAt.sky``.
Receiving
    ``table.highlight.row`` and ``table.select.rowList`` for a table this link sent are
    mapped back to the keys given with the table (the app's rows) and handed to
    ``on_highlight`` / ``on_select``. Messages about any other table are refused.
    An incoming ``table.load.votable`` is handed, as a checked URL, to ``on_load_table``
    (refused when there is none). Incoming messages never read a file or run anything
    here: the only reads are those the callback's owner chooses to do.
Connection
    :meth:`SampLink.connect` finds the running hub (``SAMP_HUB`` or ``~/.samp``, or the
    ``lockfile`` given), or starts one with ``start_hub=True``. :meth:`SampLink.check`
    pings the hub, notices when it went away and reconnects when it comes back;
    :meth:`SampLink.start_watch` runs that on a daemon thread. State changes go to
    ``on_state(state, detail)``.

Callbacks run on astropy's or the watcher's thread, never the caller's: a GUI hands them to
its own thread (``gui/samp_menu.py`` does this with a queued Qt signal).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlparse

from galaxy_explorer.core._text import utf8_text

log = logging.getLogger(__name__)

__all__ = [
    "DISCONNECTED",
    "CONNECTED",
    "HUB_LOST",
    "SampError",
    "SampLink",
    "SentTable",
    "ClientInfo",
    "hub_lockfile",
]

DISCONNECTED = "disconnected"
CONNECTED = "connected"
HUB_LOST = "hub lost"

#: How long to wait for a client's reply when sending and waiting (seconds).
DEFAULT_TIMEOUT = 20
#: Files sent by earlier runs are removed after this long (seconds).
OLD_FILES_S = 24 * 3600.0

_IN_TYPES = ("table.highlight.row", "table.select.rowList", "table.load.votable")
_EVENTS = (
    "samp.hub.event.shutdown",
    "samp.hub.event.register",
    "samp.hub.event.unregister",
    "samp.hub.event.metadata",
    "samp.hub.event.subscriptions",
)


class SampError(RuntimeError):
    """A SAMP operation failed; the message is one line, fit for a user."""


@dataclass(frozen=True)
class ClientInfo:
    """Another application registered with the hub."""

    id: str
    name: str
    subscriptions: frozenset[str] = frozenset()

    def accepts(self, mtype: str) -> bool:
        """Whether the client subscribed to ``mtype`` (or a wildcard covering it)."""
        for sub in self.subscriptions:
            if sub == mtype or sub == "*" or (sub.endswith(".*") and mtype.startswith(sub[:-1])):
                return True
        return False


@dataclass
class SentTable:
    """A table this link sent: what incoming row indices refer to."""

    table_id: str
    url: str
    path: Path
    name: str
    keys: list[Any] = field(default_factory=list)


def hub_lockfile(lockfile: str | os.PathLike[str] | None = None) -> Path:
    """The Standard Profile lockfile: ``lockfile``, else ``$SAMP_HUB``, else ``~/.samp``.

    Raises
    ------
    SampError
        If ``SAMP_HUB`` names a profile other than the Standard Profile.
    """
    if lockfile is not None:
        return Path(lockfile)
    env = os.environ.get("SAMP_HUB")
    if env:
        if not env.startswith("std-lockurl:"):
            raise SampError(f"SAMP_HUB={env!r}: only the Standard Profile (std-lockurl:) is used")
        url = env[len("std-lockurl:") :]
        parsed = urlparse(url)
        return Path(os.fsdecode(unquote_to_bytes(parsed.path)) if parsed.scheme == "file" else url)
    return Path.home() / ".samp"


def _samp() -> Any:
    """``astropy.samp`` (deprecated in astropy 8 in favour of pyvo.samp; same API)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*astropy.samp was deprecated")
        import astropy.samp

    return astropy.samp


@contextlib.contextmanager
def _offline() -> Any:
    """astropy.samp without its internet probe: bind to 127.0.0.1, never call out."""
    with _samp().conf.set_temp("use_internet", False):
        yield


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _file_url(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()  # odd bytes become %XX


def _local_url(url: str) -> bool:
    """A URL this machine serves: ``file:`` (local) or http on 127.0.0.1 / localhost."""
    p = urlparse(url)
    if p.scheme == "file":
        return p.netloc in ("", "localhost", "127.0.0.1")
    if p.scheme in ("http", "https"):
        return p.hostname in ("127.0.0.1", "localhost", "::1")
    return False


class SampLink:
    """One connection to a SAMP hub (Standard Profile only).

    Parameters
    ----------
    name : str
        Application name other clients show (``samp.name``).
    lockfile : path, optional
        Hub lockfile (default ``$SAMP_HUB`` or ``~/.samp``); a hub started here writes it.
    workdir : path, optional
        Where sent VOTables are written (default a per-user folder in the temp directory).
    on_state : callable(state, detail), optional
        Connection state changed: :data:`CONNECTED`, :data:`DISCONNECTED`, :data:`HUB_LOST`.
    on_clients : callable(), optional
        Another client registered, left or changed its metadata or subscriptions.
    on_highlight : callable(table_id, key), optional
        ``table.highlight.row`` for a table this link sent; ``key`` is the row's key.
    on_select : callable(table_id, keys), optional
        ``table.select.rowList`` for a table this link sent; ``keys`` in row order.
    on_load_table : callable(url, table_id, name), optional
        An incoming ``table.load.votable`` with a local URL. Without it, refused.
    """

    def __init__(
        self,
        name: str = "Galaxy Explorer",
        *,
        lockfile: str | os.PathLike[str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        on_state: Callable[[str, str], None] | None = None,
        on_clients: Callable[[], None] | None = None,
        on_highlight: Callable[[str, Any], None] | None = None,
        on_select: Callable[[str, list[Any]], None] | None = None,
        on_load_table: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.name = name
        self._lockfile = None if lockfile is None else Path(lockfile)
        self._workdir = Path(workdir) if workdir is not None else None
        self.on_state = on_state
        self.on_clients = on_clients
        self.on_highlight = on_highlight
        self.on_select = on_select
        self.on_load_table = on_load_table
        self.state = DISCONNECTED
        self._client: Any = None
        self._hub: Any = None  # a hub this link started
        self._lock = threading.RLock()
        self._sent: dict[str, SentTable] = {}
        self._watch: threading.Thread | None = None
        self._stop_watch = threading.Event()
        self._want = False  # the user asked to be connected (reconnect when the hub returns)
        self.responses: list[tuple[str, str, dict[str, Any]]] = []  # (client, msg tag, reply)
        self._waiting: dict[str, threading.Event] = {}
        self._replies: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        """Whether this link is registered with a hub now."""
        c = self._client
        return bool(c is not None and c.is_connected)

    @property
    def owns_hub(self) -> bool:
        """Whether the hub is the one this link started."""
        return self._hub is not None and self._hub.is_running

    def lockfile(self) -> Path:
        """The hub lockfile this link uses."""
        return hub_lockfile(self._lockfile)

    def _hub_params(self) -> dict[str, str] | None:
        _samp()
        from astropy.samp.lockfile_helpers import check_running_hub

        path = self.lockfile()
        if not path.is_file():
            return None
        try:
            running, params = check_running_hub(os.fspath(path))
        except Exception as exc:  # a damaged lockfile
            log.warning("SAMP lockfile %s: %s", utf8_text(path), _one_line(exc))
            return None
        return params if running else None

    def hub_running(self) -> bool:
        """Whether a hub answers at the lockfile (reads the lockfile, pings the hub)."""
        return self._hub_params() is not None

    def start_hub(self) -> None:
        """Start a hub (Standard Profile, 127.0.0.1, no Web Profile) unless one runs.

        Raises
        ------
        SampError
            If the hub cannot start.
        """
        if self.hub_running():
            return
        SAMPHubServer = _samp().SAMPHubServer  # noqa: N806 - astropy's class

        path = self.lockfile()
        with _offline():
            try:
                hub = SAMPHubServer(
                    addr="127.0.0.1",
                    lockfile=os.fspath(path),
                    web_profile=False,  # never without the user's explicit consent
                    label=f"{self.name} hub",
                )
                hub.start(wait=False)
            except Exception as exc:
                raise SampError(f"cannot start a SAMP hub: {_one_line(exc)}") from None
        self._hub = hub
        log.info("started a SAMP hub (lockfile %s)", utf8_text(path))

    def connect(self, start_hub: bool = False) -> None:
        """Register with the running hub (or one started here with ``start_hub``).

        Raises
        ------
        SampError
            No hub is running (and ``start_hub`` is False), or registering failed.
        """
        with self._lock:
            self._want = True
            if self.connected:
                return
            if start_hub:
                self.start_hub()
            params = self._hub_params()
            if params is None:
                self._set_state(DISCONNECTED, "no SAMP hub is running")
                raise SampError(
                    "no SAMP hub is running: start TOPCAT or Aladin (they run one), "
                    "or start a hub here"
                )
            self._register(params)

    def _register(self, params: dict[str, str]) -> None:
        SAMPIntegratedClient = _samp().SAMPIntegratedClient  # noqa: N806 - astropy's class

        meta = {
            "samp.name": self.name,
            "samp.description.text": "Explore folders of galaxy cutouts",
            "author.name": "Galaxy Explorer",
        }
        with _offline():
            client = SAMPIntegratedClient(name=self.name, metadata=meta, addr="127.0.0.1")
            try:
                client.connect(hub_params=params)
                for mtype in _IN_TYPES:
                    client.bind_receive_call(mtype, self._on_call, declare=False)
                    client.bind_receive_notification(mtype, self._on_notify, declare=False)
                for mtype in _EVENTS:
                    client.bind_receive_notification(mtype, self._on_event, declare=False)
                client.declare_subscriptions()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    client.disconnect()
                self._set_state(DISCONNECTED, _one_line(exc))
                raise SampError(f"cannot register with the SAMP hub: {_one_line(exc)}") from None
        self._client = client
        self._set_state(CONNECTED, "own hub" if self.owns_hub else "")

    def disconnect(self, stop_hub: bool = True) -> None:
        """Leave the hub (and stop a hub started here, unless ``stop_hub`` is False)."""
        with self._lock:
            self._want = False
            self._drop_client()
            if stop_hub and self._hub is not None:
                with contextlib.suppress(Exception):
                    self._hub.stop()
                self._hub = None
            self._set_state(DISCONNECTED, "")

    def close(self) -> None:
        """Stop watching, leave the hub and stop a hub started here."""
        self.stop_watch()
        self.disconnect()

    def _drop_client(self) -> None:
        c, self._client = self._client, None
        if c is None:
            return
        try:
            c.disconnect()
        except Exception:  # the hub is gone: stop our own server thread quietly
            with contextlib.suppress(Exception):
                if c.client is not None and c.client.is_running:
                    c.client.stop(timeout=2.0)
            with contextlib.suppress(Exception):
                c.hub.disconnect()

    def _set_state(self, state: str, detail: str) -> None:
        changed = state != self.state
        self.state = state
        if changed and self.on_state is not None:
            try:
                self.on_state(state, detail)
            except Exception:
                log.exception("SAMP state callback failed")

    def check(self) -> str:
        """Ping the hub; notice a lost hub and reconnect when one is back. Returns the state."""
        with self._lock:
            if self.connected:
                try:
                    self._client.ping()
                    return self.state
                except Exception:
                    log.info("SAMP hub went away")
                    self._drop_client()
                    self._set_state(HUB_LOST, "the SAMP hub went away; reconnecting when back")
            if self._want and not self.connected:
                params = self._hub_params()
                if params is not None:
                    try:
                        self._register(params)
                        log.info("reconnected to the SAMP hub")
                    except SampError as exc:
                        log.info("SAMP reconnect failed: %s", exc)
            return self.state

    def start_watch(self, interval: float = 2.0) -> None:
        """Call :meth:`check` every ``interval`` seconds on a daemon thread."""
        if self._watch is not None and self._watch.is_alive():
            return
        self._stop_watch.clear()

        def loop() -> None:
            while not self._stop_watch.wait(interval):
                try:
                    self.check()
                except Exception:
                    log.exception("SAMP watcher")

        self._watch = threading.Thread(target=loop, name="samp-watch", daemon=True)
        self._watch.start()

    def stop_watch(self) -> None:
        """Stop the watcher thread (waits a moment for it)."""
        self._stop_watch.set()
        if self._watch is not None:
            self._watch.join(timeout=5.0)
            self._watch = None

    # ------------------------------------------------------------------ clients
    def _need(self) -> Any:
        if not self.connected:
            raise SampError("not connected to a SAMP hub")
        return self._client

    def clients(self) -> list[ClientInfo]:
        """The other clients on the hub (not this link, not the hub), sorted by name."""
        c = self._need()
        out = []
        hub_id = getattr(c.client, "_hub_id", None)  # the hub registers itself as a client
        try:
            ids = c.get_registered_clients()
            for cid in ids:
                if cid == hub_id:
                    continue
                try:
                    meta = c.get_metadata(cid)
                    subs = c.get_subscriptions(cid)
                except Exception:
                    continue  # it left while we asked
                name = str(meta.get("samp.name") or cid)
                out.append(ClientInfo(cid, name, frozenset(subs)))
        except Exception as exc:
            raise SampError(f"SAMP hub did not answer: {_one_line(exc)}") from None
        return sorted(out, key=lambda x: (x.name.lower(), x.id))

    def recipients(self, mtype: str, client: str | None = None) -> list[ClientInfo]:
        """Clients that accept ``mtype``: all, or the one named ``client`` (name or id).

        Raises
        ------
        SampError
            If no client accepts it, or ``client`` is not on the hub or does not accept it.
        """
        everyone = self.clients()
        able = [c for c in everyone if c.accepts(mtype)]
        if client is None or client == "all":
            if not able:
                raise SampError(f"no SAMP client accepts {mtype}")
            return able
        want = client.strip().lower()
        hits = [c for c in everyone if c.id.lower() == want or c.name.lower() == want]
        if not hits:
            names = ", ".join(c.name for c in everyone) or "none"
            raise SampError(f"no SAMP client named {client!r} (on the hub: {names})")
        ok = [c for c in hits if c.accepts(mtype)]
        if not ok:
            raise SampError(f"SAMP client {hits[0].name!r} does not accept {mtype}")
        return ok

    def _send(
        self, mtype: str, params: dict[str, Any], client: str | None, wait: float | None
    ) -> dict[str, str]:
        """Send to each recipient; return client name → "ok", "sent" or why it failed.

        Always an asynchronous call with a message tag; with ``wait``, the replies are awaited
        here (not with the hub's ``callAndWait``, which in astropy's hub can miss a reply
        that comes back very fast).
        """
        c = self._need()
        out: dict[str, str] = {}
        waiting: dict[str, tuple[str, threading.Event]] = {}
        for r in self.recipients(mtype, client):
            msg = {"samp.mtype": mtype, "samp.params": params}
            tag = f"ge-{uuid.uuid4().hex[:12]}"
            done = threading.Event()
            with self._lock:
                self._waiting[tag] = done
            try:
                c.bind_receive_response(tag, self._on_response)
                c.call(r.id, tag, msg)
                out[r.name] = "sent"
                waiting[r.name] = (tag, done)
            except Exception as exc:
                out[r.name] = _one_line(exc)
        if wait:
            deadline = time.monotonic() + float(wait)
            for name, (tag, done) in waiting.items():
                if not done.wait(max(0.0, deadline - time.monotonic())):
                    out[name] = f"no reply within {float(wait):g} s"
                    continue
                reply = self._replies.pop(tag, {})
                status = reply.get("samp.status", "")
                if status == "samp.ok":
                    out[name] = "ok"
                else:
                    err = reply.get("samp.error", {}) or {}
                    out[name] = str(err.get("samp.errortxt") or status or "failed")
        return out

    # ------------------------------------------------------------------ sending
    def workdir(self) -> Path:
        """The private folder for sent tables (created 0700; files older than a day pruned)."""
        import tempfile

        d = self._workdir or Path(tempfile.gettempdir()) / f"galaxy-explorer-samp-{os.getuid()}"
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = time.time()
        with contextlib.suppress(OSError):
            for f in d.iterdir():
                with contextlib.suppress(OSError):
                    if f.name.endswith(".vot") and now - f.stat().st_mtime > OLD_FILES_S:
                        f.unlink()
        return d

    def send_table(
        self,
        votable: bytes | str | os.PathLike[str],
        *,
        name: str = "galaxies",
        keys: Sequence[Any] | None = None,
        client: str | None = None,
        wait: float | None = None,
    ) -> tuple[SentTable, dict[str, str]]:
        """Send a VOTable with ``table.load.votable``.

        Parameters
        ----------
        votable : bytes or path
            The VOTable document (written to :meth:`workdir`) or a VOTable file to send.
        name : str
            Table name other applications show.
        keys : sequence, optional
            One key per table row (the app's row numbers): what incoming
            ``table.select.rowList`` / ``table.highlight.row`` indices are mapped to.
        client : str, optional
            A client's name or id; default every client that accepts tables.
        wait : float, optional
            Seconds to wait for each client's reply; default send and return.

        Returns
        -------
        sent : SentTable
        results : dict of str to str
            Per client: ``"ok"`` (loaded), ``"sent"`` (not waited for) or why it failed.

        Raises
        ------
        SampError
            Not connected, no client accepts tables, or the named client is not there.
        """
        self._need()
        self.recipients("table.load.votable", client)  # fail before writing anything
        table_id = f"galaxy-explorer-{uuid.uuid4().hex[:12]}"
        if isinstance(votable, bytes):
            path = self.workdir() / f"{table_id}.vot"
            with open(path, "wb") as fh:
                fh.write(votable)
        else:
            path = Path(votable)
        url = _file_url(path)
        sent = SentTable(table_id, url, path, name, list(keys or []))
        with self._lock:
            self._sent[table_id] = sent
        params = {"url": url, "table-id": table_id, "name": name}
        return sent, self._send("table.load.votable", params, client, wait)

    def send_image(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        client: str | None = None,
        wait: float | None = None,
    ) -> dict[str, str]:
        """Send ``image.load.fits`` for a FITS file the user chose.

        Raises
        ------
        SampError
            Not a FITS file, not connected, or no client accepts images.
        """
        p = Path(path)
        if p.suffix.lower() not in (".fits", ".fit", ".fts", ".fz") and not p.name.lower().endswith(
            (".fits.gz", ".fit.gz")
        ):
            raise SampError(f"{utf8_text(p.name)}: not a FITS file (image.load.fits sends FITS)")
        params = {
            "url": _file_url(p),
            "image-id": f"galaxy-explorer-{uuid.uuid4().hex[:12]}",
            "name": utf8_text(name or p.name),
        }
        return self._send("image.load.fits", params, client, wait)

    def point_at(
        self, ra: float, dec: float, *, client: str | None = None, wait: float | None = None
    ) -> dict[str, str]:
        """Send ``coord.pointAt.sky`` (ICRS degrees).

        Raises
        ------
        SampError
            Coordinates out of range, not connected, or no client accepts them.
        """
        ra, dec = float(ra), float(dec)
        if not (-90.0 <= dec <= 90.0) or ra != ra:
            raise SampError(f"not a sky position: RA {ra}, Dec {dec}")
        params = {"ra": repr(ra % 360.0), "dec": repr(dec)}
        return self._send("coord.pointAt.sky", params, client, wait)

    def sent_table(self, table_id: str) -> SentTable | None:
        """A table this link sent, by id."""
        with self._lock:
            return self._sent.get(table_id)

    # ------------------------------------------------------------------ receiving
    def _find_sent(self, params: dict[str, Any]) -> SentTable | None:
        with self._lock:
            t = self._sent.get(str(params.get("table-id", "")))
            if t is None and params.get("url"):
                t = next((s for s in self._sent.values() if s.url == params["url"]), None)
            return t

    @staticmethod
    def _indices(values: Any, n: int) -> list[int]:
        out = []
        for v in values if isinstance(values, (list, tuple)) else [values]:
            try:
                i = int(str(v).strip())
            except ValueError:
                continue
            if 0 <= i < n:
                out.append(i)
        return out

    def _handle(self, mtype: str, params: dict[str, Any]) -> str | None:
        """Act on one incoming message; None when done, else why it was refused."""
        if mtype == "table.load.votable":
            url = str(params.get("url", ""))
            if self.on_load_table is None:
                return "this application does not open tables sent to it"
            if not _local_url(url):
                return "only local tables (file: or 127.0.0.1) are opened"
            self.on_load_table(url, str(params.get("table-id", "")), str(params.get("name", "")))
            return None
        sent = self._find_sent(params)
        if sent is None:
            return "not a table sent by this application"
        if mtype == "table.highlight.row":
            idx = self._indices(params.get("row"), len(sent.keys))
            if not idx:
                return "row not in the table"
            if self.on_highlight is not None:
                self.on_highlight(sent.table_id, sent.keys[idx[0]])
            return None
        if mtype == "table.select.rowList":
            idx = self._indices(params.get("row-list", []), len(sent.keys))
            if self.on_select is not None:
                self.on_select(sent.table_id, [sent.keys[i] for i in idx])
            return None
        return f"{mtype} is not handled"

    def _safe_handle(self, mtype: str, params: Any) -> str | None:
        if not isinstance(params, dict):
            return "bad parameters"
        try:
            return self._handle(mtype, params)
        except Exception as exc:
            log.exception("SAMP %s", mtype)
            return _one_line(exc)

    def _on_call(
        self, private_key: str, sender_id: str, msg_id: str, mtype: str, params: Any, extra: Any
    ) -> None:
        why = self._safe_handle(mtype, params)
        c = self._client
        if c is None:
            return
        try:
            if why is None:
                c.ereply(msg_id, "samp.ok", result={})
            else:
                c.ereply(msg_id, "samp.error", error={"samp.errortxt": why})
        except Exception as exc:
            log.warning("SAMP reply to %s failed: %s", mtype, _one_line(exc))

    def _on_notify(
        self, private_key: str, sender_id: str, mtype: str, params: Any, extra: Any
    ) -> None:
        why = self._safe_handle(mtype, params)
        if why is not None:
            log.info("SAMP %s from %s ignored: %s", mtype, sender_id, why)

    def _on_event(
        self, private_key: str, sender_id: str, mtype: str, params: Any, extra: Any
    ) -> None:
        if mtype == "samp.hub.event.shutdown":
            # drop the client on another thread: this one is the client's own server thread
            threading.Thread(target=self._hub_shut_down, daemon=True).start()
            return
        if self.on_clients is not None:
            try:
                self.on_clients()
            except Exception:
                log.exception("SAMP clients callback failed")

    def _hub_shut_down(self) -> None:
        with self._lock:
            if self._client is None:
                return
            self._drop_client()
            self._set_state(HUB_LOST, "the SAMP hub shut down; reconnecting when back")

    def _on_response(
        self, private_key: str, responder_id: str, msg_tag: str, response: Any
    ) -> None:
        name = responder_id
        with contextlib.suppress(Exception):
            name = str(self._client.get_metadata(responder_id).get("samp.name") or responder_id)
        self.responses.append((name, msg_tag, dict(response or {})))
        with self._lock:
            done = self._waiting.pop(msg_tag, None)
        if done is not None:
            self._replies[msg_tag] = dict(response or {})
            done.set()
        status = (response or {}).get("samp.status")
        if status != "samp.ok":
            err = ((response or {}).get("samp.error") or {}).get("samp.errortxt", status)
            log.warning("SAMP client %s: %s", name, err)
