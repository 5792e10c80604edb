"""The workflows the command line and the desktop app share.

Open and embed a catalogue, rank it (text and/or example images), classify it zero-shot
with an "uncertain" threshold, propagate manual labels (few-shot), project it to 2-D, and
build export rows with provenance. ``cli.py`` and ``gui/controller.py`` both call these
functions, so the two cannot disagree: the same labels and templates give the same
probabilities, the same threshold the same "uncertain" rows, the same export the same
columns and provenance.

Everything here is plain Python and numpy (no Qt). Functions that take seconds are
generators or plain functions meant to run on a worker thread; none touches a GUI.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from galaxy_explorer.core.defaults import UNCERTAIN, LabelDef, default_templates

if TYPE_CHECKING:  # pragma: no cover
    from galaxy_explorer.core.ann import AnnIndex
    from galaxy_explorer.core.catalog import Item
    from galaxy_explorer.core.export import ExportRow, Provenance
    from galaxy_explorer.core.jobs import Progress, ProjectionProgress
    from galaxy_explorer.core.model import ClipAdapter
    from galaxy_explorer.core.session import Session
    from galaxy_explorer.core.state import Snapshot

log = logging.getLogger(__name__)

__all__ = [
    "NO_PREDICTION",
    "UNCERTAIN",
    "EmbedProgress",
    "ModelLoaded",
    "Opened",
    "Predictions",
    "Propagation",
    "PropagateError",
    "Ranking",
    "Reconciled",
    "RowsFound",
    "VectorsDiscarded",
    "ann_index",
    "classify",
    "example_vector",
    "export_rows",
    "label_vectors",
    "manual_counts",
    "name_order",
    "open_and_embed",
    "project",
    "propagate",
    "provenance",
    "rank",
    "rows_for",
    "session_space",
    "snapshot_rows",
    "store_get",
    "zero_shot_probs",
]

#: ``Predictions.predicted`` of a row that has no prediction (no vector, no labels).
NO_PREDICTION = -1
#: Fewer manual examples than this in a class make :func:`propagate` warn.
MIN_EXAMPLES_PER_CLASS = 3


# ---------------------------------------------------------------------- open / embed
@dataclass
class Opened:
    """The catalogue was scanned: its session, items (row order) and manual-labels store.

    ``manual`` is the label of each item (row order, None = unlabelled), read from the
    store as of ``label_token`` (``LabelStore.changes_since`` continues from there);
    ``manual_counts`` the rows per label, counted here on the worker. ``provisional``:
    the items are what the cache remembers of the folders; the scan checking them follows
    (:class:`Reconciled`, after a corrected :class:`Opened` if anything changed).
    """

    session: Session
    items: list[Item]
    labels: Any
    manual: list[str | None] = field(default_factory=list)
    label_token: int = 0
    sha_rows: dict[str, list[int]] | None = None
    name_order: np.ndarray | None = None
    manual_counts: dict[str, int] | None = None
    provisional: bool = False


#: Above this many bytes of names, :func:`name_order` sorts in Python (numpy's fixed-width
#: string array would be as wide as the longest name for every row).
_NAME_SORT_BYTES = 256 * 2**20


def name_order(items: Sequence[Item]) -> np.ndarray:
    """Rows in case-insensitive name order (stable: equal names keep their row order).

    Sorted by numpy, which lets go of the GIL while it sorts: ``sorted`` with a C-level key
    holds it for the whole sort (seconds at 1M rows, on the open worker), and the GUI
    thread, waiting for the GIL, froze meanwhile.
    """
    names = [it.name.lower() for it in items]
    width = max(max((len(x) for x in names), default=0), 1)
    if names and len(names) * width * 4 <= _NAME_SORT_BYTES:
        arr = np.empty(len(names), dtype=f"<U{width}")
        for start in range(0, len(names), 65536):  # converted in chunks: GIL let go between
            arr[start : start + 65536] = names[start : start + 65536]
        return np.argsort(arr, kind="stable").astype(np.int64)
    return np.array(sorted(range(len(names)), key=lambda i: names[i]), dtype=np.int64)


def manual_counts(manual: Sequence[str | None]) -> dict[str, int]:
    """Rows per manual label (unlabelled rows not counted)."""
    from collections import Counter

    return dict(Counter(m for m in manual if m is not None))


def rows_by_sha(items: Sequence[Item]) -> dict[str, list[int]]:
    """Content hash → rows with that content (a file may be in the catalogue twice)."""
    out: dict[str, list[int]] = {}
    for row, it in enumerate(items):
        out.setdefault(it.sha256, []).append(row)
    return out


@dataclass
class RowsFound:
    """Vectors already known for some rows (from the cache), aligned with ``rows``.

    ``vectors`` is a fresh float32 array holding float16 values (as the cache stores them),
    so that :meth:`AppState.add_rows` can take it over with ``rounded=True``.
    """

    rows: np.ndarray
    vectors: np.ndarray


@dataclass
class Reconciled:
    """The scan checked a provisional :class:`Opened`: files added, removed, changed.

    When any count is non-zero, a corrected :class:`Opened` came just before. ``errors``:
    files and folders the scan could not read, with the reason.
    """

    added: int = 0
    removed: int = 0
    changed: int = 0
    errors: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class VectorsDiscarded:
    """Vectors delivered earlier came from a stale guess of the model's cache: forget them."""


@dataclass
class ModelLoaded:
    """The model is loaded."""

    adapter: ClipAdapter


@dataclass
class EmbedProgress:
    """One batch of the embedding job (:class:`galaxy_explorer.core.jobs.Progress`)."""

    progress: Progress


OpenEvent = Opened | RowsFound | Reconciled | VectorsDiscarded | ModelLoaded | EmbedProgress


_CHUNK = 65536


def rows_for(
    items: Sequence[Item], shas: Sequence[str], vecs: np.ndarray, *, rounded: bool = False
) -> RowsFound:
    """Rows (and their vectors) of every item whose content hash is in ``shas``.

    ``rounded``: ``vecs`` is float32 holding float16 values already (what
    :meth:`EmbeddingStore.get` returns). When it then maps onto the rows one to one, in
    order (a fully cached catalogue without duplicate files), it is handed over as it is:
    no copy of a million vectors. Otherwise the rows' vectors are gathered and rounded in
    chunks (no full-size temporaries).
    """
    if len(shas) == len(items) and all(
        a is b or a == b for a, b in zip(shas, (it.sha256 for it in items), strict=True)
    ):  # every row, in order (a fully cached catalogue): no dict of every hash
        rows_a = np.arange(len(items), dtype=np.int64)
        idx_a = rows_a
    else:
        index = {s: i for i, s in enumerate(shas)}
        rows, idx = [], []
        for row, it in enumerate(items):
            i = index.get(it.sha256)
            if i is not None:
                rows.append(row)
                idx.append(i)
        rows_a = np.asarray(rows, dtype=np.int64)
        idx_a = np.asarray(idx, dtype=np.int64)
    vecs = np.asarray(vecs)
    if (
        rounded
        and vecs.dtype == np.float32
        and vecs.ndim == 2
        and vecs.flags.c_contiguous
        and vecs.flags.writeable
        and len(idx_a) == len(vecs)
        and np.array_equal(idx_a, np.arange(len(vecs)))
    ):
        return RowsFound(rows_a, vecs)
    # rounded here, on the worker: the GUI thread then takes the array over without a copy
    out = np.empty((len(idx_a), vecs.shape[1] if vecs.ndim == 2 else 0), np.float32)
    for start in range(0, len(idx_a), _CHUNK):
        chunk = vecs[idx_a[start : start + _CHUNK]]
        if not (rounded and chunk.dtype == np.float32):
            chunk = chunk.astype(np.float16)
        out[start : start + len(chunk)] = chunk
    return RowsFound(rows_a, out)


def open_and_embed(
    roots: Sequence[Path],
    *,
    model: str = "auto",
    cache_dir: Path | None = None,
    device: str = "auto",
    batch_size: int = 16,
    workers: int = 2,
    adapter: ClipAdapter | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[OpenEvent]:
    """Open ``roots`` from what the cache knows, check them, load the model, embed the rest.

    Cache first: the files the last scan of these roots found (the cache's file memo) are
    yielded at once as a provisional :class:`Opened`, with the vectors the cache holds for
    them as :class:`RowsFound`, before the folders are scanned (a ``stat`` per file:
    seconds at 10^5 files) and before the model loads. The scan then checks them: if it
    finds files added, removed or changed, a new :class:`Opened` (the scanned catalogue) and
    its cached vectors follow; either way :class:`Reconciled` says what changed. A folder
    the memo knows nothing about is scanned first, as before.

    Yields, in order: :class:`Opened` (``provisional`` when from the memo); possibly
    :class:`RowsFound` with cached vectors (read with the model key this spec had last
    time, before the model has loaded); after a provisional open, possibly a corrected
    :class:`Opened` and its :class:`RowsFound`, then :class:`Reconciled`;
    :class:`VectorsDiscarded` if the model key guessed was wrong; :class:`ModelLoaded`; the
    cached vectors as :class:`RowsFound` unless all were delivered already; then one
    :class:`EmbedProgress` per batch.

    Parameters
    ----------
    roots : sequence of Path
        Folders and files of the catalogue.
    model, cache_dir, device : see :class:`galaxy_explorer.core.session.Session`
    batch_size, workers : int
        Images per model batch and decoding threads.
    adapter : ClipAdapter, optional
        An already loaded model for the same spec (reused, not reloaded).
    cancel : threading.Event, optional
        Checked between steps and batches.
    """
    import time

    from galaxy_explorer.core.session import Session

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    t0 = time.perf_counter()
    session = Session(roots, model=model, cache_dir=cache_dir, device=device, adapter=adapter)
    labels = session.labels  # built here: the GUI never waits on the session's lock
    # Cached vectors before the model: loading it takes seconds, so read the cache with the
    # model key this model had last time, and check it once it has loaded.
    guess = None if adapter is not None else _remembered_model_key(session.cache_dir, model)
    complete = False  # every row's vector was delivered from the right space

    def opened(items: list[Item], provisional: bool) -> Iterator[OpenEvent]:
        nonlocal complete
        with _gc_paused():
            token, manual = _read_manual(labels, items)
            ev = Opened(
                session,
                items,
                labels,
                manual,
                token,
                rows_by_sha(items),
                name_order(items),
                manual_counts(manual),
                provisional,
            )
        yield ev
        complete = False
        if cancelled() or not items:
            return
        t = time.perf_counter()
        with _gc_paused():  # a dict of every cached key is built: no collections meanwhile
            uniq = list(dict.fromkeys(it.sha256 for it in items))
            if adapter is not None:  # the model is known: read its own space
                vecs, found = store_get(session.store, uniq)
                shas = uniq if found.all() else [s for s, f in zip(uniq, found, strict=True) if f]
                vecs = vecs if found.all() else vecs[found]
            elif guess is not None:
                shas, vecs = _peek_cache(session.cache_dir, guess, session.render.key(), uniq)
            else:
                return
            complete = len(shas) == len(uniq)
            found_rows = rows_for(items, shas, vecs, rounded=True) if shas else None
        log.info("%d cached vectors read in %.2fs", len(shas), time.perf_counter() - t)
        if found_rows is not None:
            yield found_rows

    with _gc_paused():
        early = session.remembered()
    if early:
        log.info("%d items remembered in %.2fs", len(early), time.perf_counter() - t0)
        yield from opened(early, provisional=True)
        if cancelled():
            return
        with _gc_paused():
            session.scan()
        items = list(session.items)
        diff = _diff(early, items)
        log.info("scan checked %d items in %.2fs: %s", len(items), time.perf_counter() - t0, diff)
        if diff.any:
            _forget(session, diff.removed_paths, session.scan_errors)
            yield from opened(items, provisional=False)
        yield Reconciled(diff.added, diff.removed, diff.changed, list(session.scan_errors))
    else:
        with _gc_paused():
            session.scan()
        items = list(session.items)
        log.info("scanned %d items in %.2fs", len(items), time.perf_counter() - t0)
        yield from opened(items, provisional=False)
    if cancelled():
        return
    loaded = load_adapter(session)
    _remember_model_key(session.cache_dir, model, loaded.model_key, loaded.dim)
    if guess is not None and guess[0] != loaded.model_key:
        complete = False
        yield VectorsDiscarded()  # the model changed since: those were not its vectors
    yield ModelLoaded(loaded)
    if cancelled() or not items:
        return
    if not complete:
        with _gc_paused():
            uniq = list(dict.fromkeys(it.sha256 for it in items))
            vecs, found = store_get(session.store, uniq)
            if found.all():  # a fully cached catalogue: the store's array itself, not a copy
                found_rows = rows_for(items, uniq, vecs, rounded=True)
            elif found.any():
                shas = [s for s, f in zip(uniq, found, strict=True) if f]
                found_rows = rows_for(items, shas, vecs[found], rounded=True)
            else:
                found_rows = None
            del vecs
        if found_rows is not None:
            yield found_rows
    for p in session.embed(batch_size=batch_size, workers=workers, cancel=cancel):
        yield EmbedProgress(p)


@dataclass
class _Diff:
    added: int = 0
    removed: int = 0
    changed: int = 0
    removed_paths: list[Path] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def __str__(self) -> str:
        return f"{self.added} added, {self.removed} removed, {self.changed} changed"


def _diff(before: Sequence[Item], after: Sequence[Item]) -> _Diff:
    """Files added, removed and changed (other content) between two listings."""
    if len(before) == len(after) and all(a is b for a, b in zip(before, after, strict=True)):
        return _Diff()  # the scan reused every item shown (nothing to hash or compare)
    old = {it.path: it.sha256 for it in before}
    d = _Diff()
    for it in after:
        sha = old.pop(it.path, None)
        if sha is None:
            d.added += 1
        elif sha != it.sha256:
            d.changed += 1
    d.removed = len(old)
    d.removed_paths = list(old)
    return d


def _forget(session: Session, paths: Sequence[Path], errors: Sequence[tuple[Path, str]]) -> None:
    """Drop files the scan no longer finds from the memo (no ghost rows next time)."""
    unreadable = {p for p, _ in errors}
    gone = [p for p in paths if p not in unreadable]
    if not gone:
        return
    from galaxy_explorer.core.cache import FileMemo

    try:
        memo = FileMemo(session.cache_dir)
        try:
            memo.forget(gone)
        finally:
            memo.close()
    except Exception as exc:  # only costs ghost rows (corrected again) on the next open
        log.debug("could not forget removed files: %s", exc)


def store_get(store: Any, shas: Sequence[str], chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """``store.get(shas)`` read in chunks into one float32 array.

    One call gathered a million vectors in a single numpy copy that held the GIL for
    seconds (the GUI thread waited); between chunks other threads run.
    """
    if len(shas) <= chunk:
        return store.get(shas)
    out = np.empty((len(shas), int(store.dim)), np.float32)
    found = np.zeros(len(shas), dtype=bool)
    for start in range(0, len(shas), chunk):
        v, f = store.get(shas[start : start + chunk])
        out[start : start + len(f)] = v
        found[start : start + len(f)] = f
    return out, found


def _read_manual(store: Any, items: Sequence[Item]) -> tuple[int, list[str | None]]:
    """(token, label per item): the token first, so no change made meanwhile is missed."""
    try:
        token = int(getattr(store, "token", 0))
        by_sha = store.all()
    except Exception as exc:  # a damaged store is reported by the store itself
        log.warning("could not read the manual labels: %s", exc)
        return 0, [None] * len(items)
    return token, [by_sha.get(it.sha256) for it in items]


_GC_LOCK = threading.Lock()


def load_adapter(session: Session) -> ClipAdapter:
    """``session.adapter`` without full garbage collections stalling other threads meanwhile.

    Importing torch / transformers and building the model creates hundreds of thousands of
    objects; the collector's full passes over them run in the loading thread while it holds
    the GIL, which stalled a GUI's event loop for up to 0.25 s at a time (measured). The
    collector is paused while the model loads, and everything loaded is then frozen
    (``gc.freeze``) so later collections skip it.
    """
    with _gc_paused():
        return session.adapter


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile; what was built is then frozen (skipped by
    later collections).

    Building 10^5 items (or loading a model) allocates so many objects that the collector
    ran full passes over the growing heap again and again, each holding the GIL: about half
    the time of listing a 100k folder, and the GUI thread stalled meanwhile. These objects
    live as long as the catalogue (or the model), so they are frozen rather than scanned by
    every later collection; they hold no reference cycles, so reference counting still
    frees them.
    """
    with _GC_LOCK:
        was_enabled = gc.isenabled()
        gc.disable()
    try:
        yield
    finally:
        with _GC_LOCK:
            gc.freeze()
            if was_enabled:
                gc.enable()


_MODEL_KEYS_FILE = "gui-model-keys.json"


def _remembered_model_key(cache_dir: Path, spec: str) -> tuple[str, int] | None:
    """(model key, dim) the model ``spec`` had when it was last loaded with this cache."""
    try:
        data = json.loads((Path(cache_dir) / _MODEL_KEYS_FILE).read_text(encoding="utf-8"))
        entry = data[str(spec)]
        return str(entry["model_key"]), int(entry["dim"])
    except Exception:
        return None


def _remember_model_key(cache_dir: Path, spec: str, model_key: str, dim: int) -> None:
    path = Path(cache_dir) / _MODEL_KEYS_FILE
    try:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except Exception:
            data = {}
        if data.get(str(spec)) == {"model_key": model_key, "dim": int(dim)}:
            return
        data[str(spec)] = {"model_key": model_key, "dim": int(dim)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("could not remember the model key: %s", exc)


def _peek_cache(
    cache_dir: Path, guess: tuple[str, int], render_key: str, shas: list[str]
) -> tuple[list[str], np.ndarray]:
    """Cached vectors for ``shas`` in the guessed (model key, dim) space, without the model."""
    try:
        from galaxy_explorer.core.cache import EmbeddingStore

        store = EmbeddingStore(Path(cache_dir), guess[0], render_key, guess[1])
        try:
            vecs, found = store_get(store, shas)
        finally:
            store.close()
        if found.all():
            return list(shas), vecs
        return [s for s, f in zip(shas, found, strict=True) if f], vecs[found]
    except Exception as exc:  # a guess only: any problem means "no early vectors"
        log.debug("early cache read failed: %s", exc)
        return [], np.zeros((0, guess[1]), np.float32)


# ------------------------------------------------------------------------------ rank
@dataclass
class Ranking:
    """A query folded into one vector, and the score of every given vector."""

    query_vector: np.ndarray
    scores: np.ndarray


def example_vector(session: Session, path: Path | str) -> np.ndarray:
    """The vector of an example image, from the cache or computed and cached now.

    Goes through a cache connection of its own (``Session.embed_file(separate_store=True)``),
    so it is safe while an embedding job writes the session's store on another thread.

    Raises
    ------
    galaxy_explorer.core.imaging.ImageLoadError
        If the file cannot be read.
    """
    return np.asarray(session.embed_file(path, separate_store=True), dtype=np.float32)


def rank(
    vectors: np.ndarray,
    adapter: ClipAdapter | None = None,
    *,
    text: str = "",
    positive: np.ndarray | Sequence[np.ndarray] | None = None,
    negative: np.ndarray | Sequence[np.ndarray] | None = None,
    top: int | None = None,
    index: AnnIndex | None = None,
) -> Ranking:
    """Score ``vectors`` by a text and/or positive / negative example vectors.

    With ``top`` and an ``index`` (see :func:`ann_index`) built on these same rows, only
    the index's candidates for the best ``top`` rows are scored (exactly); every other
    row gets NaN, which :func:`~galaxy_explorer.core.search.top_k` ranks last. Without
    them every row is scored by brute force.

    Parameters
    ----------
    vectors : ndarray
        ``(N, D)`` image embeddings.
    adapter : ClipAdapter, optional
        Embeds ``text`` (needed only with text).
    text : str
        Free-text description ("" for none).
    positive, negative : ndarray or sequence of ndarray, optional
        Example vectors (``(K, D)``); images like the negatives rank lower.
    top : int, optional
        Only the best ``top`` rows are wanted (lets ``index`` be used).
    index : AnnIndex, optional
        Approximate index of exactly these rows, or None for brute force.

    Returns
    -------
    Ranking
        The query vector and ``(N,)`` float32 scores (higher is better; NaN for rows the
        index did not propose).

    Raises
    ------
    ValueError
        If the query is empty.
    """
    from galaxy_explorer.core.search import query_vector

    vectors = np.asarray(vectors)
    dim = int(vectors.shape[1]) if vectors.ndim == 2 else int(getattr(adapter, "dim", 0))
    text = text.strip()
    text_vecs = None
    if text:
        if adapter is None:
            raise ValueError("a text query needs the model")
        text_vecs = adapter.embed_texts([text])
    qv = query_vector(
        dim, text_vecs=text_vecs, positive=_stack(positive), negative=_stack(negative)
    )
    n = len(vectors)
    found = None
    if index is not None and top is not None and index.n == n:
        found = index.top(vectors, qv, int(top))
    if found is not None:
        scores = np.full(n, np.nan, dtype=np.float32)
        scores[found[0]] = found[1]
        return Ranking(qv, scores)
    scores = np.asarray(vectors, dtype=np.float32) @ qv if n else np.zeros(0, dtype=np.float32)
    return Ranking(qv, scores.astype(np.float32, copy=False))


def ann_index(
    vectors: np.ndarray,
    keys: Sequence[str],
    space: str,
    cache_dir: Path | str | None,
    *,
    min_rows: int | None = None,
) -> AnnIndex | None:
    """The approximate index for :func:`rank` when the rows are many, else None.

    None below :func:`galaxy_explorer.core.ann.ann_min_rows` rows (brute force meets
    150 ms there) or without faiss (said once in the log). Loads the index cached in
    ``cache_dir`` for exactly these rows, or builds and caches it: seconds to a minute at
    1M rows, so call it off the GUI thread.

    Parameters
    ----------
    vectors : ndarray
        ``(N, D)`` vectors, in the order of ``keys``.
    keys : sequence of str
        Content key of each row.
    space : str
        The model space (e.g. :func:`session_space`).
    cache_dir : path or None
        Cache root (None: in memory only).
    min_rows : int, optional
        Threshold override.
    """
    from galaxy_explorer.core.ann import index_for

    return index_for(vectors, keys, space, cache_dir, min_rows=min_rows)


def session_space(session: Session) -> str:
    """The model space of a session's vectors: model key, render key and dimension."""
    adapter = session.adapter
    return f"{adapter.model_key}|{session.render.key()}|{adapter.dim}"


def _stack(vecs: np.ndarray | Sequence[np.ndarray] | None) -> np.ndarray | None:
    if vecs is None:
        return None
    if isinstance(vecs, np.ndarray):
        return vecs if vecs.size else None
    return np.stack([np.asarray(v, dtype=np.float32) for v in vecs]) if len(vecs) else None


def describe_query(
    text: str = "", positive: Sequence[str] = (), negative: Sequence[str] = ()
) -> str:
    """One line for the provenance: the text, then ``+name`` / ``-name`` per example."""
    parts = [repr(text.strip())] if text.strip() else []
    parts += [f"+{n}" for n in positive]
    parts += [f"-{n}" for n in negative]
    return " ".join(parts)


# -------------------------------------------------------------------------- classify
@dataclass
class Predictions:
    """Zero-shot predictions of N rows with a threshold.

    Attributes
    ----------
    predicted : ndarray
        ``(N,)`` int32 index of the most likely class; :data:`NO_PREDICTION` where a row
        has no probabilities. Uncertain rows keep their best class here.
    confidence : ndarray
        ``(N,)`` float32 probability of that class (0 without a prediction).
    uncertain : ndarray
        ``(N,)`` bool: a prediction exists but its probability is below the threshold.
    """

    predicted: np.ndarray
    confidence: np.ndarray
    uncertain: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Predictions:
        return cls(
            np.full(n, NO_PREDICTION, dtype=np.int32),
            np.zeros(n, dtype=np.float32),
            np.zeros(n, dtype=bool),
        )

    @property
    def known(self) -> np.ndarray:
        """Rows that have a prediction (certain or not)."""
        return self.predicted != NO_PREDICTION

    @property
    def certain(self) -> np.ndarray:
        """Rows whose prediction is at or above the threshold."""
        return self.known & ~self.uncertain

    def label(self, row: int, names: Sequence[str]) -> str | None:
        """The class name of ``row``, :data:`UNCERTAIN` below the threshold, None if unknown."""
        if not (0 <= row < len(self.predicted)):
            return None
        if self.uncertain[row]:
            return UNCERTAIN
        i = int(self.predicted[row])
        return names[i] if 0 <= i < len(names) else None

    def labels(self, names: Sequence[str]) -> list[str | None]:
        """:meth:`label` of every row."""
        return [self.label(r, names) for r in range(len(self.predicted))]

    def counts(self, names: Sequence[str]) -> dict[str, int]:
        """Rows per certain class, and ``"uncertain"``."""
        certain = self.predicted[self.certain]
        bc = np.bincount(certain, minlength=len(names)) if len(names) else np.zeros(0, int)
        out = {n: int(bc[i]) for i, n in enumerate(names)}
        out[UNCERTAIN] = int(self.uncertain.sum())
        return out


def classify(probs: np.ndarray | None, threshold: float = 0.0, n: int | None = None) -> Predictions:
    """Best class per row, marked uncertain below ``threshold``.

    Parameters
    ----------
    probs : ndarray or None
        ``(N, L)`` probabilities; rows of NaN (not embedded yet) get no prediction.
    threshold : float
        Below this best probability a row is uncertain.
    n : int, optional
        Rows when ``probs`` is None.
    """
    if probs is None or probs.ndim != 2 or probs.shape[1] == 0:
        return Predictions.empty(int(n if n is not None else (0 if probs is None else len(probs))))
    out = Predictions.empty(len(probs))
    ok = np.isfinite(probs).all(axis=1)
    if ok.any():
        p = probs[ok]
        out.predicted[ok] = np.argmax(p, axis=1)
        out.confidence[ok] = p.max(axis=1)
    out.uncertain[:] = ok & (out.confidence < np.float32(threshold))
    return out


def label_vectors(
    adapter: ClipAdapter, labels: Sequence[LabelDef | str], templates: Sequence[str] | None = None
) -> np.ndarray:
    """One text vector per class (prompt templates averaged); default templates if None."""
    texts = [d.text if isinstance(d, LabelDef) else str(d) for d in labels]
    temps = list(templates) if templates else default_templates()
    return np.asarray(adapter.embed_labels(texts, temps), dtype=np.float32)


def zero_shot_probs(
    adapter: ClipAdapter, vectors: np.ndarray, label_vecs: np.ndarray
) -> np.ndarray:
    """Zero-shot probabilities ``(N, L)`` of ``vectors`` with the model's temperature."""
    from galaxy_explorer.core.search import zero_shot

    if not len(vectors):
        return np.zeros((0, len(label_vecs)), dtype=np.float32)
    return zero_shot(vectors, label_vecs, adapter.logit_scale)


# ------------------------------------------------------------------------- propagate
class PropagateError(ValueError):
    """Too few manual labels to propagate from (the message says what to do)."""


@dataclass
class Propagation:
    """Few-shot suggestions for ``rows`` learnt from the manual labels.

    Attributes
    ----------
    classes : list of str
        Class names, the columns of ``probs``.
    rows : ndarray
        The rows that got a suggestion.
    probs : ndarray
        ``(len(rows), len(classes))`` float32 probabilities.
    suggested : ndarray
        Index into ``classes`` per row of ``rows``.
    confidence : ndarray
        The probability of each suggestion.
    examples : dict of str to int
        Manual examples per class the classifier learnt from.
    method : str
        ``"logistic"``, ``"prototype"`` or ``"constant"`` (see ``FewShotClassifier``).
    warnings : list of str
        Why the suggestions may be unreliable (too few examples, a single class).
    """

    classes: list[str]
    rows: np.ndarray
    probs: np.ndarray
    examples: dict[str, int]
    method: str = ""
    min_per_class: int = MIN_EXAMPLES_PER_CLASS
    warnings: list[str] = field(default_factory=list)

    @property
    def suggested(self) -> np.ndarray:
        return (
            np.argmax(self.probs, axis=1).astype(np.int32)
            if len(self.rows)
            else np.zeros(0, np.int32)
        )

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1) if len(self.rows) else np.zeros(0, np.float32)

    def summary(self) -> str:
        """One line: how many suggestions from how many examples of each class."""
        per = ", ".join(f"{c} {self.examples[c]}" for c in self.classes)
        n_ex = sum(self.examples.values())
        return f"Suggested labels for {len(self.rows)} images from {n_ex} examples ({per})" + (
            f", median confidence {float(np.median(self.confidence)):.2f}" if len(self.rows) else ""
        )


def propagate(
    vectors: np.ndarray,
    labelled_rows: Sequence[int] | np.ndarray,
    labels: Sequence[str],
    target_rows: Sequence[int] | np.ndarray,
    *,
    min_per_class: int = MIN_EXAMPLES_PER_CLASS,
) -> Propagation:
    """Learn the manual labels of ``labelled_rows`` and suggest labels for ``target_rows``.

    Parameters
    ----------
    vectors : ndarray
        ``(N, D)`` embeddings of all rows.
    labelled_rows, labels : sequence
        The rows labelled by hand and their labels.
    target_rows : sequence of int
        Rows to suggest labels for (rows labelled by hand are left out).
    min_per_class : int
        Fewer examples than this in a class add a warning.

    Raises
    ------
    PropagateError
        With fewer than two labelled examples.
    """
    from galaxy_explorer.core.search import FewShotClassifier

    labelled = np.asarray(labelled_rows, dtype=np.int64)
    names = [str(x) for x in labels]
    if len(labelled) != len(names):
        raise ValueError(f"{len(labelled)} rows but {len(names)} labels")
    if len(labelled) < 2:
        raise PropagateError("Label at least two images by hand first.")
    examples: dict[str, int] = {}
    for n in names:
        examples[n] = examples.get(n, 0) + 1
    clf = FewShotClassifier().fit(vectors[labelled], names)
    own = set(labelled.tolist())
    targets = np.asarray([r for r in np.asarray(target_rows, dtype=np.int64) if int(r) not in own])
    targets = targets.astype(np.int64)
    if len(targets):
        classes, probs = clf.predict_proba(vectors[targets])
    else:
        classes, probs = list(clf.classes), np.zeros((0, len(clf.classes)), np.float32)
    warnings = []
    few = {c: k for c, k in sorted(examples.items()) if k < min_per_class}
    if len(examples) == 1:
        (only,) = examples
        warnings.append(
            f"Only one class is labelled ('{only}'): every suggestion is '{only}'. "
            "Label examples of other classes too."
        )
    if few:
        which = ", ".join(f"'{c}' ({k})" for c, k in few.items())
        warnings.append(
            f"Fewer than {min_per_class} examples for {which}: suggestions are unreliable. "
            f"Label at least {min_per_class} images of each class."
        )
    return Propagation(
        classes=list(classes),
        rows=targets,
        probs=np.asarray(probs, dtype=np.float32),
        examples={c: examples[c] for c in classes},
        method=clf.method,
        min_per_class=min_per_class,
        warnings=warnings,
    )


# --------------------------------------------------------------------------- project
def project(
    embeddings: np.ndarray,
    cache_dir: Path | None = None,
    *,
    umap: bool = True,
    config: Any = None,
    cancel: threading.Event | None = None,
    poll: float = 0.1,
) -> Iterator[ProjectionProgress]:
    """2-D map coordinates: PCA at once, then (with ``umap``) UMAP in a child process.

    A thin front to :func:`galaxy_explorer.core.jobs.projection_job`; without ``umap`` it
    yields the PCA view as the final result.
    """
    from galaxy_explorer.core.jobs import ProjectionProgress, projection_job
    from galaxy_explorer.core.projection import pca_2d

    if not umap or len(embeddings) < 5:
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        xy = pca_2d(emb) if len(emb) else np.zeros((0, 2), np.float32)
        yield ProjectionProgress("pca", coords=np.asarray(xy, dtype=np.float32), finished=True)
        return
    yield from projection_job(embeddings, config, cache_dir, cancel=cancel, poll=poll)


# ---------------------------------------------------------------------------- export
def export_rows(
    items: Sequence[Item],
    *,
    positions: Sequence[tuple[float | None, float | None]] | None = None,
    manual: Sequence[str | None] | Mapping[str, str] | None = None,
    scores: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    threshold: float = 0.0,
) -> list[ExportRow]:
    """The one row builder for every export (CLI and GUI).

    Parameters
    ----------
    items : sequence of Item
        The rows, in output order.
    positions : sequence of (ra, dec), optional
        Sky position of each item (``Session.sky_positions``).
    manual : sequence of str or None, or mapping of content hash to label, optional
        Manual labels, aligned with ``items`` or by content hash.
    scores : ndarray, optional
        ``(N,)`` query scores (NaN = none).
    probs : ndarray, optional
        ``(N, L)`` zero-shot probabilities in ``label_names`` order (NaN rows = none).
    label_names : sequence of str, optional
    threshold : float
        Below it the predicted label is ``"uncertain"`` (:func:`classify`).
    """
    from galaxy_explorer.core.export import ExportRow

    names = list(label_names or [])
    preds = classify(probs, threshold, n=len(items)) if names and probs is not None else None
    rows = []
    for i, it in enumerate(items):
        ra, dec = positions[i] if positions is not None else (None, None)
        if manual is None:
            lab = None
        elif isinstance(manual, Mapping):
            lab = manual.get(it.sha256)
        else:
            lab = manual[i]
        p = pred = None
        if preds is not None and preds.known[i]:
            assert probs is not None
            p = {n: float(v) for n, v in zip(names, probs[i], strict=False)}
            pred = preds.label(i, names)
        sc = None
        if scores is not None and np.isfinite(scores[i]):
            sc = float(scores[i])
        rows.append(
            ExportRow(
                path=str(it.path),
                name=it.name,
                sha256=it.sha256,
                ra=ra,
                dec=dec,
                score=sc,
                predicted_label=pred,
                probs=p,
                label=lab,
            )
        )
    return rows


def snapshot_rows(
    snap: Snapshot,
    rows: Sequence[int] | np.ndarray | None,
    positions: Any = None,
) -> list[ExportRow]:
    """Export rows for ``rows`` (all if None) of a state :class:`~galaxy_explorer.core.state.Snapshot`.

    Parameters
    ----------
    snap : Snapshot
        From ``AppState.snapshot()``.
    rows : sequence of int, optional
    positions : callable, optional
        ``positions(items) -> [(ra, dec), ...]``, e.g. ``Session.sky_positions``.
    """
    idx = np.arange(len(snap.items)) if rows is None else np.asarray(rows, dtype=np.int64)
    items = [snap.items[int(r)] for r in idx]
    names = [d.name for d in snap.label_defs]
    probs = None
    if snap.probs is not None and names:
        probs = np.where(snap.have[idx, None], snap.probs[idx], np.nan)
    return export_rows(
        items,
        positions=positions(items) if positions is not None else None,
        manual=[snap.manual[int(r)] for r in idx],
        scores=None if snap.scores is None else snap.scores[idx],
        probs=probs,
        label_names=names,
        threshold=snap.threshold,
    )


def provenance(
    adapter: ClipAdapter | None,
    render_key: str,
    *,
    command: str,
    model_spec: str = "",
    labels: Sequence[LabelDef | str] | None = None,
    templates: Sequence[str] | None = None,
    query: str | None = None,
    threshold: float | None = None,
    extra: Mapping[str, str] | None = None,
) -> Provenance:
    """Where an export came from: model, render settings, labels, prompts, query.

    ``labels`` may be :class:`LabelDef` (their prompts are recorded too) or names;
    ``templates`` None means the defaults.
    """
    from galaxy_explorer.core.export import Provenance
    from galaxy_explorer.core.hub import display_name

    spec = str(getattr(adapter, "spec", "") or model_spec)
    names = [d.name if isinstance(d, LabelDef) else str(d) for d in labels or []]
    ext: dict[str, str] = {"command": command}
    if threshold is not None:
        ext["threshold"] = f"{threshold:g}"
    if labels and any(isinstance(d, LabelDef) and d.text != d.name for d in labels):
        ext["label_prompts"] = json.dumps(
            {d.name: d.text for d in labels if isinstance(d, LabelDef)}, ensure_ascii=False
        )
    ext.update(extra or {})
    return Provenance(
        model=spec,
        model_name=display_name(spec) if spec else "",
        model_revision=str(getattr(adapter, "revision", "") or ""),
        render=render_key,
        labels=names or None,
        prompts=(list(templates) if templates else default_templates()) if names else None,
        query=query or None,
        extra=ext,
    )
