"""The GUI's controller: a thin bridge from the Qt-free state and workflows to the views.

The app's state lives in :class:`galaxy_explorer.core.state.AppState` (evented with
psygnal, tested without Qt); the work is done by :mod:`galaxy_explorer.core.workflows`,
the same functions the command line calls. The controller

- re-emits the state's events as Qt signals (coalescing the per-batch ones while an
  embedding job streams in, so views repaint at most ~5x a second);
- runs workflows on :class:`galaxy_explorer.gui.workers.Runner` threads and hands their
  typed results to the state on the GUI thread (stale results are dropped by the runner);
- owns what is neither state nor workflow: the open session, the model adapter, the
  manual-labels store and the timers.

Views take the controller in their constructor and subscribe to its signals; the
controller never imports a view.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from galaxy_explorer.core import workflows
from galaxy_explorer.core._arrays import limit_blas_threads, paused_gc
from galaxy_explorer.core.defaults import UNCERTAIN, LabelDef, load_default_labels
from galaxy_explorer.core.state import NO_SUGGESTION, AppState, ManualLabels, QueryState
from galaxy_explorer.gui.workers import Runner, Task

if TYPE_CHECKING:
    from galaxy_explorer.core.projection import PcaBasis

log = logging.getLogger(__name__)

__all__ = ["Controller", "LabelDef", "UNCERTAIN", "load_default_labels", "resources_dir"]


def resources_dir() -> Path:
    """The bundled ``resources`` folder (source checkout or installed wheel)."""
    from galaxy_explorer._resources import resources_dir as _resources_dir

    return _resources_dir()


def _state_attr(name: str, doc: str = "") -> property:
    """A controller attribute that is the state's (read and write)."""

    def get(self: Controller) -> Any:
        return getattr(self.state, name)

    def set_(self: Controller, value: Any) -> None:
        setattr(self.state, name, value)

    return property(get, set_, doc=doc or f"``state.{name}``")


def _prediction_attr(name: str) -> property:
    def get(self: Controller) -> Any:
        return getattr(self.state.predictions, name)

    def set_(self: Controller, value: Any) -> None:
        setattr(self.state.predictions, name, np.asarray(value))

    return property(get, set_, doc=f"``state.predictions.{name}``")


# a label action (set, undo, redo) on more rows than this runs on a worker: 100k rows froze the
# window for 15 s, 1M for 104 s (issue #12)
BIG_LABEL_ROWS = 5000

# UMAP finds neighbours exactly below this many points (no pynndescent to warm up)
_UMAP_EXACT_ROWS = 4096


#: The longest an open job waits for its window's first paint (:attr:`Controller.open_gate`).
OPEN_GATE_S = 1.0


def leave_a_core_to_the_gui() -> int:
    """Limit the BLAS library's threads to one less than the CPUs (min 1).

    See :func:`galaxy_explorer.core._arrays.limit_blas_threads`: spinning BLAS threads
    took the core the GUI thread needed (a PCA of 1,000 vectors took 2-7 s with two OpenBLAS
    threads and 0.4 s with one under load). Applied again at each controller, since a BLAS
    loaded later starts with every core. Returns the limit (0 if it could not be set).
    """
    return limit_blas_threads()


class Controller(QObject):
    """One window's bridge between the state, the workflows and the views.

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
    propagated(object)
        A :class:`galaxy_explorer.core.workflows.Propagation` (examples per class,
        warnings, confidences) after Propagate.
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
    detail_ready(int, object)
        ``(row, dict)`` of a rendered detail image, or ``(-1, message)``.
    """

    catalogue_opened = Signal()
    embeddings_changed = Signal()
    projection_changed = Signal(str)
    scores_changed = Signal()
    predictions_changed = Signal()
    labels_changed = Signal()
    label_defs_changed = Signal()
    suggestions_changed = Signal()
    propagated = Signal(object)
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

    # the state, seen through the controller (views read these)
    items = _state_attr("items")
    vectors = _state_attr("vectors")
    have = _state_attr("have")
    coords = _state_attr("coords")
    coords_kind = _state_attr("coords_kind")
    scores = _state_attr("scores")
    query = _state_attr("query")
    probs = _state_attr("probs")
    label_vecs = _state_attr("label_vecs")
    label_defs = _state_attr("label_defs")
    templates = _state_attr("templates")
    threshold = _state_attr("threshold")
    color_mode = _state_attr("color_mode")
    selection = _state_attr("selection")
    current = _state_attr("current")
    failed = _state_attr("failed")
    suggested = _state_attr("suggested")
    suggested_prob = _state_attr("suggested_prob")
    suggestion_classes = _state_attr("suggestion_classes")
    predicted = _prediction_attr("predicted")
    confidence = _prediction_attr("confidence")
    uncertain = _prediction_attr("uncertain")

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
        leave_a_core_to_the_gui()
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
        self._label_token = 0
        self._path_rows: dict[Path, int] | None = None
        # (id of the vector matrix, embedded rows) of the PCA last started: not run twice
        self._pca_key: tuple[int, int] | None = None
        #: set by a window until it has been painted once: the open job waits for it
        #: (at most OPEN_GATE_S) so that the first showing does not compete for the GIL
        self.open_gate: threading.Event | None = None
        # (vector matrix, PCA basis fitted on it): kept while images stream in
        self._pca_basis: tuple[np.ndarray, PcaBasis] | None = None
        self._keep_examples = True
        self._busy_text = ""
        self.state = AppState()
        self._bridge()
        # one worker mechanism, three pools: the embedding job (a newer one may start
        # while the older finishes its batch), quick tasks (text, labels, detail) and
        # heavy ones (projection, export, few-shot)
        self.jobs = Runner(2, "jobs", self)
        self.tasks = Runner(1, "tasks", self)
        self.heavy = Runner(1, "heavy", self)
        # large label changes, one at a time and in order (see set_manual_label)
        self.labeller = Runner(1, "labels", self)
        self.big_label_rows = BIG_LABEL_ROWS
        self._label_queue: deque[tuple[str, Any, Any]] = deque()
        self._label_task: Task | None = None
        self._job: Task | None = None
        # extra export columns: rows -> (names, one dict per row); called off the GUI thread
        self.export_extras: Any = None
        self._stale_sessions: list[Any] = []
        self.job_running = False
        #: the rows shown are the cache's memory of the folder; the scan is checking them
        self.scanning = False
        self._job_failed = False
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

    # ------------------------------------------------------------------ bridge
    def _bridge(self) -> None:
        """State events → Qt signals (all state changes happen on the GUI thread)."""
        s = self.state
        s.opened.connect(self.catalogue_opened.emit)
        s.rows_added.connect(self._on_rows_added)
        s.embeddings_changed.connect(self.embeddings_changed.emit)
        s.projection_changed.connect(self.projection_changed.emit)
        s.query_changed.connect(self._submit_query)
        s.scores_changed.connect(self.scores_changed.emit)
        s.label_defs_changed.connect(self._on_label_defs_changed)
        s.predictions_changed.connect(self.predictions_changed.emit)
        s.labels_changed.connect(self.labels_changed.emit)
        s.suggestions_changed.connect(self.suggestions_changed.emit)
        s.selection_changed.connect(self.selection_changed.emit)
        s.current_changed.connect(self.current_changed.emit)
        s.color_mode_changed.connect(self.color_mode_changed.emit)

    def _on_rows_added(self, rows: np.ndarray) -> None:
        # coalesced: batches stream in several times a second
        self._mark("embeddings")
        if self.state.scores is not None:
            self._mark("scores")
        if self.state.label_vecs is not None:
            self._mark("predictions")

    def _on_label_defs_changed(self) -> None:
        self.label_defs_changed.emit()
        self._refresh_label_vecs()

    # ------------------------------------------------------------------ data
    @property
    def n(self) -> int:
        return self.state.n

    def embedded_rows(self) -> np.ndarray:
        return self.state.embedded_rows()

    def label_names(self) -> list[str]:
        return self.state.label_names()

    def thumbs_dir(self) -> Path | None:
        """Where rendered thumbnails are cached on disk (next to the embedding cache)."""
        root = getattr(self.session, "cache_dir", None) or self.cache_dir
        return Path(root) / "thumbs" if root is not None else None

    def item(self, row: int) -> Any:
        return self.state.items[row]

    # ------------------------------------------------------------------ opening
    def open_paths(self, paths: list[Path] | list[str], *, add: bool = False) -> None:
        """Open (or, with ``add``, extend the catalogue with) files / folders.

        Opening another catalogue drops the query's example images: they belong to the
        old one (and would otherwise end up in the new one's export provenance).
        """
        new = [Path(p).expanduser().resolve() for p in paths]
        roots = list(self.roots) + [p for p in new if p not in self.roots] if add else new
        missing = [p for p in roots if not p.exists()]
        if missing:
            self.error.emit("Cannot open", f"{missing[0]}: no such file or directory")
            roots = [p for p in roots if p.exists()]
            if not roots:
                return
        same = add or roots == self.roots
        self.roots = roots
        self._start_open_job(roots, keep_examples=same)

    def set_model(self, spec: str, device: str | None = None) -> None:
        """Switch to another model (hub id or folder); the catalogue is embedded again."""
        self.model_spec = str(spec)
        if device is not None:
            self.device = device
        self.adapter = None
        self._adapter_req = None
        self.tasks.bump("labels")  # the old model's zero-shot result is not wanted now
        self.state.label_vecs = None
        # example images were vectors of the old model: keep only the text of the query
        self.state.clear_examples()
        from galaxy_explorer.core.hub import display_name

        self.model_info.emit(f"loading {display_name(self.model_spec)}…")
        self.reopen()

    def reopen(self) -> None:
        """Scan the current roots again (new files are added, cached vectors reused)."""
        if self.roots:
            self._start_open_job(self.roots, keep_examples=True)

    def _start_open_job(self, roots: list[Path], *, keep_examples: bool) -> None:
        self.cancel_job()
        prev = self.adapter if self._adapter_req == (self.model_spec, self.device) else None
        opts = dict(
            model=self.model_spec,
            cache_dir=self.cache_dir,
            device=self.device,
            batch_size=self.batch_size,
            workers=self.decode_workers,
            adapter=prev,
        )
        self._keep_examples = keep_examples
        self._job_failed = False
        self.job_running = True
        gate = self.open_gate

        def run(cancel: threading.Event) -> Any:
            if gate is not None:
                gate.wait(OPEN_GATE_S)
            return _scan_without_gc(workflows.open_and_embed(roots, cancel=cancel, **opts))

        self._job = self.jobs.start(
            "open",
            run,
            on_yield=self._on_open_event,
            on_error=self._on_job_failed,
            on_done=self._on_job_done,
        )
        self.job_started.emit("Opening " + ", ".join(p.name or str(p) for p in roots))

    def cancel_job(self) -> None:
        """Cancel the running embedding job (results already received are kept)."""
        if self._job is not None:
            self._job.cancel()

    def wait_job(self, msecs: int = 30000) -> bool:
        """Wait until every embedding job's thread has finished."""
        return self.jobs.wait(msecs)

    def background_tasks(self) -> list[Task]:
        """Tasks of any kind whose threads have not finished yet."""
        return [
            *self.jobs.pending(),
            *self.tasks.pending(),
            *self.heavy.pending(),
            *self.labeller.pending(),
        ]

    def shutdown(self) -> None:
        """Stop every worker and wait for them (call before the window goes away)."""
        if self._closed:
            return
        self._closed = True
        self._flush_timer.stop()
        self._pca_timer.stop()
        self._labels_timer.stop()
        self.cancel_job()
        self.jobs.shutdown(60000)
        self._job = None
        self.job_running = False
        self.tasks.shutdown()
        self.heavy.shutdown()
        # the label write started (or about to start) is the user's work: let it finish
        self.labeller.wait(120000)
        self.labeller.shutdown()
        self._label_task = None
        self._save_queued_labels()
        self._close_stale_sessions()
        if self.session is not None:
            try:
                self.session.close()
            except Exception:  # pragma: no cover
                log.debug("closing the session failed", exc_info=True)

    def _on_open_event(self, ev: workflows.OpenEvent) -> None:
        if self._closed:
            return
        if isinstance(ev, workflows.Opened):
            self._on_opened(ev)
        elif isinstance(ev, workflows.ModelLoaded):
            self.adapter = ev.adapter
            self._adapter_req = (self.model_spec, self.device)
            dev = getattr(self.adapter, "device", "?")
            self.model_info.emit(f"{model_display_name(self.adapter)} · {dev}")
            self._refresh_label_vecs()
            if self.state.query.active:
                self._submit_query()
        elif isinstance(ev, workflows.RowsFound):
            self.state.add_rows(ev.rows, ev.vectors, rounded=True)
        elif isinstance(ev, workflows.Reconciled):
            self._on_reconciled(ev)
        elif isinstance(ev, workflows.VectorsDiscarded):
            self.tasks.bump("query")
            self.heavy.bump("projection")
            self._pca_key = self._pca_basis = None
            self.state.discard_vectors()
        elif isinstance(ev, workflows.EmbedProgress):
            self._on_progress(ev.progress)

    def _on_opened(self, ev: workflows.Opened) -> None:
        old_session = self.session
        self.session = ev.session
        self.label_store = ev.labels
        if old_session is not None and old_session is not ev.session:
            self._stale_sessions.append(old_session)  # closed once its job has stopped
            self._close_stale_sessions()
        self._path_rows = None
        self._pca_key = self._pca_basis = None
        self.tasks.bump("query")
        self.heavy.bump("projection")
        self.heavy.bump("propagate")
        self._dirty.clear()
        self._label_token = ev.label_token
        # provisional: the rows are the cache's memory of the folder; the scan checks them
        self.scanning = bool(getattr(ev, "provisional", False))
        self.state.open(
            ev.items,
            manual=ev.manual,
            sha_rows=ev.sha_rows,
            name_order=ev.name_order,
            manual_counts=ev.manual_counts,
            keep_examples=self._keep_examples,
        )
        for msg in getattr(ev.labels, "warnings", None) or []:
            self.error.emit("Labels", msg)  # e.g. a damaged labels file was moved aside
        self._labels_timer.start()
        # a provisional catalogue is corrected by a second Opened if the scan finds
        # changes: that one keeps the query's examples
        self._keep_examples = True
        if self.scanning:
            self.status.emit(f"{self.n} images (checking the folder…)")
            return
        errors = getattr(ev.session, "scan_errors", None) or []
        msg = f"{self.n} images"
        if errors:
            msg += f", {len(errors)} unreadable"
        self.status.emit(msg)

    def _on_reconciled(self, ev: workflows.Reconciled) -> None:
        """The scan checked the provisional catalogue (and corrected it if it changed)."""
        self.scanning = False
        msg = f"{self.n} images"
        if ev.errors:
            msg += f", {len(ev.errors)} unreadable"
        changes = [
            f"{k} {what}"
            for k, what in ((ev.added, "new"), (ev.removed, "removed"), (ev.changed, "changed"))
            if k
        ]
        if changes:
            msg += " (" + ", ".join(changes) + " since last time)"
        self.status.emit(msg)

    def _on_progress(self, p: Any) -> None:
        errors = getattr(p, "errors", None) or []
        if errors:
            reasons = {}
            for path, reason in errors:
                row = self._row_of_path(Path(path))
                if row is not None:
                    reasons[row] = reason
            self.state.set_failed(reasons)
        self.job_progress.emit(p)
        self.state.add_vectors(list(getattr(p, "shas", []) or []), getattr(p, "vectors", None))

    def _row_of_path(self, path: Path) -> int | None:
        """The row of a file: O(log N) (the scan sorts items by path), no map of every row.

        A dict of every path was built on the GUI thread at the first failed image (about a
        second at 1M rows); falls back to a search if the items are not in path order.
        """
        import bisect

        items = self.state.items
        i = bisect.bisect_left(items, path, key=lambda it: it.path)
        if i < len(items) and items[i].path == path:
            return i
        if self._path_rows is None:  # not sorted (never from a scan): build the map once
            self._path_rows = {it.path: row for row, it in enumerate(items)}
        return self._path_rows.get(path)

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
            if self.state.query.active and self.state.query_vector is None:
                self._submit_query()  # typed before any image had a vector

    def _close_stale_sessions(self) -> None:
        if self.jobs.pending():
            return
        for s in self._stale_sessions:
            try:
                s.close()
            except Exception:  # pragma: no cover
                log.debug("closing a previous session failed", exc_info=True)
        self._stale_sessions = []

    def _on_job_failed(self, message: str, details: str) -> None:
        self._job_failed = True
        if self.session is None or self.scanning:
            self.scanning = False
            self.error.emit("Cannot open", message)
        elif self.adapter is None:
            self.error.emit(
                "Could not load the model",
                f"{message}\n\nFile ▸ Choose Model Folder… uses another model.",
            )
        else:
            self.error.emit("Embedding failed", message)

    def _on_job_done(self, cancelled: bool) -> None:
        self._job = None
        self.job_running = False
        self.flush(final=True)  # the final projection is scheduled below
        status = "failed" if self._job_failed else "cancelled" if cancelled else "done"
        self.job_finished.emit(status)
        if self.session is not None and status == "done":
            msg = f"{int(self.have.sum())} of {self.n} images embedded"
            if self.failed:
                msg += f", {len(self.failed)} failed"
            self.status.emit(msg)
        self._schedule_projection(final=True)
        QTimer.singleShot(0, self._close_stale_sessions)

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
        # the rows are found on the worker (np.flatnonzero of 1M rows here took 0.1-0.2 s
        # on a loaded machine, #12); a copy of the mask is C-level
        have = self.have.copy()
        n_have = int(np.count_nonzero(have))
        if self.vectors is None or n_have == 0:
            return
        # Only a reference to the matrix goes to the worker, which picks the rows there (no
        # copy at all when every row has a vector). The rows it reads are never rewritten
        # with other values: new vectors go to other rows, and a discard or another model
        # replaces the matrix instead of writing into it.
        vectors = self.vectors
        umap = final and self.umap_enabled and n_have >= 5
        key = (id(vectors), n_have)
        if not umap and key == self._pca_key:
            return  # a PCA of these very rows is on screen or on its way (a cached open)
        self._pca_key = None if umap else key
        cache_dir = self._umap_cache_dir()
        if umap:
            self._busy("Computing UMAP map…")

        warm = not umap and self.umap_enabled
        # pynndescent (worth ~1 min of compiling) is only used by maps above ~4k points
        large = self.n > _UMAP_EXACT_ROWS

        # While images stream in, the basis fitted earlier is kept until the rows have
        # doubled: new points are placed in the map the user is looking at (it does not
        # turn or jump every second), and only a PCA of the new size is fitted. Either way
        # the matrix is read in blocks, never copied whole: a copy of the embedded rows every
        # second (150 MB at 100k, 1.5 GB at 1M) held the GUI thread up while embedding (#12).
        basis = self._pca_basis
        if final or basis is None or basis[0] is not vectors or 2 * basis[1].n_fit < n_have:
            basis = None

        def run(cancel: threading.Event) -> Any:
            if warm:  # the UMAP worker compiles while the map is still PCA (issue #12)
                from galaxy_explorer.core._umap_child import prestart

                prestart(large=large)
            rows = np.flatnonzero(have)
            if umap:
                emb = _rows_of(vectors, rows)
                return _tagged(rows, workflows.project(emb, cache_dir, umap=True, cancel=cancel))
            return self._pca_steps(vectors, rows, None if basis is None else basis[1])

        self.heavy.start(
            "projection",
            run,
            on_yield=self._on_projection,
            on_error=self._on_projection_failed,
            on_done=self._on_projection_done,
        )

    def _pca_steps(self, vectors: np.ndarray, rows: np.ndarray, basis: PcaBasis | None) -> Any:
        """The PCA map of ``vectors[rows]`` (on a worker), fitting a basis unless given one."""
        from galaxy_explorer.core import projection
        from galaxy_explorer.core.jobs import ProjectionProgress

        fitted = basis is None
        if basis is None:
            basis = projection.pca_fit(vectors, rows)
        xy = projection.pca_apply(basis, vectors, rows)
        # the basis is kept by the GUI thread (_on_projection), so a stale job cannot keep it
        yield (
            rows,
            ProjectionProgress("pca", coords=xy, finished=True),
            ((vectors, basis) if fitted else None),
        )

    def _umap_cache_dir(self) -> Path:
        root = getattr(self.session, "cache_dir", None) or self.cache_dir
        if root is None:
            from galaxy_explorer.core.cache import default_cache_dir

            root = default_cache_dir()
        return Path(root)

    def _on_projection(self, value: tuple[Any, ...]) -> None:
        rows, p, *fitted = value
        if fitted and fitted[0] is not None:
            self._pca_basis = fitted[0]
        if p.error:
            self.error.emit("UMAP failed", p.error)
        elif p.coords is not None and not p.cancelled:
            self.state.set_projection(
                "umap" if p.stage == "done" else "pca", rows, np.asarray(p.coords, np.float32)
            )
        elif p.stage == "umap":
            self._busy(f"Computing UMAP map… {p.elapsed:.0f} s")

    def _on_projection_failed(self, message: str, details: str) -> None:
        self._pca_key = None
        self.error.emit("Map projection failed", message)

    def _on_projection_done(self, cancelled: bool) -> None:
        self._busy("")

    def _busy(self, text: str) -> None:
        if text != self._busy_text:
            self._busy_text = text
            self.busy_changed.emit(text)

    # ------------------------------------------------------------------ query
    def set_query_text(self, text: str) -> None:
        """Rank the catalogue by free text (combined with any example images)."""
        self.state.set_query_text(text)

    def add_examples(self, rows: list[int] | np.ndarray, positive: bool = True) -> None:
        """Use embedded rows as positive / negative examples of the query."""
        self.state.add_example_rows(rows, positive)

    def find_similar(self, rows: list[int] | np.ndarray) -> None:
        """Replace the query by "similar to these rows"."""
        self.state.query = QueryState()
        self.state.add_example_rows(rows, positive=True)

    def add_example_file(self, path: Path, positive: bool = True) -> None:
        """Use an image file as an example (its vector is cached like any other)."""
        path = Path(path)
        for row, it in enumerate(self.items):
            if it.path == path and self.have[row]:
                self.add_examples([row], positive)
                return
        session = self.session
        if self.adapter is None or session is None:
            self.error.emit("Model not ready", "Wait until the model has loaded.")
            return
        from galaxy_explorer.core.imaging import ImageLoadError

        def run() -> tuple[str, np.ndarray, bool]:
            return path.name, workflows.example_vector(session, path), positive

        self.tasks.start(
            "example",
            run,
            on_result=self._on_example,
            on_error=lambda m, d: self.error.emit("Cannot use that image", m),
            supersede=False,
            quiet_errors=(ImageLoadError,),
        )

    def _on_example(self, result: tuple[str, np.ndarray, bool]) -> None:
        name, vec, positive = result
        self.state.add_example(name, vec, positive)

    def remove_example(self, index: int, positive: bool) -> None:
        self.state.remove_example(index, positive)

    def clear_query(self) -> None:
        self.tasks.bump("query")
        self.state.clear_query()

    def _submit_query(self) -> None:
        q = self.state.query
        if not q.active or self.adapter is None or self.vectors is None:
            self.tasks.bump("query")
            if not q.active:
                self.state.set_scores(None, None, None)
            return
        adapter, text = self.adapter, q.text
        pos = [v for _, v in q.positive]
        neg = [v for _, v in q.negative]
        vectors, have = self.vectors, self.have.copy()  # rows found on the worker

        def run() -> tuple[np.ndarray, workflows.Ranking]:
            rows = np.flatnonzero(have)
            return rows, workflows.rank(
                _rows_of(vectors, rows), adapter, text=text, positive=pos, negative=neg
            )

        self.tasks.start(
            "query",
            run,
            on_result=self._on_ranking,
            on_error=lambda m, d: self.error.emit("Query failed", m),
        )

    def _on_ranking(self, result: tuple[np.ndarray, workflows.Ranking]) -> None:
        rows, r = result
        self.state.set_scores(r.query_vector, rows, r.scores)

    def ranking(self, k: int | None = None) -> np.ndarray:
        """Embedded rows ordered best first by the current query scores."""
        return self.state.ranking(k)

    # ------------------------------------------------------------------ zero-shot labels
    def set_label_defs(self, defs: list[LabelDef], templates: list[str] | None = None) -> None:
        """Change the zero-shot classes (only the text is re-embedded)."""
        self.state.set_label_defs(defs, templates)

    def set_threshold(self, value: float) -> None:
        self.state.set_threshold(value)

    def _refresh_label_vecs(self) -> None:
        adapter = self.adapter
        if adapter is None:
            return
        if not self.label_defs:
            self.tasks.bump("labels")
            self.state.set_label_vectors(None)
            return
        defs, templates = list(self.label_defs), list(self.templates)
        vectors, have = self.vectors, self.have.copy()  # rows found on the worker

        def run() -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]:
            lv = workflows.label_vectors(adapter, defs, templates)
            rows = np.flatnonzero(have)
            probs = part = None
            if vectors is not None and len(rows):
                probs = workflows.zero_shot_probs(adapter, _rows_of(vectors, rows), lv)
                part = workflows.classify(probs)  # here: O(N x classes) (#12)
            return lv, rows, probs, part, adapter

        self.tasks.start(
            "labels",
            run,
            on_result=self._on_label_vectors,
            on_error=lambda m, d: self.error.emit("Zero-shot labels failed", m),
        )

    def _on_label_vectors(self, result: tuple[Any, ...]) -> None:
        lv, rows, probs, part, adapter = result
        if adapter is not self.adapter:  # the model was switched meanwhile: stale
            return
        self.state.set_label_vectors(lv, adapter.logit_scale, rows, probs, part)

    def predicted_label(self, row: int) -> str | None:
        """Zero-shot label of a row, ``"uncertain"`` below the threshold, None if unknown."""
        return self.state.predicted_label(row)

    def predicted_counts(self) -> dict[str, int]:
        return self.state.predicted_counts()

    def probabilities(self, row: int) -> dict[str, float] | None:
        return self.state.probabilities(row)

    # ------------------------------------------------------------------ manual labels
    def manual_label(self, row: int) -> str | None:
        return self.state.manual_label(row) if self.session is not None else None

    def _pull_label_changes(self) -> bool:
        """Bring the per-row labels up to date from the store: O(changes), not O(rows).

        Picks up this window's own change as well as those other windows or processes made
        on the same labels store. Returns True if any row's label changed.
        """
        store = self.label_store
        if self.session is None or store is None:
            return False
        try:
            token, changes = store.changes_since(self._label_token)
        except Exception as exc:  # a vanished or unreadable store: keep what we show
            log.warning("could not read label changes: %s", exc)
            return False
        self._label_token = token
        return self.state.apply_label_changes(changes)

    @Slot()
    def _on_labels_timer(self) -> None:
        # while a large label action runs, its worker brings the rows up to date
        if not self._closed and self.session is not None and self._label_task is None:
            self._pull_label_changes()

    def manual_labels(self) -> list[str | None]:
        """Manual label per row (None = unlabelled)."""
        return list(self.state.manual) if self.session is not None else []

    def manual_counts(self) -> dict[str, int]:
        """Rows per manual label (kept up to date incrementally)."""
        return dict(self.state.manual_counts) if self.session is not None else {}

    def _label_store_call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:
            log.exception("%s labels failed", what)
            self.error.emit("Could not save labels", str(exc))
            return None

    def set_manual_label(self, rows: list[int] | np.ndarray, label: str | None) -> None:
        """Label rows by hand (None clears); persisted immediately, one undo step.

        Up to :attr:`big_label_rows` rows this is done at once; more rows are labelled on a
        worker thread ("Labelling N images…" in the status bar) and the rows updated when
        the change is saved. Label actions made meanwhile (set, undo, redo, rename) wait
        in a queue and run in the order they were made.
        """
        if self.session is None:
            return
        r = np.asarray(rows, dtype=np.int64).ravel()
        r = r[(r >= 0) & (r < self.n)]
        if not len(r):
            return
        if self._label_busy() or len(r) > self.big_label_rows:
            self._queue_label("set", r, label)
            return
        self._label_now(r, label)

    def rename_manual_label(self, old: str, new: str) -> int:
        """Images labelled ``old`` by hand become ``new`` (one undo step); returns how many.

        The rows are found with one array comparison (no Python step per row); while an
        earlier label action runs, the rename waits for it (and counts the rows it had then).
        """
        rows = self._rows_labelled(old)
        if len(rows) and new and new != old:
            if self._label_busy():
                self._queue_label("rename", old, new)
            else:
                self.set_manual_label(rows, new)
        return len(rows)

    def _rows_labelled(self, label: str) -> np.ndarray:
        if self.session is None or not self.state.manual_counts.get(label):
            return np.zeros(0, dtype=np.int64)
        return self.state.manual.rows_with(label)  # the codes: one array comparison

    def undo_labels(self) -> bool:
        return self._undo_redo("undo")

    def redo_labels(self) -> bool:
        return self._undo_redo("redo")

    def _undo_redo(self, which: str) -> bool:
        if self.session is None:
            return False
        store = self.label_store
        size = getattr(store, f"{which}_size", 0) if store is not None else 0
        if self._label_busy() or size > self.big_label_rows:
            self._queue_label(which, None, None)
            return True
        return self._undo_redo_now(which)

    # ------------------------------------------------------------------ large label actions
    def _label_busy(self) -> bool:
        return self._label_task is not None or bool(self._label_queue)

    def _queue_label(self, kind: str, a: Any, b: Any) -> None:
        self._label_queue.append((kind, a, b))
        if self._label_task is None:
            self._next_label_action()
        else:
            self._show_label_busy()

    def _show_label_busy(self) -> None:
        text = getattr(self._label_task, "label_text", "Labelling…")
        if self._label_queue:
            text += f" ({len(self._label_queue)} more label action(s) queued)"
        self._busy(text)
        self.status.emit(text)

    def _next_label_action(self) -> None:
        """Start the oldest queued label action (small ones run at once, in order)."""
        while self._label_queue and self._label_task is None:
            kind, a, b = self._label_queue.popleft()
            store = self.label_store
            if self.session is None or store is None:
                continue
            if kind == "rename":
                rows = self._rows_labelled(a)
                if len(rows) and b and b != a:
                    self._label_queue.appendleft(("set", rows, b))
                continue
            if kind == "set":
                rows, label = a, b
                if len(rows) <= self.big_label_rows:
                    self._label_now(rows, label)
                    continue
                items = self.items
                plural = "s" if len(rows) != 1 else ""
                text = f"Labelling {len(rows):,} image{plural}…"
                done = f"Labelled {len(rows):,} image{plural} as " + (
                    f"'{label}'" if label else "no label"
                )

                work = partial(_label_rows, store, items, rows, label)
            else:
                if getattr(store, f"{kind}_size") <= self.big_label_rows:
                    self._undo_redo_now(kind)
                    continue
                text = "Undoing…" if kind == "undo" else "Redoing…"
                done = kind.capitalize()
                work = getattr(store, kind)
            self._start_label_task(store, work, text, done, kind)

    def _label_now(self, rows: np.ndarray, label: str | None) -> None:
        rows_list = rows.tolist()
        shas = list(dict.fromkeys(self.items[x].sha256 for x in rows_list))
        if self._label_store_call("saving", lambda: self.label_store.set(shas, label) or True):
            self._pull_label_changes()
            what = f"'{label}'" if label else "no label"
            n = len(rows_list)
            self.status.emit(f"Labelled {n} image{'s' if n != 1 else ''} as {what}")

    def _undo_redo_now(self, which: str) -> bool:
        ok = bool(self._label_store_call(which, getattr(self.label_store, which)))
        self._pull_label_changes()
        self.status.emit(which.capitalize() if ok else f"Nothing to {which}")
        return ok

    def _start_label_task(self, store: Any, work: Any, text: str, done: str, kind: str) -> None:
        token = self._label_token  # no pulls happen on the GUI thread while this runs
        sha_rows = self.state._sha_rows

        def run() -> tuple[bool, int, dict[str | None, np.ndarray]]:
            with paused_gc():  # full passes over 1M items froze the window ~1 s each
                ok = work()
                tok, changes = store.changes_since(token)
                groups: dict[str | None, list[int]] = {}
                for sha, lab in changes.items():
                    rs = sha_rows.get(sha)
                    if rs:
                        groups.setdefault(lab, []).extend(rs)
                del changes
            return ok, tok, {lab: np.asarray(v, dtype=np.int64) for lab, v in groups.items()}

        task = self.labeller.start(
            "labels",
            run,
            on_result=partial(self._on_labelled, store, done, kind),
            on_error=lambda m, d: self.error.emit("Could not save labels", m),
            on_done=self._on_label_task_done,
            skip_stale=False,
            supersede=False,
        )
        task.label_text = text  # type: ignore[attr-defined]
        self._label_task = task
        self._show_label_busy()

    def _on_labelled(
        self, store: Any, done: str, kind: str, result: tuple[bool, int, dict[Any, np.ndarray]]
    ) -> None:
        ok, token, groups = result
        if store is not self.label_store or self.session is None:
            return  # another catalogue was opened meanwhile: it read its labels afresh
        self._label_token = max(self._label_token, token)
        self.state.apply_label_rows(groups)
        self.status.emit(done if ok or kind == "set" else f"Nothing to {kind}")

    def _on_label_task_done(self, cancelled: bool) -> None:
        self._label_task = None
        if not self._label_queue:
            self._busy("")
        self._next_label_action()

    def _save_queued_labels(self) -> None:
        """On shutdown: save the label actions still queued (they are the user's work)."""
        while self._label_queue:
            kind, a, b = self._label_queue.popleft()
            store = self.label_store
            if store is None or self.session is None:
                return
            try:
                if kind == "set":
                    store.set(list(dict.fromkeys(self.items[x].sha256 for x in a.tolist())), b)
                elif kind == "rename":
                    rows = self._rows_labelled(a)
                    if len(rows) and b and b != a:
                        shas = [self.items[x].sha256 for x in rows.tolist()]
                        store.set(list(dict.fromkeys(shas)), b)
                else:
                    getattr(store, kind)()
            except Exception as exc:
                log.error("could not save queued labels on closing: %s", exc)

    # ------------------------------------------------------------------ few-shot
    def propagate(self) -> None:
        """Learn the manual labels (few-shot); suggest labels for the other images."""
        if self.vectors is None or self.session is None:
            self.error.emit("Propagate", "No embeddings yet.")
            return
        if sum(self.state.manual_counts.values()) < 2:
            self.error.emit("Propagate", "Label at least two images by hand first.")
            return
        # the labelled rows are found on the worker: walking every row here froze the
        # window at 1M rows (the copies are C-level)
        manual = self.state.manual.copy()
        have = self.embedded_rows()
        vectors = self.vectors

        def run() -> workflows.Propagation:
            rows = have[manual.codes[have] >= 0]
            if len(rows) < 2:
                raise workflows.PropagateError("Label at least two embedded images by hand first.")
            names = [manual.names[c] for c in manual.codes[rows].tolist()]
            return workflows.propagate(vectors, rows.tolist(), names, have)

        self.status.emit("Propagating labels…")
        self.heavy.start(
            "propagate",
            run,
            on_result=self._on_propagated,
            on_error=lambda m, d: self.error.emit("Propagate failed", m),
        )

    def _on_propagated(self, result: workflows.Propagation) -> None:
        self.state.set_suggestions(result)
        if result.warnings:
            self.error.emit("Few examples to propagate from", "\n".join(result.warnings))
        self.status.emit(result.summary() + " (halo on the map, '?' in the gallery)")
        self.propagated.emit(result)

    def suggestion(self, row: int) -> tuple[str, float] | None:
        """(label, confidence) suggested for a row by Propagate, or None."""
        return self.state.suggestion(row)

    def accept_suggestions(self, rows: list[int] | np.ndarray | None = None) -> None:
        """Turn suggestions into manual labels (grouped per label; one undo step per label)."""
        # vectorised: a Python step per row froze the window with 10^5-10^6 suggestions
        sug = self.state.suggested
        if rows is None:
            r = np.flatnonzero(sug != NO_SUGGESTION)
        else:
            r = np.asarray(rows, dtype=np.int64).ravel()
            r = r[(r >= 0) & (r < len(sug))]
            r = r[sug[r] != NO_SUGGESTION]
        if not len(r):
            return
        classes = self.state.suggestion_classes
        codes = sug[r]
        for code in np.unique(codes).tolist():
            self.set_manual_label(r[codes == code], classes[code])
        self.state.drop_suggestions(r)

    def clear_suggestions(self) -> None:
        self.state.drop_suggestions()

    # ------------------------------------------------------------------ selection
    def set_selection(self, rows: list[int] | np.ndarray, source: str = "") -> None:
        self.state.set_selection(rows, source)

    def set_current(self, row: int) -> None:
        self.state.set_current(row)

    def set_color_mode(self, mode: str) -> None:
        self.state.set_color_mode(mode)

    def similar_to(self, row: int, k: int = 8) -> list[tuple[int, float]]:
        """The ``k`` nearest embedded rows to ``row`` (excluding itself)."""
        return self.state.similar_to(row, k)

    # ------------------------------------------------------------------ detail render
    def request_detail(self, row: int, settings: Any) -> None:
        """Render ``row`` with display ``settings`` off-thread → ``detail_ready(row, result)``.

        An unreadable file is reported to the view (and logged as one line), not as an
        error with a traceback.
        """
        if not (0 <= row < self.n):
            return
        from galaxy_explorer.core.imaging import ImageLoadError

        path = self.items[row].path
        self.tasks.start(
            "detail",
            lambda: (row, _render_detail(path, settings)),
            on_result=self._on_detail,
            on_error=self._on_detail_failed,
            quiet_errors=(ImageLoadError,),
        )

    def _on_detail(self, result: tuple[int, dict[str, Any]]) -> None:
        self.detail_ready.emit(result[0], result[1])

    def _on_detail_failed(self, message: str, details: str) -> None:
        self.detail_ready.emit(-1, message)

    # ------------------------------------------------------------------ export
    def export_csv(self, out: Path, rows: list[int] | np.ndarray | None = None) -> None:
        """Write rows (default: all) through the shared row builder, off-thread.

        The format follows the extension: CSV, ECSV, VOTable, FITS or Parquet.
        """
        if self.session is None:
            self.error.emit("Export", "Nothing to export: open a folder first.")
            return
        n = self.n if rows is None else len(rows)
        snap = self.state.snapshot()
        prov = workflows.provenance(
            self.adapter,
            _render_key(self.session),
            command="gui export",
            model_spec=self.model_spec,
            labels=snap.label_defs or None,
            templates=snap.templates,
            query=snap.query or None,
            threshold=snap.threshold,
            extra={"rows": "selection" if n < self.n else "all"},
        )
        session, out = self.session, Path(out)
        sel = None if rows is None else np.asarray(rows, dtype=np.int64).copy()
        extras_fn = self.export_extras

        def run() -> tuple[Path, int]:
            from galaxy_explorer.core import tables  # CSV, or ECSV / VOTable / FITS by extension

            export_rows = workflows.snapshot_rows(snap, sel, session.sky_positions)
            extra_names: list[str] = []
            if extras_fn is not None:  # e.g. the open catalogue's columns
                extra_names, extras = extras_fn(sel if sel is not None else np.arange(n))
                for r, e in zip(export_rows, extras or [], strict=False):
                    r.extra = e
            names = [d.name for d in snap.label_defs]
            tables.write_table(
                out, export_rows, prov, label_names=names or None, extra_columns=extra_names
            )
            return out, len(export_rows)

        self.heavy.start(
            "export",
            run,
            on_result=self._on_exported,
            on_error=lambda m, d: self.error.emit("Export failed", m),
            supersede=False,
        )

    def _on_exported(self, result: tuple[Path, int]) -> None:
        path, count = result
        self.status.emit(f"Exported {count} rows to {path}")
        self.export_finished.emit(str(path), count)


def _label_rows(store: Any, items: Any, rows: np.ndarray, label: str | None) -> bool:
    """Save a label for rows (on a worker): their content hashes, then one store change."""
    return bool(store.set([items[x].sha256 for x in rows.tolist()], label))  # it de-duplicates


def _rows_of(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors[rows]``, or the matrix itself when ``rows`` are all of its rows.

    ``rows`` are sorted and unique (``embedded_rows()``), so as many rows as the matrix has
    means every row in order: no copy (1.5 GB and a second of holding the GIL at 1M x 384).
    """
    return vectors if len(rows) == len(vectors) else vectors[rows]


def _scan_without_gc(steps: Any) -> Any:
    """The open job, its first step (the scan and the per-row tables of ``Opened``) run with
    the garbage collector paused and frozen after (:func:`core._arrays.paused_gc`): its
    full passes over a million rows' objects held the GIL for up to 1.9 s each (#12).
    The manual labels are encoded as integer codes here, on the worker, too."""
    try:
        with paused_gc():
            first = next(steps, None)
            if isinstance(first, workflows.Opened) and not isinstance(first.manual, ManualLabels):
                first.manual = ManualLabels.encode(first.manual)  # here, not on the GUI thread
        if first is None:
            return
        yield first
        yield from steps
    finally:
        steps.close()


def _tagged(rows: np.ndarray, steps: Any) -> Any:
    """Pair every projection step with the rows it is for (closing it closes ``steps``)."""
    try:
        for p in steps:
            yield rows, p
    finally:
        steps.close()  # a cancelled UMAP child process is stopped now


def _render_detail(path: Path, settings: Any) -> dict[str, Any]:
    """The detail view's image, header facts and sky position (run off the GUI thread)."""
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
    return dict(rgb=rgb, header=header, ra=ra, dec=dec, planes=planes)


def model_display_name(adapter: Any) -> str:
    """What the loaded model is, for the status bar (:func:`galaxy_explorer.core.hub.display_name`)."""
    from galaxy_explorer.core.hub import display_name

    return display_name(str(getattr(adapter, "spec", "")))


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
