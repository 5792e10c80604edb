from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest
from helpers import galaxy_array, write_fits, write_jpeg

from galaxy_explorer.core import catalog
from galaxy_explorer.core.catalog import Item, ScanResult, hash_file, scan

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def names(result: ScanResult) -> list[str]:
    return [it.name for it in result.items]


def test_scan_cutouts(cutouts):
    res = scan(cutouts)
    assert isinstance(res, ScanResult) and res.errors == []
    assert len(res.items) == 8
    assert [it.path for it in res.items] == sorted(it.path for it in res.items)
    for it in res.items:
        assert isinstance(it, Item)
        assert it.path.is_absolute() and it.path.parent == cutouts
        st = it.path.stat()
        assert it.size == st.st_size and it.mtime == st.st_mtime
        assert it.sha256 == hashlib.sha256(it.path.read_bytes()).hexdigest()
        assert it.name == it.path.name
    assert len({it.sha256 for it in res.items}) == 8


def test_item_is_frozen_and_hashable(cutouts):
    it = scan(cutouts).items[0]
    with pytest.raises(AttributeError):
        it.size = 3  # type: ignore[misc]
    assert {it, it} == {it}


def test_recursive_extensions_hidden(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    g = galaxy_array(8)
    write_fits(tmp_path / "top.FITS", g)
    write_fits(tmp_path / "a" / "x.fit", g + 1)
    write_fits(tmp_path / "a" / "b" / "y.Fts", g + 2)
    raw = write_fits(tmp_path / "tmp.fits", g + 3).read_bytes()
    (tmp_path / "tmp.fits").unlink()
    (tmp_path / "a" / "z.Fits.GZ").write_bytes(gzip.compress(raw))
    (tmp_path / "a" / "w.fits.fz").write_bytes(raw)
    write_jpeg(tmp_path / "a" / "p.JPG")
    write_jpeg(tmp_path / "a" / "q.jpeg", seed=1)
    write_jpeg(tmp_path / "a" / "b" / "r.png", seed=2)
    write_jpeg(tmp_path / "a" / "b" / "s.TIF", seed=3)
    write_jpeg(tmp_path / "a" / "b" / "t.tiff", seed=4)
    write_jpeg(tmp_path / ".hidden" / "h.jpg")
    write_jpeg(tmp_path / "a" / ".dot.jpg")
    for junk in ["notes.txt", "a/data.fits.bak", "a/b/archive.gz", "a/b/x.fz", "README"]:
        (tmp_path / junk).write_text("x")
    res = scan(tmp_path)
    assert res.errors == []
    rel = [str(it.path.relative_to(tmp_path)) for it in res.items]
    assert rel == sorted(rel)
    assert set(rel) == {
        "top.FITS",
        "a/x.fit",
        "a/b/y.Fts",
        "a/z.Fits.GZ",
        "a/w.fits.fz",
        "a/p.JPG",
        "a/q.jpeg",
        "a/b/r.png",
        "a/b/s.TIF",
        "a/b/t.tiff",
    }
    flat = scan(tmp_path, recursive=False)
    assert names(flat) == ["top.FITS"]


def test_root_single_file_and_several_roots(cutouts, tmp_path):
    one = cutouts / "gal_001.fits"
    res = scan(one)
    assert [it.path for it in res.items] == [one]
    both = scan([cutouts, one, str(cutouts / "img_000.jpg")])
    assert len(both.items) == 8  # each path once
    other = tmp_path / "other"
    other.mkdir()
    write_jpeg(other / "o.jpg", seed=50)
    res2 = scan([other, cutouts])
    assert len(res2.items) == 9
    assert [it.path for it in res2.items] == sorted(it.path for it in res2.items)


def test_explicit_hidden_file_is_taken(tmp_path):
    p = write_jpeg(tmp_path / ".secret.jpg")
    assert names(scan(p)) == [".secret.jpg"]


def test_explicit_non_image_file_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    res = scan(tmp_path / "notes.txt")
    assert res.items == [] and len(res.errors) == 1
    assert res.errors[0][0] == tmp_path / "notes.txt"


def test_relative_root_gives_absolute_paths(cutouts, monkeypatch):
    monkeypatch.chdir(cutouts.parent)
    res = scan(Path(cutouts.name))
    assert all(it.path.is_absolute() for it in res.items) and len(res.items) == 8


def test_missing_root(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError) as info:
        scan(missing)
    assert str(info.value) == f"{missing}: no such file or directory"
    with pytest.raises(FileNotFoundError):
        scan([tmp_path, missing])


def test_empty_folder(tmp_path):
    res = scan(tmp_path)
    assert res.items == [] and res.errors == []


def test_duplicate_content_two_items(tmp_path):
    p = write_jpeg(tmp_path / "a.jpg")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "copy.jpg").write_bytes(p.read_bytes())
    res = scan(tmp_path)
    assert len(res.items) == 2 and res.items[0].sha256 == res.items[1].sha256


def test_zero_byte_file_is_an_item(tmp_path):
    (tmp_path / "empty.fits").write_bytes(b"")
    res = scan(tmp_path)
    assert len(res.items) == 1 and res.items[0].size == 0
    assert res.items[0].sha256 == hashlib.sha256(b"").hexdigest()


def test_unreadable_file_goes_to_errors(cutouts, monkeypatch):
    bad = cutouts / "gal_002.fits"
    real = catalog.hash_file

    def fake(path):
        if Path(path) == bad:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(catalog, "hash_file", fake)
    res = scan(cutouts)
    assert len(res.items) == 7
    assert res.errors == [(bad, "permission denied")]


def test_many_files_deterministic(tmp_path):
    for i in range(30):
        sub = tmp_path / f"d{i % 3}"
        sub.mkdir(exist_ok=True)
        write_jpeg(sub / f"f{i:02d}.png", seed=i)
    a, b = scan(tmp_path), scan(tmp_path)
    assert len(a.items) == 30 and a.items == b.items
    assert [it.path for it in a.items] == sorted(it.path for it in a.items)


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_symlinks_followed_without_loops(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    write_jpeg(real / "a.jpg")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(real, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    res = scan(root)
    assert names(res) == ["a.jpg"]
    assert res.items[0].path == root / "link" / "a.jpg"  # the link is kept, not resolved
    assert [(p.name, why) for p, why in res.errors] == [("dangling.jpg", "broken symbolic link")]


def test_hash_file_streams_large_files(tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 123)
    p = tmp_path / "big.fits"
    p.write_bytes(data)
    assert hash_file(p) == hashlib.sha256(data).hexdigest()


def test_previous_scan_reused_when_unchanged(cutouts, monkeypatch):
    first = scan(cutouts)
    changed = cutouts / "img_001.jpg"
    write_jpeg(changed, seed=999)
    os.utime(changed, (1e9, 1e9))
    hashed = []
    real = catalog.hash_file

    def counting(path):
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(catalog, "hash_file", counting)
    second = scan(cutouts, previous=first.items)
    assert hashed == [changed]
    assert second.items == scan(cutouts).items
    assert [
        it.sha256 != old.sha256 for it, old in zip(second.items, first.items, strict=True)
    ].count(True) == 1


def test_memo_rescan_reads_no_file_and_notices_changes_in_place(tmp_path, monkeypatch):
    """A re-scan through the cache's file memo only stats; a file rewritten in place (same
    size, modification time set back) is still hashed again."""
    from galaxy_explorer.core import catalog
    from galaxy_explorer.core.cache import FileMemo

    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(20):
        (folder / f"g{i:02d}.png").write_bytes(bytes([i]) * 100)
    odd = os.fsencode(folder) + b"/odd\xff.png"
    with open(odd, "wb") as fh:
        fh.write(b"odd name")
    first = scan(folder, memo=FileMemo(tmp_path / "cache"))
    assert len(first.items) == 21

    calls = []
    real = catalog.hash_file
    monkeypatch.setattr(catalog, "hash_file", lambda p: calls.append(p) or real(p))
    again = scan(folder, memo=FileMemo(tmp_path / "cache"))  # a new process would do the same
    assert calls == []
    assert [it.sha256 for it in again.items] == [it.sha256 for it in first.items]

    target = folder / "g05.png"
    st = target.stat()
    target.write_bytes(b"\xff" * 100)  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # modification time put back
    third = scan(folder, memo=FileMemo(tmp_path / "cache"))
    assert [Path(c) for c in calls] == [target]
    changed = {it.path.name: it.sha256 for it in third.items}
    assert changed["g05.png"] != {it.path.name: it.sha256 for it in first.items}["g05.png"]
