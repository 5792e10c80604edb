"""The GUI's controller: owns the core session and all shared view state.

Views take the controller in their constructor and subscribe to its signals; the controller
never imports a view. Long work runs on workers (:mod:`galaxy_explorer.gui.workers`); their
results come back to ``@Slot`` methods here, on the GUI thread, tagged with a generation so
that stale results are dropped.

Rows: every scanned item has a row index ``0..n-1`` (the order of ``Session.items``). Only
rows with ``have[row]`` have an embedding yet; the map shows exactly those.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from galaxy_explorer.core.defaults import UNCERTAIN, LabelDef, load_default_labels
from galaxy_explorer.gui.workers import GeneratorWorker, TaskRunner

log = logging.getLogger(__name__)

__all__ = ["Controller", "LabelDef", "UNCERTAIN", "load_default_labels", "resources_dir"]


def resources_dir() -> Path:
    """The bundled ``resources`` folder (source checkout or installed wheel)."""
    from galaxy_explorer._resources import resources_dir as _resources_dir

    return _resources_dir()


@dataclass
class QueryState:
    text: str = ""
    positive: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (name, vector)
    negative: list[tuple[str, np.ndarray]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.text.strip() or self.positive or self.negative)

    def describe(self) -> str:
        parts = []
        if self.text.strip():
            parts.append(repr(self.text.strip()))
        parts += [f"+{n}" for n, _ in self.positive]
        parts += [f"-{n}" for n, _ in self.negative]
        return " ".join(parts)


class Controller(QObject):
    """Shared state of one window: catalogue, embeddings, query, labels, selection.

    Signals
    -------
    catalogue_opened()
        A catalogue was (re)opened: rows, items and everything derived were reset.
    embeddings_changed()
        More rows have vectors (``have`` changed).
    projection_changed(str)
        Map coordinates changed; argument is ``"pca"`` or ``"umap"``.
    scores_changed()
        Query scores changed or were cleared (``scores`` is None without a query).
    predictions_changed()
        Zero-shot probabilities / predicted labels / counts changed.
    labels_changed()
        Manual labels changed (set, undo, redo, reopen).
    label_defs_changed()
        The list of zero-shot classes (and bins) changed.
    suggestions_changed()
        Few-shot suggestions changed.
    selection_changed(str)
        The selected rows changed; argument is the source (``"map"``, ``"gallery"``, ...).
    current_changed(int)
        The row shown in the detail view (-1 for none).
    color_mode_changed(str)
        ``"predicted"`` or ``"manual"``.
    job_started(str)
        A background job started (description).
    job_progress(object)
        A ``core.jobs.Progress`` from the embedding job.
    job_finished(str)
        The embedding job ended: ``"done"``, ``"cancelled"`` or ``"failed"``.
    busy_changed(str)
        A short description of background work ("" when idle except embedding).
    model_info(str)
        "model · device" once the model is loaded.
    status(str)
        A short message for the status bar.
    error(str, str)
        ``(title, message)`` of a user-facing error (details are in the log).
    export_finished(str, int)
        ``(path, rows)`` after a CSV export.
    """

    catalogue_opened = Signal()
    embeddings_changed = Signal()
    projection_changed = Signal(str)
    scores_changed = Signal()
    predictions_changed = Signal()
    labels_changed = Signal()
    label_defs_changed = Signal()
    suggestions_changed = Signal()
    selection_changed = Signal(str)
    current_changed = Signal(int)
    color_mode_changed = Signal(str)
    job_started = Signal(str)
    job_progress = Signal(object)
    job_finished = Signal(str)
    busy_changed = Signal(str)
    model_info = Signal(str)
    status = Signal(str)
    error = Signal(str, str)
    export_finished = Signal(str, int)
    detail_ready = Signal(int, object)

    def __init__(
        self,
        model: str = "auto",
        cache_dir: Path | None = None,
        device: str = "auto",
        *,
        batch_size: int = 16,
        umap: bool = True,
        decode_workers: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model_spec = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.device = device
        # small batches: a text query shares the model with the embedding job (the adapter
        # serialises calls), so it waits for at most one batch
        self.batch_size = batch_size
        # leave a core to the GUI thread: decoding threads compete with it for the GIL
        self.decode_workers = decode_workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self.umap_enabled = umap
        self.session: Any = None
        self.label_store: Any = None  # core LabelStore of the open catalogue
        self.adapter: Any = None
        self.roots: list[Path] = []
        self._adapter_req: tuple[str, str] | None = None
        self._reset_data()
        # labels
        self.label_defs, self.templates = load_default_labels()
        self.threshold = 0.0
        self.label_vecs: np.ndarray | None = None
        self.color_mode = "predicted"
        # workers
        self._job: GeneratorWorker | None = None
        self._old_jobs: list[GeneratorWorker] = []
        self._stale_sessions: list[Any] = []
        self._job_gen = 0
        self.job_running = False
        self._job_failed = False
        self.tasks = TaskRunner(max_threads=1, parent=self)  # text, predictions, detail
        self.heavy = TaskRunner(max_threads=1, parent=self)  # projection, export, few-shot
        self.tasks.finished.connect(self._on_task_finished)
        self.tasks.failed.connect(self._on_task_failed)
        self.heavy.finished.connect(self._on_task_finished)
        self.heavy.failed.connect(self._on_task_failed)
        self._closed = False
        self._dirty: set[str] = set()
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(200)
        self._flush_timer.timeout.connect(self.flush)
        self._pca_timer = QTimer(self)
        self._pca_timer.setSingleShot(True)
        self._pca_timer.setInterval(1000)
        self._pca_timer.timeout.connect(self._run_pca)
        # labels other windows / processes set on the same catalogue: O(changes) per tick
        self._labels_timer = QTimer(self)
        self._labels_timer.setInterval(2000)
        self._labels_timer.timeout.connect(self._on_labels_timer)

    # ------------------------------------------------------------------ data
    def _reset_data(self) -> None:
        self.items: list[Any] = []
        self.vectors: np.ndarray | None = None
        self.have = np.zeros(0, dtype=bool)
        self.coords = np.zeros((0, 2), dtype=np.float32)
        self.coords_kind = ""
        self.scores: np.ndarray | None = None
        self.query = QueryState()
        self._query_vec: np.ndarray | None = None
        self.probs: np.ndarray | None = None  # (n, L), NaN rows where missing
        self.predicted = np.full(0, -1, dtype=np.int32)  # index into label_defs, -1 none/uncertain
        self.confidence = np.zeros(0, dtype=np.float32)
        self.suggested = np.full(0, -1, dtype=np.int32)  # index into suggestion_classes
        self.suggested_prob = np.zeros(0, dtype=np.float32)
        self.suggestion_classes: list[str] = []
        self.selection = np.zeros(0, dtype=np.int64)
        self.current = -1
        self._sha_rows: dict[str, list[int]] = {}
        self._path_rows: dict[Path, int] | None = None
        self.failed: dict[int, str] = {}
        self._manual_cache: list[str | None] | None = None
        self._manual_count: dict[str, int] = {}
        self._label_token = 0

    @property
    def n(self) -> int:
        return len(self.items)

    def embedded_rows(self) -> np.ndarray:
        return np.flatnonzero(self.have)

    def label_names(self) -> list[str]:
        return [d.name for d in self.label_defs]

    def thumbs_dir(self) -> Path | None:
        """Where rendered thumbnails are cached on disk (next to the embedding cache)."""
        root = getattr(self.session, "cache_dir", None) or self.cache_dir
        return Path(root) / "thumbs" if root is not None else None

    def item(self, row: int) -> Any:
        return self.items[row]

    # ------------------------------------------------------------------ opening
    def open_paths(self, paths: list[Path] | list[str], *, add: bool = False) -> None:
        """Open (or, with ``add``, extend the catalogue with) files / folders."""
        new = [Path(p).expanduser().resolve() for p in paths]
        roots = list(self.roots) + [p for p in new if p not in self.roots] if add else new
        missing = [p for p in roots if not p.exists()]
        if missing:
            self.error.emit("Cannot open", f"{missing[0]}: no such file or directory")
            roots = [p for p in roots if p.exists()]
            if not roots:
                return
        self.roots = roots
        self._start_open_job(roots)

    def set_model(self, spec: str, device: str | None = None) -> None:
        """Switch to another model (hub id or folder); the catalogue is embedded again."""
        self.model_spec = str(spec)
        if device is not None:
            self.device = device
        self.adapter = None
        self._adapter_req = None
        self.label_vecs = None
        # example images were vectors of the old model: keep only the text of the query
        self.query.positive.clear()
        self.query.negative.clear()
        from galaxy_explorer.core.hub import display_name

        self.model_info.emit(f"loading {display_name(self.model_spec)}…")
        self.reopen()

    def reopen(self) -> None:
        """Scan the current roots again (new files are added, cached vectors reused)."""
        if self.roots:
            self._start_open_job(self.roots)

    def _start_open_job(self, roots: list[Path]) -> None:
        self.cancel_job()
        self._job_gen += 1
        gen = self._job_gen
        model, cache_dir, device, batch = (
            self.model_spec,
            self.cache_dir,
            self.device,
            self.batch_size,
        )
        workers = self.decode_workers
        prev_adapter = self.adapter if self._adapter_req == (model, device) else None

        def run(cancel):
            from galaxy_explorer.core.session import Session

            t0 = time.perf_counter()
            session = Session(
                roots, model=model, cache_dir=cache_dir, device=device, adapter=prev_adapter
            )
            session.scan()
            items = list(session.items)
            labels = session.labels  # built here: the GUI never waits on the session's lock
            log.info("scanned %d items in %.2fs", len(items), time.perf_counter() - t0)
            yield ("opened", session, items, labels)
            if cancel.is_set():
                return
            uniq = list(dict.fromkeys(it.sha256 for it in items))
            # Cached vectors at once: loading the model takes seconds, so read the cache
            # with the model key this model had last time, and check it once it has loaded.
            guess = _remembered_model_key(session.cache_dir, model)
            if guess is not None and uniq and prev_adapter is None:
                shas, vecs = _peek_cache(session.cache_dir, guess, session.render.key(), uniq)
                if shas:
                    yield ("rows", *_rows_for(items, shas, vecs))
            if cancel.is_set():
                return
            adapter = _load_adapter(session)
            _remember_model_key(session.cache_dir, model, adapter.model_key, adapter.dim)
            if guess is not None and guess[0] != adapter.model_key and prev_adapter is None:
                yield ("discard",)  # the model changed since: those were not its vectors
            yield ("model", adapter)
            if cancel.is_set() or not items:
                return
            vecs, found = session.store.get(uniq)
            if found.any():
                yield (
                    "rows",
                    *_rows_for(
                        items, [s for s, f in zip(uniq, found, strict=True) if f], vecs[found]
                    ),
                )
            for p in session.embed(batch_size=batch, workers=workers, cancel=cancel):
                yield ("progress", p)

        worker = GeneratorWorker(run, gen, parent=None)
        worker.yielded.connect(self._on_job_yielded)
        worker.failed.connect(self._on_job_failed)
        worker.done.connect(self._on_job_done)
        worker.finished.connect(self._on_thread_finished)
        self._job = worker
        self._job_failed = False
        self.job_running = True
        self.job_started.emit("Opening " + ", ".join(p.name or str(p) for p in roots))
        worker.start()

    def cancel_job(self) -> None:
        """Cancel the running embedding job (results already received are kept)."""
        if self._job is not None:
            self._job.cancel()
            self._old_jobs.append(self._job)
            self._job = None

    def wait_job(self, msecs: int = 30000) -> bool:
        ok = True
        for w in [self._job, *self._old_jobs]:
            if w is not None:
                ok = w.wait(msecs) and ok
        return ok

    def shutdown(self) -> None:
        """Stop every worker and wait for them (call before the window goes away)."""
        if self._closed:
            return
        self._closed = True
        self._flush_timer.stop()
        self._pca_timer.stop()
        self._labels_timer.stop()
        self.cancel_job()
        self.wait_job(60000)
        self.tasks.shutdown()
        self.heavy.shutdown()
        for w in self._old_jobs:
            w.deleteLater()
        self._old_jobs = []
        self._close_stale_sessions()
        if self.session is not None:
            try:
                self.session.close()
            except Exception:  # pragma: no cover
                log.debug("closing the session failed", exc_info=True)

    @Slot(int, object)
    def _on_job_yielded(self, gen: int, value: Any) -> None:
        if gen != self._job_gen or self._closed:
            return
        kind = value[0]
        if kind == "opened":
            self._on_opened(value[1], value[2], value[3])
        elif kind == "model":
            self.adapter = value[1]
            self._adapter_req = (self.model_spec, self.device)
            dev = getattr(self.adapter, "device", "?")
            self.model_info.emit(f"{model_display_name(self.adapter)} · {dev}")
            self._refresh_label_vecs()
            if self.query.active:
                self._submit_query()
        elif kind == "rows":
            self._add_rows(value[1], value[2])
        elif kind == "discard":
            self._discard_vectors()
        elif kind == "progress":
            self._on_progress(value[1])

    def _on_opened(self, session: Any, items: list[Any], labels: Any) -> None:
        old_session = self.session
        query = self.query  # a rescan or added files keep the query
        self._reset_data()
        self.query = query
        self.session = session
        self.label_store = labels
        if old_session is not None and old_session is not session:
            self._stale_sessions.append(old_session)  # closed once its job has stopped
            self._close_stale_sessions()
        self.items = items
        n = len(items)
        self.have = np.zeros(n, dtype=bool)
        self.coords = np.full((n, 2), np.nan, dtype=np.float32)
        self.predicted = np.full(n, -1, dtype=np.int32)
        self.confidence = np.zeros(n, dtype=np.float32)
        self.suggested = np.full(n, -1, dtype=np.int32)
        self.suggested_prob = np.zeros(n, dtype=np.float32)
        for row, it in enumerate(items):
            self._sha_rows.setdefault(it.sha256, []).append(row)
        errors = getattr(session, "scan_errors", None) or []
        self.tasks.bump("query")
        self.heavy.bump("projection")
        self.catalogue_opened.emit()
        for msg in getattr(labels, "warnings", None) or []:
            self.error.emit("Labels", msg)  # e.g. a damaged labels file was moved aside
        self._labels_timer.start()
        self.labels_changed.emit()
        self.scores_changed.emit()
        self.predictions_changed.emit()
        self.selection_changed.emit("open")
        self.current_changed.emit(-1)
        msg = f"{n} images"
        if errors:
            msg += f", {len(errors)} unreadable"
        self.status.emit(msg)

    def _on_progress(self, p: Any) -> None:
        errors = getattr(p, "errors", None) or []
        if errors:
            if self._path_rows is None:
                self._path_rows = {it.path: row for row, it in enumerate(self.items)}
            for path, reason in errors:
                row = self._path_rows.get(Path(path))
                if row is not None:
                    self.failed[row] = reason
        self.job_progress.emit(p)
        self._add_vectors(list(getattr(p, "shas", []) or []), getattr(p, "vectors", None))

    def _add_vectors(self, shas: list[str], vectors: np.ndarray | None) -> None:
        """Store vectors given per content hash (a batch) for every row with that hash."""
        if vectors is None or not len(shas):
            return
        rows: list[int] = []
        idx: list[int] = []
        for i, sha in enumerate(shas):
            for row in self._sha_rows.get(sha, ()):
                rows.append(row)
                idx.append(i)
        self._add_rows(np.asarray(rows, dtype=np.int64), np.asarray(vectors)[idx])

    def _add_rows(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (aligned with ``rows``), vectorised (100k cached rows at once)."""
        if not len(rows):
            return
        # the store keeps float16: round fresh vectors the same way so that results match
        # the command line and a reopened catalogue exactly
        vectors = np.asarray(vectors).astype(np.float16).astype(np.float32)
        if self.vectors is None or self.vectors.shape[1] != vectors.shape[1]:
            self.vectors = np.zeros((self.n, vectors.shape[1]), dtype=np.float32)
            self.have[:] = False
        self.vectors[rows] = vectors
        new = rows[~self.have[rows]]
        if len(new):
            self.have[new] = True
            self._update_new_rows(np.unique(new))
            self._mark("embeddings")

    def _discard_vectors(self) -> None:
        """Forget every vector (they came from a stale guess of the model's cache space)."""
        self.vectors = None
        self.have[:] = False
        self.coords[:] = np.nan
        self.coords_kind = ""
        self.probs = None
        self._apply_threshold(emit=False)
        self.heavy.bump("projection")
        self.heavy.bump("umap")
        self.embeddings_changed.emit()
        self.projection_changed.emit("")
        self.predictions_changed.emit()

    def _mark(self, what: str) -> None:
        """Coalesce view updates while batches stream in (views repaint at most ~5x/s)."""
        self._dirty.add(what)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    @Slot()
    def flush(self, final: bool = False) -> None:
        """Emit the coalesced change signals now (``final``: the job ended, no interim PCA)."""
        self._flush_timer.stop()
        dirty, self._dirty = self._dirty, set()
        if "scores" in dirty:
            self.scores_changed.emit()
        if "predictions" in dirty:
            self.predictions_changed.emit()
        if "embeddings" in dirty:
            self.embeddings_changed.emit()
            if not final:
                self._schedule_projection(final=False)
            if self.query.active and self._query_vec is None:
                self._submit_query()  # typed before any image had a vector

    def _update_new_rows(self, rows: np.ndarray) -> None:
        """Scores and predictions for freshly embedded rows (cheap, inline)."""
        assert self.vectors is not None
        if self._query_vec is not None and self.scores is not None:
            self.scores[rows] = self.vectors[rows] @ self._query_vec
            self._mark("scores")
        if self.label_vecs is not None and self.adapter is not None:
            self._ensure_probs()
            assert self.probs is not None
            if self.probs.shape[1] == len(self.label_vecs):
                from galaxy_explorer.core.search import zero_shot

                self.probs[rows] = zero_shot(
                    self.vectors[rows], self.label_vecs, self.adapter.logit_scale
                )
                self._apply_threshold(emit=False)
                self._mark("predictions")

    def _close_stale_sessions(self) -> None:
        if any(not w.isFinished() for w in self._old_jobs):
            return
        for s in self._stale_sessions:
            try:
                s.close()
            except Exception:  # pragma: no cover
                log.debug("closing a previous session failed", exc_info=True)
        self._stale_sessions = []

    @Slot(int, str, str)
    def _on_job_failed(self, gen: int, message: str, details: str) -> None:
        if gen != self._job_gen:
            return
        self._job_failed = True
        if self.session is None:
            self.error.emit("Cannot open", message)
        elif self.adapter is None:
            self.error.emit(
                "Could not load the model",
                f"{message}\n\nFile ▸ Choose Model Folder… uses another model.",
            )
        else:
            self.error.emit("Embedding failed", message)

    @Slot()
    def _on_thread_finished(self) -> None:
        sender = self.sender()
        if isinstance(sender, GeneratorWorker):
            if sender in self._old_jobs:
                self._old_jobs.remove(sender)
            if sender is not self._job:
                sender.deleteLater()
        self._close_stale_sessions()

    @Slot(int, bool)
    def _on_job_done(self, gen: int, cancelled: bool) -> None:
        if gen != self._job_gen:
            return
        if self._job is not None:
            self._old_jobs.append(self._job)  # until its thread has really finished
        self._job = None
        self.job_running = False
        self.flush(final=True)  # the final projection is scheduled below
        status = "failed" if self._job_failed else "cancelled" if cancelled else "done"
        self.job_finished.emit(status)
        if self.session is not None and status == "done":
            n_have = int(self.have.sum())
            msg = f"{n_have} of {self.n} images embedded"
            if self.failed:
                msg += f", {len(self.failed)} failed"
            self.status.emit(msg)
        self._schedule_projection(final=True)

    # ------------------------------------------------------------------ projection
    def _schedule_projection(self, final: bool) -> None:
        """PCA now (at most once a second while streaming); UMAP once the job is done."""
        if final:
            self._pca_timer.stop()
            self._run_pca(final=True)
        elif not self._pca_timer.isActive():
            if self.coords_kind == "":
                self._run_pca()  # the first points show at once
            self._pca_timer.start()

    @Slot()
    def _run_pca(self, final: bool = False) -> None:
        rows = self.embedded_rows()
        if self.vectors is None or len(rows) == 0:
            return
        emb = self.vectors[rows].copy()
        cache_dir = self._umap_cache_dir()
        want_umap = final and self.umap_enabled and len(rows) >= 5

        def run():
            from galaxy_explorer.core.projection import pca_2d

            return ("pca", rows, np.asarray(pca_2d(emb), dtype=np.float32))

        self.heavy.submit("projection", run)
        if want_umap:
            gen = self.heavy.current("umap") + 1
            runner = self.heavy

            def run_umap():
                from galaxy_explorer.core._umap_child import umap_coords

                def cancelled() -> bool:
                    return self._closed or not runner.is_current("umap", gen)

                xy = umap_coords(emb, cache_dir, cancelled=cancelled)
                if xy is None:
                    return ("cancelled", rows, None)
                return ("umap", rows, np.asarray(xy, dtype=np.float32))

            self.busy_changed.emit("Computing UMAP map…")
            self.heavy.submit("umap", run_umap)

    def _umap_cache_dir(self) -> Path:
        root = getattr(self.session, "cache_dir", None) or self.cache_dir
        if root is None:
            from galaxy_explorer.core.cache import default_cache_dir

            root = default_cache_dir()
        return Path(root)

    def _apply_projection(self, kind: str, rows: np.ndarray, xy: np.ndarray) -> None:
        if self.coords_kind == "umap" and kind == "pca":
            # keep the UMAP view unless the rows changed
            if len(rows) == int(self.have.sum()) and np.isfinite(self.coords[rows]).all():
                return
        if kind == "umap" and not np.array_equal(rows, self.embedded_rows()):
            return  # stale: more rows arrived since
        self.coords = np.full((self.n, 2), np.nan, dtype=np.float32)
        self.coords[rows] = xy
        self.coords_kind = kind
        self.projection_changed.emit(kind)

    # ------------------------------------------------------------------ tasks
    @Slot(str, int, object)
    def _on_task_finished(self, kind: str, gen: int, result: Any) -> None:
        if self._closed:
            return
        runner = self.heavy if kind in ("projection", "umap", "export", "propagate") else self.tasks
        if kind == "detail":
            self.detail_ready.emit(result[0], result[1])
            return
        if not runner.is_current(kind, gen):
            if kind == "umap":
                self.busy_changed.emit("")
            return
        if kind in ("projection", "umap"):
            if kind == "umap":
                self.busy_changed.emit("")
            if result[0] != "cancelled":
                self._apply_projection(*result)
        elif kind == "query":
            self._apply_query(*result)
        elif kind == "labels":
            self._apply_label_vecs(result)
        elif kind == "example":
            name, vec, positive = result
            (self.query.positive if positive else self.query.negative).append((name, vec))
            self._submit_query()
        elif kind == "propagate":
            self._apply_suggestions(*result)
        elif kind == "export":
            path, count = result
            self.status.emit(f"Exported {count} rows to {path}")
            self.export_finished.emit(str(path), count)

    @Slot(str, int, str, str)
    def _on_task_failed(self, kind: str, gen: int, message: str, details: str) -> None:
        if self._closed:
            return
        titles = {
            "query": "Query failed",
            "labels": "Zero-shot labels failed",
            "projection": "Map projection failed",
            "umap": "UMAP failed",
            "export": "Export failed",
            "propagate": "Propagate failed",
            "example": "Cannot use that image",
            "detail": "Cannot show image",
        }
        if kind == "umap":
            self.busy_changed.emit("")
        if kind == "detail":
            self.detail_ready.emit(-1, message)
            return
        self.error.emit(titles.get(kind, "Error"), message)

    # ------------------------------------------------------------------ query
    def set_query_text(self, text: str) -> None:
        """Rank the catalogue by free text (combined with any example images)."""
        self.query.text = text
        self._submit_query()

    def add_examples(self, rows: list[int] | np.ndarray, positive: bool = True) -> None:
        """Use embedded rows as positive / negative examples of the query."""
        if self.vectors is None:
            return
        lst = self.query.positive if positive else self.query.negative
        for r in rows:
            r = int(r)
            if 0 <= r < self.n and self.have[r]:
                lst.append((self.items[r].name, self.vectors[r].copy()))
        self._submit_query()

    def find_similar(self, rows: list[int] | np.ndarray) -> None:
        """Replace the query by "similar to these rows"."""
        self.query = QueryState()
        self.add_examples(rows, positive=True)

    def add_example_file(self, path: Path, positive: bool = True) -> None:
        """Embed an outside image file and use it as an example."""
        path = Path(path)
        for row, it in enumerate(self.items):
            if it.path == path and self.have[row]:
                self.add_examples([row], positive)
                return
        adapter = self.adapter
        if adapter is None:
            self.error.emit("Model not ready", "Wait until the model has loaded.")
            return
        render = getattr(self.session, "render", None)

        def run():
            from galaxy_explorer.core.imaging import RenderSettings, load_rgb

            rgb = load_rgb(path, render or RenderSettings())
            return (path.name, adapter.embed_images([rgb])[0], positive)

        self.tasks.submit("example", run)

    def remove_example(self, index: int, positive: bool) -> None:
        lst = self.query.positive if positive else self.query.negative
        if 0 <= index < len(lst):
            del lst[index]
        self._submit_query()

    def clear_query(self) -> None:
        self.query = QueryState()
        self._submit_query()

    def _submit_query(self) -> None:
        q = self.query
        if not q.active or self.adapter is None or self.vectors is None:
            self.tasks.bump("query")
            if not q.active:
                self._apply_query(None, None, None)
            return
        adapter = self.adapter
        text = q.text.strip()
        pos = np.stack([v for _, v in q.positive]) if q.positive else None
        neg = np.stack([v for _, v in q.negative]) if q.negative else None
        vectors, rows = self.vectors, self.embedded_rows()
        dim = vectors.shape[1]

        def run():
            from galaxy_explorer.core.search import query_vector

            text_vecs = adapter.embed_texts([text]) if text else None
            qv = query_vector(dim, text_vecs=text_vecs, positive=pos, negative=neg)
            return (qv, rows, vectors[rows] @ qv)

        self.tasks.submit("query", run)

    def _apply_query(
        self, qv: np.ndarray | None, rows: np.ndarray | None, scores: np.ndarray | None
    ) -> None:
        if qv is None:
            self._query_vec = None
            self.scores = None
        else:
            self._query_vec = np.asarray(qv, dtype=np.float32)
            self.scores = np.full(self.n, np.nan, dtype=np.float32)
            self.scores[rows] = scores
            late = self.have.copy()
            late[rows] = False
            if late.any() and self.vectors is not None:  # rows that arrived meanwhile
                idx = np.flatnonzero(late)
                self.scores[idx] = self.vectors[idx] @ self._query_vec
        self.scores_changed.emit()

    def ranking(self, k: int | None = None) -> np.ndarray:
        """Embedded rows ordered best first by the current query scores."""
        rows = self.embedded_rows()
        if self.scores is None:
            return rows
        from galaxy_explorer.core.search import top_k

        idx = top_k(self.scores[rows], len(rows) if k is None else k)
        return rows[idx]

    # ------------------------------------------------------------------ zero-shot labels
    def set_label_defs(self, defs: list[LabelDef], templates: list[str] | None = None) -> None:
        """Change the zero-shot classes (only the text is re-embedded)."""
        self.label_defs = [LabelDef(d.name.strip(), d.prompt) for d in defs if d.name.strip()]
        if templates is not None:
            self.templates = [t for t in templates if t.strip()] or ["{}"]
        self.label_defs_changed.emit()
        self._refresh_label_vecs()

    def set_threshold(self, value: float) -> None:
        self.threshold = float(value)
        self._apply_threshold()

    def _refresh_label_vecs(self) -> None:
        adapter = self.adapter
        if adapter is None:
            return
        if not self.label_defs:
            self.tasks.bump("labels")
            self._apply_label_vecs(None)
            return
        texts = [d.text for d in self.label_defs]
        templates = list(self.templates)
        vectors, rows = self.vectors, self.embedded_rows()

        def run():
            from galaxy_explorer.core.search import zero_shot

            lv = np.asarray(adapter.embed_labels(texts, templates), dtype=np.float32)
            probs = None
            if vectors is not None and len(rows):
                probs = zero_shot(vectors[rows], lv, adapter.logit_scale)
            return (lv, rows, probs)

        self.tasks.submit("labels", run)

    def _apply_label_vecs(self, result: tuple | None) -> None:
        if result is None:
            self.label_vecs = None
            self.probs = None
        else:
            lv, rows, probs = result
            self.label_vecs = lv
            self.probs = np.full((self.n, len(lv)), np.nan, dtype=np.float32)
            if probs is not None:
                self.probs[rows] = probs
            late = self.have.copy()
            late[rows] = False
            if late.any() and self.vectors is not None and self.adapter is not None:
                from galaxy_explorer.core.search import zero_shot

                idx = np.flatnonzero(late)
                self.probs[idx] = zero_shot(self.vectors[idx], lv, self.adapter.logit_scale)
        self._apply_threshold()

    def _ensure_probs(self) -> None:
        if self.label_vecs is not None and (self.probs is None or len(self.probs) != self.n):
            self.probs = np.full((self.n, len(self.label_vecs)), np.nan, dtype=np.float32)

    def _apply_threshold(self, emit: bool = True) -> None:
        n = self.n
        self.predicted = np.full(n, -1, dtype=np.int32)
        self.confidence = np.zeros(n, dtype=np.float32)
        if self.probs is not None and len(self.probs) == n and self.probs.shape[1]:
            ok = self.have & np.isfinite(self.probs[:, 0])
            if ok.any():
                p = self.probs[ok]
                self.predicted[ok] = np.argmax(p, axis=1)
                self.confidence[ok] = p.max(axis=1)
            self.predicted[ok & (self.confidence < self.threshold)] = -2  # uncertain
        if emit:
            self.predictions_changed.emit()

    def predicted_label(self, row: int) -> str | None:
        """Zero-shot label of a row, ``"uncertain"`` below the threshold, None if unknown."""
        if row >= len(self.predicted):
            return None
        i = int(self.predicted[row])
        if i == -2:
            return UNCERTAIN
        if 0 <= i < len(self.label_defs):
            return self.label_defs[i].name
        return None

    def predicted_counts(self) -> dict[str, int]:
        counts = {d.name: 0 for d in self.label_defs}
        if len(self.predicted):
            bc = np.bincount(self.predicted[self.predicted >= 0], minlength=len(self.label_defs))
            for i, d in enumerate(self.label_defs):
                counts[d.name] = int(bc[i]) if i < len(bc) else 0
        counts[UNCERTAIN] = int((self.predicted == -2).sum())
        return counts

    def probabilities(self, row: int) -> dict[str, float] | None:
        if self.probs is None or row >= len(self.probs) or not np.isfinite(self.probs[row, 0]):
            return None
        return {d.name: float(p) for d, p in zip(self.label_defs, self.probs[row], strict=False)}

    # ------------------------------------------------------------------ manual labels
    def manual_label(self, row: int) -> str | None:
        if self.session is None or not (0 <= row < self.n):
            return None
        return self._manual()[row]

    def _manual(self) -> list[str | None]:
        if self._manual_cache is None or len(self._manual_cache) != self.n:
            store = self.label_store if self.session is not None else None
            labels = store.all() if store is not None else {}
            self._label_token = int(getattr(store, "token", 0))
            self._manual_cache = [labels.get(it.sha256) for it in self.items]
            counts: dict[str, int] = {}
            for lab in self._manual_cache:
                if lab is not None:
                    counts[lab] = counts.get(lab, 0) + 1
            self._manual_count = counts
        return self._manual_cache

    def _pull_label_changes(self) -> bool:
        """Bring the per-row labels up to date from the store: O(changes), not O(rows).

        Picks up this window's own change as well as those other windows or processes made
        on the same labels store. Returns True if any row's label changed.
        """
        cache, store = self._manual_cache, self.label_store
        if self.session is None or store is None or cache is None or len(cache) != self.n:
            self._manual_cache = None  # rebuilt on next use
            return True
        try:
            token, changes = store.changes_since(self._label_token)
        except Exception as exc:  # a vanished or unreadable store: keep what we show
            log.warning("could not read label changes: %s", exc)
            return False
        self._label_token = token
        counts = self._manual_count
        changed = False
        for sha, lab in changes.items():
            for r in self._sha_rows.get(sha, ()):
                old = cache[r]
                if old == lab:
                    continue
                if old is not None:
                    counts[old] -= 1
                    if not counts[old]:
                        del counts[old]
                if lab is not None:
                    counts[lab] = counts.get(lab, 0) + 1
                cache[r] = lab
                changed = True
        return changed

    @Slot()
    def _on_labels_timer(self) -> None:
        if self._closed or self.session is None or self._manual_cache is None:
            return
        if self._pull_label_changes():
            self.labels_changed.emit()

    def manual_labels(self) -> list[str | None]:
        """Manual label per row (None = unlabelled)."""
        return list(self._manual()) if self.session is not None else []

    def manual_counts(self) -> dict[str, int]:
        """Rows per manual label (kept up to date incrementally)."""
        if self.session is None:
            return {}
        self._manual()
        return dict(self._manual_count)

    def set_manual_label(self, rows: list[int] | np.ndarray, label: str | None) -> None:
        """Label rows by hand (None clears); persisted immediately, one undo step."""
        if self.session is None:
            return
        rows = [int(r) for r in rows if 0 <= int(r) < self.n]
        if not rows:
            return
        shas = list(dict.fromkeys(self.items[r].sha256 for r in rows))
        try:
            self.label_store.set(shas, label)
        except Exception as exc:
            log.exception("saving labels failed")
            self.error.emit("Could not save labels", str(exc))
            return
        self._pull_label_changes()
        what = f"'{label}'" if label else "no label"
        self.status.emit(f"Labelled {len(rows)} image{'s' if len(rows) != 1 else ''} as {what}")
        self.labels_changed.emit()

    def rename_manual_label(self, old: str, new: str) -> int:
        """Images labelled ``old`` by hand become ``new`` (one undo step); returns how many."""
        rows = [r for r, lab in enumerate(self._manual()) if lab == old] if self.session else []
        if rows and new and new != old:
            self.set_manual_label(rows, new)
        return len(rows)

    def undo_labels(self) -> bool:
        if self.session is None:
            return False
        try:
            ok = bool(self.label_store.undo())
        except Exception as exc:
            log.exception("undoing a label change failed")
            self.error.emit("Could not save labels", str(exc))
            return False
        self._pull_label_changes()
        self.status.emit("Undo" if ok else "Nothing to undo")
        if ok:
            self.labels_changed.emit()
        return ok

    def redo_labels(self) -> bool:
        if self.session is None:
            return False
        try:
            ok = bool(self.label_store.redo())
        except Exception as exc:
            log.exception("redoing a label change failed")
            self.error.emit("Could not save labels", str(exc))
            return False
        self._pull_label_changes()
        self.status.emit("Redo" if ok else "Nothing to redo")
        if ok:
            self.labels_changed.emit()
        return ok

    # ------------------------------------------------------------------ few-shot
    def propagate(self) -> None:
        """Fit a few-shot classifier on the manual labels; suggest labels for the rest."""
        if self.vectors is None or self.session is None:
            self.error.emit("Propagate", "No embeddings yet.")
            return
        manual = self._manual()
        rows = [r for r in self.embedded_rows() if manual[r] is not None]
        names = [manual[r] for r in rows]
        if len(set(names)) < 1 or len(rows) < 2:
            self.error.emit("Propagate", "Label at least two images by hand first.")
            return
        vectors, have_rows = self.vectors, self.embedded_rows()

        def run():
            from galaxy_explorer.core.search import FewShotClassifier

            clf = FewShotClassifier().fit(vectors[rows], names)
            classes, probs = clf.predict_proba(vectors[have_rows])
            return (list(classes), have_rows, np.asarray(probs, dtype=np.float32))

        self.status.emit("Propagating labels…")
        self.heavy.submit("propagate", run)

    def _apply_suggestions(self, classes: list[str], rows: np.ndarray, probs: np.ndarray) -> None:
        self.suggestion_classes = classes
        self.suggested = np.full(self.n, -1, dtype=np.int32)
        self.suggested_prob = np.zeros(self.n, dtype=np.float32)
        self.suggested[rows] = np.argmax(probs, axis=1)
        self.suggested_prob[rows] = probs.max(axis=1)
        manual = self._manual()
        for r in rows:
            if manual[r] is not None:
                self.suggested[r] = -1
        k = int((self.suggested >= 0).sum())
        self.status.emit(f"Suggested labels for {k} images (halo on the map, '?' in the gallery)")
        self.suggestions_changed.emit()

    def suggestion(self, row: int) -> tuple[str, float] | None:
        if row >= len(self.suggested) or self.suggested[row] < 0:
            return None
        return self.suggestion_classes[self.suggested[row]], float(self.suggested_prob[row])

    def accept_suggestions(self, rows: list[int] | np.ndarray | None = None) -> None:
        """Turn suggestions into manual labels (grouped per label; one undo step per label)."""
        if rows is None:
            rows = np.flatnonzero(self.suggested >= 0)
        by: dict[str, list[int]] = {}
        for r in rows:
            s = self.suggestion(int(r))
            if s is not None:
                by.setdefault(s[0], []).append(int(r))
        for lab, rs in by.items():
            self.set_manual_label(rs, lab)
            self.suggested[rs] = -1
        self.suggestions_changed.emit()

    def clear_suggestions(self) -> None:
        self.suggested[:] = -1
        self.suggestions_changed.emit()

    # ------------------------------------------------------------------ selection
    def set_selection(self, rows: list[int] | np.ndarray, source: str = "") -> None:
        sel = np.unique(
            np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64)
        )
        sel = sel[(sel >= 0) & (sel < self.n)]
        if np.array_equal(sel, self.selection):
            return
        self.selection = sel
        self.selection_changed.emit(source)
        if len(sel) == 1:
            self.set_current(int(sel[0]))

    def set_current(self, row: int) -> None:
        row = int(row) if 0 <= int(row) < self.n else -1
        if row != self.current:
            self.current = row
            self.current_changed.emit(row)

    def set_color_mode(self, mode: str) -> None:
        if mode not in ("predicted", "manual"):
            raise ValueError(mode)
        if mode != self.color_mode:
            self.color_mode = mode
            self.color_mode_changed.emit(mode)

    def similar_to(self, row: int, k: int = 8) -> list[tuple[int, float]]:
        """The ``k`` nearest embedded rows to ``row`` (excluding itself)."""
        if self.vectors is None or not (0 <= row < self.n) or not self.have[row]:
            return []
        rows = self.embedded_rows()
        s = self.vectors[rows] @ self.vectors[row]
        from galaxy_explorer.core.search import top_k

        out = []
        for i in top_k(s, k + 1):
            if rows[i] != row:
                out.append((int(rows[i]), float(s[i])))
        return out[:k]

    # ------------------------------------------------------------------ detail render
    def request_detail(self, row: int, settings: Any) -> None:
        """Render ``row`` with display ``settings`` off-thread → ``detail_ready(row, result)``."""
        if not (0 <= row < self.n):
            return
        path = self.items[row].path

        def run():
            from galaxy_explorer.core import imaging

            rgb = imaging.load_rgb(path, settings)
            header = imaging.read_header(path, settings.hdu)
            planes = 0
            if header:  # FITS: how many planes (a cube gets colour from its bands)
                # from the header, not the data: a big cube is never read whole for this
                try:
                    naxis = int(header.get("ZNAXIS", header.get("NAXIS", 2)) or 2)
                    third = header.get("ZNAXIS3", header.get("NAXIS3", 1))
                    planes = int(third or 1) if naxis >= 3 else 1
                except (TypeError, ValueError):
                    planes = 1
            try:
                ra, dec = imaging.sky_position(path)
            except Exception:
                ra, dec = None, None
            return (row, dict(rgb=rgb, header=header, ra=ra, dec=dec, planes=planes))

        self.tasks.submit("detail", run)

    # ------------------------------------------------------------------ export
    def export_csv(self, out: Path, rows: list[int] | np.ndarray | None = None) -> None:
        """Write rows (default: all) to CSV through the core writer, off-thread."""
        if self.session is None:
            self.error.emit("Export", "Nothing to export: open a folder first.")
            return
        rows = np.arange(self.n) if rows is None else np.asarray(rows, dtype=np.int64)
        items = [self.items[r] for r in rows]
        scores = None if self.scores is None else self.scores[rows].copy()
        names = self.label_names()
        probs = None
        if self.probs is not None and len(self.probs) == self.n:
            probs = self.probs[rows].copy()
        preds = [self.predicted_label(int(r)) for r in rows]
        manual = [self.manual_label(int(r)) for r in rows]
        import json

        extra = {
            "command": "gui export",
            "rows": "selection" if len(rows) < self.n else "all",
            "threshold": f"{self.threshold:g}",
        }
        if names:
            extra["label_prompts"] = json.dumps({d.name: d.text for d in self.label_defs})
        from galaxy_explorer.core.hub import display_name

        prov_kwargs = dict(  # the same fields as the command line writes
            model=str(getattr(self.adapter, "spec", self.model_spec)),
            model_name=display_name(str(getattr(self.adapter, "spec", self.model_spec))),
            model_revision=str(getattr(self.adapter, "revision", "")),
            render=_render_key(self.session),
            labels=names or None,
            prompts=list(self.templates) if names else None,
            query=self.query.describe() or None,
            extra=extra,
        )
        out = Path(out)

        def run():
            from galaxy_explorer.core import export, imaging

            export_rows = []
            for i, it in enumerate(items):
                try:
                    ra, dec = imaging.sky_position(it.path)
                except Exception:
                    ra, dec = None, None
                p = None
                if probs is not None and np.isfinite(probs[i, 0]):
                    p = {n: float(v) for n, v in zip(names, probs[i], strict=False)}
                sc = None if scores is None or not np.isfinite(scores[i]) else float(scores[i])
                export_rows.append(
                    export.ExportRow(
                        path=str(it.path),
                        name=it.name,
                        sha256=it.sha256,
                        ra=ra,
                        dec=dec,
                        score=sc,
                        predicted_label=preds[i],
                        probs=p,
                        label=manual[i],
                    )
                )
            prov = _make_provenance(export, prov_kwargs)
            export.write_csv(out, export_rows, prov, label_names=names or None)
            return (out, len(export_rows))

        self.heavy.submit("export", run)


def model_display_name(adapter: Any) -> str:
    """What the loaded model is, for the status bar (:func:`galaxy_explorer.core.hub.display_name`)."""
    from galaxy_explorer.core.hub import display_name

    return display_name(str(getattr(adapter, "spec", "")))


_GC_LOCK = __import__("threading").Lock()


def _load_adapter(session: Any) -> Any:
    """``session.adapter`` without full garbage collections stalling the GUI meanwhile.

    Importing torch / transformers and building the model creates hundreds of thousands of
    objects; the collector's full passes over them run in this (worker) thread while it
    holds the GIL, which stalled the event loop for up to 0.25 s at a time (measured). The
    collector is paused while the model loads, and everything loaded is then frozen
    (``gc.freeze``) so later collections skip it.
    """
    import gc

    with _GC_LOCK:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            adapter = session.adapter
        finally:
            gc.freeze()
            if was_enabled:
                gc.enable()
    return adapter


def _rows_for(items: list[Any], shas: list[str], vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, vectors) for every item whose hash is in ``shas`` (computed off the GUI thread)."""
    index = {s: i for i, s in enumerate(shas)}
    rows, idx = [], []
    for row, it in enumerate(items):
        i = index.get(it.sha256)
        if i is not None:
            rows.append(row)
            idx.append(i)
    return np.asarray(rows, dtype=np.int64), np.asarray(vecs)[idx]


_MODEL_KEYS_FILE = "gui-model-keys.json"


def _remembered_model_key(cache_dir: Path, spec: str) -> tuple[str, int] | None:
    """(model key, dim) the model ``spec`` had when it was last loaded with this cache."""
    import json

    try:
        data = json.loads((Path(cache_dir) / _MODEL_KEYS_FILE).read_text(encoding="utf-8"))
        entry = data[str(spec)]
        return str(entry["model_key"]), int(entry["dim"])
    except Exception:
        return None


def _remember_model_key(cache_dir: Path, spec: str, model_key: str, dim: int) -> None:
    import json

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
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
            vecs, found = store.get(shas)
        finally:
            store.close()
        return [s for s, f in zip(shas, found, strict=True) if f], vecs[found]
    except Exception as exc:  # a guess only: any problem means "no early vectors"
        log.debug("early cache read failed: %s", exc)
        return [], np.zeros((0, guess[1]), np.float32)


def _make_provenance(export: Any, kwargs: dict[str, Any]) -> Any:
    import dataclasses
    import datetime

    from galaxy_explorer import __version__

    fields = {f.name for f in dataclasses.fields(export.Provenance)}
    extra = dict(
        tool_version=__version__,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    args = {k: v for k, v in {**kwargs, **extra}.items() if k in fields}
    return export.Provenance(**args)


def _render_key(session: Any) -> str:
    render = getattr(session, "render", None)
    try:
        return render.key() if render is not None else ""
    except Exception:
        return str(render)


def open_in_file_manager(path: Path) -> None:
    """Show a file's folder in the platform file manager."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    folder = path if path.is_dir() else path.parent
    QDesktopServices.openUrl(QUrl.fromLocalFile(os.fspath(folder)))
