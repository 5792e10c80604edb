"""Find the image files of a catalogue and identify each by the hash of its content.

:func:`scan` walks folders (recursively by default), keeps files whose names end with one
of :data:`~galaxy_explorer.core.imaging.IMAGE_EXTENSIONS` (any case, ``.fits.gz`` and
``.fits.fz`` included), skips hidden files and folders, and hashes every file's content
with SHA-256 (streamed, so large files cost no memory). The content hash is what the
embedding cache is keyed by: a renamed or moved file keeps its embedding, a changed file
gets a new one. Files that cannot be read are reported in :attr:`ScanResult.errors`
instead of raising.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as _stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from galaxy_explorer.core.imaging import is_image_path

__all__ = ["Item", "ScanResult", "hash_file", "remembered_items", "scan"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def _fast_path_maker() -> Any:
    """``Path(s)`` for the normalised absolute POSIX strings a scan produces, made cheaply.

    On CPython 3.10-3.11 ``Path(s)`` re-parses the string (splitting, interning every part):
    at 10^5 files that was a third of a re-scan. Where the private constructor of those
    versions exists and gives an equal Path, it is used with the parts split here; anywhere
    else (Windows, other versions) this is plain ``Path``.
    """
    if os.sep != "/":
        return Path
    try:
        cls = type(Path("/"))
        make = cls._from_parsed_parts  # type: ignore[attr-defined]

        def fast(s: str) -> Path:
            if "//" in s or "/./" in s or s.endswith(("/", "/.")) or not s.startswith("/"):
                return cls(s)
            return make("", "/", ["/", *s[1:].split("/")])  # type: ignore[no-any-return]

        for probe in ("/a/b c/d.png", "/x.fits", "/a/\udcff/..\u00e9.jpg"):
            p = fast(probe)
            if not (
                type(p) is cls
                and p == cls(probe)
                and str(p) == probe
                and hash(p) == hash(cls(probe))
                and p.name == cls(probe).name
                and p.parent == cls(probe).parent
            ):
                return Path
        return fast
    except Exception:
        return Path


_path = _fast_path_maker()


class HashMemo(Protocol):
    """Remembered content hashes (see :class:`galaxy_explorer.core.cache.FileMemo`)."""

    def lookup(self, prefix: Any) -> dict[bytes, tuple[int, int, int, int, str]]: ...

    def lookup_one(self, path: Any) -> tuple[int, int, int, int, str] | None: ...

    def record(self, entries: Any) -> None: ...


@dataclass(frozen=True)
class Item:
    """One image file of a catalogue.

    Parameters
    ----------
    path : Path
        Absolute path (symbolic links in it are kept, not resolved).
    sha256 : str
        Hex SHA-256 of the file's content.
    size : int
        Size in bytes.
    mtime : float
        Modification time (seconds since the epoch).
    """

    path: Path
    sha256: str
    size: int
    mtime: float

    @property
    def name(self) -> str:
        """The file name (last path component)."""
        return self.path.name


@dataclass
class ScanResult:
    """What :func:`scan` found.

    Attributes
    ----------
    items : list of Item
        Image files, sorted by path, each path once.
    errors : list of (Path, str)
        Files or folders that could not be read, with the reason.
    """

    items: list[Item] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)


def hash_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's content (hex), read in 1 MiB chunks.

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def _reason(e: OSError) -> str:
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, FileNotFoundError):
        return "vanished during the scan"
    return f"cannot read ({e.strerror or e})"


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(root: Path, recursive: bool, errors: list[tuple[Path, str]]) -> Iterator[str]:
    """Image files under the folder ``root`` (hidden entries skipped, no link loops).

    Paths are plain strings here: at 10^5-10^6 files, Path objects cost more than the
    ``stat`` calls themselves.
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[str] = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                continue  # a symbolic link back into a folder already scanned
            seen_dirs.add(key)
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            errors.append((Path(folder), f"cannot list folder: {_reason(e)}"))
            continue
        subdirs = []
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if recursive:
                    subdirs.append(entry.path)
            elif is_image_path(entry.name):
                yield entry.path
        stack.extend(sorted(subdirs, reverse=True))


def _item(
    path: str,
    previous: Mapping[str, Item],
    remembered: Mapping[bytes, tuple[int, int, int, int, str]] | None,
    fresh: list[tuple[bytes, int, int, int, int, str]],
    reuse: Mapping[str, Item],
) -> Item | tuple[Path, str]:
    try:
        st = os.stat(path)
        if not _stat.S_ISREG(st.st_mode):
            return Path(path), "not a regular file"
        old = previous.get(path)
        if old is not None and old.size == st.st_size and old.mtime == st.st_mtime:
            return old  # unchanged since the previous scan: no need to read it again
        key = os.fsencode(path)
        memo = remembered.get(key) if remembered is not None else None
        if memo is not None and memo[:4] == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino):
            digest = memo[4]  # same size, times and inode as when it was hashed
            same = reuse.get(path)
            if (
                same is not None
                and same.sha256 == digest
                and same.size == st.st_size
                and same.mtime == st.st_mtime
            ):
                return same  # the very item shown before the scan: nothing to correct
        else:
            digest = hash_file(path)
            fresh.append((key, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, digest))
    except FileNotFoundError:
        if os.path.islink(path):
            return Path(path), "broken symbolic link"
        return Path(path), "vanished during the scan"
    except OSError as e:
        return Path(path), _reason(e)
    return Item(path=_path(path), sha256=digest, size=st.st_size, mtime=st.st_mtime)


def _mtime(ns: int) -> float:
    """``st_mtime`` as ``os.stat`` computes it from ``st_mtime_ns`` (seconds + ns * 1e-9)."""
    sec, frac = divmod(ns, 1_000_000_000)
    return float(sec) + frac * 1e-9


def _remembered_under(
    root: str, remembered: Mapping[bytes, tuple[int, int, int, int, str]]
) -> Iterator[tuple[str, tuple[int, int, int, int, str]]]:
    """Remembered image files a scan of the folder ``root`` would visit (no hidden parts)."""
    skip = len(root.rstrip(os.sep))
    hidden = os.sep + "."
    for key, entry in remembered.items():
        path = os.fsdecode(key)
        rel = path[skip:]  # starts with the separator
        if hidden in rel or not is_image_path(rel):
            continue
        yield path, entry


def remembered_items(
    paths: Sequence[str | os.PathLike[str]],
    memo: HashMemo,
    index: dict[str, Item] | None = None,
) -> list[Item] | None:
    """The items a :func:`scan` of ``paths`` found last time, from ``memo`` alone (no stat).

    A provisional catalogue to show at once while the real scan checks the folder: a file
    removed, added or changed since is only known once :func:`scan` has run. Same order as
    :func:`scan` (by path, each path once). None if a root is missing or nothing under the
    roots is remembered. ``index``, if given, is filled with the items by path string (for
    :func:`scan`'s ``reuse``).
    """
    found: dict[str, tuple[int, int, int, int, str]] = {}
    for p in paths:
        root = os.path.abspath(os.fspath(p))
        if os.path.isdir(root):
            entries = _remembered_under(root, memo.lookup(root))
        elif os.path.exists(root):
            one = memo.lookup_one(root)
            entries = iter([(root, one)] if one is not None and is_image_path(root) else [])
        else:
            return None
        for path, entry in entries:
            found.setdefault(path, entry)
    if not found:
        return None
    # "/" -> NUL orders strings as their lists of parts compare (as scan sorts)
    order = sorted(found, key=lambda f: f.replace(os.sep, "\0"))
    items = []
    for f in order:
        size, mtime_ns, _ctime, _ino, sha = found[f]
        items.append(Item(_path(f), sha, size, _mtime(mtime_ns)))
    if index is not None:
        index.update(zip(order, items, strict=True))
    return items


def scan(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    previous: Iterable[Item] | None = None,
    memo: HashMemo | None = None,
    reuse: Mapping[str, Item] | None = None,
) -> ScanResult:
    """Find the image files under one or more roots and hash their content.

    Parameters
    ----------
    paths : path or sequence of paths
        Folders to scan and/or single files. A file given explicitly is taken as long as
        its name has an image extension, even when hidden.
    recursive : bool
        Descend into sub-folders (hidden folders are always skipped).
    previous : iterable of Item, optional
        Items of an earlier scan: a file whose path, size and modification time are
        unchanged keeps its hash without being read again (rescans of big catalogues
        become cheap).
    memo : HashMemo, optional
        Content hashes remembered across processes, by (path, size, mtime_ns, ctime_ns,
        inode) (:class:`galaxy_explorer.core.cache.FileMemo`): unchanged files are only
        ``stat``-ed, never read; newly hashed files are remembered.
    reuse : mapping of str to Item, optional
        Items by path string (from :func:`remembered_items`): a file the memo vouches for
        that matches one of them (hash, size, mtime) is that same object in the result.

    Returns
    -------
    ScanResult
        ``items`` sorted by path (each path once, even if reached from two roots);
        ``errors`` for files and folders that could not be read. Two files with the same
        content are two items with the same ``sha256``.

    Raises
    ------
    FileNotFoundError
        ``"<path>: no such file or directory"`` for a root that does not exist.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    roots = [Path(os.path.abspath(os.fspath(p))) for p in paths]
    for root in roots:
        if not os.path.exists(root):
            raise FileNotFoundError(f"{root}: no such file or directory")

    result = ScanResult()
    found: dict[str, None] = {}
    for root in roots:
        if root.is_dir():
            for p in _walk(root, recursive, result.errors):
                found.setdefault(p, None)
        elif is_image_path(root.name):
            found.setdefault(os.fspath(root), None)
        else:
            result.errors.append((root, "not an image file (unsupported extension)"))

    # the order of Path comparison: "/" -> NUL makes strings compare as lists of parts do
    files = sorted(found, key=lambda f: f.replace(os.sep, "\0"))
    known = {os.fspath(it.path): it for it in previous} if previous is not None else {}
    remembered: dict[bytes, tuple[int, int, int, int, str]] | None = None
    if memo is not None:
        remembered = {}
        for root in roots:
            if root.is_dir():
                remembered.update(memo.lookup(root))
            else:
                one = memo.lookup_one(root)
                if one is not None:
                    remembered[os.fsencode(root)] = one
    fresh: list[tuple[bytes, int, int, int, int, str]] = []
    # one plain loop: a thread per file cost more than it saved (stat dominates a re-scan)
    outcomes = []
    for p in files:
        outcomes.append(_item(p, known, remembered, fresh, reuse or {}))
        if memo is not None and len(fresh) >= 2000:  # a long first scan keeps its work
            memo.record(fresh)
            fresh.clear()
    if memo is not None and fresh:
        memo.record(fresh)
    for out in outcomes:
        if isinstance(out, Item):
            result.items.append(out)
        else:
            result.errors.append(out)
    result.errors.sort(key=lambda e: e[0])
    for path, reason in result.errors:
        log.warning("%s: %s", path, reason)
    return result
