from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from galaxy_explorer.core import labels as labels_mod
from galaxy_explorer.core.labels import (
    LabelsFileError,
    LabelStore,
    LabelsVersionError,
    default_labels_path,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _legacy(path: Path, labels: dict[str, dict], version: int = 1) -> bytes:
    raw = json.dumps(
        {"format": "galaxy-explorer-labels", "version": version, "labels": labels}
    ).encode()
    path.write_bytes(raw)
    return raw


def test_set_get_and_persist(tmp_path):
    path = tmp_path / "sub" / "labels.sqlite"
    store = LabelStore(path)
    assert store.path == path and store.all() == {}
    assert store.set([A, B], "spiral", paths=["/x/a.fits", "/x/b.fits"])
    assert store.get(A) == "spiral" and store.get(C) is None
    assert store.path_of(A) == Path("/x/a.fits")
    # persisted immediately: a fresh store sees it
    again = LabelStore(path)
    assert again.all() == {A: "spiral", B: "spiral"}
    assert again.path_of(B) == Path("/x/b.fits")
    rows = sqlite3.connect(path).execute("SELECT sha, label, path FROM labels ORDER BY sha")
    assert rows.fetchall() == [(A, "spiral", b"/x/a.fits"), (B, "spiral", b"/x/b.fits")]


def test_json_name_means_sqlite_beside_it(tmp_path):
    store = LabelStore(tmp_path / "labels.json")
    assert store.path == tmp_path / "labels.sqlite"
    store.set([A], "x")
    assert not (tmp_path / "labels.json").exists()
    assert LabelStore(tmp_path / "labels.sqlite").all() == {A: "x"}


def test_clear_with_none_and_counts(tmp_path):
    store = LabelStore(tmp_path / "l.sqlite")
    store.set([A, B, C], "elliptical")
    store.set([B], 'merger, "tidal"')
    assert store.counts() == {"elliptical": 2, 'merger, "tidal"': 1}
    store.set([A], None)
    assert store.get(A) is None and A not in store and len(store) == 2
    assert store.counts() == {"elliptical": 1, 'merger, "tidal"': 1}
    assert LabelStore(tmp_path / "l.sqlite").all() == {B: 'merger, "tidal"', C: "elliptical"}


def test_undo_redo_multi_item_step(tmp_path):
    path = tmp_path / "l.sqlite"
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
    store = LabelStore(tmp_path / "l.sqlite")
    store.set([A], "x")
    store.undo()
    store.set([B], "y")
    assert not store.redo()
    assert store.all() == {B: "y"}


def test_noop_set_records_no_step(tmp_path):
    store = LabelStore(tmp_path / "l.sqlite")
    store.set([A], "x", paths=["/old/a.fits"])
    assert not store.set([A], "x")
    assert not store.set([B], None)
    # same label, new path: remembered, but not an undo step
    assert not store.set([A], "x", paths={A: "/new/a.fits"})
    assert store.path_of(A) == Path("/new/a.fits")
    assert LabelStore(tmp_path / "l.sqlite").path_of(A) == Path("/new/a.fits")
    assert store.undo() and store.all() == {}
    assert not store.can_undo


def test_invalid_arguments(tmp_path):
    store = LabelStore(tmp_path / "l.sqlite")
    with pytest.raises(ValueError):
        store.set([A], "  ")
    with pytest.raises(ValueError):
        store.set([A, B], "x", paths=["/only/one"])
    with pytest.raises(ValueError, match="valid Unicode"):
        store.set([A], "bad\udcff")
    assert store.set(A, "single-string-sha")
    assert store.get(A) == "single-string-sha"


def test_non_utf8_path_round_trips_exactly(tmp_path):
    raw = os.fsencode(tmp_path) + b"/gal\xff\xfe.png"
    with open(raw, "wb") as fh:
        fh.write(b"x")
    name = os.fsdecode(raw)  # str with surrogate escapes, as os.listdir / Path give it
    store = LabelStore(tmp_path / "l.sqlite")
    assert store.set([A], "spiral", paths=[name])
    assert store.set([B], "bar", paths=[raw])  # bytes paths are accepted too
    for s in (store, LabelStore(tmp_path / "l.sqlite")):
        for sha in (A, B):
            p = s.path_of(sha)
            assert os.fsencode(p) == raw and p.exists()


def test_default_labels_path(tmp_path):
    root = tmp_path / "my survey, DR1"
    root.mkdir()
    p = default_labels_path(root, tmp_path / "cache")
    assert p.parent == tmp_path / "cache" / "labels"
    assert p.suffix == ".sqlite" and p.name.startswith("my_survey_DR1-")
    assert default_labels_path(root, tmp_path / "cache") == p
    other = tmp_path / "elsewhere" / "my survey, DR1"
    other.mkdir(parents=True)
    assert default_labels_path(other, tmp_path / "cache") != p


def test_two_stores_on_one_file_do_not_overwrite_each_other(tmp_path):
    path = tmp_path / "l.sqlite"
    one = LabelStore(path)
    two = LabelStore(path)
    one.set([A], "spiral")
    two.set([B], "elliptical")
    assert two.all() == {A: "spiral", B: "elliptical"}
    one.set([C], "merger")
    assert LabelStore(path).all() == {A: "spiral", B: "elliptical", C: "merger"}
    assert one.undo()  # undoes only one's own step
    assert LabelStore(path).all() == {A: "spiral", B: "elliptical"}
    two.reload()
    assert two.all() == {A: "spiral", B: "elliptical"}
    assert sorted(two.shas_with("spiral")) == [A]
    assert two.counts() == {"spiral": 1, "elliptical": 1}


def test_undo_leaves_items_another_process_changed_since(tmp_path):
    path = tmp_path / "l.sqlite"
    one, two = LabelStore(path), LabelStore(path)
    one.set([A, B], "spiral")
    two.set([B], "merger")  # the other window relabels B afterwards
    assert one.undo()
    # A had one's label: reverted; B carries two's newer label: kept
    assert LabelStore(path).all() == {B: "merger"}
    assert one.redo()  # redo re-applies only what the undo reverted
    assert LabelStore(path).all() == {A: "spiral", B: "merger"}
    # two cannot undo one's step, only its own
    assert two.undo()
    assert LabelStore(path).all() == {A: "spiral", B: "spiral"}


def test_changes_since_is_incremental(tmp_path):
    path = tmp_path / "l.sqlite"
    one, two = LabelStore(path), LabelStore(path)
    token, changes = one.changes_since(0)
    assert changes == {}
    one.set([A, B], "x")
    token, changes = one.changes_since(token)
    assert changes == {A: "x", B: "x"}
    two.set([B], None)
    two.set([C], "y")
    token, changes = one.changes_since(token)
    assert changes == {B: None, C: "y"}
    assert one.changes_since(token) == (token, {})
    assert one.get(B) is None and one.get(C) == "y"  # the mirror was brought up to date


def test_save_failure_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "l.sqlite"
    monkeypatch.setattr(labels_mod, "_BUSY_TIMEOUT_S", 0.2)
    store = LabelStore(path)
    store.set([A], "spiral")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for too long
    try:
        with pytest.raises(OSError, match="could not save labels"):
            store.set([B], "elliptical")
        assert store.all() == {A: "spiral"} and store.can_undo
        with pytest.raises(OSError):
            store.undo()
        assert store.all() == {A: "spiral"} and store.can_undo
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.set([B], "elliptical")
    assert LabelStore(path).all() == {A: "spiral", B: "elliptical"}


# ------------------------------------------------------------------- JSON import
def test_json_file_imported_once_and_kept(tmp_path):
    legacy = tmp_path / "labels.json"
    raw = _legacy(
        legacy, {A: {"label": "spiral", "path": "/x/a.fits"}, B: {"label": "bar", "path": None}}
    )
    store = LabelStore(legacy)
    assert store.imported == 2
    assert store.all() == {A: "spiral", B: "bar"} and store.path_of(A) == Path("/x/a.fits")
    assert legacy.read_bytes() == raw  # kept, untouched
    store.set([A], None)
    store.set([C], "new")
    again = LabelStore(legacy)  # not imported a second time: A stays cleared
    assert again.imported is None
    assert again.all() == {B: "bar", C: "new"}
    # the default-path form (.sqlite named) imports the .json beside it too
    other = tmp_path / "o.sqlite"
    _legacy(tmp_path / "o.json", {A: {"label": "z", "path": None}})
    assert LabelStore(other).all() == {A: "z"}


def test_json_of_newer_version_is_refused_and_untouched(tmp_path):
    legacy = tmp_path / "labels.json"
    raw = _legacy(legacy, {A: {"label": "x", "path": None}}, version=7)
    for _ in range(2):
        with pytest.raises(LabelsVersionError, match="newer version") as info:
            LabelStore(legacy)
        assert "version 7" in str(info.value)
    assert legacy.read_bytes() == raw
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]  # nothing created


def test_database_of_newer_version_is_refused_and_untouched(tmp_path):
    path = tmp_path / "l.sqlite"
    LabelStore(path).set([A], "x")
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='3' WHERE key='version'")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(LabelsVersionError, match="newer version"):
        LabelStore(path)
    assert path.read_bytes() == before and not list(tmp_path.glob("*.corrupt*"))


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'{"format": "galaxy-explorer-labels", "version": 1, "labels": {"x": 3}}',
    ],
)
def test_damaged_json_moved_aside_with_one_warning(tmp_path, content, caplog):
    legacy = tmp_path / "labels.json"
    legacy.write_bytes(content)
    store = LabelStore(legacy)
    assert len(store.warnings) == 1 and "unreadable labels file" in store.warnings[0]
    backups = list(tmp_path.glob("labels.json.corrupt-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == content  # never dropped
    assert str(backups[0]) in store.warnings[0]
    assert store.all() == {}
    store.set([A], "x")
    assert LabelStore(legacy).all() == {A: "x"}


# ------------------------------------------------------------------- damage, bad paths
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_database_moved_aside_with_one_warning(tmp_path, damage):
    path = tmp_path / "l.sqlite"
    store = LabelStore(path)
    store.set([f"{i:064x}" for i in range(3000)], "spiral")
    store.close()
    data = path.read_bytes()
    bad = b"this is not sqlite at all" * 100 if damage == "garbage" else data[: len(data) // 3]
    path.write_bytes(bad)
    store = LabelStore(path)
    assert len(store.warnings) == 1
    assert "damaged labels database" in store.warnings[0]
    backups = list(tmp_path.glob("l.sqlite.corrupt-*"))
    assert [b.name for b in backups if not b.name.endswith(("-wal", "-shm"))]
    main = [b for b in backups if not b.name.endswith(("-wal", "-shm"))][0]
    assert main.read_bytes() == bad
    assert store.all() == {}
    store.set([A], "x")
    assert LabelStore(path).all() == {A: "x"} and not LabelStore(path).warnings


def test_folder_and_foreign_sqlite_are_refused(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(LabelsFileError, match="is a folder"):
        LabelStore(tmp_path / "dir")
    foreign = tmp_path / "other.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE stuff (x)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    with pytest.raises(LabelsFileError, match="not a Galaxy Explorer labels store"):
        LabelStore(foreign)
    assert foreign.read_bytes() == before


def test_stale_temp_files_removed_on_open(tmp_path):
    old = time.time() - 3600
    stale_legacy = tmp_path / ".labels.json.k2j3h4.tmp"  # an older release's name: no pid
    from galaxy_explorer.core._atomic import _host_tag

    dead = tmp_path / f".labels.json.{_host_tag()}-999999999.abc123.tmp"  # writer is gone
    live = tmp_path / f".labels.json.{_host_tag()}-{os.getpid()}.abc123.tmp"  # still writing
    fresh = tmp_path / ".labels.json.fresh1.tmp"  # unknown writer, young: maybe still writing
    unrelated = tmp_path / ".notes.txt.abc.tmp"
    for p in (stale_legacy, dead, live, fresh, unrelated):
        p.write_bytes(b"partial")
    os.utime(stale_legacy, (old, old))
    os.utime(unrelated, (old, old))
    LabelStore(tmp_path / "labels.json")
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert left == sorted([live.name, fresh.name, unrelated.name])
