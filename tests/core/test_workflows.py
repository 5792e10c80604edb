"""The shared workflows (open/embed, rank, classify, propagate, project, export), without Qt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from galaxy_explorer.core import workflows
from galaxy_explorer.core.defaults import UNCERTAIN, LabelDef, load_default_labels
from galaxy_explorer.core.workflows import NO_PREDICTION


def _unit(rng, n, d=8):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ------------------------------------------------------------------ defaults
def test_one_source_of_default_templates():
    from galaxy_explorer._resources import resources_dir
    from galaxy_explorer.core.session import DEFAULT_TEMPLATES

    data = json.loads((resources_dir() / "default_labels.json").read_text(encoding="utf-8"))
    assert DEFAULT_TEMPLATES == data["templates"]
    defs, templates = load_default_labels()
    assert templates == data["templates"]
    assert [(d.name, d.prompt) for d in defs] == [
        (d["name"], d.get("prompt", "")) for d in data["labels"]
    ]


def test_broken_labels_file_falls_back(tmp_path, caplog):
    bad = tmp_path / "labels.json"
    bad.write_text('{"labels": [ {"name": ', encoding="utf-8")
    defs, templates = load_default_labels(bad)
    assert defs and all(isinstance(d, LabelDef) for d in defs)
    assert templates and all("{}" in t for t in templates)
    assert "could not read default labels" in caplog.text


# ------------------------------------------------------------------ classify
def test_classify_marks_uncertain_rows_with_a_mask():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [np.nan, np.nan], [0.2, 0.8]], dtype=np.float32)
    pred = workflows.classify(probs, threshold=0.6)
    assert pred.predicted.tolist() == [0, 0, NO_PREDICTION, 1]
    assert pred.uncertain.tolist() == [False, True, False, False]
    assert pred.known.tolist() == [True, True, False, True]
    assert pred.certain.tolist() == [True, False, False, True]
    assert np.allclose(pred.confidence, [0.9, 0.55, 0.0, 0.8])
    names = ["a", "b"]
    assert pred.labels(names) == ["a", UNCERTAIN, None, "b"]
    assert pred.counts(names) == {"a": 1, "b": 1, UNCERTAIN: 1}
    none = workflows.classify(None, 0.5, n=3)
    assert none.predicted.tolist() == [NO_PREDICTION] * 3 and not none.uncertain.any()


# ------------------------------------------------------------------ rank
def test_rank_by_text_and_examples_matches_search():
    from galaxy_explorer.core.search import combined_query

    rng = np.random.default_rng(0)
    vecs = _unit(rng, 20)

    class Adapter:
        dim = 8

        def embed_texts(self, texts):
            return _unit(np.random.default_rng(len(texts[0])), len(texts))

    a = Adapter()
    r = workflows.rank(vecs, a, text="spiral", positive=[vecs[3]], negative=[vecs[4]])
    expect = combined_query(
        vecs, text_vecs=a.embed_texts(["spiral"]), positive=vecs[3:4], negative=vecs[4:5]
    )
    np.testing.assert_allclose(r.scores, expect, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(vecs @ r.query_vector, r.scores, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError):
        workflows.rank(vecs, a)


def test_example_vector_is_cached(tiny_model, cutouts, tmp_path):
    from helpers import write_jpeg

    from galaxy_explorer.core.session import Session

    outside = write_jpeg(tmp_path / "example.jpg", seed=42)
    s = Session(cutouts, model=str(tiny_model), cache_dir=tmp_path / "cache")
    try:
        v1 = workflows.example_vector(s, outside)
        calls = []
        real = s.adapter.embed_images
        s.adapter.embed_images = lambda imgs: calls.append(1) or real(imgs)
        v2 = workflows.example_vector(s, outside)
        assert not calls, "the example's vector was computed again, not read from the cache"
        np.testing.assert_allclose(v1, v2, atol=1e-3)
    finally:
        s.close()


# ------------------------------------------------------------------ propagate
def test_propagate_reports_examples_and_warns_below_minimum():
    rng = np.random.default_rng(1)
    vecs = _unit(rng, 40)
    labelled = [0, 1, 2, 3]
    res = workflows.propagate(vecs, labelled, ["a", "a", "a", "b"], np.arange(40))
    assert res.examples == {"a": 3, "b": 1}
    assert set(res.rows.tolist()) == set(range(4, 40))  # labelled rows get no suggestion
    assert len(res.warnings) == 1 and "'b' (1)" in res.warnings[0]
    assert "unreliable" in res.warnings[0]
    conf = res.confidence
    assert conf.shape == (36,) and ((conf >= 0.5) & (conf <= 1.0)).all()
    np.testing.assert_allclose(conf, res.probs.max(axis=1))
    assert "from 4 examples (a 3, b 1)" in res.summary()

    ok = workflows.propagate(vecs, range(8), ["a"] * 4 + ["b"] * 4, np.arange(40))
    assert ok.warnings == [] and ok.method == "logistic"

    one = workflows.propagate(vecs, [0, 1, 2], ["a"] * 3, np.arange(40))
    assert any("Only one class" in w for w in one.warnings)

    with pytest.raises(workflows.PropagateError):
        workflows.propagate(vecs, [0], ["a"], np.arange(40))


# ------------------------------------------------------------------ project
def test_project_goes_through_projection_job(monkeypatch, tmp_path):
    from galaxy_explorer.core import jobs

    calls = []

    def spy(emb, config=None, cache_dir=None, **kw):  # the UMAP itself is tested in core
        calls.append((emb.shape, cache_dir))
        yield jobs.ProjectionProgress("pca", coords=np.zeros((len(emb), 2), np.float32))
        yield jobs.ProjectionProgress("done", coords=np.ones((len(emb), 2)), finished=True)

    monkeypatch.setattr(jobs, "projection_job", spy)
    emb = _unit(np.random.default_rng(2), 12)
    steps = list(workflows.project(emb, tmp_path, umap=True))
    assert calls == [((12, 8), tmp_path)]
    assert steps[0].stage == "pca" and steps[0].coords.shape == (12, 2)
    assert steps[-1].finished and steps[-1].coords.shape == (12, 2)

    calls.clear()
    only_pca = list(workflows.project(emb, tmp_path, umap=False))
    assert not calls and len(only_pca) == 1 and only_pca[0].finished
    assert only_pca[0].coords.shape == (12, 2)


# ------------------------------------------------------------------ export
class _Item:
    def __init__(self, i):
        self.path = Path(f"/data/g{i}.png")
        self.name = f"g{i}.png"
        self.sha256 = f"{i:064x}"


def test_export_rows_always_have_label_and_uncertain(tmp_path):
    from galaxy_explorer.core.export import read_csv, write_csv

    items = [_Item(i) for i in range(3)]
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [np.nan, np.nan]], np.float32)
    rows = workflows.export_rows(
        items,
        manual={items[0].sha256: "ring"},
        scores=np.array([0.3, np.nan, 0.1], np.float32),
        probs=probs,
        label_names=["a", "b"],
        threshold=0.6,
    )
    assert [r.label for r in rows] == ["ring", None, None]
    assert [r.predicted_label for r in rows] == ["a", UNCERTAIN, None]
    assert rows[1].score is None and rows[0].score == pytest.approx(0.3)
    assert rows[2].probs is None and rows[0].probs == {
        "a": pytest.approx(0.9),
        "b": pytest.approx(0.1),
    }

    # no zero-shot labels, no manual labels: the label column is still there
    bare = workflows.export_rows(items, manual=[None, None, None])
    prov = workflows.provenance(None, "rk", command="test", model_spec="m")
    out = tmp_path / "bare.csv"
    write_csv(out, bare, prov)
    _, table = read_csv(out)
    assert "label" in table[0] and all(r["label"] == "" for r in table)


def test_provenance_records_templates_and_prompts():
    defs, templates = load_default_labels()
    prov = workflows.provenance(None, "rk", command="gui export", model_spec="m", labels=defs)
    assert prov.labels == [d.name for d in defs]
    assert prov.prompts == templates  # the defaults when none are given
    assert json.loads(prov.extra["label_prompts"])[defs[0].name] == defs[0].text
    bare = workflows.provenance(None, "rk", command="x", model_spec="m")
    assert bare.labels is None and bare.prompts is None


# ------------------------------------------------------------------ open / embed
def test_open_and_embed_yields_typed_events(tiny_model, cutouts, tmp_path):
    def run():
        events = list(
            workflows.open_and_embed([cutouts], model=str(tiny_model), cache_dir=tmp_path / "c")
        )
        events[0].session.close()
        return events, [type(e).__name__ for e in events]

    first, kinds = run()
    assert kinds[0] == "Opened" and len(first[0].items) == 8
    # the gallery's name order is built here, on the worker
    assert first[0].name_order.tolist() == workflows.name_order(first[0].items).tolist()
    assert "ModelLoaded" in kinds and kinds[-1] == "EmbedProgress"
    assert sum(e.progress.embedded for e in first if isinstance(e, workflows.EmbedProgress)) == 8
    # a second open shows the cached vectors before the model has loaded
    again, names = run()
    assert names.index("RowsFound") < names.index("ModelLoaded")
    found = next(e for e in again if isinstance(e, workflows.RowsFound))
    assert sorted(found.rows.tolist()) == list(range(8)) and found.vectors.shape[0] == 8


def test_cli_classify_equals_the_apps_state_and_workflows(tiny_model, cutouts, tmp_path):
    """``classify`` without --labels and the app (state + workflows, as the controller
    drives them) give the same probabilities and the same "uncertain" rows."""
    from galaxy_explorer.cli import main
    from galaxy_explorer.core.export import read_csv
    from galaxy_explorer.core.state import AppState

    cache, out = tmp_path / "cache", tmp_path / "cli.csv"
    state = AppState()  # the app's default classes and templates
    adapter = session = None
    for ev in workflows.open_and_embed([cutouts], model=str(tiny_model), cache_dir=cache):
        if isinstance(ev, workflows.Opened):
            session = ev.session
            state.open(ev.items, manual=ev.manual)
        elif isinstance(ev, workflows.RowsFound):
            state.add_rows(ev.rows, ev.vectors)
        elif isinstance(ev, workflows.ModelLoaded):
            adapter = ev.adapter
        elif isinstance(ev, workflows.EmbedProgress):
            state.add_vectors(ev.progress.shas, ev.progress.vectors)
    session.close()
    rows = state.embedded_rows()
    lv = workflows.label_vectors(adapter, state.label_defs, state.templates)
    probs = workflows.zero_shot_probs(adapter, state.vectors[rows], lv)
    state.set_label_vectors(lv, adapter.logit_scale, rows, probs)
    thr = float(np.median(state.confidence[rows]))  # splits the catalogue
    state.set_threshold(thr)

    args = ["--model", str(tiny_model), "--cache", str(cache), "--csv", str(out), "-q"]
    assert main(["classify", str(cutouts), *args, "--threshold", repr(thr)]) == 0
    _, cli = read_csv(out)
    cli_rows = {r["path"]: r for r in cli}

    names = state.label_names()
    assert len(rows) == 8 and len(cli_rows) == 8
    for r in rows:
        row = cli_rows[str(state.items[r].path)]
        np.testing.assert_allclose(
            [float(row[f"p_{n}"]) for n in names], state.probs[r], rtol=1e-4, atol=1e-6
        )
        assert row["predicted_label"] == state.predicted_label(int(r))
    # the threshold splits the catalogue, so both sides were compared
    n_uncertain = sum(r["predicted_label"] == UNCERTAIN for r in cli)
    assert 0 < n_uncertain < 8 and n_uncertain == int(state.uncertain.sum())


def test_rows_for_hands_a_fully_cached_matrix_over_without_a_copy():
    """The store's array (float16 values in float32) becomes the rows' vectors as it is
    when every row has one, in order; with duplicate files it is gathered and rounded."""
    from types import SimpleNamespace

    from galaxy_explorer.core.workflows import rows_for

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((5, 4)).astype(np.float16).astype(np.float32)
    items = [SimpleNamespace(sha256=f"s{i}") for i in range(5)]
    shas = [f"s{i}" for i in range(5)]
    found = rows_for(items, shas, vecs, rounded=True)
    assert found.vectors is vecs and found.rows.tolist() == [0, 1, 2, 3, 4]
    # a duplicate file (row 5 has s1's content) and an unrounded source
    items.append(SimpleNamespace(sha256="s1"))
    raw = rng.standard_normal((5, 4)).astype(np.float32)
    got = rows_for(items, shas, raw)
    assert got.rows.tolist() == [0, 1, 2, 3, 4, 5]
    expected = raw[[0, 1, 2, 3, 4, 1]].astype(np.float16).astype(np.float32)
    assert got.vectors.dtype == np.float32 and np.array_equal(got.vectors, expected)
    assert got.vectors is not raw


def test_name_order_sorts_like_python_case_insensitively_and_stably(monkeypatch):
    from types import SimpleNamespace

    names = ["b.png", "A.png", "a.png", "é.fits", "Z.jpg", "a.png", "ab.png", "", "\udcff.png"]
    items = [SimpleNamespace(name=n) for n in names]
    expected = sorted(range(len(names)), key=lambda i: names[i].lower())
    assert workflows.name_order(items).tolist() == expected
    # very long names: the Python path gives the same order
    monkeypatch.setattr(workflows, "_NAME_SORT_BYTES", 1)
    assert workflows.name_order(items).tolist() == expected
    assert workflows.name_order([]).tolist() == []


def test_store_reads_in_chunks_give_what_one_read_gives(tmp_path):
    from galaxy_explorer.core.cache import EmbeddingStore

    store = EmbeddingStore(tmp_path, "model", "render", 4)
    try:
        rng = np.random.default_rng(0)
        shas = [f"{i:064x}" for i in range(10)]
        store.put(shas[::2], rng.standard_normal((5, 4)).astype(np.float32))
        whole, found = store.get(shas)
        parts, found2 = workflows.store_get(store, shas, chunk=3)
        np.testing.assert_array_equal(found, found2)
        np.testing.assert_array_equal(whole, parts)
        assert found.tolist() == [True, False] * 5
    finally:
        store.close()
