"""Labelling a large selection does not freeze the window (issue #12): the store write and
the sha → row mapping run on a worker, label actions stay in order, undo restores."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from galaxy_explorer.core.labels import LabelStore
from tests.helpers import LineCounter


class _Item:
    __slots__ = ("path", "sha256")

    def __init__(self, i: int) -> None:
        self.path = Path(f"/cat/g{i:07d}.png")
        self.sha256 = f"{i:064x}"


def _controller(tmp_path: Path, n: int):
    from galaxy_explorer.gui.controller import Controller

    c = Controller(umap=False)
    c.state.open([_Item(i) for i in range(n)], manual=[None] * n)
    c.session = SimpleNamespace()  # any open session
    c.label_store = LabelStore(tmp_path / "labels.sqlite")
    return c


class _Threads:
    """Records the thread each LabelStore.set / undo runs on."""

    def __init__(self, store: LabelStore) -> None:
        self.seen: list[str] = []
        for name in ("set", "undo", "redo"):
            fn = getattr(store, name)

            def wrapped(*a, _fn=fn, _name=name, **k):
                self.seen.append(f"{_name}@{threading.current_thread().name}")
                return _fn(*a, **k)

            setattr(store, name, wrapped)


def _settle(qtbot, c) -> None:
    qtbot.waitUntil(lambda: not c._label_busy(), timeout=120000)


def _stored(path: Path) -> dict[str, str]:
    s = LabelStore(path)
    try:
        return s.all()
    finally:
        s.close()


def test_a_big_label_runs_on_a_worker_and_is_saved(qtbot, tmp_path):
    n = 30_000
    c = _controller(tmp_path, n)
    threads = _Threads(c.label_store)
    busy: list[str] = []
    c.busy_changed.connect(busy.append)
    main = threading.current_thread().name
    with LineCounter() as calls:
        c.set_manual_label(np.arange(n), "spiral")
    assert calls.n < 5000, calls.n  # the GUI thread's part: no step per row
    assert busy and busy[0].startswith("Labelling 30,000 images")
    _settle(qtbot, c)
    assert threads.seen and all(not s.endswith("@" + main) for s in threads.seen), threads.seen
    assert c.manual_counts() == {"spiral": n}
    assert c.manual_label(0) == "spiral" and c.manual_label(n - 1) == "spiral"
    assert busy[-1] == ""
    stored = _stored(c.label_store.path)  # persisted: another process sees it
    assert len(stored) == n and set(stored.values()) == {"spiral"}

    # the undo of a big step runs on the worker too, and restores
    threads.seen.clear()
    assert c.undo_labels()
    _settle(qtbot, c)
    assert threads.seen and all(not s.endswith("@" + main) for s in threads.seen)
    assert c.manual_counts() == {} and c.manual_label(0) is None
    assert _stored(c.label_store.path) == {}
    assert c.redo_labels()
    _settle(qtbot, c)
    assert c.manual_counts() == {"spiral": n}
    c.shutdown()
    c.label_store.close()


def test_quick_consecutive_label_actions_end_in_order(qtbot, tmp_path):
    n = 30_000
    c = _controller(tmp_path, n)
    c.set_manual_label(np.arange(n), "a")  # big: on the worker
    c.set_manual_label(np.arange(10_000), "b")  # big, made while the first runs
    c.set_manual_label([5], "c")  # small, but must not overtake them
    assert c.rename_manual_label("a", "z") == 0  # the state has no 'a' yet: counted 0...
    c.rename_manual_label("b", "y")  # ... rows found when its turn comes
    _settle(qtbot, c)
    want = {"a": n - 10_000, "b": 10_000 - 1, "c": 1}
    assert c.manual_counts() == want
    assert c.manual_label(5) == "c" and c.manual_label(4) == "b" and c.manual_label(10_000) == "a"
    stored = _stored(c.label_store.path)
    assert stored[c.items[5].sha256] == "c" and stored[c.items[4].sha256] == "b"
    assert sum(v == "a" for v in stored.values()) == n - 10_000

    # a rename of many rows: found by one array comparison, written on the worker
    with LineCounter() as calls:
        assert c.rename_manual_label("a", "z") == n - 10_000
    assert calls.n < 5000, calls.n
    _settle(qtbot, c)
    assert c.manual_counts() == {"z": n - 10_000, "b": 9_999, "c": 1}

    # undo, one step at a time, back in order (queued behind each other)
    assert c.undo_labels() and c.undo_labels() and c.undo_labels()
    _settle(qtbot, c)
    assert c.manual_counts() == {"a": n}
    assert set(_stored(c.label_store.path).values()) == {"a"}
    c.shutdown()
    c.label_store.close()


def test_label_actions_still_queued_on_closing_are_saved(qtbot, tmp_path):
    n = 20_000
    c = _controller(tmp_path, n)
    c.set_manual_label(np.arange(n), "a")
    c.set_manual_label(np.arange(n // 2), "b")
    c.shutdown()  # waits for the write in progress, then saves what was queued
    path = c.label_store.path
    c.label_store.close()
    stored = _stored(path)
    assert len(stored) == n
    assert sum(v == "b" for v in stored.values()) == n // 2
