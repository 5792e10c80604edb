"""Fixtures for the desktop-app tests: a real MainWindow on the tiny model, torn down cleanly."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from galaxy_explorer.core.state import NO_PREDICTION

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")


@pytest.fixture
def gui_env(tmp_path, monkeypatch):
    """Private data / log / settings / cache locations for one test."""
    monkeypatch.setenv("GALAXY_EXPLORER_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GALAXY_EXPLORER_LOG", str(tmp_path / "gui.log"))
    return SimpleNamespace(
        cache=tmp_path / "cache", settings=tmp_path / "settings.ini", tmp=tmp_path
    )


@pytest.fixture
def make_window(qtbot, gui_env, tiny_model):
    """Factory: ``make_window(paths, **controller_options)`` → shown MainWindow.

    Every window is closed at teardown (which stops its workers); the test then fails if a
    worker thread was left running.
    """
    from PySide6.QtCore import QSettings

    from galaxy_explorer.gui.app import create_window

    windows = []
    before = {t.ident for t in threading.enumerate()}

    def make(paths, size=(1280, 800), **options):
        options.setdefault("umap", False)  # UMAP has its own test; numba is slow to import
        settings = QSettings(str(gui_env.settings), QSettings.Format.IniFormat)
        win = create_window(
            [Path(p) for p in paths] if paths is not None else None,
            model=str(tiny_model),
            cache_dir=gui_env.cache,
            settings=settings,
            **options,
        )
        win.quiet_errors = True
        if size:
            win.resize(*size)
        win.show()
        windows.append(win)
        return win

    yield make
    for w in windows:
        if w.isVisible():
            w.close()
        else:
            w.c.shutdown()
            w.thumbs.shutdown()
    qtbot.wait(10)
    for w in windows:
        assert not w.c.job_running
        left = w.c.background_tasks()
        assert not left, f"worker tasks left running: {[t.kind for t in left]}"
    leaked = [
        t
        for t in threading.enumerate()
        if t.ident not in before
        and t.is_alive()
        and t.name.startswith("ge-")
        # the UMAP worker lives for the whole app session by design (numba compiles once)
        and t.name != "ge-umap-reader"
    ]
    assert not leaked, f"threads left running: {leaked}"


def wait_embedded(qtbot, win, timeout=30000):
    """Wait until the window's embedding job has finished and every image has a vector."""
    c = win.c
    qtbot.waitUntil(lambda: c.n > 0 and not c.job_running, timeout=timeout)
    qtbot.waitUntil(
        lambda: win.map.point_count == int(c.have.sum()) and c.have.any(), timeout=timeout
    )


def wait_predictions(qtbot, win, timeout=15000):
    c = win.c
    qtbot.waitUntil(
        lambda: (
            c.probs is not None
            and c.have.any()
            and bool((c.predicted[c.have] != NO_PREDICTION).all())
        ),
        timeout=timeout,
    )
