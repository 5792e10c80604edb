"""The SAMP menu: talk to TOPCAT, Aladin, DS9 through a SAMP hub.

:class:`SampMenu` puts a "SAMP" menu into the main window and a connection label into its
status bar. It drives a Qt-free :class:`galaxy_explorer.core.samp.SampLink`; every network
call runs on one worker thread (``ge-samp``), never on the GUI thread, and everything that
arrives from the hub (astropy's threads) comes to the GUI thread through a queued signal.

Menu
    Connect to Hub, Start Hub and Connect, Disconnect; "Send Selection to ▸" (all clients
    or one), "Send Image to ▸" (the current FITS cutout, ``image.load.fits``), "Point at ▸"
    (its RA/Dec, ``coord.pointAt.sky``).
Incoming
    ``table.select.rowList`` / ``table.highlight.row`` for a table sent from here select /
    make current those galaxies (matched by row and content hash, so a table sent before
    the catalogue changed selects nothing wrong). ``table.load.votable`` goes to the handler
    set with :meth:`SampMenu.set_table_handler` (the catalogue opener); without one it is
    refused. Only the Standard Profile is used; the Web Profile is never opened.

Signals
-------
==================  ============  ===========================================
signal              arguments     emitted when
==================  ============  ===========================================
state_changed       str, str      connection state (and detail) changed
clients_changed     object        the client list was refreshed (list)
sent                str           a send finished ("sent N rows to TOPCAT")
rows_selected       object        an incoming selection was applied (rows)
==================  ============  ===========================================
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes, urlparse

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu

from galaxy_explorer.core.samp import CONNECTED, DISCONNECTED, HUB_LOST, ClientInfo, SampError

log = logging.getLogger(__name__)

__all__ = ["SampMenu", "install_samp_menu"]

_FITS = (".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fit.gz")


class SampMenu(QObject):
    """The SAMP menu, status label and message handling of one main window.

    Parameters
    ----------
    window : MainWindow
        The window (its controller ``window.c``, menu bar and status bar are used).
    lockfile : path, optional
        Hub lockfile (default ``$SAMP_HUB`` or ``~/.samp``).
    """

    state_changed = Signal(str, str)
    clients_changed = Signal(object)
    sent = Signal(str)
    rows_selected = Signal(object)
    _incoming = Signal(str, object)  # from any thread → GUI thread (queued)

    def __init__(self, window: Any, lockfile: str | os.PathLike[str] | None = None) -> None:
        super().__init__(window)
        from galaxy_explorer.core.samp import SampLink

        self.w = window
        self.c = window.c
        self.clients: list[ClientInfo] = []
        self._table_handler: Callable[[Path, str], None] | None = None
        self._pending: dict[str, tuple[str | None, list[tuple[int, str]]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ge-samp")
        self._closed = False
        self._incoming.connect(self._on_incoming)
        self.link = SampLink(
            lockfile=lockfile,
            on_state=lambda s, d: self._incoming.emit("state", (s, d)),
            on_clients=lambda: self._submit(self._refresh_clients),
            on_highlight=lambda tid, key: self._incoming.emit("highlight", key),
            on_select=lambda tid, keys: self._incoming.emit("select", keys),
        )
        self._build()
        self.c.export_finished.connect(self._on_export_finished)

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        w = self.w
        m = QMenu("S&AMP", w)
        m.setObjectName("SampMenu")
        self.menu = m
        self.connect_action = self._act(
            m, "&Connect to Hub", self.connect_hub, "Connect to a running SAMP hub (TOPCAT, Aladin)"
        )
        self.start_hub_action = self._act(
            m,
            "&Start Hub and Connect",
            lambda: self.connect_hub(start_hub=True),
            "Start a SAMP hub here (Standard Profile, this machine only) and connect",
        )
        self.disconnect_action = self._act(m, "&Disconnect", self.disconnect_hub, "Leave the hub")
        m.addSeparator()
        self.send_menu = m.addMenu("Send &Selection to")
        self.image_menu = m.addMenu("Send &Image to")
        self.point_menu = m.addMenu("&Point at")
        m.aboutToShow.connect(self._update_actions)
        # before the Help menu, if there is one
        mb = w.menuBar()
        help_action = next((a for a in mb.actions() if a.text().replace("&", "") == "Help"), None)
        if help_action is not None:
            mb.insertMenu(help_action, m)
        else:
            mb.addMenu(m)
        self.status_label = QLabel("SAMP: off")
        self.status_label.setToolTip("SAMP hub connection (SAMP menu)")
        w.statusBar().addPermanentWidget(self.status_label)
        self._rebuild_client_menus()
        self._update_actions()

    def _act(self, menu: QMenu, text: str, slot: Any, tip: str) -> QAction:
        a = QAction(text, self.w)
        a.setStatusTip(tip)
        a.setToolTip(tip)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def _rebuild_client_menus(self) -> None:
        for menu, mtype, slot in (
            (self.send_menu, "table.load.votable", self.send_selection),
            (self.image_menu, "image.load.fits", self.send_image),
            (self.point_menu, "coord.pointAt.sky", self.point_at),
        ):
            menu.clear()
            able = [c for c in self.clients if c.accepts(mtype)]
            a = menu.addAction("All Clients")
            a.setEnabled(bool(able))
            a.triggered.connect(lambda _=False, s=slot: s(None))
            menu.addSeparator()
            for cl in able:
                act = menu.addAction(cl.name)
                act.setData(cl.id)
                act.triggered.connect(lambda _=False, s=slot, cid=cl.id: s(cid))
            if not able:
                none = menu.addAction(
                    "(no client accepts this)" if self.link.connected else "(not connected)"
                )
                none.setEnabled(False)

    @Slot()
    def _update_actions(self) -> None:
        on = self.link.connected
        self.connect_action.setEnabled(not on)
        self.start_hub_action.setEnabled(not on)
        self.disconnect_action.setEnabled(on)
        sel = len(getattr(self.c, "selection", [])) > 0
        cur = self._current_path()
        self.send_menu.setEnabled(on and sel)
        self.image_menu.setEnabled(on and cur is not None and cur.name.lower().endswith(_FITS))
        self.point_menu.setEnabled(on and cur is not None)

    def _current_path(self) -> Path | None:
        row = int(getattr(self.c, "current", -1))
        if 0 <= row < self.c.n:
            return Path(self.c.items[row].path)
        return None

    # ------------------------------------------------------------------ worker
    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._closed:
            return

        def run() -> None:
            try:
                fn(*args)
            except SampError as exc:
                self._incoming.emit("error", str(exc))
            except Exception as exc:  # a bug: say so, keep the app alive
                log.exception("SAMP")
                self._incoming.emit("error", f"{type(exc).__name__}: {exc}")

        self._pool.submit(run)

    def _refresh_clients(self) -> None:
        if self.link.connected:
            self._incoming.emit("clients", self.link.clients())
        else:
            self._incoming.emit("clients", [])

    # ------------------------------------------------------------------ actions
    def connect_hub(self, start_hub: bool = False) -> None:
        """Connect (off the GUI thread); with ``start_hub`` start a hub here first."""
        self.status_label.setText("SAMP: connecting…")

        def run() -> None:
            self.link.connect(start_hub=start_hub)
            self.link.start_watch()
            self._refresh_clients()

        self._submit(run)

    def disconnect_hub(self) -> None:
        """Leave the hub (and stop a hub started here)."""

        def run() -> None:
            self.link.stop_watch()
            self.link.disconnect()
            self._incoming.emit("clients", [])

        self._submit(run)

    def send_selection(self, client: str | None = None) -> None:
        """Send the selected rows as a VOTable to ``client`` (an id) or to all clients."""
        rows = [int(r) for r in getattr(self.c, "selection", [])]
        if not rows:
            self.w._on_error("SAMP", "Nothing is selected.")
            return
        # the one row builder: the controller's export, written as VOTable off-thread
        out = self.link.workdir() / f"selection-{uuid.uuid4().hex[:12]}.vot"
        keys = [(r, str(self.c.items[r].sha256)) for r in rows]
        self._pending[str(out)] = (client, keys)
        self.c.export_csv(out, rows)

    @Slot(str, int)
    def _on_export_finished(self, path: str, count: int) -> None:
        job = self._pending.pop(path, None)
        if job is None:
            return
        client, keys = job
        name = "galaxy-explorer selection"

        def run() -> None:
            _sent, results = self.link.send_table(Path(path), name=name, keys=keys, client=client)
            self._incoming.emit("sent", (count, results))

        self._submit(run)

    def send_image(self, client: str | None = None) -> None:
        """Send the current FITS cutout with ``image.load.fits``."""
        p = self._current_path()
        if p is None:
            return
        self._submit(
            lambda: self._incoming.emit("sent", (0, self.link.send_image(p, client=client)))
        )

    def point_at(self, client: str | None = None) -> None:
        """Send the current item's RA/Dec with ``coord.pointAt.sky`` (read off-thread)."""
        p = self._current_path()
        if p is None:
            return

        def run() -> None:
            from galaxy_explorer.core import imaging

            try:
                ra, dec = imaging.sky_position(p)
            except Exception:
                ra = dec = None
            if ra is None or dec is None:
                raise SampError(f"{p.name}: no sky position (no celestial WCS in the header)")
            self._incoming.emit("sent", (0, self.link.point_at(ra, dec, client=client)))

        self._submit(run)

    def set_table_handler(self, handler: Callable[[Path, str], None] | None) -> None:
        """Who opens an incoming ``table.load.votable`` (a local file): ``handler(path, name)``.

        It is called on the GUI thread. Without a handler incoming tables are refused.
        """
        self._table_handler = handler
        self.link.on_load_table = (
            None
            if handler is None
            else (lambda url, tid, name: self._incoming.emit("table", (url, name)))
        )

    def shutdown(self) -> None:
        """Leave the hub, stop a hub started here, stop the worker (window closing)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.c.export_finished.disconnect(self._on_export_finished)
        except (RuntimeError, TypeError):
            pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        t = threading.Thread(target=self.link.close, name="samp-close", daemon=True)
        t.start()
        t.join(timeout=15)

    # ------------------------------------------------------------------ incoming (GUI thread)
    @Slot(str, object)
    def _on_incoming(self, kind: str, payload: Any) -> None:
        if self._closed:
            return
        if kind == "state":
            state, detail = payload
            self._show_state(state, detail)
            if state == CONNECTED:
                self._submit(self._refresh_clients)
            self.state_changed.emit(state, detail)
        elif kind == "clients":
            self.clients = list(payload)
            self._rebuild_client_menus()
            self._show_state(self.link.state, "")
            self._update_actions()
            self.clients_changed.emit(self.clients)
        elif kind == "error":
            self._show_state(self.link.state, "")
            self.w._on_error("SAMP", str(payload))
        elif kind == "sent":
            count, results = payload
            ok = [n for n, r in results.items() if r in ("ok", "sent")]
            bad = {n: r for n, r in results.items() if r not in ("ok", "sent")}
            what = f"{count} rows" if count else "it"
            text = f"SAMP: sent {what} to {', '.join(ok)}" if ok else "SAMP: nothing sent"
            if bad:
                text += "; " + "; ".join(f"{n}: {r}" for n, r in bad.items())
            self.w._on_status(text)
            self.sent.emit(text)
        elif kind == "select":
            rows = self._rows_for(payload)
            self.c.set_selection(rows, source="samp")
            if rows:
                self.c.set_current(rows[0])
            self.w._on_status(f"SAMP: {len(rows)} selected from another application")
            self.rows_selected.emit(rows)
        elif kind == "highlight":
            rows = self._rows_for([payload])
            if rows:
                self.c.set_current(rows[0])
        elif kind == "table":
            url, name = payload
            p = urlparse(url)
            if p.scheme != "file" or self._table_handler is None:
                self.w._on_status("SAMP: only local table files are opened")
                return
            self._table_handler(Path(os.fsdecode(unquote_to_bytes(p.path))), name)

    def _rows_for(self, keys: list[tuple[int, str]]) -> list[int]:
        """App rows of sent keys that still hold the same file (O(len(keys)))."""
        out = []
        items = self.c.items
        for row, sha in keys:
            if 0 <= row < len(items) and str(items[row].sha256) == sha:
                out.append(row)
        return out

    def _show_state(self, state: str, detail: str) -> None:
        if state == CONNECTED:
            n = len(self.clients)
            own = ", own hub" if self.link.owns_hub else ""
            text = f"SAMP: connected ({n} client{'s' if n != 1 else ''}{own})"
        elif state == HUB_LOST:
            text = "SAMP: hub lost, reconnecting…"
        elif state == DISCONNECTED:
            text = "SAMP: off"
        else:
            text = f"SAMP: {state}"
        self.status_label.setText(text)
        names = ", ".join(c.name for c in self.clients) or "none"
        self.status_label.setToolTip(f"SAMP {state}. Clients: {names}. {detail}".strip())


def install_samp_menu(window: Any, lockfile: str | os.PathLike[str] | None = None) -> SampMenu:
    """Add the SAMP menu and status label to ``window``; returns the :class:`SampMenu`."""
    return SampMenu(window, lockfile=lockfile)
