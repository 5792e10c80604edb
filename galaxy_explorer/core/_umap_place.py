"""Place points into a fitted UMAP map by their neighbours among the fitted points.

umap's ``transform`` searches each new point's neighbours with pynndescent and then runs
30 optimisation epochs. On this shared 2-core machine that took 14 s (wall, under load)
per 10,000 points of the benchmark's 384-D blobs, 9 s of it in pynndescent's query, and
placing the 980,000 points of a 1M map took 25 min. Here the neighbours come from faiss (an inverted-file
index over the fitted points; an exact numpy search without faiss), each point starts
where umap's transform starts it, at the membership-weighted mean of its neighbours' map
positions, and a few of umap's own epochs (``epochs``, 0 for none) may then refine it
against the fixed map.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

#: Fitted points up to which the faiss search is exact (a flat index).
EXACT_MAX_FIT = 5_000
#: Inverted lists searched per query (of ``2 sqrt(M)``).
NPROBE = 8
#: Query rows per block of the numpy fallback search (its block of scores: rows x fit).
_NUMPY_BLOCK = 1_024

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return _normalised(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def _to_distance(scores: np.ndarray, metric: str) -> np.ndarray:
    """faiss scores (inner products, or squared L2) as the metric's distances."""
    if metric == "cosine":
        return np.maximum(1.0 - scores, 0.0).astype(np.float32)
    return np.sqrt(np.maximum(scores, 0.0)).astype(np.float32)


def neighbour_search(fit: np.ndarray, metric: str = "cosine", seed: int = 0) -> Search:
    """A k-nearest-neighbour search among the fitted points.

    With faiss installed: exact (``IndexFlat``) for fits of up to :data:`EXACT_MAX_FIT`
    points, else an inverted-file index (``IndexIVFFlat``, ``2 sqrt(M)`` lists, of which
    :data:`NPROBE` are searched; queries go in the order of their nearest list).
    Measured on 20,000 x 384 fitted points and 10,000 queries: recall@15 1.000 on
    clustered sheets, 0.76 on isotropic blobs (where the missed neighbours are about as
    near as the found ones), at about 1 s of CPU against 2.7 s for the exact search.
    Without faiss, an exact numpy search in blocks.

    Parameters
    ----------
    fit : ndarray
        ``(M, D)`` vectors the map was fitted on.
    metric : {"cosine", "euclidean"}
        The map's metric.
    seed : int
        Seed of the index's k-means (the same seed gives the same index).

    Returns
    -------
    callable
        ``search(queries, k) -> (indices, distances)``, both ``(n, k)``, nearest first;
        indices into ``fit``, -1 (at distance inf) where fewer than k were found.
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"no neighbour search for metric {metric!r}")
    base = _prepare(fit, metric)
    m = base.shape[0]
    topk = _faiss_topk(base, metric, seed) or _numpy_topk(base, metric)

    def search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = int(k)
        return _pad(*topk(_prepare(queries, metric), min(k, m)), k)

    return search


def _pad(idx: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    idx = idx.astype(np.int64, copy=False)
    dist = dist.astype(np.float32, copy=False)
    dist[idx < 0] = np.inf
    if idx.shape[1] < k:  # fewer fitted points than k
        more = k - idx.shape[1]
        idx = np.concatenate([idx, np.full((len(idx), more), -1, np.int64)], axis=1)
        dist = np.concatenate([dist, np.full((len(dist), more), np.inf, np.float32)], axis=1)
    return idx, dist


def _faiss_topk(base: np.ndarray, metric: str, seed: int) -> Search | None:
    try:
        import faiss
    except ImportError:
        log.info("faiss is not installed: exact neighbour search with numpy")
        return None
    m, d = base.shape
    if metric == "cosine":
        index = quantizer = faiss.IndexFlatIP(d)
    else:
        index = quantizer = faiss.IndexFlatL2(d)
    if m > EXACT_MAX_FIT:
        kind = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        index = faiss.IndexIVFFlat(quantizer, d, int(2 * np.sqrt(m)), kind)
        index.cp.seed = int(seed) & 0x7FFFFFFF
        index.train(base)
        index.nprobe = NPROBE
    index.add(base)
    lists = quantizer if m > EXACT_MAX_FIT else None

    def topk(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(q, dtype=np.float32)
        if lists is None:
            scores, idx = index.search(q, int(k))
            return idx, _to_distance(scores, metric)
        # queries in the order of their nearest list: consecutive queries scan the same
        # lists while they are in the CPU's cache (same results; measured 2.4 -> 1.1 s
        # of CPU for 10,000 queries into 20,000 x 384, whose scan is bound by memory reads)
        _, first = lists.search(q, 1)
        order = np.argsort(first[:, 0], kind="stable")
        scores, idx = index.search(q[order], int(k))
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return idx[back], _to_distance(scores[back], metric)

    return topk


def _numpy_topk(base: np.ndarray, metric: str) -> Search:
    sq = (base * base).sum(axis=1) if metric == "euclidean" else None

    def topk(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(int(k), base.shape[0])
        idx = np.empty((len(q), k), np.int64)
        dist = np.empty((len(q), k), np.float32)
        for s in range(0, len(q), _NUMPY_BLOCK):
            block = q[s : s + _NUMPY_BLOCK]
            sim = block @ base.T
            if sq is not None:  # negated squared distance: larger is nearer
                sim = 2 * sim - sq[None, :] - (block * block).sum(axis=1)[:, None]
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            top_s = np.take_along_axis(sim, top, axis=1)
            order = np.argsort(-top_s, axis=1, kind="stable")
            idx[s : s + len(block)] = np.take_along_axis(top, order, axis=1)
            best = np.take_along_axis(top_s, order, axis=1)
            dist[s : s + len(block)] = _to_distance(best if sq is None else -best, metric)
        return idx, dist

    return topk


def membership_graph(idx: np.ndarray, dist: np.ndarray, m: int, metric: str):  # noqa: ANN201
    """umap's transform graph: fuzzy membership of each new point to its neighbours.

    The same smoothing umap's ``transform`` applies (``local_connectivity`` 1, so the
    nearest neighbour has strength 1), as a ``(n, m)`` CSR matrix.
    """
    import scipy.sparse
    from umap.umap_ import compute_membership_strengths, smooth_knn_dist

    idx = np.ascontiguousarray(idx, dtype=np.int32).copy()
    dist = np.ascontiguousarray(dist, dtype=np.float32).copy()
    far = 2.0 if metric == "cosine" else np.inf  # umap's disconnection distance
    idx[(dist >= far) | ~np.isfinite(dist)] = -1
    dist[~np.isfinite(dist)] = far if np.isfinite(far) else np.finfo(np.float32).max
    k = idx.shape[1]
    sigmas, rhos = smooth_knn_dist(dist, float(k), local_connectivity=0.0)
    rows, cols, vals, _ = compute_membership_strengths(idx, dist, sigmas, rhos, bipartite=True)
    graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(idx.shape[0], m)).tocsr()
    graph.eliminate_zeros()
    return graph


def init_graph_transform(graph, embedding: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Vectorised ``umap.umap_.init_graph_transform`` (same rule, no per-row Python loop).

    Each new point starts at the strength-weighted mean of its neighbours in the fitted
    map, at a neighbour's exact place when their strength is 1 (the first such, in stored
    order), and at NaN without neighbours. umap's own version loops over rows in Python:
    about 40% of the time of placing 10,000 points (profiled).
    """
    g = graph.tocsr()
    n = g.shape[0]
    emb = np.asarray(embedding, dtype=np.float32)
    counts = np.diff(g.indptr)
    sums = np.asarray(g.sum(axis=1), dtype=np.float64).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.asarray(g @ emb.astype(np.float64)) / sums[:, None]).astype(np.float32)
    out[counts == 0] = np.nan
    ones = np.flatnonzero(g.data == 1)
    if len(ones):
        rows = np.repeat(np.arange(n), counts)[ones]
        first_rows, first = np.unique(rows, return_index=True)
        out[first_rows] = emb[g.indices[ones[first]]]
    return out


def place(
    graph,  # noqa: ANN001 - scipy sparse (n, m)
    fitted: np.ndarray,
    *,
    epochs: int,
    a: float,
    b: float,
    seed: int,
    initial_alpha: float = 1.0,
    gamma: float = 1.0,
    negative_sample_rate: int = 5,
) -> np.ndarray:
    """2-D positions of new points with this membership graph to the fitted map.

    Starts at the membership-weighted mean of the neighbours' positions (umap's transform
    start); with ``epochs > 0`` refines with umap's layout epochs, moving only the new
    points (as ``transform`` does, with its quarter learning rate).
    """
    fitted = np.ascontiguousarray(fitted, dtype=np.float32)
    coords = init_graph_transform(graph, fitted)
    if epochs <= 0 or graph.nnz == 0:
        return coords
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import make_epochs_per_sample

    lonely = ~np.isfinite(coords).all(axis=1)
    coords[lonely] = 0.0  # no neighbours: optimised from the centre (and NaN-free)
    g = graph.tocoo()
    g.data[g.data < g.data.max() / float(epochs)] = 0.0
    g.eliminate_zeros()
    eps = make_epochs_per_sample(g.data, epochs)
    rng = np.random.default_rng(seed)
    rng_state = rng.integers(-(2**31) + 1, 2**31 - 1, 3).astype(np.int64)
    return optimize_layout_euclidean(
        coords,
        fitted.copy(),
        g.row,
        g.col,
        int(epochs),
        fitted.shape[0],
        eps,
        float(a),
        float(b),
        rng_state,
        float(gamma),
        float(initial_alpha) / 4.0,
        float(negative_sample_rate),
    )
