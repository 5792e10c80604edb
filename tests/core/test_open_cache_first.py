"""Opening from what the cache remembers of a folder, then checking it with the scan (#12).

A cached 100k folder took 4-5 s to scan (a ``stat`` per file) before anything was shown.
:func:`workflows.open_and_embed` now yields the files the last scan found (the cache's file
memo) and their cached vectors first, then scans and reconciles. These tests drive the
generator step by step on real folders: the folder is changed *after* the provisional rows
came and *before* the generator runs on, so only a scan that runs after them can see it.
"""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_explorer.core import workflows
from galaxy_explorer.core.cache import FileMemo
from galaxy_explorer.core.catalog import remembered_items, scan


def _run(gen, until=None):
    """Events of ``gen`` up to and including the first ``until`` (all if None)."""
    out = []
    for ev in gen:
        out.append(ev)
        if until is not None and until(ev):
            break
    return out


def _open(folder, model, cache, **kw):
    return workflows.open_and_embed([folder], model=str(model), cache_dir=cache, **kw)


def _embed_all(folder, model, cache):
    events = _run(_open(folder, model, cache))
    events[0].session.close()
    return events


def _rows(events):
    """items and vectors per path, as the app's state would hold them after ``events``."""
    items, vecs = [], {}
    for ev in events:
        if isinstance(ev, workflows.Opened):
            items, vecs = ev.items, {}
        elif isinstance(ev, workflows.RowsFound):
            for r, v in zip(ev.rows, ev.vectors, strict=True):
                vecs[items[r].path] = v
        elif isinstance(ev, workflows.VectorsDiscarded):
            vecs = {}
        elif isinstance(ev, workflows.EmbedProgress) and ev.progress.vectors is not None:
            by_sha = dict(zip(ev.progress.shas, ev.progress.vectors, strict=True))
            for it in items:
                if it.sha256 in by_sha:
                    vecs[it.path] = by_sha[it.sha256]
    return items, vecs


def test_remembered_rows_and_vectors_come_before_the_scan(tiny_model, cutouts, tmp_path):
    cache = tmp_path / "cache"
    _embed_all(cutouts, tiny_model, cache)
    gen = _open(cutouts, tiny_model, cache)
    first = _run(gen, until=lambda e: isinstance(e, workflows.RowsFound))
    opened = first[0]
    assert isinstance(opened, workflows.Opened) and opened.provisional
    assert [it.path for it in opened.items] == [it.path for it in scan([cutouts]).items]
    assert len(first[-1].rows) == 8  # every row's cached vector, before the model loads
    # the folder changes now: a scan that already ran could not know
    victim = opened.items[0].path
    victim.unlink()
    rest = _run(gen)
    opened.session.close()
    kinds = [type(e).__name__ for e in rest]
    assert "Reconciled" in kinds and kinds.index("Reconciled") < kinds.index("ModelLoaded")
    rec = next(e for e in rest if isinstance(e, workflows.Reconciled))
    assert (rec.added, rec.removed, rec.changed) == (0, 1, 0)
    items, vecs = _rows(first + rest)
    assert victim not in {it.path for it in items} and len(items) == 7
    assert set(vecs) == {it.path for it in items}
    # nothing was embedded again: every vector came from the cache
    assert sum(e.progress.embedded for e in rest if isinstance(e, workflows.EmbedProgress)) == 0


def test_an_unchanged_folder_is_opened_once(tiny_model, cutouts, tmp_path):
    cache = tmp_path / "cache"
    _embed_all(cutouts, tiny_model, cache)
    events = _run(_open(cutouts, tiny_model, cache))
    events[0].session.close()
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("Opened") == 1 and events[0].provisional
    rec = next(e for e in events if isinstance(e, workflows.Reconciled))
    assert (rec.added, rec.removed, rec.changed, rec.errors) == (0, 0, 0, [])
    # the guessed model key was right and every vector came: not read a second time
    assert kinds.count("RowsFound") == 1
    assert kinds.index("RowsFound") < kinds.index("Reconciled") < kinds.index("ModelLoaded")
    # the provisional items are the scan's, field for field (mtime included)
    assert events[0].items == scan([cutouts]).items


def test_reconcile_adds_removes_and_replaces_changed_files(tiny_model, cutouts, tmp_path):
    from helpers import galaxy_array, write_fits, write_jpeg

    cache = tmp_path / "cache"
    _embed_all(cutouts, tiny_model, cache)
    before = scan([cutouts]).items
    jpegs = [it for it in before if it.path.suffix.lower() in (".jpg", ".jpeg")]
    changed = jpegs[0]
    removed, kept = [it for it in before if it is not changed][:2]
    # a manual label on an unchanged file (labels are keyed by content)
    first = _run(_open(cutouts, tiny_model, cache), until=lambda e: True)[0]
    assert first.labels.set([kept.sha256], "spiral")
    first.session.close()

    gen = _open(cutouts, tiny_model, cache)
    early = _run(gen, until=lambda e: isinstance(e, workflows.RowsFound))
    assert early[0].provisional
    removed.path.unlink()
    write_jpeg(changed.path, seed=999)  # other pixels, same name
    write_fits(cutouts / "new_one.fits", galaxy_array(48, kind="spiral", seed=99))
    rest = _run(gen)
    session = early[0].session
    rec = next(e for e in rest if isinstance(e, workflows.Reconciled))
    assert (rec.added, rec.removed, rec.changed) == (1, 1, 1)
    corrected = [e for e in rest if isinstance(e, workflows.Opened)]
    assert len(corrected) == 1 and not corrected[0].provisional
    truth = scan([cutouts]).items
    assert corrected[0].items == truth
    items, vecs = _rows(early + rest)
    assert items == truth and set(vecs) == {it.path for it in truth}
    # the changed file's vector is its new content's, not the cached one of the old
    new_sha = next(it.sha256 for it in truth if it.path == changed.path)
    assert new_sha != changed.sha256
    stored, found = session.store.get([new_sha, changed.sha256])
    assert found.all()
    # (the job hands over float32, the store keeps float16)
    np.testing.assert_allclose(vecs[changed.path], stored[0], atol=1e-3)
    assert np.abs(vecs[changed.path] - stored[1]).max() > 1e-2
    # the label follows its content to the row it has now
    row = next(r for r, it in enumerate(truth) if it.path == kept.path)
    assert corrected[0].manual[row] == "spiral"
    assert corrected[0].manual_counts == {"spiral": 1}
    session.close()
    # the removed file is forgotten: the next open does not show it even for a moment
    memo = FileMemo(cache)
    try:
        again = remembered_items([cutouts], memo)
    finally:
        memo.close()
    assert again == truth


def test_a_damaged_memo_falls_back_to_the_plain_scan(tiny_model, cutouts, tmp_path, caplog):
    cache = tmp_path / "cache"
    _embed_all(cutouts, tiny_model, cache)
    index = next(cache.rglob("index.sqlite"))
    for extra in index.parent.glob("index.sqlite-*"):
        extra.unlink()
    index.write_bytes(b"this is not a database" * 100)
    events = _run(_open(cutouts, tiny_model, cache))
    events[0].session.close()
    opened = events[0]
    assert isinstance(opened, workflows.Opened) and not opened.provisional
    assert opened.items == scan([cutouts]).items
    assert not any(isinstance(e, workflows.Reconciled) for e in events)
    items, vecs = _rows(events)
    assert set(vecs) == {it.path for it in items} and len(items) == 8


def test_memo_entries_a_scan_would_skip_are_not_shown(tmp_path):
    """Hidden files and folders, other extensions and other folders are not rows."""
    from galaxy_explorer.core.catalog import Item

    root = tmp_path / "cat"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"a")
    (root / "b.fits").write_bytes(b"b")
    memo = FileMemo(tmp_path / "cache")
    try:
        scan([root], memo=memo)
        st = (root / "b.fits").stat()
        fake = [
            (str(root / ".hidden" / "x.png").encode(), 1, st.st_mtime_ns, 0, 0, "1" * 64),
            (str(root / ".y.png").encode(), 1, st.st_mtime_ns, 0, 0, "2" * 64),
            (str(root / "notes.txt").encode(), 1, st.st_mtime_ns, 0, 0, "3" * 64),
            (str(tmp_path / "cat2" / "z.png").encode(), 1, st.st_mtime_ns, 0, 0, "4" * 64),
            (b"/" + bytes(root)[1:] + b"/sub/\xff.png", 1, st.st_mtime_ns, 0, 0, "5" * 64),
        ]
        memo.record(fake)
        got = remembered_items([root], memo)
    finally:
        memo.close()
    assert got is not None
    assert all(isinstance(it, Item) for it in got)
    assert {it.path.name for it in got} == {"b.fits", "a.png", "\udcff.png"}
    assert [it.path for it in got] == sorted(it.path for it in got)


def test_nothing_remembered_means_the_plain_scan(tiny_model, cutouts, tmp_path):
    events = _run(_open(cutouts, tiny_model, tmp_path / "cache"))
    events[0].session.close()
    assert not events[0].provisional and events[0].items == scan([cutouts]).items
    assert not any(isinstance(e, workflows.Reconciled) for e in events)


def test_a_vanished_root_after_the_provisional_rows_is_an_error(tiny_model, cutouts, tmp_path):
    import shutil

    cache = tmp_path / "cache"
    _embed_all(cutouts, tiny_model, cache)
    gen = _open(cutouts, tiny_model, cache)
    early = _run(gen, until=lambda e: isinstance(e, workflows.RowsFound))
    shutil.rmtree(cutouts)
    with pytest.raises(FileNotFoundError, match="no such file"):
        _run(gen)
    early[0].session.close()
