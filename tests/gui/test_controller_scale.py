"""The controller's slots do no Python work per catalogue row on the GUI thread."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tests.helpers import LineCounter


class _Item:
    __slots__ = ("path", "sha256")

    def __init__(self, i: int) -> None:
        self.path = Path(f"/cat/part{i // 1000:04d}/g{i:07d}.png")
        self.sha256 = f"{i:064x}"

    @property
    def name(self) -> str:
        return self.path.name


def _controller(n: int, manual: dict[int, str] | None = None):
    from galaxy_explorer.core import workflows
    from galaxy_explorer.gui.controller import Controller

    c = Controller(umap=False)
    items = [_Item(i) for i in range(n)]  # in path order, as a scan returns them
    labels = [None] * n
    for r, lab in (manual or {}).items():
        labels[r] = lab
    c.state.open(
        items,
        manual=labels,
        sha_rows={},
        name_order=np.arange(n, dtype=np.int64),
        manual_counts=workflows.manual_counts(labels),
    )
    return c


def test_a_failed_image_finds_its_row_without_a_map_of_every_row():
    n = 200_000
    c = _controller(n)
    bad = 123_456
    progress = SimpleNamespace(errors=[(str(c.items[bad].path), "truncated file")])
    with LineCounter() as calls:
        c._on_progress(progress)
    assert c.failed == {bad: "truncated file"}
    assert calls.n < 5000, calls.n
    c.shutdown()


def test_propagate_finds_the_labelled_rows_on_the_worker(qtbot):
    n = 200_000
    manual = {10: "a", 20: "a", 30: "a", 40: "b", 50: "b", 60: "b"}
    c = _controller(n, manual)
    c.session = SimpleNamespace()  # any open session
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((n, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    c.state.add_rows(np.arange(n), vecs)
    with qtbot.waitSignal(c.suggestions_changed, timeout=60000):
        with LineCounter() as calls:
            c.propagate()
        assert calls.n < 5000, calls.n  # the GUI thread's part
    assert c.suggestion(0) is not None and c.suggestion(10) is None
    c.shutdown()


def test_workers_get_the_vector_matrix_itself_when_every_row_has_one():
    """Query, zero-shot and PCA tasks read all rows without a copy (1.5 GB at 1M x 384,
    made while holding the GIL); a subset is still gathered."""
    from galaxy_explorer.gui.controller import _rows_of

    v = np.zeros((6, 3), np.float32)
    assert _rows_of(v, np.arange(6)) is v
    sub = _rows_of(v, np.array([1, 4]))
    assert sub.shape == (2, 3) and sub.base is not v


def test_the_open_job_builds_its_rows_with_the_collector_paused_then_frozen(qtbot, monkeypatch):
    """Full garbage-collector passes over a million rows' objects held the GIL for up to
    1.9 s each while a catalogue opened (#12): the scan runs with the collector paused,
    what it built is frozen, and the manual labels reach the GUI thread as codes."""
    import gc

    from galaxy_explorer.core import workflows
    from galaxy_explorer.gui.controller import Controller

    seen: dict[str, object] = {}
    n = 5000

    def fake_open(roots, *, cancel=None, **opts):
        seen["gc_during_scan"] = gc.isenabled()
        items = [_Item(i) for i in range(n)]
        manual = ["a" if i % 3 == 0 else None for i in range(n)]
        yield workflows.Opened(
            SimpleNamespace(close=lambda: None, scan_errors=[]),
            items,
            SimpleNamespace(warnings=[]),
            manual,
            0,
            workflows.rows_by_sha(items),
            np.arange(n, dtype=np.int64),
            workflows.manual_counts(manual),
        )
        seen["gc_after_scan"] = gc.isenabled()

    monkeypatch.setattr(workflows, "open_and_embed", fake_open)
    frozen = gc.get_freeze_count()
    c = Controller(umap=False)
    try:
        c._labels_timer.setInterval(10**6)
        with qtbot.waitSignal(c.job_finished, timeout=30000):
            c._start_open_job([Path("/cat")], keep_examples=True)
        assert seen == {"gc_during_scan": False, "gc_after_scan": True}
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + n  # the items (at least) were frozen
        from galaxy_explorer.core.state import ManualLabels

        assert isinstance(c.state.manual, ManualLabels)  # encoded on the worker
        assert c.state.manual.rows_with("a").tolist() == list(range(0, n, 3))
        assert c.manual_counts() == {"a": len(range(0, n, 3))}
    finally:
        c.shutdown()
        gc.unfreeze()


def test_renaming_a_manual_label_finds_its_rows_without_walking_them(monkeypatch):
    n = 200_000
    c = _controller(n, {5: "old", 150_000: "old", 7: "other"})
    c.session = SimpleNamespace()
    got = {}
    monkeypatch.setattr(c, "set_manual_label", lambda rows, label: got.update(rows=rows))
    with LineCounter() as calls:
        assert c.rename_manual_label("old", "new") == 2
    assert list(got["rows"]) == [5, 150_000]
    assert calls.n < 5000, calls.n
    c.shutdown()


def test_the_map_projection_finds_its_rows_on_the_worker_and_runs_once_per_rows(qtbot, monkeypatch):
    """The embedded rows of a 1M catalogue were found on the GUI thread before every PCA
    (0.1-0.2 s under load), and a cached open projected the same rows twice (#12)."""
    import threading

    from galaxy_explorer.core import projection
    from galaxy_explorer.core.state import AppState

    n = 3000
    c = _controller(n)
    c.umap_enabled = False
    c.state.add_rows(np.arange(n), np.eye(n, 8, dtype=np.float32) + 0.1)
    main = threading.main_thread()
    real_rows = AppState.embedded_rows
    real_apply = projection.pca_apply
    projected = []

    def rows_off_gui(self):
        assert threading.current_thread() is not main, "embedded rows found on the GUI thread"
        return real_rows(self)

    def apply(basis, vectors, rows=None):
        projected.append(len(vectors) if rows is None else len(rows))
        return real_apply(basis, vectors, rows)

    monkeypatch.setattr(AppState, "embedded_rows", rows_off_gui)
    monkeypatch.setattr(projection, "pca_apply", apply)
    with qtbot.waitSignal(c.projection_changed, timeout=30000):
        c._run_pca()  # the first points, as cached vectors arrive
    c._run_pca(final=True)  # the job is done: the same rows, no second PCA
    qtbot.wait(300)
    c.heavy.wait(30000)
    assert projected == [n]
    assert c.coords_kind == "pca" and np.isfinite(c.coords).all()
    c.shutdown()


def test_accepting_a_million_suggestions_does_no_python_per_row(monkeypatch):
    """Accept all few-shot suggestions at scale: rows grouped per label with numpy (a Python
    step per row froze the window), the right rows per label, suggestions dropped."""
    n = 300_000
    c = _controller(n)
    c.session = SimpleNamespace()
    rng = np.random.default_rng(3)
    sug = rng.integers(-1, 3, n).astype(np.int32)  # -1: no suggestion
    c.state.suggestion_classes = ["spiral", "elliptical", "merger"]
    c.state.suggested = sug.copy()
    got: dict[str, np.ndarray] = {}
    monkeypatch.setattr(
        c, "set_manual_label", lambda rows, label: got.update({label: np.asarray(rows)})
    )
    with LineCounter() as calls:
        c.accept_suggestions()
    assert calls.n < 5000, calls.n
    for code, lab in enumerate(c.state.suggestion_classes):
        assert np.array_equal(got[lab], np.flatnonzero(sug == code))
    assert (c.state.suggested == -1).all()
    # a given subset: only those rows, and rows without a suggestion are left alone
    c.state.suggested = sug.copy()
    got.clear()
    some = np.array([0, 1, 2, 3, 10, 99_999, n - 1, n + 5, -2])
    c.accept_suggestions(some)
    valid = some[(some >= 0) & (some < n)]
    for code, lab in enumerate(c.state.suggestion_classes):
        want = valid[sug[valid] == code]
        if len(want):
            assert np.array_equal(np.sort(got[lab]), np.sort(want))
        else:
            assert lab not in got
    left = sug.copy()
    left[valid] = -1
    assert np.array_equal(c.state.suggested, left)
    c.shutdown()


def test_streaming_pca_keeps_its_basis_until_the_rows_double(qtbot):
    """While images stream in, new points join the map on screen (the basis fitted before
    is kept, old points do not move) until the embedded rows have doubled; the map of the
    finished job is fitted afresh."""
    n = 4000
    c = _controller(n)
    rng = np.random.default_rng(1)
    d = 8

    def vectors(k: int, wide: int) -> np.ndarray:
        v = rng.standard_normal((k, d)).astype(np.float32) * 0.05
        v[:, wide] += rng.standard_normal(k).astype(np.float32) * 3  # the main direction
        return v

    def projected(final: bool = False) -> np.ndarray:
        before = c.state.coords
        c._run_pca(final=final)
        qtbot.waitUntil(lambda: c.state.coords is not before, timeout=10000)
        return c.state.coords.copy()

    c.state.add_rows(np.arange(0, 1000), vectors(1000, 0))
    first = projected()
    assert np.isfinite(first[:1000]).all()
    # 600 more rows (not doubled), spread along another axis: placed with the old basis
    c.state.add_rows(np.arange(1000, 1600), vectors(600, 1) * 3)
    second = projected()
    np.testing.assert_array_equal(second[:1000], first[:1000])
    assert np.isfinite(second[:1600]).all()
    # past double the fitted rows, the basis is fitted again: the new main axis shows
    c.state.add_rows(np.arange(1600, 4000), vectors(2400, 1) * 3)
    third = projected()
    assert not np.allclose(third[:1000], first[:1000], atol=1e-3)
    # the job's final map is fitted on all rows: it equals a fresh PCA of them
    from galaxy_explorer.core.projection import pca_2d

    c._pca_key = None
    final = projected(final=True)
    np.testing.assert_allclose(final, pca_2d(c.state.vectors), atol=1e-4)
    c.shutdown()


def test_a_zero_shot_result_of_a_switched_model_is_dropped():
    """A zero-shot result that lands after the model was switched (the adapter is None
    or another one) is stale: no AttributeError in the event loop, nothing applied (it
    raised in CI when the result came in while the new model was loading)."""
    c = _controller(10)
    old = SimpleNamespace(logit_scale=100.0)
    lv = np.eye(3, 8, dtype=np.float32)
    rows = np.arange(10)
    probs = np.full((10, 3), 1 / 3, np.float32)
    c.adapter = None  # set_model() cleared it; the new one is loading
    c._on_label_vectors((lv, rows, probs, None, old))
    assert c.state.label_vecs is None
    c.adapter = SimpleNamespace(logit_scale=50.0)  # the new model
    c._on_label_vectors((lv, rows, probs, None, old))
    assert c.state.label_vecs is None
    c.shutdown()
