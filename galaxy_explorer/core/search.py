"""Ranking, zero-shot probabilities and few-shot classification on embeddings.

Everything here works on plain numpy arrays of L2-normalised embeddings, shape ``(N, D)``.
float16 input (e.g. memory-mapped cache shards) is upcast to float32 before any matrix
product, because float16 matmul on the CPU is 10-100x slower.

All scoring reduces to **one** matrix-vector product per query: text vectors, positive and
negative examples are folded into a single query direction first, so ranking 100,000 x 512
embeddings costs one ``embeddings @ q``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "FewShotClassifier",
    "combined_query",
    "query_vector",
    "rank_by_examples",
    "rank_by_text",
    "top_k",
    "zero_shot",
]


def _as_f32(a: np.ndarray | Sequence[float]) -> np.ndarray:
    """Return ``a`` as a float32 array, without a copy when it already is one."""
    arr = np.asarray(a)
    if arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    return arr


def _as_matrix(embeddings: np.ndarray) -> np.ndarray:
    emb = _as_f32(embeddings)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {emb.shape}")
    return emb


def _check_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Validate ``(N, D)`` without converting (see :func:`_dot` for the upcast)."""
    emb = np.asarray(embeddings)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {emb.shape}")
    return emb


#: rows per block when upcasting non-float32 embeddings: 256 x 512 float32 is 512 KiB, so a
#: block is converted and multiplied while it is still in the CPU's cache. Measured on a
#: 2-core EPYC: 256 rows beat 1k-64k rows and a whole-array upcast (tests/benchmarks).
_BLOCK_ROWS = 256


def _dot(emb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``emb @ m`` in float32, whatever the storage type of ``emb``.

    float32 ``emb`` goes straight to BLAS. Anything else (a float16 memory map of cache
    shards) is converted block by block into one reused float32 buffer and multiplied
    there: no full float32 copy, no per-block allocation, and never a float16 matmul
    (10-30x slower on the CPU). The app and the CLI hold float32 vectors (the store's
    :meth:`~galaxy_explorer.core.cache.EmbeddingStore.get` upcasts once at load), so only
    callers that keep float16 arrays pay the conversion, once per product.
    """
    m = _as_f32(m)
    if emb.dtype == np.float32:
        return emb @ m
    n = emb.shape[0]
    out = np.empty((n, *m.shape[1:]), dtype=np.float32)
    if n == 0:
        return out
    rows = min(_BLOCK_ROWS, n)
    buf = np.empty((rows, *emb.shape[1:]), dtype=np.float32)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = buf[: stop - start]
        np.copyto(block, emb[start:stop], casting="unsafe")
        np.matmul(block, m, out=out[start:stop])
    return out


def _centroid(vecs: np.ndarray | None, dim: int, what: str) -> np.ndarray | None:
    """Unit-length mean direction of one vector ``(D,)`` or several ``(K, D)``; None if empty."""
    if vecs is None:
        return None
    v = _as_f32(vecs)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2:
        raise ValueError(f"{what} must be (D,) or (K, D), got shape {v.shape}")
    if v.shape[0] == 0:
        return None
    if v.shape[1] != dim:
        raise ValueError(f"{what} has dimension {v.shape[1]}, embeddings have {dim}")
    # normalise each vector first so every example counts equally
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms > 0, norms, 1.0)
    c = v.mean(axis=0, dtype=np.float64)
    n = float(np.linalg.norm(c))
    if n == 0.0 or not np.isfinite(n):
        return None
    return (c / n).astype(np.float32)


def query_vector(
    dim: int,
    text_vecs: np.ndarray | None = None,
    positive: np.ndarray | None = None,
    negative: np.ndarray | None = None,
    *,
    text_weight: float = 1.0,
    neg_weight: float = 0.5,
) -> np.ndarray:
    """Fold text vectors and positive / negative examples into one query vector.

    The positive direction is the unit-length sum of ``text_weight`` x (text centroid) and the
    positive-example centroid; the negative centroid is subtracted with ``neg_weight``.
    ``embeddings @ query_vector(...)`` is then the score used by :func:`combined_query`.

    Parameters
    ----------
    dim : int
        Embedding dimension D.
    text_vecs, positive, negative : ndarray, optional
        ``(D,)`` or ``(K, D)`` vectors. Several text vectors (e.g. prompt variants) or
        several examples are averaged after normalising each.
    text_weight : float
        Weight of the text direction relative to the positive examples when both are given.
    neg_weight : float
        Weight of the negative direction.

    Returns
    -------
    ndarray
        ``(D,)`` float32 query vector.

    Raises
    ------
    ValueError
        If nothing usable was given, or a dimension does not match.
    """
    t = _centroid(text_vecs, dim, "text_vecs")
    p = _centroid(positive, dim, "positive")
    n = _centroid(negative, dim, "negative")
    if t is None and p is None and n is None:
        raise ValueError("empty query: give text vectors and/or positive or negative examples")
    q = np.zeros(dim, dtype=np.float32)
    if t is not None and p is not None:
        pos = text_weight * t + p
        norm = float(np.linalg.norm(pos))
        if norm > 0:
            q += pos / norm
    elif t is not None:
        q += t
    elif p is not None:
        q += p
    if n is not None:
        q -= np.float32(neg_weight) * n
    return q


def rank_by_text(text_vec: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of every embedding to a text query.

    Parameters
    ----------
    text_vec : ndarray
        ``(D,)`` text embedding, or ``(T, D)`` several (e.g. prompt variants), which are
        averaged (after normalising each) into one direction.
    embeddings : ndarray
        ``(N, D)`` L2-normalised image embeddings (float32, or float16 which is upcast).

    Returns
    -------
    ndarray
        ``(N,)`` float32 cosine scores in [-1, 1]; higher is more similar.
    """
    emb = _check_matrix(embeddings)
    q = query_vector(emb.shape[1], text_vecs=text_vec)
    return _dot(emb, q)


def rank_by_examples(
    embeddings: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray | None = None,
    neg_weight: float = 0.5,
) -> np.ndarray:
    """Score every embedding by similarity to example images (Rocchio-style).

    ``score = cos(e, mean(positive)) - neg_weight * cos(e, mean(negative))``, where the means
    are re-normalised to unit length. Without negatives this is plain cosine similarity to
    the positive centroid.

    Parameters
    ----------
    embeddings : ndarray
        ``(N, D)`` L2-normalised embeddings.
    positive : ndarray
        ``(D,)`` or ``(P, D)`` embeddings of the example images.
    negative : ndarray, optional
        ``(D,)`` or ``(M, D)`` embeddings of images the result should *not* look like.
    neg_weight : float
        Weight of the negative term.

    Returns
    -------
    ndarray
        ``(N,)`` float32 scores; higher is better.
    """
    emb = _check_matrix(embeddings)
    if positive is None or np.asarray(positive).size == 0:
        raise ValueError("rank_by_examples needs at least one positive example")
    q = query_vector(emb.shape[1], positive=positive, negative=negative, neg_weight=neg_weight)
    return _dot(emb, q)


def combined_query(
    embeddings: np.ndarray,
    text_vecs: np.ndarray | None = None,
    positive: np.ndarray | None = None,
    negative: np.ndarray | None = None,
    *,
    text_weight: float = 1.0,
    neg_weight: float = 0.5,
) -> np.ndarray:
    """The one query entry point: text and/or positive examples, minus negative examples.

    With only ``text_vecs`` this equals :func:`rank_by_text`; with only examples it equals
    :func:`rank_by_examples`. See :func:`query_vector` for how the parts are combined.

    Parameters
    ----------
    embeddings : ndarray
        ``(N, D)`` L2-normalised embeddings (float16 is upcast).
    text_vecs, positive, negative : ndarray, optional
        ``(D,)`` or ``(K, D)`` vectors; at least one must be given.
    text_weight, neg_weight : float
        Relative weights, see :func:`query_vector`.

    Returns
    -------
    ndarray
        ``(N,)`` float32 scores; higher is better.

    Raises
    ------
    ValueError
        If no query part was given, or dimensions do not match.
    """
    emb = _check_matrix(embeddings)
    q = query_vector(
        emb.shape[1],
        text_vecs=text_vecs,
        positive=positive,
        negative=negative,
        text_weight=text_weight,
        neg_weight=neg_weight,
    )
    return _dot(emb, q)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first.

    Uses ``np.argpartition`` (O(N)) and then sorts only the k winners. NaN scores rank last.
    Tied scores among the returned items are ordered by index (lower first).

    Parameters
    ----------
    scores : ndarray
        ``(N,)`` scores.
    k : int
        How many; clipped to ``[0, N]``.

    Returns
    -------
    ndarray
        ``(min(k, N),)`` int64 indices into ``scores``.
    """
    s = np.asarray(scores)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    n = s.shape[0]
    k = max(0, min(int(k), n))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    neg = -s.astype(np.float64, copy=False) if s.dtype.kind != "f" else -s
    if np.isnan(neg).any():
        neg = np.where(np.isnan(neg), np.inf, neg)
    if k < n:
        idx = np.argpartition(neg, k - 1)[:k]
    else:
        idx = np.arange(n)
    # sort winners by (score desc, index asc)
    order = np.lexsort((idx, neg[idx]))
    return idx[order].astype(np.int64, copy=False)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def zero_shot(embeddings: np.ndarray, label_vecs: np.ndarray, logit_scale: float) -> np.ndarray:
    """Zero-shot class probabilities: softmax over ``logit_scale * cos(image, label)``.

    Parameters
    ----------
    embeddings : ndarray
        ``(N, D)`` L2-normalised image embeddings.
    label_vecs : ndarray
        ``(L, D)`` L2-normalised text embeddings, one per label (e.g. from
        ``ClipAdapter.embed_labels``, prompt templates already averaged).
    logit_scale : float
        The **already exponentiated** temperature multiplier, i.e. ``model.logit_scale.exp()``
        — about 100 for CLIP (``ClipAdapter.logit_scale``). Do not pass the raw log value
        (~4.6): the probabilities would come out far too flat.

    Returns
    -------
    ndarray
        ``(N, L)`` float32 probabilities; each row sums to 1.
    """
    emb = _check_matrix(embeddings)
    lab = _as_f32(label_vecs)
    if lab.ndim == 1:
        lab = lab[None, :]
    if lab.ndim != 2 or lab.shape[1] != emb.shape[1]:
        raise ValueError(f"label_vecs must be (L, {emb.shape[1]}), got shape {lab.shape}")
    if lab.shape[0] == 0:
        raise ValueError("zero_shot needs at least one label")
    logits = _dot(emb, np.ascontiguousarray(lab.T))
    logits *= np.float32(logit_scale)
    return _softmax(logits)


@dataclass
class FewShotClassifier:
    """Few-shot classifier on embeddings, trained from a handful of manual labels.

    With at least two examples in every class it fits a multinomial logistic regression
    (scikit-learn, class-balanced); when some class has a single example it uses
    nearest-prototype classification (softmax over ``prototype_scale`` x cosine to each
    class's mean embedding). With a single class every item gets probability 1 for it.

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the logistic regression. Embeddings are unit
        vectors, so fairly weak regularisation (large C) is needed for confident output.
    max_iter : int
        Iteration cap of the logistic regression solver.
    prototype_scale : float
        Softmax temperature multiplier for the prototype fallback.
    min_per_class : int
        Smallest class size for which logistic regression is used (else prototypes).

    Attributes
    ----------
    classes : list of str
        Class names (sorted) after :meth:`fit`.
    method : str
        ``"logistic"``, ``"prototype"`` or ``"constant"`` after :meth:`fit`.

    Examples
    --------
    >>> clf = FewShotClassifier().fit(emb[labelled], ["spiral", "elliptical", ...])
    >>> classes, probs = clf.predict_proba(emb)
    """

    C: float = 10.0
    max_iter: int = 1000
    prototype_scale: float = 50.0
    min_per_class: int = 2
    classes: list[str] = field(default_factory=list, init=False)
    method: str = field(default="", init=False)
    _model: Any = field(default=None, init=False, repr=False)
    _prototypes: np.ndarray | None = field(default=None, init=False, repr=False)

    def fit(self, embeddings: np.ndarray, labels: Sequence[str]) -> FewShotClassifier:
        """Fit on labelled embeddings.

        Parameters
        ----------
        embeddings : ndarray
            ``(N, D)`` embeddings of the labelled items.
        labels : sequence of str
            ``N`` class names.

        Returns
        -------
        FewShotClassifier
            ``self``.
        """
        emb = _as_matrix(embeddings)
        labels = [str(x) for x in labels]
        if len(labels) != emb.shape[0]:
            raise ValueError(f"{emb.shape[0]} embeddings but {len(labels)} labels")
        if not labels:
            raise ValueError("FewShotClassifier.fit needs at least one labelled example")
        self.classes = sorted(set(labels))
        y = np.array([self.classes.index(x) for x in labels])
        counts = np.bincount(y, minlength=len(self.classes))
        self._model = None
        self._prototypes = None
        if len(self.classes) == 1:
            self.method = "constant"
        elif counts.min() < self.min_per_class:
            self.method = "prototype"
            protos = np.stack([emb[y == c].mean(axis=0) for c in range(len(self.classes))])
            norms = np.linalg.norm(protos, axis=1, keepdims=True)
            self._prototypes = (protos / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        else:
            from sklearn.linear_model import LogisticRegression

            self.method = "logistic"
            model = LogisticRegression(C=self.C, max_iter=self.max_iter, class_weight="balanced")
            model.fit(emb, y)
            self._model = model
        log.debug(
            "few-shot fit: %d examples, classes=%s, method=%s",
            len(labels),
            self.classes,
            self.method,
        )
        return self

    def predict_proba(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Class probabilities for every embedding.

        Parameters
        ----------
        embeddings : ndarray
            ``(N, D)`` embeddings.

        Returns
        -------
        classes : list of str
            Class names, in column order.
        probs : ndarray
            ``(N, len(classes))`` float32 probabilities; rows sum to 1.
        """
        if not self.method:
            raise RuntimeError("FewShotClassifier.predict_proba called before fit")
        emb = _as_matrix(embeddings)
        n = emb.shape[0]
        if self.method == "constant":
            probs = np.ones((n, 1), dtype=np.float32)
        elif self.method == "prototype":
            assert self._prototypes is not None
            probs = _softmax(_dot(emb, self._prototypes.T) * np.float32(self.prototype_scale))
        else:
            raw = self._model.predict_proba(emb)
            # the model's columns follow its classes_ (indices into self.classes)
            probs = np.zeros((n, len(self.classes)), dtype=np.float32)
            probs[:, self._model.classes_] = raw
        return list(self.classes), probs.astype(np.float32, copy=False)

    def predict(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Most likely class and its probability for every embedding.

        Returns
        -------
        labels : list of str
            ``N`` predicted class names.
        confidence : ndarray
            ``(N,)`` float32 probability of the predicted class.
        """
        classes, probs = self.predict_proba(embeddings)
        best = probs.argmax(axis=1)
        return [classes[i] for i in best], probs[np.arange(len(best)), best]
