"""The map at scale, without Qt: class-mix density images and fast spatial selection.

Two pieces, both plain numpy and safe to run on a worker thread:

- :func:`bin_classes` and :func:`mix_colors` turn (x, y, class) points into a 2-D histogram
  image whose bins are coloured by the mix of the classes in them (each class colour
  weighted by its count) and made brighter / more opaque by the log of the count. One
  ``np.bincount`` over a combined ``(bin, class)`` index does the counting.
- :func:`halo_image` draws marks over such an image (the few-shot suggestions' halos): the
  bins holding marked points, grown by a bin or two, in the mix of their marks' colours.
- :class:`PointIndex` keeps the points sorted by y once, so that the points in a rectangle
  (a view, a box) are one ``searchsorted`` slice plus an x mask, and the points in a polygon
  (a lasso) are found edge by edge on the slice of points whose y the edge spans: the work
  is the number of edge crossings, not points × edges. :func:`points_in_polygon` is the
  same even-odd test for a plain array of points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DensityImage",
    "PointIndex",
    "bin_classes",
    "density_image",
    "halo_image",
    "mix_colors",
    "points_in_polygon",
]


@dataclass(frozen=True)
class DensityImage:
    """A class-mix density image of the points in ``rect``.

    Attributes
    ----------
    rgba : numpy.ndarray
        ``(ny, nx, 4)`` uint8; row 0 is the lowest y, column 0 the lowest x.
    counts : numpy.ndarray
        ``(ny, nx)`` points per bin.
    rect : tuple of float
        ``(x0, y0, width, height)`` in data coordinates.
    n_points : int
        Points binned (those inside ``rect`` with a valid class).
    """

    rgba: np.ndarray
    counts: np.ndarray
    rect: tuple[float, float, float, float]
    n_points: int


def _bin_index(
    x: np.ndarray, y: np.ndarray, rect: tuple[float, float, float, float], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat bin index (row-major, ``iy * nx + ix``) and the mask of points inside."""
    x0, y0, w, h = (float(v) for v in rect)
    ny, nx = shape
    ix = np.floor((np.asarray(x, dtype=np.float64) - x0) * (nx / (w or 1e-300)))
    iy = np.floor((np.asarray(y, dtype=np.float64) - y0) * (ny / (h or 1e-300)))
    ok = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    flat = np.where(ok, iy, 0).astype(np.int64) * nx + np.where(ok, ix, 0).astype(np.int64)
    return flat, ok


def bin_classes(
    x: np.ndarray,
    y: np.ndarray,
    cat: np.ndarray,
    n_classes: int,
    rect: tuple[float, float, float, float],
    shape: tuple[int, int],
) -> np.ndarray:
    """Count points per (bin, class) in one ``np.bincount``.

    Parameters
    ----------
    x, y : numpy.ndarray
        Point coordinates, shape (N,).
    cat : numpy.ndarray
        Class index per point; values outside ``[0, n_classes)`` are not counted.
    n_classes : int
        Number of classes.
    rect : tuple of float
        ``(x0, y0, width, height)``: the binned region (points outside are dropped).
    shape : tuple of int
        ``(ny, nx)`` bins.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, n_classes)`` int64 counts.
    """
    ny, nx = int(shape[0]), int(shape[1])
    c = max(int(n_classes), 1)
    flat, ok = _bin_index(x, y, rect, (ny, nx))
    cat = np.asarray(cat)
    ok &= (cat >= 0) & (cat < c)
    idx = flat[ok] * c + cat[ok].astype(np.int64)
    return np.bincount(idx, minlength=ny * nx * c).reshape(ny, nx, c)


def mix_colors(
    counts: np.ndarray,
    colors: np.ndarray,
    *,
    min_alpha: float = 0.45,
    min_brightness: float = 0.7,
) -> np.ndarray:
    """Colour each bin by its class mix; brightness and opacity follow its log count.

    Parameters
    ----------
    counts : numpy.ndarray
        ``(ny, nx, C)`` counts from :func:`bin_classes`.
    colors : numpy.ndarray
        ``(C, 3)`` or ``(C, 4)`` RGB(A) colours, 0-255, one per class.
    min_alpha, min_brightness : float
        Opacity and brightness of a bin holding one point (the densest bin gets 1).

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, 4)`` uint8 RGBA; empty bins are fully transparent.
    """
    ny, nx, c = counts.shape
    cols = np.asarray(colors, dtype=np.float32)[:c, :3]
    flat = counts.reshape(-1, c).astype(np.float32)
    total = flat.sum(axis=1)
    has = total > 0
    mix = flat @ cols / np.maximum(total, 1.0)[:, None]  # count-weighted mean colour
    peak = float(total.max()) if len(total) else 0.0
    level = np.log1p(total) / np.log1p(peak) if peak > 0 else np.zeros_like(total)
    # a lone point is still visible; the densest bins are full-strength
    bright = min_brightness + (1.0 - min_brightness) * level
    alpha = np.where(has, min_alpha + (1.0 - min_alpha) * level, 0.0)
    out = np.empty((ny * nx, 4), dtype=np.uint8)
    out[:, :3] = np.clip(mix * bright[:, None], 0, 255).astype(np.uint8)
    out[:, 3] = np.clip(alpha * 255.0, 0, 255).astype(np.uint8)
    return out.reshape(ny, nx, 4)


def density_image(
    x: np.ndarray,
    y: np.ndarray,
    cat: np.ndarray,
    colors: np.ndarray,
    rect: tuple[float, float, float, float],
    shape: tuple[int, int],
) -> DensityImage:
    """:func:`bin_classes` then :func:`mix_colors`, as one :class:`DensityImage`."""
    counts = bin_classes(x, y, cat, len(colors), rect, shape)
    total = counts.sum(axis=2)
    return DensityImage(
        rgba=mix_colors(counts, colors),
        counts=total,
        rect=tuple(float(v) for v in rect),  # type: ignore[arg-type]
        n_points=int(total.sum()),
    )


def halo_image(
    x: np.ndarray,
    y: np.ndarray,
    cat: np.ndarray,
    colors: np.ndarray,
    rect: tuple[float, float, float, float],
    shape: tuple[int, int],
    *,
    spread: int = 1,
    alpha: int = 150,
    rim_alpha: int = 230,
    totals: np.ndarray | None = None,
    min_alpha: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """A halo over a density image around the bins that hold marked points.

    The bins holding points of a class are grown by ``spread`` bins each way (a box sum of
    the per-class counts, so overlapping halos mix their colours by count); the grown part
    (the rim) is more opaque than the bins themselves, so the halo reads as a ring over the
    class colours below, as the halo around a point does in point mode.

    Parameters
    ----------
    x, y, cat : numpy.ndarray
        The marked points and the class of their mark (outside ``[0, C)``: not drawn).
    colors : numpy.ndarray
        ``(C, 3)`` RGB colours, 0-255.
    rect, shape
        The density image's region and ``(ny, nx)`` bins (:func:`density_image`).
    spread : int
        Bins the halo reaches beyond its points' bins.
    alpha, rim_alpha : int
        Opacity (0-255) over the marked bins and over the rim around them.
    totals : numpy.ndarray, optional
        ``(ny, nx)`` all points per bin (the density image's counts): a marked bin's
        opacity then follows the share of its points that are marked, from ``min_alpha``
        (a few) to ``alpha`` (all), so that a bin with one suggestion among hundreds of
        points is tinted, not painted over.
    min_alpha : int
        Opacity of a marked bin whose share of marked points is ~0 (with ``totals``).

    Returns
    -------
    rgba : numpy.ndarray
        ``(ny, nx, 4)`` uint8, transparent where there is no halo.
    counts : numpy.ndarray
        ``(ny, nx)`` marked points per bin (before growing).
    """
    ny, nx = int(shape[0]), int(shape[1])
    c = max(len(colors), 1)
    counts = bin_classes(x, y, cat, c, rect, (ny, nx))
    core = counts.sum(axis=2)
    grown = counts.astype(np.float32)
    s = max(int(spread), 0)
    if s and core.any():
        # separable box sum over (2s + 1) bins along x, then y: a few array adds
        pad = np.pad(grown, ((0, 0), (s, s), (0, 0)))
        grown = sum(pad[:, k : k + nx] for k in range(2 * s + 1))
        pad = np.pad(grown, ((s, s), (0, 0), (0, 0)))
        grown = sum(pad[k : k + ny] for k in range(2 * s + 1))
    rgba = mix_colors(grown, colors, min_alpha=1.0, min_brightness=1.0)
    has = grown.sum(axis=2) > 0
    inner = np.full(core.shape, float(alpha))
    if totals is not None and np.shape(totals) == core.shape:
        share = np.clip(core / np.maximum(np.asarray(totals, dtype=np.float64), 1.0), 0.0, 1.0)
        inner = min_alpha + (alpha - min_alpha) * np.sqrt(share)
    rgba[..., 3] = np.where(has, np.where(core > 0, inner, rim_alpha), 0).astype(np.uint8)
    return rgba, core


def _crossings(cx: np.ndarray, cy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd inside test of points sorted by ``cy`` (ascending), edge by edge.

    For each edge only the points whose y it spans are touched (one ``searchsorted`` slice),
    so the cost is the number of (point, crossing edge) pairs, not points × edges.
    """
    inside = np.zeros(len(cx), dtype=bool)
    px, py = poly[:, 0], poly[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    lo = np.minimum(py, qy)
    hi = np.maximum(py, qy)
    starts = np.searchsorted(cy, lo, side="left")
    ends = np.searchsorted(cy, hi, side="left")
    for k in np.flatnonzero((ends > starts) & (py != qy)):
        s, e = int(starts[k]), int(ends[k])
        x1, y1, x2, y2 = px[k], py[k], qx[k], qy[k]
        # the same crossing formula (and rounding) as the brute-force even-odd test
        xcross = x1 + (cy[s:e] - y1) * (x2 - x1) / (y2 - y1)
        inside[s:e] ^= cx[s:e] < xcross
    return inside


def _as_polygon(poly: np.ndarray) -> np.ndarray:
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    return p[np.isfinite(p).all(axis=1)]


def points_in_polygon(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Boolean mask of points ``xy`` (N, 2) inside polygon ``poly`` (M, 2) (even-odd rule).

    A bounding-box prefilter, then :func:`_crossings` on the candidates sorted by y.
    Self-intersecting polygons follow the even-odd rule (a twice-covered region is out).
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    poly = _as_polygon(poly)
    inside = np.zeros(len(xy), dtype=bool)
    if len(poly) < 3 or not len(xy):
        return inside
    (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
    x, y = xy[:, 0], xy[:, 1]
    cand = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    if not len(cand):
        return inside
    order = cand[np.argsort(y[cand], kind="stable")]
    inside[order] = _crossings(x[order], y[order], poly)
    return inside


class PointIndex:
    """Points sorted by y once, for fast rectangle, polygon and nearest-point queries.

    Queries return *positions* into the ``xy`` array given to the constructor, sorted.

    Parameters
    ----------
    xy : numpy.ndarray
        ``(N, 2)`` finite coordinates.
    """

    def __init__(self, xy: np.ndarray) -> None:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        self.order = np.argsort(xy[:, 1], kind="stable")
        self.xs = np.ascontiguousarray(xy[self.order, 0])
        self.ys = np.ascontiguousarray(xy[self.order, 1])
        self.n = len(xy)
        if self.n:
            self.lo = (float(self.xs.min()), float(self.ys[0]))
            self.hi = (float(self.xs.max()), float(self.ys[-1]))
        else:
            self.lo = self.hi = (0.0, 0.0)

    def _sorted_positions(self, local: np.ndarray) -> np.ndarray:
        """Positions ``self.order[local]`` in ascending order: a sort when few, a mask
        over all points when many (a 500k-row sort costs more than a 1M-bool mask)."""
        pos = self.order[local]
        if len(pos) * 16 < self.n:
            return np.sort(pos)
        mask = np.zeros(self.n, dtype=bool)
        mask[pos] = True
        return np.flatnonzero(mask)

    def _yslice(self, y0: float, y1: float) -> tuple[int, int]:
        a = int(np.searchsorted(self.ys, y0, side="left"))
        b = int(np.searchsorted(self.ys, y1, side="right"))
        return a, max(a, b)

    def _rect_local(self, x0: float, x1: float, y0: float, y1: float) -> tuple[int, np.ndarray]:
        x0, x1 = sorted((float(x0), float(x1)))
        y0, y1 = sorted((float(y0), float(y1)))
        a, b = self._yslice(y0, y1)
        xs = self.xs[a:b]
        return a, np.flatnonzero((xs >= x0) & (xs <= x1))

    def in_rect(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Sorted positions of the points with ``x0 <= x <= x1`` and ``y0 <= y <= y1``."""
        a, local = self._rect_local(x0, x1, y0, y1)
        return self._sorted_positions(a + local)

    def count_in_rect(self, x0: float, x1: float, y0: float, y1: float) -> int:
        """Number of points in the rectangle (no positions built)."""
        x0, x1 = sorted((float(x0), float(x1)))
        y0, y1 = sorted((float(y0), float(y1)))
        a, b = self._yslice(y0, y1)
        xs = self.xs[a:b]
        return int(np.count_nonzero((xs >= x0) & (xs <= x1)))

    def in_polygon(self, poly: np.ndarray) -> np.ndarray:
        """Sorted positions of the points inside ``poly`` (M, 2), even-odd rule."""
        poly = _as_polygon(poly)
        if len(poly) < 3 or not self.n:
            return np.zeros(0, dtype=np.int64)
        (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
        x0, x1 = sorted((float(x0), float(x1)))
        a, b = self._yslice(float(y0), float(y1))
        xs = self.xs[a:b]
        m = (xs >= x0) & (xs <= x1)
        cx, cy = xs[m], self.ys[a:b][m]  # candidates, still sorted by y
        if not len(cx):
            return np.zeros(0, dtype=np.int64)
        inside = _crossings(cx, cy, poly)
        return self._sorted_positions(a + np.flatnonzero(m)[inside])

    def nearest(
        self, x: float, y: float, sx: float = 1.0, sy: float = 1.0, max_dist: float = np.inf
    ) -> int:
        """Position of the point nearest to (x, y) in units scaled by (sx, sy), or -1.

        ``max_dist`` is in the scaled units (pixels when ``sx, sy`` are the data size of a
        pixel); only the points within ``max_dist * sy`` in y are looked at.
        """
        if not self.n:
            return -1
        sx, sy = float(sx) or 1.0, float(sy) or 1.0
        if np.isfinite(max_dist):
            a, b = self._yslice(y - max_dist * sy, y + max_dist * sy)
        else:
            a, b = 0, self.n
        if b <= a:
            return -1
        d2 = ((self.xs[a:b] - x) / sx) ** 2 + ((self.ys[a:b] - y) / sy) ** 2
        i = int(np.argmin(d2))
        if d2[i] > max_dist * max_dist:
            return -1
        return int(self.order[a + i])
