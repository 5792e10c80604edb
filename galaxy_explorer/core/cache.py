"""On-disk embedding store: self-describing append-only shards plus an SQLite index.

Layout under the cache root::

    store-v2/index.sqlite            (WAL) (space, key) → shard, row; failures; file memo
    store-v2/shards/<space>/space.json         model key, render key, dim of the space
    store-v2/shards/<space>/<uuid>.gxs         append-only shard (header + records)
    store-v2/damaged/                          damaged shards and indexes, moved aside

``space`` is a short hash of (model key, render key). Keys are file *content* hashes, so a
renamed or moved file is never embedded twice and a changed file always is.

A shard is a 64-byte header (magic, format version, dim, key length, space) followed by
fixed-size records ``(key: 64 ASCII bytes, vector: dim float16)``. Shards carry their own
keys, so the index can always be rebuilt from them (:meth:`EmbeddingStore.rebuild_index`)
and every read checks that the record it gets carries the key it asked for.

Writers
    Each writer process appends to a shard it holds an exclusive ``flock`` on (a shard
    left by an earlier process is reused, so small runs do not pile up files). A batch is
    appended and fsynced *before* its index rows are committed in one transaction, so a
    process killed at any point leaves either the old state or the new one: at worst a
    record that nothing references yet. Nothing is ever rewritten or compacted: storing N
    vectors writes each once (O(N) bytes). Several writers at once (two windows, the app
    and a script, two ``embed`` runs) each add their own rows; none can lose another's.

Damage
    A shard that is missing, truncated or garbled is found by the next command that needs
    its rows (:meth:`EmbeddingStore.missing` checks every referenced record's key): the
    shard is moved aside into ``damaged/``, its index rows are dropped, one warning is
    logged, and the affected images count as missing, so the same command embeds them
    again. An index that SQLite cannot read is moved aside and rebuilt from the shards.

Read-only caches (a shared folder, a mounted archive) serve every read; writes raise
:class:`CacheReadOnlyError`. A full disk raises :class:`CacheFullError`; everything
committed before stays.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import sqlite3
import struct
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

try:  # POSIX advisory locks: one writer per shard file
    import fcntl
except ImportError:  # pragma: no cover - Windows: every writer starts a new shard
    fcntl = None  # type: ignore[assignment]

STORE_DIR = "store-v2"
MAGIC = b"GXSHARD1"
HEADER = 64
KEY_BYTES = 64
SHARD_SUFFIX = ".gxs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    space TEXT PRIMARY KEY, model_key TEXT NOT NULL, render_key TEXT NOT NULL, dim INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS shards (
    id INTEGER PRIMARY KEY AUTOINCREMENT, space TEXT NOT NULL, name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT, space TEXT NOT NULL, sha TEXT NOT NULL, shard INTEGER NOT NULL,
    row INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS vectors_by_space ON vectors (space);
CREATE INDEX IF NOT EXISTS vectors_by_shard ON vectors (shard);
CREATE TABLE IF NOT EXISTS failures (
    space TEXT NOT NULL, sha TEXT NOT NULL, path BLOB NOT NULL, reason TEXT NOT NULL, time REAL,
    PRIMARY KEY (space, sha, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sky (
    sha TEXT PRIMARY KEY, ra REAL, dec REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, sha TEXT NOT NULL
) WITHOUT ROWID;
"""

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


class CacheError(OSError):
    """The cache folder cannot be used as asked; the message says which folder and why."""


class CacheReadOnlyError(CacheError):
    """A write was asked of a cache opened read-only (a folder this process cannot write)."""


class CacheFullError(CacheError):
    """The disk holding the cache is full; everything committed before is kept."""


def default_cache_dir() -> Path:
    """The platform's user cache folder for Galaxy Explorer (``$GALAXY_EXPLORER_CACHE`` wins)."""
    env = os.environ.get("GALAXY_EXPLORER_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("galaxy-explorer", appauthor=False))


def space_id(model_key: str, render_key: str) -> str:
    """The folder name of a (model key, render key) space."""
    return hashlib.sha256(f"{model_key}\0{render_key}".encode()).hexdigest()[:16]


def _record_dtype(dim: int) -> np.dtype:
    return np.dtype([("key", f"S{KEY_BYTES}"), ("vec", "<f2", (int(dim),))])


def _header(dim: int, space: str) -> bytes:
    head = struct.pack("<8sIII16s", MAGIC, 1, int(dim), KEY_BYTES, space.encode("ascii"))
    return head.ljust(HEADER, b"\0")


def _read_header(path: Path) -> tuple[int, str]:
    """(dim, space) of a shard; ValueError if the header is not a valid shard header."""
    with open(path, "rb") as fh:
        raw = fh.read(HEADER)
    if len(raw) < HEADER:
        raise ValueError("shorter than its header")
    magic, version, dim, keylen, space = struct.unpack_from("<8sIII16s", raw)
    if magic != MAGIC or version != 1 or keylen != KEY_BYTES or not 0 < dim <= 65536:
        raise ValueError("not a shard header")
    return int(dim), space.decode("ascii", "replace")


def _key_bytes(key: str) -> bytes:
    try:
        raw = key.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"cache keys are ASCII content hashes, got {key!r}") from None
    if not raw or len(raw) > KEY_BYTES:
        raise ValueError(f"cache keys are 1-{KEY_BYTES} characters, got {key!r}")
    return raw


def _is_no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return True
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()


def _low_space(folder: Path, need: int = 1 << 20) -> bool:
    """Whether the file system of ``folder`` has less than ``need`` bytes free."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return st.f_bavail * st.f_frsize < need


def _path_bytes(path: str | os.PathLike[str] | bytes) -> bytes:
    return path if isinstance(path, bytes) else os.fsencode(path)


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{uuid.uuid4().hex[:6]}"


@dataclass
class VerifyReport:
    """What :meth:`EmbeddingStore.verify` / :func:`cache_info` found."""

    vectors: int = 0
    shards: int = 0
    bad_rows: int = 0
    damaged_shards: int = 0
    orphan_shards: int = 0


class _Index:
    """The SQLite index of one cache root: opening, read-only mode, recovery from damage."""

    def __init__(self, root: Path, readonly: bool | None = None) -> None:
        self.root = root
        self.base = root / STORE_DIR
        self.path = self.base / "index.sqlite"
        if root.exists() and not root.is_dir():
            raise CacheError(f"{root}: the cache must be a folder, and this is a file")
        if readonly is None:
            readonly = self._cannot_write()
        self.readonly = readonly
        if not readonly:
            try:
                (self.base / "shards").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                if _is_no_space(exc):
                    raise CacheFullError(
                        f"{root}: disk full, cannot create the cache folder"
                    ) from None
                raise CacheError(
                    f"{root}: cannot create the cache folder ({exc.strerror})"
                ) from None
        self.db = self._open()

    def _cannot_write(self) -> bool:
        probe = self.root
        while not probe.exists():
            if probe.parent == probe:
                return True
            probe = probe.parent
        if self.base.exists():
            probe = self.base
            if self.path.exists() and not os.access(self.path, os.W_OK):
                return True
        return not os.access(probe, os.W_OK | os.X_OK)

    # --------------------------------------------------------------- opening
    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.exists():
                db = sqlite3.connect(":memory:", check_same_thread=False)
                db.executescript(_SCHEMA)
                return db
            uri = self.path.resolve().as_uri()
            try:
                db = sqlite3.connect(
                    f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False
                )
                db.execute("SELECT COUNT(*) FROM spaces").fetchone()
                return db
            except sqlite3.Error:  # WAL without a -shm we may create: read it as immutable
                db = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
                db.execute("SELECT COUNT(*) FROM spaces").fetchone()
                return db
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=60000")
        # content hashes are random keys: each batch touches a leaf page per key, so small
        # pages keep the write-ahead log (and the bytes written) close to the data's size
        db.execute("PRAGMA page_size=1024")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=8192")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            # SQLite reports a full disk while creating the WAL's shared-memory file as a
            # "disk I/O error": that is no damage, and the index must not be moved aside
            if _is_no_space(exc) or (
                isinstance(exc, sqlite3.OperationalError) and _low_space(self.base)
            ):
                raise CacheFullError(
                    f"{self.root}: disk full, cannot open the cache index"
                ) from None
            if self.readonly:
                why = (
                    "run 'galaxy-explorer cache verify' on it to rebuild it from the shards"
                    if os.access(self.base, os.W_OK)
                    else "the folder is read-only, so it cannot be rebuilt here"
                )
                raise CacheError(f"{self.path}: damaged cache index ({exc}); {why}") from None
            return self._recover(str(exc))

    def _recover(self, reason: str) -> sqlite3.Connection:
        """Move a damaged index aside and rebuild it from the shards."""
        with contextlib.suppress(Exception):
            self.db.close()
        damaged = self.base / "damaged"
        damaged.mkdir(parents=True, exist_ok=True)
        stamp = _stamp()
        for suffix in ("", "-wal", "-shm"):
            src = self.path.with_name(self.path.name + suffix)
            if src.exists():
                os.replace(src, damaged / f"index-{stamp}.sqlite{suffix}")
        db = self._connect()
        n = rebuild_index(db, self.base / "shards")
        log.warning(
            "cache index %s was damaged (%s); moved to %s and rebuilt from the shards "
            "(%d embeddings recovered)",
            self.path,
            reason,
            damaged,
            n,
        )
        return db

    def guarded(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(db, *args)``; a damaged index is rebuilt once and ``fn`` retried."""
        try:
            return fn(self.db, *args)
        except sqlite3.DatabaseError as exc:
            if _is_no_space(exc):
                raise CacheFullError(
                    f"{self.root}: disk full while writing the cache index; "
                    "everything written before is kept"
                ) from None
            msg = str(exc).lower()
            if self.readonly or not (
                "malformed" in msg
                or "not a database" in msg
                or "disk i/o" in msg
                or "corrupt" in msg
            ):
                raise
            self.db = self._recover(str(exc))
            return fn(self.db, *args)

    def close(self) -> None:
        self.db.close()


def rebuild_index(db: sqlite3.Connection, shards_root: Path) -> int:
    """Re-create the index rows of every space from the shards under ``shards_root``.

    Shards are read oldest first, so a key written twice points at its newest record.
    Returns the number of keys indexed.
    """
    total = 0
    if not shards_root.is_dir():
        return 0
    for space_dir in sorted(p for p in shards_root.iterdir() if p.is_dir()):
        try:
            meta = json.loads((space_dir / "space.json").read_text("utf-8"))
            model_key, render_key, dim = meta["model_key"], meta["render_key"], int(meta["dim"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("cache: %s has no readable space.json; its shards are skipped", space_dir)
            continue
        space = space_dir.name
        with db:
            db.execute(
                "INSERT OR IGNORE INTO spaces VALUES (?, ?, ?, ?)",
                (space, model_key, render_key, dim),
            )
        files = sorted(space_dir.glob(f"*{SHARD_SUFFIX}"), key=lambda p: p.stat().st_mtime_ns)
        for f in files:
            total += register_shard(db, space, dim, f)
    return total


def register_shard(db: sqlite3.Connection, space: str, dim: int, path: Path) -> int:
    """Index every valid record of one shard file (newer records of a key win)."""
    try:
        sdim, _ = _read_header(path)
        if sdim != dim:
            raise ValueError(f"dim {sdim}, space has {dim}")
        arr = _map(path, dim)
    except (OSError, ValueError) as exc:
        log.warning("cache: shard %s skipped (%s)", path.name, exc)
        return 0
    keys = arr["key"]
    with db:
        db.execute("INSERT OR IGNORE INTO shards (space, name) VALUES (?, ?)", (space, path.name))
        sid = db.execute("SELECT id FROM shards WHERE name=?", (path.name,)).fetchone()[0]
        rows = []
        for i, k in enumerate(keys.tolist()):
            try:
                key = k.decode("ascii")
            except UnicodeDecodeError:
                continue
            if key:
                rows.append((space, key, sid, i))
        db.executemany("INSERT INTO vectors (space, sha, shard, row) VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def _map(path: Path, dim: int) -> np.ndarray:
    """Memory-map the complete records of a shard (read-only)."""
    rec = _record_dtype(dim)
    size = path.stat().st_size
    n = max(0, (size - HEADER) // rec.itemsize)
    if n == 0:
        return np.zeros(0, rec)
    return np.memmap(path, dtype=rec, mode="r", offset=HEADER, shape=(n,))


class _ShardWriter:
    """An exclusively locked shard this process appends to."""

    MAX_ROWS = 65536
    SYNC_EVERY = 0.5  # seconds between data syncs of the shard being appended to

    def __init__(self, space_dir: Path, space: str, dim: int) -> None:
        self.space_dir = space_dir
        self.space = space
        self.dim = dim
        self.rec = _record_dtype(dim)
        self.fd = -1
        self.path: Path | None = None
        self._synced = 0.0

    def _lock(self, fd: int) -> bool:
        if fcntl is None:  # pragma: no cover
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _adopt_existing(self) -> bool:
        if fcntl is None:  # pragma: no cover
            return False
        limit = HEADER + self.MAX_ROWS * self.rec.itemsize
        for f in sorted(self.space_dir.glob(f"*{SHARD_SUFFIX}")):
            try:
                if f.stat().st_size >= limit or _read_header(f) != (self.dim, self.space):
                    continue
                fd = os.open(f, os.O_RDWR)
            except (OSError, ValueError):
                continue
            if self._lock(fd) and os.path.exists(f):
                self.fd, self.path = fd, f
                return True
            os.close(fd)
        return False

    def _create(self) -> None:
        name = f"{uuid.uuid4().hex}{SHARD_SUFFIX}"
        final = self.space_dir / name
        tmp = self.space_dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, _header(self.dim, self.space))
            os.fsync(fd)
            self._lock(fd)
            os.replace(tmp, final)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.fd, self.path = fd, final

    def append(self, keys: Sequence[bytes], vectors: np.ndarray) -> tuple[str, int]:
        """Append records; fsync; return (shard name, first row)."""
        if self.fd < 0 or os.fstat(self.fd).st_size >= HEADER + self.MAX_ROWS * self.rec.itemsize:
            self.close()
            if not self._adopt_existing():
                self._create()
        assert self.path is not None
        size = os.fstat(self.fd).st_size
        body = max(0, size - HEADER)
        if size < HEADER or body % self.rec.itemsize:
            # a writer killed mid-append left a partial record nothing references: drop it
            size = HEADER + body - body % self.rec.itemsize
            if os.fstat(self.fd).st_size < HEADER:
                os.pwrite(self.fd, _header(self.dim, self.space), 0)
                size = HEADER
            os.ftruncate(self.fd, size)
        first = (size - HEADER) // self.rec.itemsize
        recs = np.zeros(len(keys), self.rec)
        recs["key"] = keys
        recs["vec"] = vectors.astype(np.float16)
        data = recs.tobytes()
        try:
            written = 0
            while written < len(data):
                written += os.pwrite(self.fd, data[written:], size + written)
            # A killed process loses nothing written here (the data is in the OS already);
            # only a power cut could, and every read checks its record's key, so a record
            # lost that way is found and embedded again. Syncing at most every half second
            # bounds that loss without paying a disk flush per batch.
            now = time.monotonic()
            if now - self._synced > self.SYNC_EVERY:
                os.fdatasync(self.fd) if hasattr(os, "fdatasync") else os.fsync(self.fd)
                self._synced = now
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, size)
            raise
        return self.path.name, int(first)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.fsync(self.fd)
            os.close(self.fd)  # releases the flock
        self.fd, self.path = -1, None


class EmbeddingStore:
    """Embeddings of one (model key, render key) space in a cache folder.

    Parameters
    ----------
    root : Path
        Cache folder (created if needed). Several spaces share one folder.
    model_key, render_key : str
        Identify the model + preprocessing and the image rendering (FITS HDU/bands/stretch).
    dim : int
        Embedding dimension.
    readonly : bool, optional
        Open without writing anything; by default read-only exactly when this process
        cannot write the folder.

    Raises
    ------
    CacheError
        The folder is a file, cannot be created, or its index is damaged and read-only.
    ValueError
        The space exists with another dimension.
    """

    def __init__(
        self,
        root: Path | str,
        model_key: str,
        render_key: str,
        dim: int,
        readonly: bool | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.model_key = model_key
        self.render_key = render_key
        self.dim = int(dim)
        self.space = space_id(model_key, render_key)
        self._index = _Index(self.root, readonly)
        self.readonly = self._index.readonly
        self.shard_dir = self._index.base / "shards" / self.space
        self._rec = _record_dtype(self.dim)
        self._maps: dict[int, tuple[Path, np.ndarray]] = {}
        self._names: dict[int, str] = {}
        self._writer: _ShardWriter | None = None
        self._cache: dict[str, tuple[int, int]] = {}
        self._seen = 0
        self._verified: dict[int, np.ndarray] = {}  # shard id -> rows whose key was checked
        self._index.guarded(self._init_space)

    def _init_space(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT dim FROM spaces WHERE space=?", (self.space,)).fetchone()
        if row and int(row[0]) != self.dim:
            raise ValueError(
                f"cache space for {self.model_key} has dim {row[0]}, model gives {self.dim}"
            )
        if self.readonly or row:
            return
        try:
            self.shard_dir.mkdir(parents=True, exist_ok=True)
            meta = {"model_key": self.model_key, "render_key": self.render_key, "dim": self.dim}
            from galaxy_explorer.core._atomic import atomic_write_bytes

            atomic_write_bytes(self.shard_dir / "space.json", json.dumps(meta).encode())
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO spaces VALUES (?, ?, ?, ?)",
                    (self.space, self.model_key, self.render_key, self.dim),
                )
        except OSError as exc:
            if _is_no_space(exc):
                raise CacheFullError(
                    f"{self.root}: disk full, cannot start a cache space"
                ) from None
            raise

    @property
    def _db(self) -> sqlite3.Connection:
        return self._index.db

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            with contextlib.suppress(OSError, sqlite3.Error):
                self.gc()
        self._maps.clear()
        self._index.close()

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading
    def _view(self) -> dict[str, tuple[int, int]]:
        """key → (shard id, row) of this space, brought up to date with every writer.

        The index is an append-only log (newest row of a key wins), so catching up reads
        only the rows added since the last look, whichever process added them. Appending
        keeps index writes sequential: a B-tree keyed by random content hashes would
        rewrite a page per key and multiply the bytes written.
        """

        def catch_up(db: sqlite3.Connection) -> None:
            rows = db.execute(
                "SELECT id, sha, shard, row FROM vectors WHERE space=? AND id>? ORDER BY id",
                (self.space, self._seen),
            ).fetchall()
            view = self._cache
            for _rid, sha, shard, row in rows:
                view[sha] = (shard, row)
            if rows:
                self._seen = rows[-1][0]

        self._index.guarded(catch_up)
        return self._cache

    def _rows(self, shas: Sequence[str]) -> dict[str, tuple[int, int]]:
        view = self._view()
        out = {}
        for sha in shas:
            hit = view.get(sha)
            if hit is not None:
                out[sha] = hit
        return out

    def _shard_name(self, sid: int) -> str | None:
        name = self._names.get(sid)
        if name is None:
            row = self._index.guarded(
                lambda db: db.execute("SELECT name FROM shards WHERE id=?", (sid,)).fetchone()
            )
            if row is None:
                return None
            name = self._names[sid] = row[0]
        return name

    def _shard(self, sid: int, need: int) -> np.ndarray:
        """The records of shard ``sid``, at least ``need`` of them if the file has them.

        The file's size is checked on every call: reading a memory map of a file that
        was truncated since would kill the process (SIGBUS), so a shrunk file is mapped
        again (and its records checked again).
        """
        hit = self._maps.get(sid)
        if hit is not None:
            path, arr = hit
            try:
                have = max(0, (path.stat().st_size - HEADER) // self._rec.itemsize)
            except OSError:
                have = -1
            if have >= len(arr) and len(arr) >= need:
                return arr
            if have < len(arr):
                self._verified.pop(sid, None)
        name = self._shard_name(sid)
        if name is None:
            raise ValueError("not in the index")
        path = self.shard_dir / name
        dim, space = _read_header(path)
        if dim != self.dim or space != self.space:
            raise ValueError("header belongs to another space")
        arr = _map(path, self.dim)
        self._maps[sid] = (path, arr)
        return arr

    def _locate(self, shas: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions in ``shas`` that the index has, with their shard ids and rows."""
        view = self._view()
        pos, sids, rws = [], [], []
        for i, sha in enumerate(shas):
            hit = view.get(sha)
            if hit is not None:
                pos.append(i)
                sids.append(hit[0])
                rws.append(hit[1])
        return (np.asarray(pos, np.int64), np.asarray(sids, np.int64), np.asarray(rws, np.int64))

    def _checked(self, shas: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """Positions in ``shas`` whose records are intact, their rows, and the shards.

        Every record is checked once per process against the key it should carry. Rows
        pointing at a missing, truncated or garbled shard are dropped from the index (a
        garbled shard is moved aside), with one warning per shard, so they count as
        missing and get embedded again.
        """
        pos, sids, rws = self._locate(shas)
        keep = np.ones(len(pos), bool)
        shards: dict[int, np.ndarray] = {}
        for sid in np.unique(sids).tolist():
            sel = np.flatnonzero(sids == sid)
            r = rws[sel]
            pairs = lambda idx: [(shas[int(pos[j])], int(rws[j])) for j in idx]  # noqa: E731
            if self._shard_name(sid) is None:  # another process dropped this shard since
                self._forget(sid)
                keep[sel] = False
                continue
            try:
                arr = self._shard(sid, int(r.max()) + 1)
            except (OSError, ValueError) as exc:
                self._damaged(
                    sid,
                    pairs(sel),
                    f"unreadable: {getattr(exc, 'strerror', None) or exc}",
                    move=not isinstance(exc, FileNotFoundError),
                )
                keep[sel] = False
                continue
            inside = r < len(arr)
            ok = inside.copy()
            done = self._verified.get(sid)
            if done is None or len(done) < len(arr):
                grown = np.zeros(len(arr), bool)
                if done is not None:
                    grown[: len(done)] = done
                done = self._verified[sid] = grown
            if len(arr):
                todo = np.flatnonzero(inside & ~done[np.minimum(r, len(arr) - 1)])
            else:
                todo = np.zeros(0, np.int64)
            if len(todo):
                want = np.array([shas[int(pos[sel[j]])] for j in todo], dtype=f"S{KEY_BYTES}")
                match = arr["key"][r[todo]] == want
                ok[todo] = match
                done[r[todo][match]] = True
            if not ok.all():
                garbled = bool((inside & ~ok).any())
                bad = sel if garbled else sel[~ok]
                why = "garbled records" if garbled else "shorter than the index says"
                self._damaged(sid, pairs(bad), why, move=garbled)
                keep[bad] = False
                if garbled:
                    continue
            shards[sid] = arr
        return pos[keep], rws[keep], {**shards, -1: sids[keep]}

    def _forget(self, sid: int) -> None:
        """Drop every cached index entry that points at shard ``sid``."""
        for sha in [k for k, v in self._cache.items() if v[0] == sid]:
            del self._cache[sha]
        self._maps.pop(sid, None)
        self._verified.pop(sid, None)

    def _damaged(self, sid: int, pairs: list[tuple[str, int]], reason: str, move: bool) -> None:
        name = self._names.get(sid) or str(sid)
        log.warning(
            "cache shard %s is damaged (%s): %d embedding(s) will be recomputed",
            name,
            reason,
            len(pairs),
        )
        self._maps.pop(sid, None)
        self._verified.pop(sid, None)
        if move:
            self._forget(sid)  # every key in that shard, not only the ones asked for now
        for sha, _ in pairs:
            if self._cache.get(sha, (None,))[0] == sid:
                del self._cache[sha]
        if self.readonly:
            return
        if move:
            self._names.pop(sid, None)

        def drop(db: sqlite3.Connection) -> None:
            with db:
                if move:
                    db.execute("DELETE FROM vectors WHERE shard=?", (sid,))
                    db.execute("DELETE FROM shards WHERE id=?", (sid,))
                else:
                    db.executemany(
                        "DELETE FROM vectors WHERE shard=? AND row=?",
                        [(sid, row) for _, row in pairs],
                    )

        self._index.guarded(drop)
        if move and name != str(sid):
            src = self.shard_dir / name
            if src.exists():
                dst = self._index.base / "damaged" / f"{self.space}-{_stamp()}-{name}"
                dst.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(OSError):
                    os.replace(src, dst)

    def get(self, shas: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``shas`` as float32 (zeros where missing) and a found mask."""
        out = np.zeros((len(shas), self.dim), np.float32)
        found = np.zeros(len(shas), bool)
        pos, rws, shards = self._checked(shas)
        sids = shards.pop(-1)
        for sid, arr in shards.items():
            sel = sids == sid
            out[pos[sel]] = arr["vec"][rws[sel]]
        found[pos] = True
        return out, found

    def missing(self, shas: Sequence[str]) -> list[str]:
        """The shas (unique, in order) that have no intact vector in this space."""
        pos, _, _ = self._checked(shas)
        have = np.zeros(len(shas), bool)
        have[pos] = True
        return list(dict.fromkeys(s for s, h in zip(shas, have.tolist(), strict=True) if not h))

    def __len__(self) -> int:
        return len(self._view())

    # ----------------------------------------------------------------- writing
    def _writable(self) -> None:
        if self.readonly:
            raise CacheReadOnlyError(
                f"{self.root}: the cache folder is read-only; new embeddings cannot be stored"
            )

    def put(self, shas: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for ``shas``: one fsynced append, then one index transaction.

        Raises
        ------
        CacheReadOnlyError, CacheFullError
            The folder cannot be written / the disk is full (nothing of this batch is kept,
            everything before is).
        """
        vectors = np.asarray(vectors)
        if len(shas) != len(vectors):
            raise ValueError(f"{len(shas)} keys but {len(vectors)} vectors")
        if len(shas) == 0:
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        keys = [_key_bytes(s) for s in shas]
        self._writable()
        if self._writer is None:
            self._writer = _ShardWriter(self.shard_dir, self.space, self.dim)
            self._remove_stale_temps()
        try:
            name, first = self._writer.append(keys, vectors)
        except OSError as exc:
            if _is_no_space(exc):
                raise CacheFullError(
                    f"{self.root}: disk full while writing embeddings; "
                    "everything written before is kept"
                ) from None
            raise

        def commit(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO shards (space, name) VALUES (?, ?)", (self.space, name)
                )
                sid = db.execute("SELECT id FROM shards WHERE name=?", (name,)).fetchone()[0]
                db.executemany(
                    "INSERT INTO vectors (space, sha, shard, row) VALUES (?, ?, ?, ?)",
                    [(self.space, s, sid, first + i) for i, s in enumerate(shas)],
                )
                db.executemany(
                    "DELETE FROM failures WHERE space=? AND sha=?", [(self.space, s) for s in shas]
                )

        self._index.guarded(commit)

    def put_failure(
        self, sha: str, reason: str, path: str | os.PathLike[str] | bytes | None = None
    ) -> None:
        """Record that a file (by content hash) could not be embedded, and why.

        Every path with that content is kept (file names may hold any bytes).
        """
        if self.readonly:
            return
        pb = _path_bytes(path) if path is not None else b""

        def rec(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                    (self.space, sha, pb, reason, time.time()),
                )

        self._index.guarded(rec)

    def failures(self) -> dict[str, str]:
        """sha → reason for every recorded failure in this space."""
        q = "SELECT sha, reason FROM failures WHERE space=?"
        return dict(self._index.guarded(lambda db: db.execute(q, (self.space,)).fetchall()))

    def failure_paths(self) -> list[tuple[Path, str, str]]:
        """(path, sha, reason) of every recorded failure, each path once."""
        q = "SELECT path, sha, reason FROM failures WHERE space=? AND path != x'' ORDER BY path"
        rows = self._index.guarded(lambda db: db.execute(q, (self.space,)).fetchall())
        return [(Path(os.fsdecode(bytes(p))), s, r) for p, s, r in rows]

    def clear_failures(self, shas: Iterable[str] | None = None) -> None:
        if self.readonly:
            return

        def clr(db: sqlite3.Connection) -> None:
            with db:
                if shas is None:
                    db.execute("DELETE FROM failures WHERE space=?", (self.space,))
                else:
                    db.executemany(
                        "DELETE FROM failures WHERE space=? AND sha=?",
                        [(self.space, s) for s in shas],
                    )

        self._index.guarded(clr)

    def adopt_shard(self, path: Path | str) -> int:
        """Move a shard written by :func:`write_shard_file` into this space and index it.

        The file is renamed into the space's folder when it is on the same filesystem (else
        copied), then all its records are indexed in one transaction. Returns the number of
        records indexed.
        """
        import shutil

        self._writable()
        src = Path(path)
        dim, space = _read_header(src)
        if dim != self.dim or space != self.space:
            raise ValueError(f"{src}: shard belongs to another model or rendering")
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        dst = self.shard_dir / src.name
        try:
            os.replace(src, dst)
        except OSError:
            tmp = self.shard_dir / f".{src.name}.tmp"
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:  # the copy is on disk before the source goes
                os.fsync(fh.fileno())
            os.replace(tmp, dst)
            src.unlink()
        return int(self._index.guarded(lambda db: register_shard(db, self.space, self.dim, dst)))

    # ------------------------------------------------------------- maintenance
    def _remove_stale_temps(self) -> None:
        now = time.time()
        for f in self.shard_dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - f.stat().st_mtime > 60:
                    f.unlink()

    def shard_files(self) -> list[Path]:
        """The shard files of this space on disk."""
        return sorted(self.shard_dir.glob(f"*{SHARD_SUFFIX}"))

    def gc(self, min_age: float = 60.0) -> int:
        """Delete shard files of this space that no index row uses and no writer holds.

        Returns the number of files deleted. A file younger than ``min_age`` seconds may
        belong to a writer between its append and its commit, and is kept.
        """
        if self.readonly:
            return 0
        live = {
            r[0]
            for r in self._index.guarded(
                lambda db: db.execute(
                    "SELECT DISTINCT s.name FROM vectors v JOIN shards s ON s.id = v.shard "
                    "WHERE v.space=?",
                    (self.space,),
                ).fetchall()
            )
        }
        removed = 0
        now = time.time()
        for f in self.shard_files():
            if f.name in live or (self._writer is not None and self._writer.path == f):
                continue
            try:
                if now - f.stat().st_mtime < min_age:
                    continue
                fd = os.open(f, os.O_RDONLY)
            except OSError:
                continue
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a live writer holds it
                f.unlink()
                removed += 1
            finally:
                os.close(fd)
            self._index.guarded(
                lambda db, n=f.name: (
                    db.execute("DELETE FROM shards WHERE name=?", (n,)) and db.commit()
                )
            )
        return removed

    def verify(self) -> VerifyReport:
        """Check every index row of this space against its shard (damage is handled)."""
        keys = list(self._view())
        pos, _, shards = self._checked(keys)
        rep = VerifyReport(vectors=len(pos), shards=len(shards) - 1, bad_rows=len(keys) - len(pos))
        return rep

    def keys(self) -> list[str]:
        """Every key that has a vector in this space."""
        return list(self._view())


class FileMemo:
    """Remembers (path, size, mtime_ns, ctime_ns, inode) → sha256 in the cache index.

    :func:`galaxy_explorer.core.catalog.scan` uses it so that a re-scan of an unchanged
    folder costs one ``stat`` per file and no reads. A file changed in place changes its
    size, mtime or ctime (ctime cannot be set back by a user), so it is hashed again.
    Paths are kept as bytes, so any name the filesystem allows works.
    """

    def __init__(self, root: Path | str, readonly: bool | None = None) -> None:
        self._index = _Index(Path(root).expanduser(), readonly)
        self.readonly = self._index.readonly

    def lookup(self, prefix: str | os.PathLike[str]) -> dict[bytes, tuple[int, int, int, int, str]]:
        """Remembered entries of every path under the folder ``prefix``."""
        lo = _path_bytes(prefix).rstrip(b"/") + b"/"
        hi = lo[:-1] + b"0"  # '0' follows '/' in byte order
        q = "SELECT path, size, mtime_ns, ctime_ns, ino, sha FROM files WHERE path >= ? AND path < ?"
        rows = self._index.guarded(lambda db: db.execute(q, (lo, hi)).fetchall())
        return {bytes(p): (s, m, c, i, h) for p, s, m, c, i, h in rows}

    def lookup_one(self, path: str | os.PathLike[str]) -> tuple[int, int, int, int, str] | None:
        row = self._index.guarded(
            lambda db: db.execute(
                "SELECT size, mtime_ns, ctime_ns, ino, sha FROM files WHERE path=?",
                (_path_bytes(path),),
            ).fetchone()
        )
        return tuple(row) if row else None  # type: ignore[return-value]

    def record(self, entries: Iterable[tuple[bytes, int, int, int, int, str]]) -> None:
        """Remember (path bytes, size, mtime_ns, ctime_ns, inode, sha) for each entry."""
        rows = list(entries)
        if self.readonly or not rows:
            return

        def rec(db: sqlite3.Connection) -> None:
            with db:
                db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)

        try:
            self._index.guarded(rec)
        except (CacheFullError, sqlite3.OperationalError) as exc:
            log.warning(
                "cache: could not remember file hashes (%s); the next scan reads them again", exc
            )

    def forget(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Forget the remembered hashes of ``paths`` (files a scan no longer finds)."""
        rows = [(_path_bytes(p),) for p in paths]
        if self.readonly or not rows:
            return

        def rec(db: sqlite3.Connection) -> None:
            with db:
                db.executemany("DELETE FROM files WHERE path=?", rows)

        try:
            self._index.guarded(rec)
        except (CacheFullError, sqlite3.OperationalError) as exc:
            log.warning("cache: could not forget removed files (%s)", exc)

    def sky_positions(
        self, items: Sequence[tuple[str, Path]], compute: Any
    ) -> list[tuple[float | None, float | None]]:
        """RA/Dec of each (sha, path), from the cache; ``compute(path)`` only for new content.

        Positions are keyed by content hash, so a file is opened for its header once, ever.
        """
        shas = list(dict.fromkeys(sha for sha, _ in items))
        known: dict[str, tuple[float | None, float | None]] = {}

        def q(db: sqlite3.Connection) -> None:
            for i in range(0, len(shas), 900):
                chunk = shas[i : i + 900]
                marks = ",".join("?" * len(chunk))
                for sha, ra, dec in db.execute(
                    f"SELECT sha, ra, dec FROM sky WHERE sha IN ({marks})", chunk
                ):
                    known[sha] = (ra, dec)

        self._index.guarded(q)
        new = []
        for sha, path in items:
            if sha not in known:
                known[sha] = tuple(compute(path))  # type: ignore[assignment]
                new.append((sha, *known[sha]))
        if new and not self.readonly:

            def rec(db: sqlite3.Connection) -> None:
                with db:
                    db.executemany("INSERT OR REPLACE INTO sky VALUES (?, ?, ?)", new)

            with contextlib.suppress(CacheError, sqlite3.OperationalError):
                self._index.guarded(rec)
        return [known[sha] for sha, _ in items]

    def close(self) -> None:
        self._index.close()


# ----------------------------------------------------------------- whole caches
def cache_info(root: Path | str) -> dict[str, Any]:
    """Counts, spaces (models), size on disk and orphan shards of a cache folder."""
    idx = _Index(Path(root).expanduser(), readonly=True)
    try:
        db = idx.db
        spaces = db.execute("SELECT space, model_key, render_key, dim FROM spaces").fetchall()
        out_spaces = []
        orphans = 0
        for space, model_key, render_key, dim in spaces:
            n = db.execute(
                "SELECT COUNT(DISTINCT sha) FROM vectors WHERE space=?", (space,)
            ).fetchone()[0]
            live = {
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT s.name FROM vectors v JOIN shards s ON s.id=v.shard "
                    "WHERE v.space=?",
                    (space,),
                )
            }
            files = list((idx.base / "shards" / space).glob(f"*{SHARD_SUFFIX}"))
            orph = [f for f in files if f.name not in live]
            orphans += len(orph)
            nfail = db.execute(
                "SELECT COUNT(DISTINCT sha) FROM failures WHERE space=?", (space,)
            ).fetchone()[0]
            out_spaces.append(
                {
                    "space": space,
                    "model_key": model_key,
                    "render_key": render_key,
                    "dim": dim,
                    "vectors": n,
                    "shards": len(files),
                    "orphan_shards": len(orph),
                    "failures": nfail,
                }
            )
        nfiles = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    finally:
        idx.close()
    size = sum(f.stat().st_size for f in _walk_files(idx.base))
    return {
        "root": str(idx.root),
        "spaces": out_spaces,
        "bytes": size,
        "orphan_shards": orphans,
        "remembered_files": nfiles,
        "vectors": sum(s["vectors"] for s in out_spaces),
    }


def _walk_files(folder: Path) -> Iterator[Path]:
    if not folder.exists():
        return
    for dirpath, _, names in os.walk(folder):
        for n in names:
            p = Path(dirpath) / n
            with contextlib.suppress(OSError):
                if p.is_file():
                    yield p


def merge_caches(sources: Sequence[Path | str], dest: Path | str) -> int:
    """Copy every embedding of ``sources`` that ``dest`` lacks into ``dest``.

    Shard files are copied whole (they describe themselves) and registered in the
    destination's index in one transaction each; keys the destination already has keep
    its vectors. Returns the number of vectors added.
    """
    import shutil

    dst = _Index(Path(dest).expanduser(), readonly=False)
    added = 0
    try:
        for src_root in sources:
            src = _Index(Path(src_root).expanduser(), readonly=True)
            try:
                spaces = src.db.execute(
                    "SELECT space, model_key, render_key, dim FROM spaces"
                ).fetchall()
                for space, model_key, render_key, dim in spaces:
                    sdir = src.base / "shards" / space
                    ddir = dst.base / "shards" / space
                    ddir.mkdir(parents=True, exist_ok=True)
                    from galaxy_explorer.core._atomic import atomic_write_bytes

                    if not (ddir / "space.json").exists():
                        meta = {"model_key": model_key, "render_key": render_key, "dim": dim}
                        atomic_write_bytes(ddir / "space.json", json.dumps(meta).encode())
                    with dst.db:
                        dst.db.execute(
                            "INSERT OR IGNORE INTO spaces VALUES (?, ?, ?, ?)",
                            (space, model_key, render_key, dim),
                        )
                    have = {
                        r[0]
                        for r in dst.db.execute("SELECT sha FROM vectors WHERE space=?", (space,))
                    }
                    for f in sorted(sdir.glob(f"*{SHARD_SUFFIX}")):
                        try:
                            arr = _map(f, dim)
                            _read_header(f)
                        except (OSError, ValueError) as exc:
                            log.warning("merge: shard %s skipped (%s)", f, exc)
                            continue
                        keys = {k.decode("ascii", "ignore") for k in arr["key"].tolist()} - {""}
                        new = keys - have
                        if not new:
                            continue
                        target = ddir / f.name
                        if not target.exists():
                            tmp = ddir / f".{f.name}.tmp"
                            shutil.copyfile(f, tmp)
                            with open(tmp, "rb+") as fh:
                                os.fsync(fh.fileno())
                            os.replace(tmp, target)
                        sid_rows = _register_new(dst.db, space, dim, target, new)
                        added += sid_rows
                        have |= new
            finally:
                src.close()
    finally:
        dst.close()
    return added


def _register_new(db: sqlite3.Connection, space: str, dim: int, path: Path, new: set[str]) -> int:
    arr = _map(path, dim)
    with db:
        db.execute("INSERT OR IGNORE INTO shards (space, name) VALUES (?, ?)", (space, path.name))
        sid = db.execute("SELECT id FROM shards WHERE name=?", (path.name,)).fetchone()[0]
        rows = []
        for i, k in enumerate(arr["key"].tolist()):
            key = k.decode("ascii", "ignore")
            if key in new:
                rows.append((space, key, sid, i))
        db.executemany("INSERT INTO vectors (space, sha, shard, row) VALUES (?, ?, ?, ?)", rows)
    return len({r[1] for r in rows})


def verify_cache(root: Path | str) -> dict[str, Any]:
    """Check every space's index rows against its shards; repair what is damaged.

    Damaged shards are moved aside (their images are embedded again by the next
    ``embed``), and shard files no index row uses are deleted. Returns counts.
    """
    root = Path(root).expanduser()
    idx = _Index(root, readonly=None)
    try:
        spaces = idx.guarded(
            lambda db: db.execute("SELECT model_key, render_key, dim FROM spaces").fetchall()
        )
    finally:
        idx.close()
    total = VerifyReport()
    for model_key, render_key, dim in spaces:
        with EmbeddingStore(root, model_key, render_key, dim) as st:
            rep = st.verify()
            total.vectors += rep.vectors
            total.shards += rep.shards
            total.bad_rows += rep.bad_rows
            total.orphan_shards += st.gc(min_age=60.0)
    return {
        "vectors": total.vectors,
        "shards": total.shards,
        "bad_rows": total.bad_rows,
        "orphans_deleted": total.orphan_shards,
        "spaces": len(spaces),
    }


def write_shard_file(
    folder: Path | str,
    model_key: str,
    render_key: str,
    dim: int,
    keys: Sequence[str],
    vectors: np.ndarray,
) -> Path:
    """Write one complete shard of (key, vector) records into ``folder``, atomically.

    For workers that embed away from the cache's index (a Ray cluster): they write shards
    in the cache's own format, and the driver adds them with
    :meth:`EmbeddingStore.adopt_shard`. Returns the shard's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[1] != int(dim) or len(keys) != len(vectors):
        raise ValueError(f"expected {len(keys)} vectors of dim {dim}, got {vectors.shape}")
    rec = _record_dtype(dim)
    recs = np.zeros(len(keys), rec)
    recs["key"] = [_key_bytes(k) for k in keys]
    recs["vec"] = vectors.astype(np.float16)
    name = f"{uuid.uuid4().hex}{SHARD_SUFFIX}"
    from galaxy_explorer.core._atomic import atomic_write_bytes

    atomic_write_bytes(
        folder / name, _header(dim, space_id(model_key, render_key)) + recs.tobytes()
    )
    return folder / name
