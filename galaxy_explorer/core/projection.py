"""2-D maps of the embeddings: an instant PCA view and a cached, deterministic UMAP.

``import umap`` costs seconds (numba compilation), so it happens lazily inside
:func:`umap_2d`; run that on a worker and show :func:`pca_2d` first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from galaxy_explorer.core._atomic import atomic_open
from galaxy_explorer.core._umap_place import init_graph_transform as _init_graph_transform

log = logging.getLogger(__name__)

__all__ = [
    "UMAPCancelled",
    "PcaBasis",
    "UMAPConfig",
    "cached_umap",
    "enable_disk_cache",
    "load_cached_umap",
    "pca_2d",
    "pca_apply",
    "pca_fit",
    "umap_2d",
    "umap_cache_path",
]

#: Below this many points UMAP is not meaningful (and its spectral init fails): use PCA.
MIN_UMAP_POINTS = 4
#: PCA components are fitted on at most this many rows (a fixed random subsample).
_PCA_FIT_ROWS = 20_000
#: Default rows placed per step after a subsample fit: one step of progress
#: and one chance to cancel each.
TRANSFORM_CHUNK = 10_000
#: Optimisation epochs of each placed point in umap's transform (its choice for large
#: transforms; used for metrics other than cosine and euclidean).
_TRANSFORM_EPOCHS = 30
#: Layout epochs of each placed point after its neighbour-weighted start (cosine, euclidean).
PLACE_EPOCHS = 0


class UMAPCancelled(Exception):
    """Raised by :func:`umap_2d` when its ``cancelled`` callback says stop (between chunks)."""


@dataclass(frozen=True)
class UMAPConfig:
    """Settings of a UMAP projection (all part of the cache key).

    Parameters
    ----------
    n_neighbors : int
        Size of the local neighbourhood; reduced automatically to ``N - 1`` for small N.
    min_dist : float
        How tightly points may be packed.
    metric : str
        Distance metric; cosine suits L2-normalised CLIP embeddings.
    seed : int
        Random state; the same seed gives the same map.
    fit_rows : int
        Above this many points UMAP is fitted on a fixed random subsample of this size and
        the other points are placed into that map in chunks of ``transform_chunk``
        (with progress and cancellation between chunks), each at the weighted mean of
        its nearest fitted points (see :func:`umap_2d`). Fitting is super-linear in N;
        placing is linear.
    transform_chunk : int
        Points placed per step (part of the key: each step is seeded).
    place_epochs : int
        umap layout epochs that refine the placed points (cosine and euclidean metrics),
        after each starts at the weighted mean of its neighbours in the fitted map; 0
        keeps that start.
    """

    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 42
    fit_rows: int = 20_000
    transform_chunk: int = TRANSFORM_CHUNK
    place_epochs: int = PLACE_EPOCHS

    def key(self) -> str:
        """Stable string of the settings, used in the cache key."""
        return json.dumps(asdict(self), sort_keys=True)


def _as_f32_matrix(embeddings: np.ndarray) -> np.ndarray:
    emb = np.asarray(embeddings)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {emb.shape}")
    if emb.dtype != np.float32:
        emb = emb.astype(np.float32)
    return emb


def _top_components(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k right singular vectors ``(k, D)`` and singular values of centred ``x``.

    Exact numpy SVD for small inputs; for large ones a randomized SVD (range finder with a
    fixed seed and power iterations, Halko et al. 2011), accurate to far below plot resolution.
    """
    m, d = x.shape
    if m * d <= 4_000_000 or min(m, d) <= k + 10:
        _, sv, vt = np.linalg.svd(x, full_matrices=False)
        return vt[:k], sv[:k]
    rng = np.random.default_rng(0)
    q = x @ rng.standard_normal((d, k + 10)).astype(np.float32)
    for _ in range(4):
        q, _ = np.linalg.qr(q)
        z, _ = np.linalg.qr(x.T @ q)
        q = x @ z
    q, _ = np.linalg.qr(q)
    _, sv, vt = np.linalg.svd((q.T @ x).astype(np.float64), full_matrices=False)
    return vt[:k], sv[:k]


@dataclass(frozen=True)
class PcaBasis:
    """A fitted 2-D PCA: ``xy = v @ comps - offset`` for any row ``v`` of the same space.

    ``n_fit`` is how many rows it was fitted on (before subsampling): a map that streams in
    keeps its basis (points stay where they are) until the rows have doubled.
    """

    comps: np.ndarray  # (D, 2) float32
    offset: np.ndarray  # (2,) float32: mean @ comps
    n_fit: int


#: Rows per block when a basis is applied: bounds the temporary copies (a block of 64k x
#: 384 float32 is 100 MB) so that 10^6 rows never need a second full-size matrix.
_APPLY_BLOCK = 65_536


def pca_fit(vectors: np.ndarray, rows: np.ndarray | None = None) -> PcaBasis:
    """The first two principal components of ``vectors[rows]`` (all rows when None).

    Only a deterministic subsample of at most 20,000 of those rows is read (a randomized
    SVD for large inputs): ``vectors[rows]`` itself is never copied.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {vectors.shape}")
    d = vectors.shape[1]
    n = len(vectors) if rows is None else len(rows)
    comps = np.zeros((d, 2), np.float64)
    if n <= 1 or d == 0:
        return PcaBasis(comps.astype(np.float32), np.zeros(2, np.float32), n)
    pick = None
    if n > _PCA_FIT_ROWS:
        pick = np.sort(np.random.default_rng(0).choice(n, _PCA_FIT_ROWS, replace=False))
    if rows is not None:
        pick = np.asarray(rows) if pick is None else np.asarray(rows)[pick]
    fit = vectors if pick is None else vectors[pick]
    fit = fit.astype(np.float32, copy=False)
    mean = fit.mean(axis=0, dtype=np.float64).astype(np.float32)
    k = min(2, d)
    vt, sv = _top_components(fit - mean, k)
    comps[:, :k] = vt.T.astype(np.float64)  # (d, k)
    scale = max(float(sv[0]), 1e-30)
    # deterministic signs: the largest-magnitude loading of each component is positive
    for j in range(k):
        if sv[j] <= 1e-6 * scale:  # no variance along this direction
            comps[:, j] = 0.0
            continue
        i = int(np.argmax(np.abs(comps[:, j])))
        if comps[i, j] < 0:
            comps[:, j] = -comps[:, j]
    comps32 = comps.astype(np.float32)
    return PcaBasis(comps32, (mean @ comps32).astype(np.float32), n)


def pca_apply(basis: PcaBasis, vectors: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``(len(rows), 2)`` float32 coordinates of ``vectors[rows]`` (all rows when None).

    Works in blocks of contiguous rows (matrix products release the GIL; no full-size
    copy): when ``rows`` are most of the matrix, each block is multiplied whole and the
    wanted rows picked from its 2-column result.
    """
    vectors = np.asarray(vectors)
    n_all = len(vectors)
    rows = None if rows is None else np.asarray(rows, dtype=np.int64)
    n = n_all if rows is None else len(rows)
    out = np.empty((n, 2), np.float32)
    if n == 0:
        return out
    comps, offset = basis.comps, basis.offset
    whole = rows is None or (2 * n >= n_all and bool((rows[1:] > rows[:-1]).all()))
    if whole:
        for s in range(0, n_all, _APPLY_BLOCK):
            e = min(s + _APPLY_BLOCK, n_all)
            xy = vectors[s:e].astype(np.float32, copy=False) @ comps
            if rows is None:
                out[s:e] = xy
            else:  # rows are sorted and unique: those in this block are one run of them
                lo, hi = np.searchsorted(rows, [s, e])
                out[lo:hi] = xy[rows[lo:hi] - s]
    else:
        for s in range(0, n, _APPLY_BLOCK):
            out[s : s + _APPLY_BLOCK] = (
                vectors[rows[s : s + _APPLY_BLOCK]].astype(np.float32, copy=False) @ comps
            )
    out -= offset
    return out


def pca_2d(embeddings: np.ndarray) -> np.ndarray:
    """Project onto the first two principal components (instant; deterministic signs).

    numpy SVD of the centred data; for large inputs the components are fitted on a fixed
    subsample of 20,000 rows with a randomized SVD, then every row is projected, so 100,000 x
    512 takes about 0.1 s on two cores (:func:`pca_fit` then :func:`pca_apply`).

    Parameters
    ----------
    embeddings : ndarray
        ``(N, D)`` embeddings (float16 is upcast, a block at a time).

    Returns
    -------
    ndarray
        ``(N, 2)`` float32 coordinates, centred on 0. Zeros for N <= 1; the second column is
        0 when the data have only one direction of variance.
    """
    emb = np.asarray(embeddings)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {emb.shape}")
    n, d = emb.shape
    if n <= 1 or d == 0:
        return np.zeros((n, 2), dtype=np.float32)
    return pca_apply(pca_fit(emb), emb)


_DISK_CACHE_ON = False


def enable_disk_cache() -> int:
    """Let numba cache umap's compiled functions on disk, as pynndescent's already are.

    umap-learn declares almost none of its jitted functions with ``cache=True``, so every
    fresh process recompiles them (~10 s on 2 cores). Caching is switched on for those
    that are not compiled yet, before their first use; numba keys the cache by source file
    and signature, in ``__pycache__`` next to the source or, where that cannot be
    written, in the user's cache folder (``NUMBA_CACHE_DIR`` overrides). Returns how many
    functions were switched on. ``GALAXY_EXPLORER_UMAP_DISK_CACHE=0`` turns it off.
    """
    global _DISK_CACHE_ON
    if _DISK_CACHE_ON or os.environ.get("GALAXY_EXPLORER_UMAP_DISK_CACHE", "1") == "0":
        return 0
    _DISK_CACHE_ON = True
    import importlib

    from numba.core.dispatcher import Dispatcher

    count = 0
    for name in ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances"):
        try:
            mod = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - another umap version: nothing to switch on
            continue
        for obj in list(vars(mod).values()):
            if (
                isinstance(obj, Dispatcher)
                and type(obj._cache).__name__ == "NullCache"
                and not obj.signatures
            ):
                try:
                    obj.enable_caching()
                    count += 1
                except Exception as exc:  # noqa: BLE001 - e.g. a closure: stays uncached
                    log.debug("numba cache not enabled for %s.%s: %s", name, obj, exc)
    return count


def _placer(
    reducer,  # noqa: ANN001 - a fitted umap.UMAP
    fit: np.ndarray,
    fitted: np.ndarray,
    config: UMAPConfig,
) -> Callable[[np.ndarray, int], np.ndarray]:
    """``place(vectors, chunk_no) -> (n, 2)``: positions of new points in the fitted map.

    For the cosine and euclidean metrics, by their neighbours among the fitted points
    (:mod:`galaxy_explorer.core._umap_place`: a faiss search, umap's transform start and
    ``config.place_epochs`` of umap's epochs); for other metrics, umap's own ``transform``
    (pynndescent's search and 30 epochs). Same run, 20,000 points placed into a
    20,000-point fit (``tests/benchmarks/bench_umap_placement.py``): 0.37x the CPU of
    ``transform`` on isotropic blobs, 1.3x on clustered sheets (where pynndescent's search
    is quick); 10-NN class accuracy on the map 1.000 against 0.975 and 0.990.
    """
    m = fit.shape[0]
    k = int(reducer.n_neighbors)
    if config.metric in ("cosine", "euclidean"):
        from galaxy_explorer.core import _umap_place

        search = _umap_place.neighbour_search(fit, config.metric, seed=config.seed)

        def by_neighbours(x: np.ndarray, chunk: int) -> np.ndarray:
            idx, dist = search(x, k)
            graph = _umap_place.membership_graph(idx, dist, m, config.metric)
            return _umap_place.place(
                graph,
                fitted,
                epochs=int(config.place_epochs),
                a=float(reducer._a),
                b=float(reducer._b),
                seed=config.seed + chunk,
                initial_alpha=float(reducer._initial_alpha),
                gamma=float(reducer.repulsion_strength),
                negative_sample_rate=int(reducer.negative_sample_rate),
            )

        return by_neighbours

    # umap gives a transform of up to 10k points 100 epochs, of more 30: fix it at
    # its large-batch 30 so the chunk size does not change the work per point
    reducer.n_epochs = 3 * _TRANSFORM_EPOCHS
    umap_module = __import__("umap.umap_", fromlist=["init_graph_transform"])

    def by_transform(x: np.ndarray, chunk: int) -> np.ndarray:
        slow_init = umap_module.init_graph_transform
        umap_module.init_graph_transform = _init_graph_transform
        try:
            return np.asarray(reducer.transform(x), dtype=np.float32)
        finally:
            umap_module.init_graph_transform = slow_init

    return by_transform


def umap_2d(
    embeddings: np.ndarray,
    config: UMAPConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """2-D UMAP of the embeddings (umap-learn), deterministic for a given ``config.seed``.

    Up to ``config.fit_rows`` points are fitted at once. Above that, UMAP is fitted on a
    fixed random subsample of ``fit_rows`` points and the rest are placed into that map,
    ``config.transform_chunk`` rows at a time; ``progress`` is called after the fit and
    after each chunk, and ``cancelled`` is asked before each chunk.

    For the cosine and euclidean metrics a point is placed where umap's ``transform``
    starts it, at the fuzzy-membership-weighted mean of its ``n_neighbors`` nearest fitted
    points (found with faiss, or numpy without it), then refined by
    ``config.place_epochs`` layout epochs (none by default). Measured on 20,000 fitted
    and 10,000 placed clustered 384-D vectors: neighbourhood preservation (recall@15 of
    the 2-D neighbours) 0.73 against 0.67 for umap's ``transform`` and 0.73 for the
    fitted points themselves; 30 epochs lowered it to 0.69. Other metrics use
    ``transform``.

    Parameters
    ----------
    embeddings : ndarray
        ``(N, D)`` embeddings (float16 is upcast; a read-only memory map is read chunk by
        chunk).
    config : UMAPConfig, optional
        Settings; defaults to ``UMAPConfig()``.
    progress : callable, optional
        ``progress(placed, total)``: points with coordinates so far, and N.
    cancelled : callable, optional
        Returns True to stop; checked before the fit and between chunks.

    Returns
    -------
    ndarray
        ``(N, 2)`` float32 coordinates. For fewer than :data:`MIN_UMAP_POINTS` points,
        :func:`pca_2d` is returned instead; for small N, ``n_neighbors`` is reduced to N - 1.

    Raises
    ------
    UMAPCancelled
        When ``cancelled()`` returned True.
    """
    config = config or UMAPConfig()
    emb = np.asarray(embeddings)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {emb.shape}")
    n = emb.shape[0]
    if n < MIN_UMAP_POINTS:
        log.info("UMAP of %d points is not meaningful; using PCA", n)
        return pca_2d(emb)

    def stop() -> None:
        if cancelled is not None and cancelled():
            raise UMAPCancelled("UMAP cancelled")

    stop()
    fit_rows = max(MIN_UMAP_POINTS, int(config.fit_rows))
    subsample = n > fit_rows
    if subsample:
        fit_idx = np.sort(np.random.default_rng(config.seed).choice(n, fit_rows, replace=False))
        fit = _as_f32_matrix(emb[fit_idx])
    else:
        fit_idx = None
        fit = _as_f32_matrix(emb)
    m = fit.shape[0]
    n_neighbors = max(2, min(int(config.n_neighbors), m - 1))

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Tensorflow.*")
        import umap  # slow: numba
    enable_disk_cache()

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=config.min_dist,
        metric=config.metric,
        random_state=config.seed,
        init="spectral" if m > n_neighbors + 2 else "random",
        n_jobs=1,
        low_memory=True,
    )
    with warnings.catch_warnings():
        # random_state forces n_jobs=1; tiny graphs make umap warn about disconnected parts
        warnings.filterwarnings("ignore", category=UserWarning, module=r"umap(\.|$)")
        warnings.filterwarnings("ignore", message=".*n_jobs.*random_state.*")
        warnings.filterwarnings("ignore", message=".*disconnected.*")
        warnings.filterwarnings("ignore", message=".*[Cc]annot cache.*")
        fitted = np.asarray(reducer.fit_transform(fit), dtype=np.float32)
        if not subsample:
            coords = fitted
            if progress is not None:
                progress(n, n)
        else:
            coords = np.empty((n, 2), np.float32)
            coords[fit_idx] = fitted
            rest = np.ones(n, bool)
            rest[fit_idx] = False
            rest_idx = np.flatnonzero(rest)
            placed = m
            if progress is not None:
                progress(placed, n)
            step = max(1, int(config.transform_chunk))
            placer = _placer(reducer, fit, fitted, config)
            del fit
            for chunk, start in enumerate(range(0, len(rest_idx), step)):
                stop()
                rows = rest_idx[start : start + step]
                coords[rows] = placer(_as_f32_matrix(emb[rows]), chunk)
                placed += len(rows)
                if progress is not None:
                    progress(placed, n)
    if not np.isfinite(coords).all():
        log.warning("UMAP produced non-finite coordinates; using PCA")
        return pca_2d(_as_f32_matrix(emb))
    return coords


def _umap_version() -> str:
    try:
        from importlib.metadata import version

        return version("umap-learn")
    except Exception:  # pragma: no cover - metadata missing
        return "unknown"


def umap_cache_key(embeddings: np.ndarray, config: UMAPConfig | None = None) -> str:
    """sha256 of the embeddings (as float32 bytes + shape), the config and the umap version."""
    config = config or UMAPConfig()
    emb = np.ascontiguousarray(_as_f32_matrix(embeddings))
    h = hashlib.sha256()
    tag = f"umap2d|{emb.shape[0]}x{emb.shape[1]}|{config.key()}|{_umap_version()}|e30"
    h.update(f"{tag}|".encode())
    h.update(memoryview(emb).cast("B"))
    return h.hexdigest()


def umap_cache_path(
    embeddings: np.ndarray, config: UMAPConfig | None, cache_dir: str | os.PathLike[str]
) -> Path:
    """The ``.npy`` file that caches the UMAP of these embeddings with this config."""
    key = umap_cache_key(embeddings, config)
    return Path(cache_dir) / "projections" / f"umap-{key[:40]}.npy"


def _load(path: Path, n: int) -> np.ndarray | None:
    try:
        coords = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        log.warning("ignoring unreadable UMAP cache %s: %s", path, exc)
        return None
    if coords.shape != (n, 2) or not np.isfinite(coords).all():
        log.warning("ignoring UMAP cache %s with unexpected content %s", path, coords.shape)
        return None
    return coords.astype(np.float32, copy=False)


def load_cached_umap(
    embeddings: np.ndarray, config: UMAPConfig | None, cache_dir: str | os.PathLike[str] | None
) -> np.ndarray | None:
    """The cached UMAP for these embeddings and config, or None (never computes)."""
    if cache_dir is None:
        return None
    emb = _as_f32_matrix(embeddings)
    return _load(umap_cache_path(emb, config, cache_dir), emb.shape[0])


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def cached_umap(
    embeddings: np.ndarray,
    config: UMAPConfig | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> np.ndarray:
    """:func:`umap_2d`, cached as ``<cache_dir>/projections/umap-<key>.npy``.

    The key is a sha256 of the embedding bytes + config (+ umap-learn version), so any
    change to the embedding set or the settings computes a new map. The file is written
    atomically; an unreadable cache file is recomputed and replaced. A cache that cannot be
    written is logged and otherwise ignored.

    Parameters
    ----------
    embeddings : ndarray
        ``(N, D)`` embeddings.
    config : UMAPConfig, optional
        Settings.
    cache_dir : path, optional
        Cache root; None computes without caching.
    progress, cancelled : callable, optional
        Passed to :func:`umap_2d` when the map is computed.

    Returns
    -------
    ndarray
        ``(N, 2)`` float32 coordinates.
    """
    config = config or UMAPConfig()
    emb = _as_f32_matrix(embeddings)
    if cache_dir is None:
        return umap_2d(emb, config, progress=progress, cancelled=cancelled)
    path = umap_cache_path(emb, config, cache_dir)
    coords = _load(path, emb.shape[0])
    if coords is not None:
        log.debug("UMAP cache hit %s", path)
        return coords
    coords = umap_2d(emb, config, progress=progress, cancelled=cancelled)
    try:
        _atomic_save(path, coords)
    except OSError as exc:
        log.warning("could not write UMAP cache %s: %s", path, exc)
    return coords
