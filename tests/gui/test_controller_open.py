"""The window shows a cached folder as the cache remembers it, then as the scan finds it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from conftest import wait_embedded

from galaxy_explorer.core import workflows


def test_window_shows_remembered_rows_then_the_scanned_folder(qtbot, make_window, cutouts):
    first = make_window([cutouts])
    wait_embedded(qtbot, first)
    assert first.c.n == 8
    first.close()
    gone = sorted(cutouts.iterdir())[0]
    gone.unlink()  # removed while the app was closed: the cache still remembers it

    win = make_window([cutouts])
    seen: list[tuple[int, bool]] = []
    win.c.catalogue_opened.connect(lambda: seen.append((win.c.n, win.c.scanning)))
    messages: list[str] = []
    win.c.status.connect(messages.append)
    wait_embedded(qtbot, win)
    c = win.c
    # first the 8 remembered rows (provisional), then the 7 the scan found
    assert seen == [(8, True), (7, False)]
    assert not c.scanning and c.n == 7 and bool(c.have.all())
    assert gone not in {it.path for it in c.items}
    assert win.map.point_count == 7
    assert any("1 removed since last time" in m for m in messages)


def test_unchanged_folder_is_opened_once_and_keeps_its_vectors(qtbot, make_window, cutouts):
    first = make_window([cutouts])
    wait_embedded(qtbot, first)
    before = first.c.vectors[first.c.have].copy()
    first.close()

    win = make_window([cutouts])
    seen: list[int] = []
    win.c.catalogue_opened.connect(lambda: seen.append(win.c.n))
    wait_embedded(qtbot, win)
    assert seen == [8] and not win.c.scanning
    np.testing.assert_array_equal(win.c.vectors[win.c.have], before)


def test_a_folder_gone_before_the_scan_is_a_cannot_open_error(qtbot):
    """The scan failing after provisional rows is "Cannot open", not a model error."""
    from galaxy_explorer.gui.controller import Controller

    c = Controller(umap=False)
    errors: list[tuple[str, str]] = []
    c.error.connect(lambda t, m: errors.append((t, m)))
    item = SimpleNamespace(path=__import__("pathlib").Path("/x/a.png"), sha256="0" * 64, name="a")
    c._on_open_event(
        workflows.Opened(
            SimpleNamespace(scan_errors=[]), [item], None, [None], 0, None, None, {}, True
        )
    )
    assert c.scanning and c.n == 1
    c._on_job_failed("/x: no such file or directory", "")
    assert errors == [("Cannot open", "/x: no such file or directory")]
    c.shutdown()


def test_blas_leaves_a_core_to_the_gui_thread(qtbot):
    """Spinning BLAS threads took the GUI thread's core (a 1k PCA: 2-7 s with 2 threads on
    2 cores under load, 0.4 s with 1): the app's BLAS uses one thread less than the CPUs."""
    import os

    from threadpoolctl import threadpool_info

    from galaxy_explorer.gui.controller import Controller

    c = Controller(umap=False)
    want = max(1, (os.cpu_count() or 2) - 1)
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    assert blas and all(i["num_threads"] <= want for i in blas)
    c.shutdown()


def test_the_open_job_starts_once_the_window_has_been_painted(
    qtbot, make_window, cutouts, monkeypatch
):
    """The open worker waits for the window's first paint (and a moment of settling): the
    first showing calls into Python hundreds of times, and each call waited for the GIL
    while the worker built a million rows, a 0.5 s freeze at 1M (#12)."""
    from galaxy_explorer.gui import main_window

    real = workflows.open_and_embed
    painted_when_started: list[bool] = []
    win_box: list = []  # the window, as soon as it exists (before its open job starts)

    def spy(*a, **k):
        painted_when_started.append(win_box[0]._painted.is_set() if win_box else False)
        return real(*a, **k)

    monkeypatch.setattr(workflows, "open_and_embed", spy)
    real_init = main_window.MainWindow.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        win_box.append(self)

    monkeypatch.setattr(main_window.MainWindow, "__init__", init)
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    assert painted_when_started == [True]
    assert win.c.n == 8 and bool(win.c.have.all())


def test_an_open_without_a_painted_window_waits_at_most_the_gate(qtbot, monkeypatch):
    """A controller whose window never paints still opens, after OPEN_GATE_S."""
    import threading
    import time

    from galaxy_explorer.gui import controller as C

    c = C.Controller(umap=False)
    c.open_gate = threading.Event()  # never set
    t0 = time.perf_counter()
    started: list[float] = []

    def spy(*a, **k):
        started.append(time.perf_counter() - t0)
        return iter(())

    monkeypatch.setattr(workflows, "open_and_embed", spy)
    c._start_open_job([], keep_examples=False)
    qtbot.waitUntil(lambda: bool(started), timeout=10000)
    assert C.OPEN_GATE_S - 0.05 <= started[0] < C.OPEN_GATE_S + 5
    c.shutdown()
