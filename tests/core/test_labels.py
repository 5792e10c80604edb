from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from galaxy_explorer.core import labels as labels_mod
from galaxy_explorer.core.labels import LabelsFileError, LabelStore, default_labels_path

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_set_get_and_persist(tmp_path):
    path = tmp_path / "sub" / "labels.json"
    store = LabelStore(path)
    assert store.all() == {} and not path.exists()
    assert store.set([A, B], "spiral", paths=["/x/a.fits", "/x/b.fits"])
    assert store.get(A) == "spiral" and store.get(C) is None
    assert store.path_of(A) == Path("/x/a.fits")
    # persisted immediately: a fresh store sees it
    again = LabelStore(path)
    assert again.all() == {A: "spiral", B: "spiral"}
    assert again.path_of(B) == Path("/x/b.fits")
    doc = json.loads(path.read_text())
    assert doc["labels"][A] == {"label": "spiral", "path": "/x/a.fits"}


def test_clear_with_none_and_counts(tmp_path):
    store = LabelStore(tmp_path / "l.json")
    store.set([A, B, C], "elliptical")
    store.set([B], 'merger, "tidal"')
    assert store.counts() == {"elliptical": 2, 'merger, "tidal"': 1}
    store.set([A], None)
    assert store.get(A) is None and A not in store and len(store) == 2
    assert LabelStore(tmp_path / "l.json").all() == {B: 'merger, "tidal"', C: "elliptical"}


def test_undo_redo_multi_item_step(tmp_path):
    path = tmp_path / "l.json"
    store = LabelStore(path)
    assert not store.undo() and not store.redo()
    store.set([A], "spiral")
    store.set([A, B, C], "elliptical")  # one step covering three items
    assert store.all() == {A: "elliptical", B: "elliptical", C: "elliptical"}
    assert store.can_undo and not store.can_redo
    assert store.undo()
    assert store.all() == {A: "spiral"}
    assert LabelStore(path).all() == {A: "spiral"}  # undo persisted too
    assert store.can_redo
    assert store.redo()
    assert store.all() == {A: "elliptical", B: "elliptical", C: "elliptical"}
    assert not store.redo()
    assert store.undo() and store.undo()
    assert store.all() == {} and not store.undo()
    assert LabelStore(path).all() == {}


def test_new_set_clears_redo(tmp_path):
    store = LabelStore(tmp_path / "l.json")
    store.set([A], "x")
    store.undo()
    store.set([B], "y")
    assert not store.redo()
    assert store.all() == {B: "y"}


def test_noop_set_records_no_step(tmp_path):
    store = LabelStore(tmp_path / "l.json")
    store.set([A], "x", paths=["/old/a.fits"])
    assert not store.set([A], "x")
    assert not store.set([B], None)
    # same label, new path: remembered, but not an undo step
    assert not store.set([A], "x", paths={A: "/new/a.fits"})
    assert store.path_of(A) == Path("/new/a.fits")
    assert LabelStore(tmp_path / "l.json").path_of(A) == Path("/new/a.fits")
    assert store.undo() and store.all() == {}
    assert not store.can_undo


def test_invalid_arguments(tmp_path):
    store = LabelStore(tmp_path / "l.json")
    with pytest.raises(ValueError):
        store.set([A], "  ")
    with pytest.raises(ValueError):
        store.set([A, B], "x", paths=["/only/one"])
    assert store.set(A, "single-string-sha")
    assert store.get(A) == "single-string-sha"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'{"format": "galaxy-explorer-labels", "version": 1, "labels": {"x": 3}}',
    ],
)
def test_corrupt_file_kept_aside_with_clear_error(tmp_path, content):
    path = tmp_path / "labels.json"
    path.write_bytes(content)
    with pytest.raises(LabelsFileError) as info:
        LabelStore(path)
    err = info.value
    assert str(path) in str(err) and "unreadable labels file" in str(err)
    assert err.backup is not None and err.backup.exists()
    assert err.backup.name.startswith("labels.json.corrupt-")
    assert err.backup.read_bytes() == content  # never silently dropped
    assert not path.exists()
    # reopening starts empty and works
    store = LabelStore(path)
    assert store.all() == {}
    store.set([A], "x")
    assert LabelStore(path).all() == {A: "x"}


def test_two_corrupt_files_in_same_second_both_kept(tmp_path):
    path = tmp_path / "labels.json"
    backups = []
    for content in (b"one", b"two"):
        path.write_bytes(content)
        with pytest.raises(LabelsFileError) as info:
            LabelStore(path)
        backups.append(info.value.backup)
    assert backups[0] != backups[1]
    assert {b.read_bytes() for b in backups} == {b"one", b"two"}


def test_crash_mid_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "labels.json"
    store = LabelStore(path)
    store.set([A], "spiral")
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(labels_mod.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.set([B], "elliptical")
    # the file on disk is the previous one, and memory was rolled back to match
    assert path.read_bytes() == before
    assert store.all() == {A: "spiral"}
    assert sorted(os.listdir(tmp_path)) == ["labels.json"]  # no temp file left behind
    with pytest.raises(OSError):
        store.undo()
    assert store.all() == {A: "spiral"} and store.can_undo
    monkeypatch.undo()
    assert LabelStore(path).all() == {A: "spiral"}
    assert store.undo() and store.all() == {}


def test_crash_during_write_of_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "labels.json"
    store = LabelStore(path)
    store.set([A], "spiral")
    before = path.read_bytes()

    def crash(fd):
        raise OSError("simulated power cut during fsync")

    monkeypatch.setattr(labels_mod.os, "fsync", crash)
    with pytest.raises(OSError):
        store.set([A, B], "other")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert LabelStore(path).all() == {A: "spiral"}


def test_default_labels_path(tmp_path):
    root = tmp_path / "my survey, DR1"
    root.mkdir()
    p = default_labels_path(root, tmp_path / "cache")
    assert p.parent == tmp_path / "cache" / "labels"
    assert p.suffix == ".json" and p.name.startswith("my_survey_DR1-")
    assert default_labels_path(root, tmp_path / "cache") == p
    other = tmp_path / "elsewhere" / "my survey, DR1"
    other.mkdir(parents=True)
    assert default_labels_path(other, tmp_path / "cache") != p


def test_two_stores_on_one_file_do_not_overwrite_each_other(tmp_path):
    path = tmp_path / "l.json"
    one = LabelStore(path)
    two = LabelStore(path)
    one.set([A], "spiral")
    two.set([B], "elliptical")  # two re-reads the file first
    assert two.all() == {A: "spiral", B: "elliptical"}
    one.set([C], "merger")
    assert LabelStore(path).all() == {A: "spiral", B: "elliptical", C: "merger"}
    assert one.undo()  # undoes only one's own step
    assert LabelStore(path).all() == {A: "spiral", B: "elliptical"}
    two.reload()
    assert two.all() == {A: "spiral", B: "elliptical"}
    assert sorted(two.shas_with("spiral")) == [A]


def test_file_corrupted_by_someone_else_is_kept_aside_then_rewritten(tmp_path):
    path = tmp_path / "l.json"
    store = LabelStore(path)
    store.set([A], "spiral")
    path.write_text("{garbage")
    store.set([B], "elliptical")
    assert LabelStore(path).all() == {A: "spiral", B: "elliptical"}
    kept = list(tmp_path.glob("l.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{garbage"
