"""The app's state (core/state.py), driven without Qt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from galaxy_explorer.core import workflows
from galaxy_explorer.core.defaults import UNCERTAIN, LabelDef
from galaxy_explorer.core.state import NO_PREDICTION, NO_SUGGESTION, AppState


class _Item:
    def __init__(self, i, sha=None):
        self.path = Path(f"/data/g{i}.png")
        self.name = f"g{i}.png"
        self.sha256 = sha or f"{i:064x}"


def _unit(n, d=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class _Recorder:
    def __init__(self, state):
        self.events = []
        for name in (
            "opened",
            "rows_added",
            "embeddings_changed",
            "projection_changed",
            "query_changed",
            "scores_changed",
            "label_defs_changed",
            "predictions_changed",
            "labels_changed",
            "suggestions_changed",
            "selection_changed",
            "current_changed",
            "color_mode_changed",
        ):
            getattr(state, name).connect(lambda *a, _n=name: self.events.append((_n, *a)))

    def names(self):
        return [e[0] for e in self.events]

    def clear(self):
        self.events.clear()


def _state(n=6, labels=("a", "b")):
    s = AppState([LabelDef(x) for x in labels], ["{}"])
    s.open([_Item(i) for i in range(n)])
    return s


def test_open_resets_rows_and_emits():
    s = AppState([LabelDef("a")], ["{}"])
    rec = _Recorder(s)
    s.open([_Item(i) for i in range(4)], manual=["x", None, "x", "y"])
    assert s.n == 4 and not s.have.any() and s.current == -1
    assert s.manual_counts == {"x": 2, "y": 1} and s.manual_label(3) == "y"
    assert {"opened", "labels_changed", "scores_changed", "predictions_changed"} <= set(rec.names())
    with pytest.raises(ValueError):
        s.open([_Item(0)], manual=["x", "y"])


def test_another_catalogue_drops_example_chips_but_keeps_text():
    s = _state()
    s.add_rows(np.arange(6), _unit(6))
    s.set_query_text("spiral")
    s.add_example_rows([1], positive=True)
    s.add_example("outside.png", _unit(1, seed=3)[0], positive=False)
    assert s.query.describe() == "'spiral' +g1.png -outside.png"
    s.open([_Item(i) for i in range(3)])  # a rescan of the same catalogue keeps them
    assert s.query.has_examples
    rec = _Recorder(s)
    s.open([_Item(i) for i in range(3)], keep_examples=False)
    assert not s.query.has_examples and s.query.text == "spiral"
    assert s.query.describe() == "'spiral'" and "query_changed" in rec.names()


def test_rows_stream_in_with_scores_and_probabilities():
    s = _state()
    rec = _Recorder(s)
    vecs = _unit(6)
    s.add_rows(np.array([0, 1]), vecs[:2])
    qv = vecs[0]
    s.set_scores(qv, np.array([0, 1]), vecs[:2] @ qv)
    s.set_label_vectors(_unit(2, seed=5), 100.0, np.array([0, 1]), None)
    assert np.isfinite(s.probs[:2]).all() and np.isnan(s.probs[2:]).all()  # late rows done
    rec.clear()
    new = s.add_rows(np.array([1, 2, 3]), vecs[1:4])
    assert new.tolist() == [2, 3]
    assert rec.events[0][0] == "rows_added" and rec.events[0][1].tolist() == [2, 3]
    assert s.have.tolist() == [True] * 4 + [False] * 2
    # vectors are rounded as the float16 cache stores them
    np.testing.assert_array_equal(s.vectors[2], vecs[2].astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(s.scores[2:4], s.vectors[2:4] @ qv, atol=1e-6)
    assert np.isnan(s.scores[4:]).all()
    assert np.isfinite(s.probs[:4]).all() and (s.predicted[:4] != NO_PREDICTION).all()
    assert (s.predicted[4:] == NO_PREDICTION).all()


def test_threshold_gives_an_explicit_uncertain_mask():
    s = _state(4)
    s.add_rows(np.arange(3), _unit(3))
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7]], np.float32)
    s.set_label_vectors(_unit(2, seed=1), 100.0, np.arange(3), probs)
    rec = _Recorder(s)
    s.set_threshold(0.6)
    assert rec.names() == ["predictions_changed"]
    assert s.uncertain.tolist() == [False, True, False, False]
    assert s.predicted.tolist() == [0, 0, 1, NO_PREDICTION]  # the best class is kept
    assert [s.predicted_label(r) for r in range(4)] == ["a", UNCERTAIN, "b", None]
    assert s.predicted_counts() == {"a": 1, "b": 1, UNCERTAIN: 1}
    assert s.probabilities(1) == {"a": pytest.approx(0.55), "b": pytest.approx(0.45)}
    assert s.probabilities(3) is None
    s.set_label_vectors(None)
    assert s.predicted_label(0) is None and not s.uncertain.any()


def test_clear_query_clears_scores():
    s = _state()
    s.add_rows(np.arange(6), _unit(6))
    s.set_query_text("x")
    s.set_scores(_unit(1)[0], np.arange(6), np.linspace(0, 1, 6).astype(np.float32))
    assert s.query_score(5) == pytest.approx(1.0)
    assert s.ranking(2).tolist() == [5, 4]
    rec = _Recorder(s)
    s.clear_query()
    assert s.scores is None and s.query_score(5) is None and not s.query.active
    assert "scores_changed" in rec.names() and "query_changed" in rec.names()
    assert s.ranking().tolist() == list(range(6))


def test_manual_label_changes_are_incremental():
    s = AppState([LabelDef("a")], ["{}"])
    items = [_Item(0), _Item(1), _Item(2, sha=_Item(0).sha256)]  # a duplicate file
    s.open(items)
    rec = _Recorder(s)
    assert s.apply_label_changes({items[0].sha256: "ring"})
    assert s.manual == ["ring", None, "ring"] and s.manual_counts == {"ring": 2}
    assert rec.names() == ["labels_changed"]
    assert not s.apply_label_changes({items[0].sha256: "ring"})  # nothing new
    s.apply_label_changes({items[0].sha256: None, items[1].sha256: "bar"})
    assert s.manual_counts == {"bar": 1}


def test_suggestions_skip_labelled_rows_and_carry_confidence():
    s = _state(6)
    vecs = _unit(6)
    s.add_rows(np.arange(6), vecs)
    s.apply_label_changes({s.items[0].sha256: "x", s.items[1].sha256: "y"})
    res = workflows.propagate(vecs, [0, 1], ["x", "y"], np.arange(6))
    s.set_suggestions(res)
    assert s.suggestion(0) is None and s.suggestion(1) is None
    name, conf = s.suggestion(3)
    assert name in ("x", "y") and 0.5 <= conf <= 1.0
    s.drop_suggestions([3])
    assert s.suggestion(3) is None and s.suggestion(4) is not None
    s.drop_suggestions()
    assert (s.suggested == NO_SUGGESTION).all()


def test_selection_current_and_colour_mode():
    s = _state(5)
    rec = _Recorder(s)
    s.set_selection([3, 3, 9, -1], "map")
    assert s.selection.tolist() == [3] and s.current == 3
    assert rec.events[:2] == [("selection_changed", "map"), ("current_changed", 3)]
    rec.clear()
    s.set_selection(np.array([3]), "gallery")
    assert rec.events == []  # unchanged: no event
    s.set_color_mode("manual")
    assert rec.events == [("color_mode_changed", "manual")]
    with pytest.raises(ValueError):
        s.set_color_mode("rainbow")


def test_projection_keeps_umap_and_drops_stale_results():
    s = _state(5)
    s.add_rows(np.arange(3), _unit(3))
    rows = np.arange(3)
    assert s.set_projection("pca", rows, np.zeros((3, 2)))
    assert s.set_projection("umap", rows, np.ones((3, 2))) and s.coords_kind == "umap"
    assert not s.set_projection("pca", rows, np.zeros((3, 2)))  # UMAP of the same rows stays
    s.add_rows(np.array([3]), _unit(1, seed=4))
    assert not s.set_projection("umap", rows, np.ones((3, 2)))  # stale: a row arrived since
    assert s.set_projection("pca", np.arange(4), np.zeros((4, 2))) and s.coords_kind == "pca"
    s.discard_vectors()
    assert not s.have.any() and s.coords_kind == "" and np.isnan(s.coords).all()


def test_cached_rows_from_a_worker_are_taken_over_without_a_copy():
    """``RowsFound`` is rounded on the worker; the GUI thread neither rounds nor copies it."""
    items = [_Item(i) for i in range(6)]
    s = AppState([LabelDef("a")], ["{}"])
    s.open(items)
    raw = _unit(6)
    found = workflows.rows_for(items, [it.sha256 for it in items][::-1], raw[::-1])
    assert found.vectors.dtype == np.float32
    np.testing.assert_array_equal(found.vectors, raw.astype(np.float16).astype(np.float32))
    new = s.add_rows(found.rows, found.vectors, rounded=True)
    assert new.tolist() == list(range(6)) and s.have.all()
    assert s.vectors is found.vectors  # every row, in order: adopted as it is
    # a part of the rows is written into the matrix (which is kept)
    s.open(items)
    part = workflows.rows_for(items, [items[1].sha256, items[4].sha256], raw[[1, 4]])
    s.add_rows(part.rows, part.vectors, rounded=True)
    assert s.vectors is not part.vectors and s.vectors.shape == (6, 8)
    assert s.have.tolist() == [False, True, False, False, True, False]
    np.testing.assert_array_equal(s.vectors[[1, 4]], part.vectors)
    # without ``rounded`` the vectors are still rounded and copied
    s.open(items)
    s.add_rows(np.arange(6), raw)
    assert s.vectors is not raw
    np.testing.assert_array_equal(s.vectors, raw.astype(np.float16).astype(np.float32))


def test_name_order_is_built_off_the_gui_thread_and_handed_over():
    """The gallery's name order comes with ``Opened`` (worker); the state keeps it as it is."""
    names = ["b.png", "A.png", "c.png", "a.png", "B.png"]
    items = [_Item(i) for i in range(5)]
    for it, name in zip(items, names, strict=True):
        it.name = name
    order = workflows.name_order(items)
    assert order.tolist() == [1, 3, 0, 4, 2]  # case-insensitive, stable
    s = AppState([LabelDef("a")], ["{}"])
    s.open(items, name_order=order)
    assert s.name_order is order
    s.open(items)  # without it, built on demand (the same order)
    assert s.name_order is not order and s.name_order.tolist() == order.tolist()
    s.open(items[:3], name_order=order)  # a stale order of another length is not used
    assert s.name_order.tolist() == [1, 0, 2]


# ---------------------------------------------------------------------- display order
def _inputs(n: int, seed: int = 0):
    from galaxy_explorer.core.state import OrderInputs

    rng = np.random.default_rng(seed)
    have = rng.random(n) < 0.9
    scores = np.where(have, rng.random(n), np.nan).astype(np.float32)
    predicted = np.where(have, rng.integers(0, 3, n), NO_PREDICTION).astype(np.int32)
    confidence = np.where(have, rng.random(n), 0).astype(np.float32)
    uncertain = have & (confidence < 0.3)
    name_order = rng.permutation(n).astype(np.int64)
    return OrderInputs(n, name_order, have, scores, confidence, predicted, uncertain)


def test_display_order_sorts_by_score_confidence_class_and_name():
    from galaxy_explorer.core.state import display_order

    inp = _inputs(500)
    rank_in_names = np.empty(500, dtype=np.int64)
    rank_in_names[inp.name_order] = np.arange(500)
    by_name = display_order(inp, "name")
    assert by_name.tolist() == inp.name_order.tolist()
    by_score = display_order(inp, "score")
    s = inp.scores[by_score]
    known = np.isfinite(s)
    assert known[: known.sum()].all() and not known[known.sum() :].any()  # unscored last
    assert (np.diff(s[known]) <= 0).all()
    # rows without a score keep name order
    tail = by_score[~known]
    assert (np.diff(rank_in_names[tail]) > 0).all()
    by_conf = display_order(inp, "confidence")
    c = np.where(inp.have, inp.confidence, -1)[by_conf]
    assert (np.diff(c) <= 0).all()
    by_class = display_order(inp, "class")
    group = np.where(inp.have, inp.predicted, 4)
    group = np.where(inp.have & inp.uncertain, 3, group)[by_class]
    assert (np.diff(group) >= 0).all()  # classes in order, uncertain, then no prediction
    for g in range(4):
        cg = inp.confidence[by_class][group == g]
        assert (np.diff(cg) <= 0).all()  # most confident first within a class
    assert sorted(by_class.tolist()) == list(range(500))
    with pytest.raises(ValueError, match="sort must be one of"):
        display_order(inp, "colour")


def test_display_order_filters_by_rows_and_mask():
    from galaxy_explorer.core.state import display_order

    inp = _inputs(100)
    rows = np.array([5, 7, 99, 150, -1, 7])
    out = display_order(inp, "name", rows=rows)
    assert sorted(out.tolist()) == [5, 7, 99]
    mask = np.zeros(100, dtype=bool)
    mask[[7, 42]] = True
    assert display_order(inp, "name", rows=rows, mask=mask).tolist() == [7]
    assert len(display_order(inp, "name", mask=np.ones(3, dtype=bool))) == 100  # mis-sized


def test_display_order_of_a_million_rows_runs_no_per_row_python():
    import sys

    from galaxy_explorer.core.state import display_order

    inp = _inputs(1_000_000)
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    for sort in ("score", "confidence", "class", "name"):
        calls = 0
        sys.setprofile(count)
        try:
            out = display_order(inp, sort, rows=np.arange(0, 1_000_000, 2))
        finally:
            sys.setprofile(None)
        assert len(out) == 500_000
        assert calls < 200, (sort, calls)  # a handful of numpy wrappers, never one per row


def test_order_inputs_are_copies_of_arrays_changed_in_place():
    st = _state(4)
    inp = st.order_inputs()
    st.have[:] = True
    assert not inp.have.any()  # the worker's copy does not change under it
    assert inp.n == 4 and len(inp.name_order) == 4


def test_adding_rows_marks_new_ones_without_sorting(monkeypatch):
    """The rows that got a vector are found with a mask: no O(N log N) sort on the GUI
    thread when a whole cached catalogue arrives at once."""
    st = _state(1000)
    sorts = []
    real = np.unique
    monkeypatch.setattr(np, "unique", lambda *a, **k: sorts.append(1) or real(*a, **k))
    rows = np.array([5, 3, 3, 999, 0], dtype=np.int64)
    new = st.add_rows(rows, _unit(5))
    assert new.tolist() == [0, 3, 5, 999]
    assert st.add_rows(np.array([3, 4]), _unit(2)).tolist() == [4]
    assert not sorts


def test_opening_with_counts_from_the_worker_walks_no_row_in_python():
    """Manual labels counted on the open worker are taken over: opening a big catalogue
    runs no Python per row on the GUI thread."""
    import sys

    n = 200_000
    items = [_Item(0)] * n
    manual = [None] * n
    manual[7] = manual[9] = "a"
    counts = workflows.manual_counts(manual)
    assert counts == {"a": 2}
    st = AppState([LabelDef("a")], ["{}"])
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        st.open(
            items,
            manual=manual,
            sha_rows={},
            name_order=np.arange(n, dtype=np.int64),
            manual_counts=counts,
        )
    finally:
        sys.setprofile(None)
    assert st.manual_counts == {"a": 2} and st.manual_label(9) == "a"
    assert calls < 1000, calls  # signals and a few helpers, not one call per row


def test_a_batch_is_classified_without_reclassifying_every_row(monkeypatch):
    """Rows streaming in are classified alone (O(batch) per batch on the GUI thread), with
    the same predictions a full classification gives."""
    import galaxy_explorer.core.state as state_mod

    s = _state(2000, labels=("a", "b", "c"))
    vecs = _unit(2000, seed=3)
    s.add_rows(np.arange(100), vecs[:100])
    s.set_label_vectors(_unit(3, seed=5), 100.0, np.arange(100), None)
    s.set_threshold(0.6)
    sizes = []
    real = state_mod.classify
    monkeypatch.setattr(
        state_mod, "classify", lambda p, *a, **k: sizes.append(len(p)) or real(p, *a, **k)
    )
    before = s.predictions
    s.add_rows(np.arange(100, 116), vecs[100:116])
    assert sizes and max(sizes) == 16
    assert s.predictions is not before and before.predicted[100] == NO_PREDICTION  # new arrays
    full = workflows.classify(np.where(s.have[:, None], s.probs, np.nan), 0.6)
    np.testing.assert_array_equal(s.predicted, full.predicted)
    np.testing.assert_array_equal(s.confidence, full.confidence)
    np.testing.assert_array_equal(s.uncertain, full.uncertain)


def test_display_order_by_manual_label_groups_in_label_order_unlabelled_last():
    from galaxy_explorer.core.state import display_order

    st = _state(8, labels=("spiral", "elliptical"))
    st.set_manual_labels(
        {
            st.items[0].sha256: "elliptical",
            st.items[2].sha256: "zebra",
            st.items[3].sha256: "spiral",
            st.items[5].sha256: "Alien",
            st.items[6].sha256: "elliptical",
        }
    )
    inp = st.order_inputs(labels=True)
    # the classes in their order, then the other labels alphabetically (the map legend's)
    assert inp.label_order == ["spiral", "elliptical", "Alien", "zebra"]
    out = display_order(inp, "label")
    # within a label and among the unlabelled, rows keep name order (stable)
    assert out.tolist() == [3, 0, 6, 5, 2, 1, 4, 7]
    # the copy is the worker's: a later label change does not reach it
    st.apply_label_changes({st.items[1].sha256: "spiral"})
    assert display_order(inp, "label").tolist() == out.tolist()
    # without the labels (a plain order_inputs) the order is name order, not an error
    assert display_order(st.order_inputs(), "label").tolist() == list(range(8))


def test_display_order_by_column_key_ascending_missing_last_stable_ties():
    from galaxy_explorer.core.state import OrderInputs, display_order

    n = 7
    names = np.array([6, 5, 4, 3, 2, 1, 0])  # reverse name order: ties follow it
    key = np.array([2.0, np.nan, 1.0, 2.0, np.nan, -np.inf, 1.0])
    inp = OrderInputs(n, names, np.ones(n, bool), column_key=key)
    assert display_order(inp, "column").tolist() == [5, 6, 2, 3, 0, 4, 1]
    built = []
    inp.column_key = lambda: built.append(1) or key  # built where the order is computed
    assert display_order(inp, "column").tolist() == [5, 6, 2, 3, 0, 4, 1] and built
    inp.column_key = None  # no catalogue: name order
    assert display_order(inp, "column").tolist() == names.tolist()
    inp.column_key = np.zeros(3)  # a key of another catalogue's length is not used
    assert display_order(inp, "column").tolist() == names.tolist()


def test_label_and_column_orders_of_a_million_rows_make_no_call_per_row():
    """No Python function call per row (the label codes are one dict look-up per row in a
    list comprehension per 32k-row chunk, on the worker: faster than comparing with each
    label in numpy, and the GIL is given up between bytecodes)."""
    import sys

    from galaxy_explorer.core.state import OrderInputs, display_order

    n = 1_000_000
    rng = np.random.default_rng(2)
    names = ["spiral", "elliptical", "ring", None]
    manual = [names[i] for i in rng.integers(0, 4, n).tolist()]
    key = rng.normal(size=n)
    key[rng.random(n) < 0.1] = np.nan
    inp = OrderInputs(
        n,
        rng.permutation(n).astype(np.int64),
        np.ones(n, bool),
        manual=manual,
        label_order=["spiral", "elliptical", "ring"],
        column_key=key,
    )
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    for sort in ("label", "column"):
        calls = 0
        sys.setprofile(count)
        try:
            out = display_order(inp, sort)
        finally:
            sys.setprofile(None)
        assert len(out) == n
        assert calls < 400, (sort, calls)  # per chunk of 32k rows at most, never per row
    lab = display_order(inp, "label")
    group = np.array([{"spiral": 0, "elliptical": 1, "ring": 2, None: 3}[m] for m in manual])
    assert (np.diff(group[lab]) >= 0).all()
    col = display_order(inp, "column")
    k = key[col]
    fin = np.isfinite(k)
    assert fin[: fin.sum()].all() and (np.diff(k[fin]) >= 0).all()


def test_manual_labels_are_integer_codes_that_read_like_strings():
    from galaxy_explorer.core.state import ManualLabels

    m = ManualLabels.encode(["ring", None, "bar", "ring", None], chunk=2)
    assert m.codes.dtype == np.int32 and m.codes.tolist() == [0, -1, 1, 0, -1]
    assert m.names == ["ring", "bar"]
    assert m == ["ring", None, "bar", "ring", None] and len(m) == 5
    assert m[2] == "bar" and m[1] is None and m[-1] is None and m[:2] == ["ring", None]
    assert m.rows_with("ring").tolist() == [0, 3] and m.rows_with("nope").tolist() == []
    assert m.labelled().tolist() == [True, False, True, True, False]
    assert m.code("bar") == 1 and m.code("new") == -1 and m.code(None) == -1
    assert m.code("new", add=True) == 2 and m.names[-1] == "new"
    c = m.copy()
    c.codes[0] = 2
    assert m[0] == "ring" and c[0] == "new"  # the copy is independent


def test_open_takes_encoded_labels_over_and_changes_keep_codes_and_counts():
    from galaxy_explorer.core.state import ManualLabels

    s = AppState([LabelDef("a")], ["{}"])
    items = [_Item(i) for i in range(4)]
    enc = ManualLabels.encode(["x", None, "y", "x"])
    s.open(items, manual=enc)
    assert s.manual is enc  # taken over: no per-row work on the GUI thread
    assert s.manual_counts == {"x": 2, "y": 1}
    assert s.apply_label_changes({items[1].sha256: "z", items[2].sha256: None})
    assert s.manual == ["x", "z", None, "x"] and s.manual_counts == {"x": 2, "z": 1}
    snap = s.snapshot()
    s.apply_label_changes({items[0].sha256: "z"})
    assert snap.manual[0] == "x" and s.manual[0] == "z"  # the snapshot is a copy
    s.set_manual_labels({items[3].sha256: "q"})
    assert s.manual == [None, None, None, "q"] and s.manual_counts == {"q": 1}


@pytest.mark.parametrize("case", ["every row", "late rows", "lost vectors"])
def test_worker_predictions_and_thresholds_never_classify_every_row_here(monkeypatch, case):
    """Classifying all N rows on the GUI thread took 0.5-0.7 s at 1M (#12): the worker's
    classification is taken over, a threshold only redoes the uncertain mask, and the
    result equals classifying everything here."""
    from galaxy_explorer.core import state as state_mod
    from galaxy_explorer.core.search import zero_shot

    n = 40
    s = _state(n, labels=("a", "b", "c"))
    vecs = _unit(n, seed=3)
    lv = _unit(3, seed=4)
    s.set_threshold(0.5)
    s.add_rows(np.arange(n), vecs)
    rows = np.arange(n) if case != "late rows" else np.arange(0, n, 2)  # others came later
    probs = zero_shot(s.vectors[rows], lv, 100.0)
    part = workflows.classify(probs)  # as the worker makes it
    if case == "lost vectors":
        s.have[5:9] = False  # e.g. rows whose vectors were discarded meanwhile
    real = state_mod.classify

    def boom(probs, *a, **k):
        if probs is None or len(probs) >= n:  # a few late rows may be classified here
            raise AssertionError("classified every row on the calling thread")
        return real(probs, *a, **k)

    monkeypatch.setattr(state_mod, "classify", boom)
    s.set_label_vectors(lv, 100.0, rows, probs, part)
    s.set_threshold(0.7)
    monkeypatch.setattr(state_mod, "classify", real)
    ref = real(np.where(s.have[:, None], zero_shot(s.vectors, lv, 100.0), np.nan), 0.7)
    assert np.array_equal(s.predicted, ref.predicted)
    assert np.allclose(s.confidence, ref.confidence, atol=1e-6)
    assert np.array_equal(s.uncertain, ref.uncertain)
    assert s.uncertain.any() and (~s.uncertain & (s.predicted >= 0)).any()
    if case == "every row":
        assert s.probs is probs  # handed over, not copied


def test_projection_of_every_row_is_taken_over_and_a_subset_is_placed():
    s = _state(5)
    s.add_rows(np.arange(5), _unit(5))
    xy = np.arange(10, dtype=np.float32).reshape(5, 2)
    assert s.set_projection("pca", np.arange(5), xy)
    assert s.coords is xy and s.coords_kind == "pca"  # no 1M scatter on the GUI thread
    part = np.ones((2, 2), np.float32)
    assert s.set_projection("pca", np.array([1, 3]), part)
    assert s.coords is not part and np.isnan(s.coords[[0, 2, 4]]).all()
    assert (s.coords[[1, 3]] == 1).all()
    shuffled = np.array([0, 2, 1, 3, 4])  # not in order: placed row by row
    assert s.set_projection("pca", shuffled, xy)
    assert s.coords is not xy and s.coords[2].tolist() == xy[1].tolist()
