"""Approximate nearest-neighbour index for ranking very large sets (optional, faiss).

Brute-force ranking (one ``vectors @ q``, then ``top_k``) costs ~150 ms per query at about
a million 512-d vectors on a 2-core machine (``tests/benchmarks/bench_search.py
--threshold``). Above :data:`ANN_MIN_ROWS` rows a top-k query asks a faiss inverted-file
index (IVF, 8-bit scalar-quantised codes: about D bytes per row) for ``4 x k`` candidates
and re-ranks them with exact float32 dot products against the caller's own vectors, so
every returned score is exact; only which rows make the top k is approximate (recall@10
of 1.0 on clustered synthetic vectors at 1M, see the benchmark).

faiss is an optional extra (``pip install 'galaxy-explorer[ann]'``). Without it, or below
the threshold, ranking stays brute force and exact; a missing faiss is said once, in one
log line.

The index is built once (off the GUI thread, or by the CLI) and cached on disk in
``<cache>/ann/`` under a name derived from the model space and the exact, ordered list of
content keys it covers, so any change of the rows (added, removed, reordered) finds no
file and builds a new one. The file is written atomically (temporary file, fsync,
``os.replace``) under a lock file, so two processes building at once neither corrupt it
nor both pay for the build. A file whose header, checksum or payload does not match is
reported in one warning line and rebuilt: never a wrong result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_explorer.core._atomic import atomic_open

log = logging.getLogger(__name__)

__all__ = [
    "ANN_MIN_ROWS",
    "AnnIndex",
    "AnnUnavailable",
    "ann_min_rows",
    "available",
    "build_index",
    "index_for",
    "index_path",
]

#: Rows from which a top-k query uses the approximate index. Brute force crosses 150 ms
#: per query at ~0.98M rows for D=512 and ~1.06M for D=384 on a 2-core EPYC
#: (bench_search.py --threshold). Override with ``GALAXY_EXPLORER_ANN_MIN_ROWS``.
ANN_MIN_ROWS = 1_000_000
#: Environment variable that overrides :data:`ANN_MIN_ROWS`.
ENV_MIN_ROWS = "GALAXY_EXPLORER_ANN_MIN_ROWS"
#: Candidates fetched per wanted result, then re-ranked exactly.
OVERFETCH = 4
#: Largest top-k answered from the index (more falls back to brute force).
MAX_TOP = 1000
#: Inverted lists probed per query (of about sqrt(N) lists).
NPROBE = 16
#: Training rows per inverted list for the k-means of the coarse quantiser.
TRAIN_PER_LIST = 40
#: k-means iterations.
KMEANS_ITER = 10
#: Backend tag written in the file header.
BACKEND = "faiss-ivf-sq8"
_MAGIC = b"GEANN01\n"
_FORMAT = 1
_KEEP_PER_SPACE = 2  # index files kept per model space (two catalogues can alternate)
_HINT = "approximate search needs faiss: pip install 'galaxy-explorer[ann]'; using exact search"

_said_missing = False
_said_lock = threading.Lock()


class AnnUnavailable(RuntimeError):
    """faiss is not installed (the ``ann`` extra)."""


def ann_min_rows() -> int:
    """Rows from which the index is used: :data:`ANN_MIN_ROWS` or the environment's value."""
    raw = os.environ.get(ENV_MIN_ROWS, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            log.warning("%s=%r is not a whole number; using %d", ENV_MIN_ROWS, raw, ANN_MIN_ROWS)
    return ANN_MIN_ROWS


def _faiss() -> Any:
    try:
        import faiss  # heavy, optional
    except ImportError as exc:
        raise AnnUnavailable(_HINT) from exc
    return faiss


def available() -> bool:
    """Whether faiss can be imported; says so once (one log line) when it cannot."""
    global _said_missing
    try:
        _faiss()
        return True
    except AnnUnavailable:
        with _said_lock:
            if not _said_missing:
                _said_missing = True
                log.warning(_HINT)
        return False


def rows_digest(space: str, keys: Sequence[str]) -> str:
    """sha256 of the model space and the ordered content keys (the index's identity)."""
    h = hashlib.sha256()
    h.update(f"ge-ann|{_FORMAT}|{BACKEND}|{space}|{len(keys)}\n".encode())
    h.update("\n".join(keys).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def index_path(cache_dir: str | os.PathLike[str], space: str, keys: Sequence[str]) -> Path:
    """The file that caches the index of these rows (``<cache>/ann/<space>-<rows>.ann``)."""
    sp = hashlib.sha256(space.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(cache_dir) / "ann" / f"{sp}-{rows_digest(space, keys)[:32]}.ann"


@dataclass
class AnnIndex:
    """A faiss IVF index over ``n`` rows of dimension ``dim``, in the caller's row order.

    Attributes
    ----------
    n, dim : int
        Rows and dimension covered.
    digest : str
        :func:`rows_digest` of the rows.
    nprobe : int
        Inverted lists searched per query.
    """

    index: Any
    n: int
    dim: int
    digest: str
    nprobe: int = NPROBE

    def candidates(self, query: np.ndarray, k: int, nprobe: int | None = None) -> np.ndarray:
        """Up to ``k`` row indices likely to score highest for ``query`` (not re-ranked).

        Parameters
        ----------
        query : ndarray
            ``(D,)`` query vector.
        k : int
            Candidates wanted.
        nprobe : int, optional
            Inverted lists to search (default: :attr:`nprobe`).

        Returns
        -------
        ndarray
            int64 row indices, distinct, possibly fewer than ``k``.
        """
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if q.shape[1] != self.dim:
            raise ValueError(f"query has dimension {q.shape[1]}, the index has {self.dim}")
        k = max(1, min(int(k), self.n))
        self.index.nprobe = int(nprobe or self.nprobe)
        _, ids = self.index.search(q, k)
        ids = ids[0]
        return ids[ids >= 0].astype(np.int64, copy=False)

    def top(
        self, vectors: np.ndarray, query: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``k`` best rows by exact score among ``OVERFETCH x k`` candidates.

        Parameters
        ----------
        vectors : ndarray
            ``(n, D)`` the vectors the index was built on (same rows, same order).
        query : ndarray
            ``(D,)`` query vector.
        k : int
            Results wanted.

        Returns
        -------
        (rows, scores) or None
            int64 row indices best first (ties by lower row) and their exact float32
            scores ``vectors[rows] @ query``; None when ``k`` is above :data:`MAX_TOP`
            or the index has too few candidates even with more lists probed (use brute
            force then).
        """
        if len(vectors) != self.n:
            raise ValueError(f"{len(vectors)} vectors, the index covers {self.n}")
        k = int(k)
        if k <= 0 or k > MAX_TOP or OVERFETCH * k > self.n:
            return None
        q = np.asarray(query, dtype=np.float32)
        want, nprobe, nlist = OVERFETCH * k, self.nprobe, int(getattr(self.index, "nlist", 1))
        cand = self.candidates(q, want, nprobe)
        while len(cand) < want and nprobe < nlist:  # the probed lists held too few rows
            nprobe = min(nlist, nprobe * 4)
            cand = self.candidates(q, want, nprobe)
        if len(cand) < want:
            return None
        cand = np.sort(cand)
        exact = np.asarray(vectors[cand], dtype=np.float32) @ q
        order = np.lexsort((cand, -exact))[:k]
        return cand[order], exact[order].astype(np.float32, copy=False)


def _n_lists(n: int) -> int:
    return max(1, min(int(math.sqrt(n)), n // TRAIN_PER_LIST))


def build_index(vectors: np.ndarray, digest: str = "", threads: int | None = None) -> AnnIndex:
    """Build the IVF index of ``vectors`` (inner product), in memory.

    About sqrt(N) inverted lists from k-means on a fixed subsample, 8-bit scalar-quantised
    codes. Deterministic for the same vectors.

    Parameters
    ----------
    vectors : ndarray
        ``(N, D)`` float32 (other types are converted chunk by chunk).
    digest : str
        :func:`rows_digest` of the rows, kept with the index.
    threads : int, optional
        OpenMP threads for the build (default: faiss's, i.e. all cores).

    Raises
    ------
    AnnUnavailable
        faiss is not installed.
    """
    faiss = _faiss()
    emb = np.asarray(vectors)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise ValueError(f"cannot index vectors of shape {emb.shape}")
    n, d = emb.shape
    if threads is not None:
        faiss.omp_set_num_threads(int(threads))
    nlist = _n_lists(n)
    quant = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(
        quant, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.niter = KMEANS_ITER
    index.cp.seed = 1234
    m = min(n, TRAIN_PER_LIST * nlist)
    rows = np.sort(np.random.default_rng(0).choice(n, m, replace=False)) if m < n else None
    train = emb if rows is None else emb[rows]
    index.train(np.ascontiguousarray(train, dtype=np.float32))
    del train
    step = 65_536
    for start in range(0, n, step):
        index.add(np.ascontiguousarray(emb[start : start + step], dtype=np.float32))
    return AnnIndex(index, n, d, digest, nprobe=min(NPROBE, nlist))


# ------------------------------------------------------------------------------- file
def _write(path: Path, ann: AnnIndex, space: str) -> None:
    faiss = _faiss()
    payload = faiss.serialize_index(ann.index)  # uint8 array
    header = json.dumps(
        {
            "format": _FORMAT,
            "backend": BACKEND,
            "space": space,
            "n": ann.n,
            "dim": ann.dim,
            "rows": ann.digest,
            "nprobe": ann.nprobe,
            "payload_len": int(payload.nbytes),
            "payload_sha256": hashlib.sha256(memoryview(payload)).hexdigest(),
        }
    ).encode()
    with atomic_open(path, "wb") as fh:
        fh.write(_MAGIC)
        fh.write(struct.pack("<Q", len(header)))
        fh.write(header)
        fh.write(memoryview(payload))


class _Damaged(Exception):
    pass


def _read(path: Path, digest: str, n: int, dim: int) -> AnnIndex:
    """Load and verify an index file; raises FileNotFoundError or _Damaged."""
    faiss = _faiss()
    with open(path, "rb") as fh:
        if fh.read(len(_MAGIC)) != _MAGIC:
            raise _Damaged("not an index file")
        raw = fh.read(8)
        if len(raw) != 8:
            raise _Damaged("truncated header")
        (hlen,) = struct.unpack("<Q", raw)
        if hlen > 1 << 20:
            raise _Damaged("bad header length")
        try:
            head = json.loads(fh.read(hlen))
        except ValueError as exc:
            raise _Damaged(f"unreadable header ({exc})") from None
        if not isinstance(head, dict):
            raise _Damaged("unreadable header")
        want = {"format": _FORMAT, "backend": BACKEND, "rows": digest, "n": n, "dim": dim}
        for key, value in want.items():
            if head.get(key) != value:
                raise _Damaged(f"{key} is {head.get(key)!r}, expected {value!r}")
        size = int(head.get("payload_len", -1))
        payload = np.fromfile(fh, dtype=np.uint8)
    if payload.nbytes != size:
        raise _Damaged(f"payload is {payload.nbytes} bytes, expected {size}")
    if hashlib.sha256(memoryview(payload)).hexdigest() != head.get("payload_sha256"):
        raise _Damaged("checksum mismatch")
    try:
        index = faiss.deserialize_index(payload)
    except Exception as exc:  # faiss raises RuntimeError with a C++ message
        raise _Damaged(f"faiss cannot read it ({str(exc).splitlines()[0][:120]})") from None
    if index.ntotal != n or index.d != dim:
        raise _Damaged(f"holds {index.ntotal} x {index.d}, expected {n} x {dim}")
    nprobe = int(head.get("nprobe", NPROBE))
    return AnnIndex(index, n, dim, digest, nprobe=max(1, nprobe))


def _lock(path: Path) -> int | None:
    """Hold an exclusive lock on ``<path>.lock`` (blocking); the descriptor, or None.

    Raises OSError when the lock file cannot be created (a read-only cache).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic replace alone keeps it whole
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        raise
    return fd


def _prune(path: Path) -> None:
    """Keep only the newest :data:`_KEEP_PER_SPACE` index files of this model space."""
    prefix = path.name.split("-", 1)[0] + "-"
    try:
        files = [p for p in path.parent.glob(prefix + "*.ann") if p != path]
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in files[_KEEP_PER_SPACE - 1 :]:
        with contextlib.suppress(OSError):
            old.unlink()
            with contextlib.suppress(OSError):
                old.with_name(old.name + ".lock").unlink()


def _try_read(path: Path, digest: str, n: int, dim: int, warn: bool = True) -> AnnIndex | None:
    """The index in ``path``, or None (missing; damaged, said in one warning if ``warn``)."""
    try:
        return _read(path, digest, n, dim)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (_Damaged, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if warn:
            log.warning("ANN index %s is damaged or stale (%s); rebuilding it", path.name, reason)
        return None


def index_for(
    vectors: np.ndarray,
    keys: Sequence[str],
    space: str,
    cache_dir: str | os.PathLike[str] | None,
    *,
    min_rows: int | None = None,
) -> AnnIndex | None:
    """The index of these rows when they are many enough and faiss is installed, else None.

    Loads ``<cache>/ann/…`` when it holds exactly these rows, else builds the index (seconds
    to a minute at 1M rows: call it off the GUI thread) and writes it there atomically.

    Parameters
    ----------
    vectors : ndarray
        ``(N, D)`` vectors, row ``i`` belonging to ``keys[i]``.
    keys : sequence of str
        Content keys of the rows, in order.
    space : str
        Model space (model key and render key): part of the file's identity.
    cache_dir : path or None
        Cache root; None builds in memory without caching.
    min_rows : int, optional
        Threshold; default :func:`ann_min_rows`.

    Returns
    -------
    AnnIndex or None
        None below the threshold or without faiss (exact search is then used).
    """
    emb = np.asarray(vectors)
    n = int(emb.shape[0]) if emb.ndim == 2 else 0
    if len(keys) != n:
        raise ValueError(f"{n} vectors but {len(keys)} keys")
    threshold = ann_min_rows() if min_rows is None else int(min_rows)
    if n == 0 or n < threshold or not available():
        return None
    dim = int(emb.shape[1])
    digest = rows_digest(space, keys)
    if cache_dir is None:
        return build_index(emb, digest)
    path = index_path(cache_dir, space, keys)
    found = _try_read(path, digest, n, dim)
    if found is not None:
        return found
    warned = path.is_file()  # damaged: said once above
    try:
        fd = _lock(path)
    except OSError as exc:
        reason = exc.strerror or exc
        log.warning("cannot write the ANN index in %s (%s); building it in memory", path, reason)
        return build_index(emb, digest)
    try:
        # another process may have built it while this one waited for the lock
        found = _try_read(path, digest, n, dim, warn=not warned)
        if found is not None:
            return found
        log.info("building the ANN index of %d rows (once; cached in %s)", n, path.parent)
        ann = build_index(emb, digest)
        try:
            _write(path, ann, space)
            _prune(path)
        except OSError as exc:
            log.warning("could not save the ANN index %s: %s", path, exc.strerror or exc)
        return ann
    finally:
        os.close(fd)  # releases the lock
