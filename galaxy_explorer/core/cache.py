"""On-disk embedding store: float16 ``.npy`` shards plus an SQLite index.

Layout under the cache root::

    index.sqlite                     (WAL) (sha, model_key, render_key) → shard, row; failures
    shards/<space>/<uuid>.npy         immutable float16 (n, dim) arrays, one per batch written

``space`` is a short hash of (model key, render key). Keys are file *content* hashes, so a
renamed or moved file is never embedded twice and a changed file always is.

Crash safety: a shard is written to a temporary file, flushed, fsynced and renamed into
place before the index rows that point at it are committed in one transaction. A process
killed at any point leaves either the old state or the new one; at worst an orphan shard
that nothing references (removed by :meth:`EmbeddingStore.compact`). Shards are never
modified after they are written, so readers in other processes are safe while one writer
runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from galaxy_explorer.core._atomic import atomic_write_bytes

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    sha TEXT NOT NULL, space TEXT NOT NULL, shard TEXT NOT NULL, row INTEGER NOT NULL,
    PRIMARY KEY (sha, space)
);
CREATE TABLE IF NOT EXISTS failures (
    sha TEXT NOT NULL, space TEXT NOT NULL, reason TEXT NOT NULL, path TEXT, time REAL,
    PRIMARY KEY (sha, space)
);
CREATE TABLE IF NOT EXISTS spaces (
    space TEXT PRIMARY KEY, model_key TEXT NOT NULL, render_key TEXT NOT NULL, dim INTEGER NOT NULL
);
"""


def default_cache_dir() -> Path:
    """The platform's user cache folder for Galaxy Explorer (``$GALAXY_EXPLORER_CACHE`` wins)."""
    env = os.environ.get("GALAXY_EXPLORER_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("galaxy-explorer", appauthor=False))


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


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
    """

    COMPACT_AT = 64  # shards in a space before they are merged into one

    def __init__(self, root: Path, model_key: str, render_key: str, dim: int) -> None:
        self.root = Path(root).expanduser()
        self.model_key = model_key
        self.render_key = render_key
        self.dim = int(dim)
        self.space = hashlib.sha256(f"{model_key}\0{render_key}".encode()).hexdigest()[:16]
        self.shard_dir = self.root / "shards" / self.space
        try:
            self.shard_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"{self.root}: cannot create the cache folder: {exc.strerror}") from exc
        self._db = self._connect()
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO spaces VALUES (?, ?, ?, ?)",
                (self.space, model_key, render_key, self.dim),
            )
        row = self._db.execute("SELECT dim FROM spaces WHERE space=?", (self.space,)).fetchone()
        if row and int(row[0]) != self.dim:
            raise ValueError(f"cache space for {model_key} has dim {row[0]}, model gives {self.dim}")
        self._mmaps: dict[str, np.ndarray] = {}

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.root / "index.sqlite", timeout=30, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def close(self) -> None:
        self._mmaps.clear()
        self._db.close()

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading
    def _rows(self, shas: Sequence[str]) -> dict[str, tuple[str, int]]:
        found: dict[str, tuple[str, int]] = {}
        uniq = list(dict.fromkeys(shas))
        for i in range(0, len(uniq), 900):  # SQLite's variable limit
            chunk = uniq[i:i + 900]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT sha, shard, row FROM vectors WHERE space=? AND sha IN ({marks})"
            for sha, shard, row in self._db.execute(q, (self.space, *chunk)):
                found[sha] = (shard, int(row))
        return found

    def _shard(self, name: str) -> np.ndarray:
        arr = self._mmaps.get(name)
        if arr is None:
            arr = np.load(self.shard_dir / name, mmap_mode="r", allow_pickle=False)
            self._mmaps[name] = arr
        return arr

    def get(self, shas: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``shas`` as float32 (zeros where missing) and a found mask."""
        out = np.zeros((len(shas), self.dim), np.float32)
        found = np.zeros(len(shas), bool)
        rows = self._rows(shas)
        by_shard: dict[str, list[tuple[int, int]]] = {}
        for i, sha in enumerate(shas):
            hit = rows.get(sha)
            if hit is not None:
                by_shard.setdefault(hit[0], []).append((i, hit[1]))
        for shard, pairs in by_shard.items():
            try:
                arr = self._shard(shard)
            except (OSError, ValueError) as exc:
                log.warning("cache shard %s unreadable (%s); its entries will be recomputed", shard, exc)
                continue
            idx = np.fromiter((p[0] for p in pairs), int, len(pairs))
            rws = np.fromiter((p[1] for p in pairs), int, len(pairs))
            out[idx] = arr[rws].astype(np.float32)
            found[idx] = True
        return out, found

    def missing(self, shas: Sequence[str]) -> list[str]:
        """The shas (unique, in order) that have no vector in this space."""
        rows = self._rows(shas)
        return [s for s in dict.fromkeys(shas) if s not in rows]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors WHERE space=?", (self.space,)).fetchone()[0])

    # ----------------------------------------------------------------- writing
    def put(self, shas: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for ``shas`` atomically (one new shard + one index transaction)."""
        vectors = np.asarray(vectors)
        if len(shas) != len(vectors):
            raise ValueError(f"{len(shas)} keys but {len(vectors)} vectors")
        if len(shas) == 0:
            return
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (n, {self.dim}), got {vectors.shape}")
        name = f"{uuid.uuid4().hex}.npy"
        atomic_write_bytes(self.shard_dir / name, _npy_bytes(vectors.astype(np.float16)))
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                [(s, self.space, name, i) for i, s in enumerate(shas)],
            )
            self._db.executemany(
                "DELETE FROM failures WHERE sha=? AND space=?", [(s, self.space) for s in shas]
            )
        if self._shard_count() > self.COMPACT_AT:
            self.compact()

    def put_failure(self, sha: str, reason: str, path: str | os.PathLike[str] | None = None) -> None:
        """Record that a file (by content hash) could not be embedded, and why."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                (sha, self.space, reason, str(path) if path else None, time.time()),
            )

    def failures(self) -> dict[str, str]:
        """sha → reason for every recorded failure in this space."""
        q = "SELECT sha, reason FROM failures WHERE space=?"
        return {sha: reason for sha, reason in self._db.execute(q, (self.space,))}

    def clear_failures(self, shas: Iterable[str] | None = None) -> None:
        with self._db:
            if shas is None:
                self._db.execute("DELETE FROM failures WHERE space=?", (self.space,))
            else:
                self._db.executemany("DELETE FROM failures WHERE sha=? AND space=?",
                                     [(s, self.space) for s in shas])

    # -------------------------------------------------------------- compaction
    def _shard_count(self) -> int:
        q = "SELECT COUNT(DISTINCT shard) FROM vectors WHERE space=?"
        return int(self._db.execute(q, (self.space,)).fetchone()[0])

    def compact(self) -> None:
        """Merge all shards of this space into one and delete unreferenced shard files."""
        rows = self._db.execute(
            "SELECT sha, shard, row FROM vectors WHERE space=? ORDER BY shard, row", (self.space,)
        ).fetchall()
        if rows:
            shas = [r[0] for r in rows]
            vecs, found = self.get(shas)
            keep = [s for s, f in zip(shas, found, strict=True) if f]
            name = f"{uuid.uuid4().hex}.npy"
            atomic_write_bytes(self.shard_dir / name, _npy_bytes(vecs[found].astype(np.float16)))
            with self._db:
                self._db.execute("DELETE FROM vectors WHERE space=?", (self.space,))
                self._db.executemany("INSERT INTO vectors VALUES (?, ?, ?, ?)",
                                     [(s, self.space, name, i) for i, s in enumerate(keep)])
        self._mmaps.clear()
        live = {r[0] for r in self._db.execute(
            "SELECT DISTINCT shard FROM vectors WHERE space=?", (self.space,))}
        now = time.time()
        for f in self.shard_dir.glob("*.npy"):
            # an unreferenced shard younger than a minute may belong to a writer in flight
            if f.name not in live and now - f.stat().st_mtime > 60:
                try:
                    f.unlink()
                except OSError:
                    pass
