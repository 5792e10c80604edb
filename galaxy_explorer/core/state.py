"""The app's state as a Qt-free, evented model.

:class:`AppState` holds what one window shows: the rows of the catalogue and which have a
vector, the query (text and example images) and its scores, the zero-shot classes with
their probabilities and predictions (with an explicit *uncertain* mask), few-shot
suggestions, manual labels per row, the selection, the current row and the colour mode.
Every change goes through a method that emits a `psygnal <https://psygnal.readthedocs.io>`_
signal, as napari's ``ViewerModel`` does; the GUI's controller bridges these signals to Qt,
and tests drive the state without any Qt at all.

The state never computes anything slow: vectors, probabilities and scores of the whole
catalogue are computed off-thread by :mod:`galaxy_explorer.core.workflows` and handed over
whole. The only per-row work done here is for rows that just arrived (a batch).

Rows: every scanned item has a row index ``0..n-1``; only rows with ``have[row]`` have an
embedding yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psygnal import Signal

from galaxy_explorer.core._arrays import unique_rows
from galaxy_explorer.core.defaults import UNCERTAIN, LabelDef, load_default_labels
from galaxy_explorer.core.workflows import (
    NO_PREDICTION,
    Predictions,
    Propagation,
    classify,
    rows_by_sha,
)
from galaxy_explorer.core.workflows import name_order as workflow_name_order

__all__ = [
    "COLOR_MODES",
    "DISPLAY_SORTS",
    "NO_PREDICTION",
    "NO_SUGGESTION",
    "UNCERTAIN",
    "AppState",
    "ManualLabels",
    "QueryState",
    "Snapshot",
    "OrderInputs",
    "display_order",
]

#: ``AppState.suggested`` of a row without a few-shot suggestion.
NO_SUGGESTION = -1
#: What the map colours points by.
COLOR_MODES = ("predicted", "manual")


#: The orders a gallery can show rows in (:func:`display_order`).
DISPLAY_SORTS = ("score", "confidence", "class", "name", "label", "column")


@dataclass
class OrderInputs:
    """What :func:`display_order` needs, taken from an :class:`AppState` as private copies.

    Built on the GUI thread by :meth:`AppState.order_inputs` (C-level copies of a few
    arrays, no per-row Python), then used on a worker while the state keeps changing.
    """

    n: int
    name_order: np.ndarray
    have: np.ndarray
    scores: np.ndarray | None = None
    confidence: np.ndarray | None = None
    predicted: np.ndarray | None = None
    uncertain: np.ndarray | None = None
    #: each row's manual label (a list copy) and the label order, for ``"label"``
    manual: Sequence[str | None] | None = None
    label_order: list[str] | None = None
    #: a float64 key per row for ``"column"`` (NaN: no value), or a function that builds
    #: it (called where the order is computed: on the worker at scale)
    column_key: np.ndarray | Callable[[], np.ndarray | None] | None = None


def display_order(
    inputs: OrderInputs,
    sort: str,
    *,
    rows: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Rows in display order: vectorised sorts, no per-row Python (run it on a worker at 1M).

    Ties (and rows without a key) keep case-insensitive name order.

    Parameters
    ----------
    inputs : OrderInputs
        The state's arrays (:meth:`AppState.order_inputs`).
    sort : str
        ``"score"``: best query score first (name order without a query); ``"confidence"``:
        most confident zero-shot prediction first; ``"class"``: grouped by predicted class
        in class order, the uncertain ones after them and rows without a prediction last,
        each group most confident first; ``"name"``; ``"label"``: grouped by manual label
        in ``inputs.label_order``, unlabelled rows last; ``"column"``: by
        ``inputs.column_key`` ascending, rows without a value last (name order without a
        key).
    rows : ndarray, optional
        Show only these rows (e.g. the map selection); out-of-range rows are ignored.
    mask : ndarray, optional
        Bool per row: show only where True (an outside filter); ignored if mis-sized.

    Returns
    -------
    ndarray
        int64 row numbers.
    """
    if sort not in DISPLAY_SORTS:
        raise ValueError(f"sort must be one of {DISPLAY_SORTS}, got {sort!r}")
    n = inputs.n
    base = inputs.name_order if len(inputs.name_order) == n else np.arange(n, dtype=np.int64)
    base = np.asarray(base, dtype=np.int64)
    conf_ok = inputs.confidence is not None and len(inputs.confidence) == n
    if sort == "score" and inputs.scores is not None and len(inputs.scores) == n:
        s = inputs.scores[base]
        key = np.where(np.isfinite(s), -s, np.inf)
        order = base[np.argsort(key, kind="stable")]
    elif sort == "confidence" and conf_ok:
        assert inputs.confidence is not None
        key = np.where(inputs.have[base], -inputs.confidence[base], np.inf)
        order = base[np.argsort(key, kind="stable")]
    elif sort == "class" and conf_ok and inputs.predicted is not None:
        assert inputs.confidence is not None
        pred = np.asarray(inputs.predicted[base], dtype=np.int64)
        known = (pred != NO_PREDICTION) & inputs.have[base]
        top = int(pred.max()) + 1 if len(pred) else 0
        group = np.where(known, pred, top + 1)
        if inputs.uncertain is not None and len(inputs.uncertain) == n:
            group = np.where(known & inputs.uncertain[base], top, group)
        conf = np.where(known, -inputs.confidence[base], np.inf)
        order = base[np.lexsort((conf, group))]  # lexsort is stable: ties keep name order
    elif sort == "label" and inputs.manual is not None and len(inputs.manual) == n:
        from galaxy_explorer.core.sort_keys import manual_codes

        names = inputs.label_order or []
        if isinstance(inputs.manual, ManualLabels):  # its codes, re-numbered in one lookup
            lut = np.array([inputs.manual.code(str(x)) for x in names], dtype=np.int64)
            rank = np.full(len(inputs.manual.names) + 1, -1, dtype=np.int64)
            for i, c in enumerate(lut):
                if c >= 0 and rank[c] < 0:
                    rank[c] = i
            codes = rank[inputs.manual.codes]  # code -1 reads the last entry: -1
        else:
            codes = manual_codes(inputs.manual, names)
        group = np.where(codes >= 0, codes, len(names))[base]  # unlabelled last
        order = base[np.argsort(group, kind="stable")]
    elif sort == "column" and (key := _column_key(inputs)) is not None:
        order = base[np.argsort(key[base], kind="stable")]  # numpy sorts NaN (missing) last
    else:
        order = base
    if rows is not None:
        keep = np.zeros(n, dtype=bool)
        r = np.asarray(rows, dtype=np.int64)
        keep[r[(r >= 0) & (r < n)]] = True
        order = order[keep[order]]
    if mask is not None and len(mask) == n:
        order = order[np.asarray(mask, dtype=bool)[order]]
    return order


def _column_key(inputs: OrderInputs) -> np.ndarray | None:
    """``inputs.column_key`` as a float64 array of length n (built if it is a function)."""
    key = inputs.column_key
    if callable(key):
        key = key()
    if key is None:
        return None
    key = np.asarray(key, dtype=np.float64)
    return key if key.shape == (inputs.n,) else None


class ManualLabels(Sequence):
    """Each row's manual label as an integer code: ``codes`` (int32, -1 = unlabelled) into
    ``names``.

    A million rows' labels as Python strings made the map's manual colouring compare
    strings row by row (1.4-2.1 s at 1M, #12) and every copy of them an O(N) list; codes
    make both C-level numpy. Reads like a sequence of ``str | None`` (``labels[row]``,
    ``len``, iteration, ``==`` with a list). Codes are never reused while a catalogue is
    open: a label that no row has any more keeps its code.

    Parameters
    ----------
    codes : ndarray
        int32 code per row (-1 = unlabelled).
    names : list of str
        Label name of each code.
    """

    def __init__(self, codes: np.ndarray | None = None, names: Sequence[str] = ()) -> None:
        self.codes = np.zeros(0, np.int32) if codes is None else np.asarray(codes, np.int32)
        self.names: list[str] = list(names)
        self._code = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def encode(cls, labels: Sequence[str | None], chunk: int = 65536) -> ManualLabels:
        """Codes of a per-row sequence of labels (O(N) Python: run it on a worker at 1M;
        done in chunks, so the GIL is let go between them)."""
        index: dict[str, int] = {}
        codes = np.full(len(labels), -1, dtype=np.int32)
        for start in range(0, len(labels), chunk):
            part = labels[start : start + chunk]
            codes[start : start + len(part)] = [
                -1 if m is None else index.setdefault(m, len(index)) for m in part
            ]
        return cls(codes, list(index))

    @classmethod
    def empty(cls, n: int) -> ManualLabels:
        return cls(np.full(n, -1, dtype=np.int32), [])

    def code(self, name: str | None, add: bool = False) -> int:
        """The code of a label (-1 for None or, unless ``add``, an unknown label)."""
        if name is None:
            return -1
        c = self._code.get(name)
        if c is None:
            if not add:
                return -1
            c = self._code[name] = len(self.names)
            self.names.append(name)
        return c

    def rows_with(self, name: str) -> np.ndarray:
        """Rows labelled ``name`` (vectorised)."""
        c = self.code(name)
        return np.flatnonzero(self.codes == c) if c >= 0 else np.zeros(0, np.int64)

    def labelled(self) -> np.ndarray:
        """Bool per row: has a manual label."""
        return self.codes >= 0

    def copy(self) -> ManualLabels:
        """An independent copy (C-level: the codes array and the list of names)."""
        return ManualLabels(self.codes.copy(), self.names)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, row: Any) -> Any:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        c = int(self.codes[row])
        return self.names[c] if c >= 0 else None

    def __setitem__(self, row: int, label: str | None) -> None:
        self.codes[row] = self.code(label, add=True)

    def __iter__(self) -> Any:
        names = self.names
        for c in self.codes.tolist():
            yield names[c] if c >= 0 else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ManualLabels):
            return list(self) == list(other)
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ManualLabels({len(self)} rows, {len(self.names)} labels)"


@dataclass
class QueryState:
    """The query: free text and positive / negative example images ``(name, vector)``."""

    text: str = ""
    positive: list[tuple[str, np.ndarray]] = field(default_factory=list)
    negative: list[tuple[str, np.ndarray]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """True when there is anything to rank by."""
        return bool(self.text.strip() or self.positive or self.negative)

    @property
    def has_examples(self) -> bool:
        return bool(self.positive or self.negative)

    def describe(self) -> str:
        """One line for provenance and the status bar."""
        from galaxy_explorer.core.workflows import describe_query

        return describe_query(
            self.text, [n for n, _ in self.positive], [n for n, _ in self.negative]
        )


@dataclass(frozen=True)
class Snapshot:
    """A copy of what an export needs, taken on the GUI thread (cheap array copies) so
    that a worker can build the rows while the state changes on.

    See :func:`galaxy_explorer.core.workflows.snapshot_rows`.
    """

    items: list[Any]
    manual: Sequence[str | None]
    have: np.ndarray
    scores: np.ndarray | None
    probs: np.ndarray | None
    label_defs: list[LabelDef]
    templates: list[str]
    threshold: float
    query: str


class AppState:
    """Everything one window shows, with a signal per kind of change.

    Parameters
    ----------
    label_defs, templates : optional
        Zero-shot classes and prompt templates (the defaults of
        :func:`galaxy_explorer.core.defaults.load_default_labels` if None).

    Signals
    -------
    opened()
        New rows (a catalogue was opened or rescanned); everything per row was reset.
    rows_added(object)
        Rows (int64 array) that just got a vector; their scores and probabilities are set.
    embeddings_changed()
        ``have`` / ``vectors`` changed in another way (vectors were discarded).
    projection_changed(str)
        Map coordinates changed: ``"pca"``, ``"umap"`` or ``""`` (none).
    query_changed()
        The query (text or examples) changed; scores follow with ``scores_changed``.
    scores_changed()
        Query scores changed or were cleared (``scores`` is None without a query).
    label_defs_changed()
        The zero-shot classes or templates changed.
    predictions_changed()
        Probabilities, the threshold, predictions or the uncertain mask changed.
    labels_changed()
        Manual labels changed.
    suggestions_changed()
        Few-shot suggestions changed.
    selection_changed(str)
        The selected rows changed; the argument says where (``"map"``, ``"gallery"``...).
    current_changed(int)
        The row shown in detail (-1 for none).
    color_mode_changed(str)
        ``"predicted"`` or ``"manual"``.
    """

    opened = Signal()
    rows_added = Signal(object)
    embeddings_changed = Signal()
    projection_changed = Signal(str)
    query_changed = Signal()
    scores_changed = Signal()
    label_defs_changed = Signal()
    predictions_changed = Signal()
    labels_changed = Signal()
    suggestions_changed = Signal()
    selection_changed = Signal(str)
    current_changed = Signal(int)
    color_mode_changed = Signal(str)

    def __init__(
        self, label_defs: Sequence[LabelDef] | None = None, templates: Sequence[str] | None = None
    ) -> None:
        if label_defs is None or templates is None:
            d_defs, d_temps = load_default_labels()
            label_defs = d_defs if label_defs is None else label_defs
            templates = d_temps if templates is None else templates
        self.label_defs: list[LabelDef] = [LabelDef(d.name, d.prompt) for d in label_defs]
        self.templates: list[str] = list(templates)
        self.threshold = 0.0
        self.color_mode = "predicted"
        self.query = QueryState()
        self.label_vecs: np.ndarray | None = None
        self.logit_scale = 100.0
        self._reset_rows([])

    # ------------------------------------------------------------------ rows
    def _reset_rows(
        self,
        items: Sequence[Any],
        sha_rows: dict[str, list[int]] | None = None,
        name_order: np.ndarray | None = None,
    ) -> None:
        n = len(items)
        # a list is taken over (never changed in place: a new catalogue replaces it); a copy
        # of 1M references showed in GUI-thread profiles of a 1M open (#12)
        self.items: list[Any] = items if isinstance(items, list) else list(items)
        self.vectors: np.ndarray | None = None
        self.have = np.zeros(n, dtype=bool)
        self.coords = np.full((n, 2), np.nan, dtype=np.float32)
        self.coords_kind = ""
        self.query_vector: np.ndarray | None = None
        self.scores: np.ndarray | None = None
        self.probs: np.ndarray | None = None
        self.predictions = Predictions.empty(n)
        self.suggestion_classes: list[str] = []
        self.suggested = np.full(n, NO_SUGGESTION, dtype=np.int32)
        self.suggested_prob = np.zeros(n, dtype=np.float32)
        self.propagation: Propagation | None = None
        self.selection = np.zeros(0, dtype=np.int64)
        self.current = -1
        self.failed: dict[int, str] = {}
        self._manual = ManualLabels.empty(n)
        self.manual_counts: dict[str, int] = {}
        self._sha_rows = sha_rows if sha_rows is not None else rows_by_sha(self.items)
        ok = name_order is not None and len(name_order) == n
        self._name_order = np.asarray(name_order, dtype=np.int64) if ok else None

    def open(
        self,
        items: Sequence[Any],
        *,
        manual: Sequence[str | None] | None = None,
        sha_rows: dict[str, list[int]] | None = None,
        name_order: np.ndarray | None = None,
        manual_counts: Mapping[str, int] | None = None,
        keep_examples: bool = True,
    ) -> None:
        """Start over with new rows; the query text is kept, example images only if asked.

        Parameters
        ----------
        items : sequence of Item
            The catalogue, in row order.
        manual : ManualLabels or sequence of str or None, optional
            Each row's manual label (a :class:`ManualLabels` is taken over as it is; a
            sequence is encoded here, O(N) in Python).
        sha_rows : dict, optional
            ``workflows.rows_by_sha(items)``, if already built off the GUI thread.
        name_order : ndarray, optional
            ``workflows.name_order(items)``, if already built off the GUI thread.
        manual_counts : mapping, optional
            ``workflows.manual_counts(manual)``, if already counted off the GUI thread
            (counting here walks every row in Python).
        keep_examples : bool
            False when another catalogue was opened: its example images (and their names
            in an export's provenance) belong to the old one.
        """
        self._reset_rows(items, sha_rows, name_order)
        if manual is not None:
            if len(manual) != len(self.items):
                raise ValueError(f"{len(manual)} manual labels for {len(self.items)} rows")
            # encoded on the worker (ManualLabels.encode) when a catalogue is opened by one
            if isinstance(manual, ManualLabels):
                self._manual = manual
            else:
                self._manual = ManualLabels.encode(manual)
            if manual_counts is not None:
                self.manual_counts = dict(manual_counts)
            else:
                self.manual_counts = self._count_manual()
        if not keep_examples and self.query.has_examples:
            self.query = QueryState(text=self.query.text)
            self.query_changed.emit()
        self.opened.emit()
        self.labels_changed.emit()
        self.scores_changed.emit()
        self.predictions_changed.emit()
        self.suggestions_changed.emit()
        self.selection_changed.emit("open")
        self.current_changed.emit(-1)

    @property
    def n(self) -> int:
        return len(self.items)

    def embedded_rows(self) -> np.ndarray:
        """Rows that have a vector, in row order."""
        return np.flatnonzero(self.have)

    @property
    def name_order(self) -> np.ndarray:
        """Rows in case-insensitive name order (built on the worker when opened by one)."""
        if self._name_order is None:
            self._name_order = workflow_name_order(self.items)
        return self._name_order

    def order_inputs(self, labels: bool = False) -> OrderInputs:
        """Copies of what :func:`display_order` reads (safe to use on a worker).

        Arrays changed in place as batches stream in (``have``, ``scores``) are copied
        (C-level, a few MB at 1M rows); the others are replaced, never written into.
        ``labels``: also a copy of the manual labels (a C-level list copy) and their order
        (the classes, then other labels alphabetically: the map legend's order), for the
        ``"label"`` sort.
        """
        p = self.predictions
        manual = label_order = None
        if labels:
            m = self.manual
            # codes are copied C-level; a list of a million strings was built row by row
            manual = m.copy() if isinstance(m, ManualLabels) else list(m)
            names = self.label_names()
            extra = sorted((m for m in self.manual_counts if m not in names), key=str.casefold)
            label_order = names + extra
        return OrderInputs(
            n=self.n,
            name_order=self.name_order,
            have=self.have.copy(),
            scores=None if self.scores is None else self.scores.copy(),
            confidence=p.confidence,
            predicted=p.predicted,
            uncertain=p.uncertain,
            manual=manual,
            label_order=label_order,
        )

    def rows_of(self, sha256: str) -> list[int]:
        """Rows with this content hash (the same file may appear more than once)."""
        return self._sha_rows.get(sha256, [])

    def label_names(self) -> list[str]:
        return [d.name for d in self.label_defs]

    # ------------------------------------------------------------------ vectors
    def add_vectors(self, shas: Sequence[str], vectors: np.ndarray | None) -> np.ndarray:
        """Store a batch of vectors given per content hash; returns the rows that are new."""
        if vectors is None or not len(shas):
            return np.zeros(0, dtype=np.int64)
        rows: list[int] = []
        idx: list[int] = []
        for i, sha in enumerate(shas):
            for row in self._sha_rows.get(sha, ()):
                rows.append(row)
                idx.append(i)
        return self.add_rows(np.asarray(rows, dtype=np.int64), np.asarray(vectors)[idx])

    def add_rows(
        self, rows: np.ndarray, vectors: np.ndarray, *, rounded: bool = False
    ) -> np.ndarray:
        """Store ``vectors`` (aligned with ``rows``); scores and probabilities follow.

        Fresh vectors are rounded to float16 as the cache stores them, so that results
        match the command line and a reopened catalogue exactly. Emits ``rows_added`` with
        the rows that had no vector before (and returns them).

        Parameters
        ----------
        rows : ndarray
            Row numbers.
        vectors : ndarray
            ``(len(rows), D)`` vectors.
        rounded : bool
            ``vectors`` is a float32 array that already holds float16 values and is handed
            over (e.g. :class:`~galaxy_explorer.core.workflows.RowsFound` from a worker):
            it is not rounded again, and when it covers every row in order it becomes the
            vector matrix as it is, without a copy.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return rows
        vectors = np.asarray(vectors)
        handed_over = (
            rounded
            and vectors.dtype == np.float32
            and vectors.ndim == 2
            and vectors.flags.c_contiguous
            and vectors.flags.writeable
        )
        if not handed_over:
            vectors = vectors.astype(np.float16).astype(np.float32)
        if handed_over and len(rows) == self.n and np.array_equal(rows, np.arange(self.n)):
            if self.vectors is None or self.vectors.shape[1] != vectors.shape[1]:
                self.have[:] = False
            self.vectors = vectors
        else:
            if self.vectors is None or self.vectors.shape[1] != vectors.shape[1]:
                self.vectors = np.zeros((self.n, vectors.shape[1]), dtype=np.float32)
                self.have[:] = False
            self.vectors[rows] = vectors
        # rows that had no vector, in order, once each: a mask, not a sort (np.unique sorted
        # a million rows on the GUI thread when a cached catalogue opened)
        fresh = np.zeros(self.n, dtype=bool)
        fresh[rows] = True
        fresh &= ~self.have
        new = np.flatnonzero(fresh)
        if not len(new):
            return new
        self.have[new] = True
        if self.query_vector is not None and self.scores is not None:
            self.scores[new] = self.vectors[new] @ self.query_vector
        if self.label_vecs is not None:
            from galaxy_explorer.core.search import zero_shot

            self._ensure_probs()
            assert self.probs is not None
            self.probs[new] = zero_shot(self.vectors[new], self.label_vecs, self.logit_scale)
            self.predictions = self._predictions_with(new)
        self.rows_added.emit(new)
        return new

    def _predictions_with(self, rows: np.ndarray) -> Predictions:
        """The predictions with ``rows`` classified again: O(batch), not O(N x classes).

        New arrays (C-level copies), never written into: a gallery sort may be reading the
        old ones on a worker.
        """
        old = self.predictions
        if self.probs is None or len(old.predicted) != self.n:
            return classify(self.probs, self.threshold, self.n)
        part = classify(self.probs[rows], self.threshold)
        pred, conf, unc = old.predicted.copy(), old.confidence.copy(), old.uncertain.copy()
        pred[rows] = part.predicted
        conf[rows] = part.confidence
        unc[rows] = part.uncertain
        return Predictions(pred, conf, unc)

    def discard_vectors(self) -> None:
        """Forget every vector (they were a stale guess of the model's cache space)."""
        self.vectors = None
        self.have[:] = False
        self.coords = np.full((self.n, 2), np.nan, dtype=np.float32)  # a new array, never
        self.coords_kind = ""  # changed in place: views key their caches on it
        self.probs = None
        self.predictions = Predictions.empty(self.n)
        self.embeddings_changed.emit()
        self.projection_changed.emit("")
        self.predictions_changed.emit()

    def set_failed(self, reasons: Mapping[int, str]) -> None:
        """Remember why rows could not be embedded."""
        self.failed.update(reasons)

    # ------------------------------------------------------------------ projection
    def set_projection(self, kind: str, rows: np.ndarray, xy: np.ndarray) -> bool:
        """Map coordinates for ``rows``; returns False (and ignores them) when stale.

        A PCA view does not replace a UMAP view of the same rows; a UMAP of fewer rows than
        are embedded now is stale.
        """
        if self.coords_kind == "umap" and kind == "pca":
            if len(rows) == int(self.have.sum()) and np.isfinite(self.coords[rows]).all():
                return False
        if kind == "umap" and not np.array_equal(rows, self.embedded_rows()):
            return False
        xy = np.asarray(xy, dtype=np.float32)
        n = self.n
        every = (
            len(rows) == n > 0
            and int(rows[0]) == 0
            and int(rows[-1]) == n - 1
            and xy.shape == (n, 2)
            and xy is not self.coords
            and bool((rows[1:] > rows[:-1]).all())
        )
        if every:  # every row, in order (rows are unique and ascending): taken over, as is
            self.coords = xy  # (a 1M scatter into a fresh array showed in GUI profiles, #12)
        else:
            self.coords = np.full((n, 2), np.nan, dtype=np.float32)
            self.coords[rows] = xy
        self.coords_kind = kind
        self.projection_changed.emit(kind)
        return True

    # ------------------------------------------------------------------ query
    def set_query_text(self, text: str) -> None:
        self.query.text = text
        self.query_changed.emit()

    def add_example(self, name: str, vector: np.ndarray, positive: bool = True) -> None:
        """Add an example image's vector to the query."""
        lst = self.query.positive if positive else self.query.negative
        lst.append((name, np.asarray(vector, dtype=np.float32).copy()))
        self.query_changed.emit()

    def add_example_rows(self, rows: Iterable[int], positive: bool = True) -> None:
        """Use embedded rows as positive / negative examples."""
        if self.vectors is None:
            return
        lst = self.query.positive if positive else self.query.negative
        for r in rows:
            r = int(r)
            if 0 <= r < self.n and self.have[r]:
                lst.append((self.items[r].name, self.vectors[r].copy()))
        self.query_changed.emit()

    def remove_example(self, index: int, positive: bool) -> None:
        lst = self.query.positive if positive else self.query.negative
        if 0 <= index < len(lst):
            del lst[index]
            self.query_changed.emit()

    def clear_examples(self) -> None:
        """Drop the example images (their vectors belong to another model or catalogue)."""
        if self.query.has_examples:
            self.query = QueryState(text=self.query.text)
            self.query_changed.emit()

    def clear_query(self) -> None:
        """No query: text, examples and scores go."""
        self.query = QueryState()
        self.query_changed.emit()
        self.set_scores(None, None, None)

    def set_scores(
        self, query_vector: np.ndarray | None, rows: np.ndarray | None, scores: np.ndarray | None
    ) -> None:
        """The query's vector and the scores of ``rows`` (None clears the ranking).

        Rows that got a vector since ``scores`` were computed are scored here.
        """
        if query_vector is None:
            self.query_vector = None
            self.scores = None
        else:
            self.query_vector = np.asarray(query_vector, dtype=np.float32)
            self.scores = np.full(self.n, np.nan, dtype=np.float32)
            late = self.have.copy()
            if rows is not None and scores is not None:
                self.scores[rows] = scores
                late[rows] = False
            if late.any() and self.vectors is not None:
                idx = np.flatnonzero(late)
                self.scores[idx] = self.vectors[idx] @ self.query_vector
        self.scores_changed.emit()

    def query_score(self, row: int) -> float | None:
        """The row's query score, or None (no query, or no vector)."""
        if self.scores is None or not (0 <= row < len(self.scores)):
            return None
        s = float(self.scores[row])
        return s if np.isfinite(s) else None

    def ranking(self, k: int | None = None) -> np.ndarray:
        """Embedded rows, best first by the query's scores (row order without a query)."""
        rows = self.embedded_rows()
        if self.scores is None:
            return rows
        from galaxy_explorer.core.search import top_k

        idx = top_k(self.scores[rows], len(rows) if k is None else k)
        return rows[idx]

    def similar_to(self, row: int, k: int = 8) -> list[tuple[int, float]]:
        """The ``k`` nearest embedded rows to ``row`` (itself left out), with cosines."""
        if self.vectors is None or not (0 <= row < self.n) or not self.have[row]:
            return []
        from galaxy_explorer.core.search import top_k

        rows = self.embedded_rows()
        s = self.vectors[rows] @ self.vectors[row]
        out = [(int(rows[i]), float(s[i])) for i in top_k(s, k + 1) if rows[i] != row]
        return out[:k]

    # ------------------------------------------------------------------ zero-shot
    def set_label_defs(self, defs: Sequence[LabelDef], templates: Sequence[str] | None) -> None:
        """New zero-shot classes (blank names dropped) and, optionally, templates."""
        self.label_defs = [LabelDef(d.name.strip(), d.prompt) for d in defs if d.name.strip()]
        if templates is not None:
            self.templates = [t for t in templates if t.strip()] or ["{}"]
        self.label_defs_changed.emit()

    def set_label_vectors(
        self,
        label_vecs: np.ndarray | None,
        logit_scale: float = 100.0,
        rows: np.ndarray | None = None,
        probs: np.ndarray | None = None,
        classified: Predictions | None = None,
    ) -> None:
        """Class vectors and the probabilities of ``rows`` (computed off-thread).

        Rows that got a vector since ``probs`` were computed are classified here.

        Parameters
        ----------
        label_vecs : ndarray or None
            ``(L, D)`` class vectors (None: no zero-shot classes).
        logit_scale : float
            The model's temperature.
        rows, probs : ndarray, optional
            Rows (ascending, unique) and their ``(len(rows), L)`` probabilities.
        classified : Predictions, optional
            ``classify(probs)`` made with ``probs`` on the worker (any threshold: the
            uncertain mask is made again here). Without it all N rows are classified
            here, O(N x L) on the calling thread (0.5-0.7 s at 1M, #12). With it and
            ``rows`` every row, the arrays are taken over without a copy.
        """
        if label_vecs is None:
            self.label_vecs = None
            self.probs = None
            self._classify()
            return
        from galaxy_explorer.core.search import zero_shot

        self.label_vecs = np.asarray(label_vecs, dtype=np.float32)
        self.logit_scale = float(logit_scale)
        n, n_cls = self.n, len(label_vecs)
        given = rows is not None and probs is not None and len(rows) == len(probs)
        every = (
            given
            and len(rows) == n
            and (n == 0 or (int(rows[0]) == 0 and int(rows[-1]) == n - 1))
            and np.shape(probs) == (n, n_cls)
        )
        if every:
            self.probs = np.asarray(probs, dtype=np.float32)  # handed over by the worker
        else:
            self.probs = np.full((n, n_cls), np.nan, dtype=np.float32)
            if given:
                self.probs[rows] = probs
        ok_part = (
            given
            and classified is not None
            and len(classified.predicted) == len(rows)
            and len(classified.confidence) == len(rows)
        )
        if not ok_part:
            late = self.have.copy()
            if given:
                late[rows] = False
            if late.any() and self.vectors is not None:
                idx = np.flatnonzero(late)
                self.probs[idx] = zero_shot(self.vectors[idx], self.label_vecs, self.logit_scale)
            self._classify()
            return
        assert classified is not None and rows is not None
        if every:
            pred = np.asarray(classified.predicted, dtype=np.int32)
            conf = np.asarray(classified.confidence, dtype=np.float32)
        else:
            pred = np.full(n, NO_PREDICTION, dtype=np.int32)
            conf = np.zeros(n, dtype=np.float32)
            pred[rows] = classified.predicted
            conf[rows] = classified.confidence
        if not self.have.all():  # rows without a vector (any more) have no prediction
            pred = np.where(self.have, pred, NO_PREDICTION).astype(np.int32)
            conf = np.where(self.have, conf, np.float32(0)).astype(np.float32)
        unc = (pred != NO_PREDICTION) & (conf < np.float32(self.threshold))
        self.predictions = Predictions(pred, conf, unc)
        late = self.have.copy()
        late[rows] = False
        if late.any() and self.vectors is not None:  # got a vector meanwhile: O(late)
            idx = np.flatnonzero(late)
            self.probs[idx] = zero_shot(self.vectors[idx], self.label_vecs, self.logit_scale)
            self.predictions = self._predictions_with(idx)
        self.predictions_changed.emit()

    def _ensure_probs(self) -> None:
        if self.label_vecs is not None and (self.probs is None or len(self.probs) != self.n):
            self.probs = np.full((self.n, len(self.label_vecs)), np.nan, dtype=np.float32)

    def set_threshold(self, value: float) -> None:
        """Below this best probability a prediction is uncertain.

        Only the uncertain mask changes (one vectorised compare): the best class and its
        probability do not depend on the threshold, and classifying all N rows again took
        0.5 s at 1M on the GUI thread (#12).
        """
        self.threshold = float(value)
        p = self.predictions
        if self.probs is not None and len(p.predicted) == self.n == len(self.probs):
            unc = (p.predicted != NO_PREDICTION) & (p.confidence < np.float32(self.threshold))
            self.predictions = Predictions(p.predicted, p.confidence, unc)  # new arrays only
            self.predictions_changed.emit()
        else:
            self._classify()

    def _classify(self) -> None:
        if self.probs is not None and len(self.probs) == self.n:
            probs = np.where(self.have[:, None], self.probs, np.nan)
            self.predictions = classify(probs, self.threshold)
        else:
            self.predictions = Predictions.empty(self.n)
        self.predictions_changed.emit()

    @property
    def predicted(self) -> np.ndarray:
        """Best class index per row (:data:`NO_PREDICTION` where none); see ``uncertain``."""
        return self.predictions.predicted

    @property
    def confidence(self) -> np.ndarray:
        return self.predictions.confidence

    @property
    def uncertain(self) -> np.ndarray:
        """Rows whose best probability is below the threshold."""
        return self.predictions.uncertain

    def predicted_label(self, row: int) -> str | None:
        """Class name of a row, :data:`UNCERTAIN` below the threshold, None if unknown."""
        return self.predictions.label(row, self.label_names())

    def predicted_counts(self) -> dict[str, int]:
        """Rows per (certain) class, and ``"uncertain"``."""
        return self.predictions.counts(self.label_names())

    def probabilities(self, row: int) -> dict[str, float] | None:
        """Probability per class of a row, or None."""
        if self.probs is None or not (0 <= row < len(self.probs)):
            return None
        if not np.isfinite(self.probs[row]).all() or not self.probs.shape[1]:
            return None
        return {d.name: float(p) for d, p in zip(self.label_defs, self.probs[row], strict=False)}

    # ------------------------------------------------------------------ manual labels
    @property
    def manual(self) -> ManualLabels:
        """Each row's manual label (a sequence of ``str | None`` kept as integer codes)."""
        return self._manual

    @manual.setter
    def manual(self, labels: Sequence[str | None]) -> None:
        self._manual = labels if isinstance(labels, ManualLabels) else ManualLabels.encode(labels)

    def _count_manual(self) -> dict[str, int]:
        m = self._manual
        counts = np.bincount(m.codes[m.codes >= 0], minlength=len(m.names))
        return {name: int(k) for name, k in zip(m.names, counts, strict=True) if k}

    def set_manual_labels(self, by_sha: Mapping[str, str]) -> None:
        """Every row's manual label from a ``content hash → label`` mapping."""
        self._manual = ManualLabels.encode([by_sha.get(it.sha256) for it in self.items])
        self.manual_counts = self._count_manual()
        self.labels_changed.emit()

    def apply_label_changes(self, changes: Mapping[str, str | None]) -> bool:
        """Apply ``content hash → label`` changes (None = cleared): O(changes), not O(rows).

        Returns True (and emits ``labels_changed``) if any row's label changed.
        """
        counts = self.manual_counts
        manual = self._manual
        changed = False
        for sha, lab in changes.items():
            for r in self._sha_rows.get(sha, ()):
                old = manual[r]
                if old == lab:
                    continue
                if old is not None:
                    counts[old] -= 1
                    if not counts[old]:
                        del counts[old]
                if lab is not None:
                    counts[lab] = counts.get(lab, 0) + 1
                manual.codes[r] = manual.code(lab, add=True)
                changed = True
        if changed:
            self.labels_changed.emit()
        return changed

    def apply_label_rows(self, groups: Mapping[str | None, np.ndarray]) -> bool:
        """Give whole sets of rows a label at once: ``label → rows`` (None = cleared).

        The bulk form of :meth:`apply_label_changes` for a large change found off the GUI
        thread: C-level array work per label, no Python step per row. Returns True (and emits
        ``labels_changed``) if any row's label changed.
        """
        n = len(self.manual)
        groups = {
            lab: r[(r >= 0) & (r < n)]
            for lab, r in (
                (lab, np.asarray(r, dtype=np.int64).ravel()) for lab, r in groups.items()
            )
        }
        groups = {lab: r for lab, r in groups.items() if len(r)}
        if not groups:
            return False
        m = self._manual
        codes = m.codes
        changed = False
        for lab, rows in groups.items():
            code = m.code(lab, add=True)  # -1 for None
            rows = rows[codes[rows] != code]
            if not len(rows):
                continue
            codes[rows] = code  # C-level: no Python step per row
            changed = True
        if not changed:
            return False
        self.manual_counts = self._count_manual()
        self.labels_changed.emit()
        return True

    def manual_label(self, row: int) -> str | None:
        return self.manual[row] if 0 <= row < len(self.manual) else None

    # ------------------------------------------------------------------ suggestions
    def set_suggestions(self, result: Propagation | None) -> None:
        """Few-shot suggestions (None clears them); rows labelled by hand get none."""
        self.propagation = result
        self.suggested = np.full(self.n, NO_SUGGESTION, dtype=np.int32)
        self.suggested_prob = np.zeros(self.n, dtype=np.float32)
        if result is not None and len(result.rows):
            self.suggestion_classes = list(result.classes)
            self.suggested[result.rows] = result.suggested
            self.suggested_prob[result.rows] = result.confidence
            if len(self._manual) == self.n:
                self.suggested[self._manual.labelled()] = NO_SUGGESTION
        self.suggestions_changed.emit()

    def suggestion(self, row: int) -> tuple[str, float] | None:
        """(class, confidence) suggested for a row, or None."""
        if not (0 <= row < len(self.suggested)) or self.suggested[row] == NO_SUGGESTION:
            return None
        return self.suggestion_classes[self.suggested[row]], float(self.suggested_prob[row])

    def drop_suggestions(self, rows: Iterable[int] | None = None) -> None:
        """Forget the suggestions of ``rows`` (all if None)."""
        if rows is None:
            self.suggested[:] = NO_SUGGESTION
        else:
            r = rows if isinstance(rows, np.ndarray) else np.fromiter(rows, dtype=np.int64)
            self.suggested[r.astype(np.int64, copy=False)] = NO_SUGGESTION
        self.suggestions_changed.emit()

    # ------------------------------------------------------------------ export
    def snapshot(self) -> Snapshot:
        """What an export needs, copied (C-level copies; no per-row Python work)."""
        probs = self.probs if self.probs is not None and len(self.probs) == self.n else None
        return Snapshot(
            items=self.items,  # replaced on open, never changed in place
            manual=self._manual.copy(),
            have=self.have.copy(),
            scores=None if self.scores is None else self.scores.copy(),
            probs=None if probs is None else probs.copy(),
            label_defs=[LabelDef(d.name, d.prompt) for d in self.label_defs],
            templates=list(self.templates),
            threshold=self.threshold,
            query=self.query.describe(),
        )

    # ------------------------------------------------------------------ selection
    def set_selection(self, rows: Iterable[int] | np.ndarray, source: str = "") -> None:
        """Select rows (out-of-range rows dropped); one row also becomes the current one."""
        arr = rows if isinstance(rows, np.ndarray) else np.asarray(list(rows))
        sel = unique_rows(arr)  # np.unique takes seconds at 500k rows (numpy 2.4, #12)
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
        if mode not in COLOR_MODES:
            raise ValueError(f"colour mode must be one of {COLOR_MODES}, got {mode!r}")
        if mode != self.color_mode:
            self.color_mode = mode
            self.color_mode_changed.emit(mode)
