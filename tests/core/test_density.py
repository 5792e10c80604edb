"""Class-mix density images and fast polygon / rectangle selection (core, no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_explorer.core.density import (
    PointIndex,
    bin_classes,
    density_image,
    mix_colors,
    points_in_polygon,
)


def _brute_even_odd(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Reference: every point against every edge (the even-odd rule, no shortcuts)."""
    x, y = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    n = len(poly)
    for k in range(n):
        x1, y1 = poly[k]
        x2, y2 = poly[(k + 1) % n]
        if y1 == y2:
            continue
        cond = (y1 > y) != (y2 > y)
        xcross = x1 + (y - y1) * (x2 - x1) / np.where(cond, y2 - y1, 1.0)
        inside ^= cond & (x < xcross)
    return inside


def _polygons(rng: np.random.Generator):
    yield "square", np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    yield "triangle", np.array([[-1, -1], [1.5, -0.5], [0, 1.2]], float)
    # concave star (sorted angles, alternating radii)
    k = 14
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
    r = np.where(np.arange(k) % 2, 0.4, 1.6)
    yield "star", np.c_[r * np.cos(ang), r * np.sin(ang)]
    # self-intersecting: a bow tie and a pentagram (even-odd leaves its centre out)
    yield "bowtie", np.array([[-1, -1], [1, 1], [1, -1], [-1, 1]], float)
    ang = np.pi / 2 + np.arange(5) * 4 * np.pi / 5
    yield "pentagram", 1.5 * np.c_[np.cos(ang), np.sin(ang)]
    for i in range(6):  # random walks: concave, often self-intersecting lassos
        m = int(rng.integers(3, 300))
        yield f"random{i}", np.cumsum(rng.normal(scale=0.3, size=(m, 2)), axis=0)


def test_polygon_selection_matches_brute_force_on_random_polygons():
    rng = np.random.default_rng(3)
    xy = rng.normal(size=(20_000, 2))
    index = PointIndex(xy)
    for name, poly in _polygons(rng):
        ref = _brute_even_odd(xy, poly)
        mask = points_in_polygon(xy, poly)
        assert (mask == ref).all(), name
        assert index.in_polygon(poly).tolist() == np.flatnonzero(ref).tolist(), name
    # the pentagram's centre is covered twice: out under even-odd
    _, star = list(_polygons(rng))[4]
    assert not points_in_polygon(np.array([[0.0, 0.0]]), star)[0]


def test_degenerate_polygons_select_nothing():
    xy = np.random.default_rng(0).normal(size=(100, 2))
    index = PointIndex(xy)
    for poly in (np.zeros((0, 2)), np.array([[0, 0], [1, 1]]), np.array([[0, 0]] * 5)):
        assert not points_in_polygon(xy, poly).any()
        assert len(index.in_polygon(poly)) == 0
    assert len(PointIndex(np.zeros((0, 2))).in_polygon(np.eye(3)[:, :2])) == 0


def test_rect_and_nearest_match_brute_force():
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(5000, 2))
    index = PointIndex(xy)
    for _ in range(20):
        x0, x1 = np.sort(rng.normal(size=2))
        y0, y1 = np.sort(rng.normal(size=2))
        ref = np.flatnonzero(
            (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
        )
        assert index.in_rect(x1, x0, y1, y0).tolist() == ref.tolist()
        assert index.count_in_rect(x0, x1, y0, y1) == len(ref)
        px, py = rng.normal(size=2)
        d2 = ((xy[:, 0] - px) / 0.01) ** 2 + ((xy[:, 1] - py) / 0.02) ** 2
        best = int(np.argmin(d2))
        assert index.nearest(px, py, 0.01, 0.02) == best
        lim = 5.0
        assert index.nearest(px, py, 0.01, 0.02, max_dist=lim) == (
            best if d2[best] <= lim * lim else -1
        )


def test_polygon_selection_never_tests_every_point_against_every_edge(monkeypatch):
    """A 1000-vertex lasso over 200k points touches each point a few times, not 1000."""
    import galaxy_explorer.core.density as density

    rng = np.random.default_rng(5)
    xy = rng.normal(size=(200_000, 2))
    ang = np.linspace(0, 2 * np.pi, 1000, endpoint=False)
    poly = np.c_[np.cos(ang) * (1 + 0.3 * np.sin(7 * ang)), np.sin(ang)]
    touched = []
    real = density._crossings

    def counting(cx, cy, p):
        lo = np.minimum(p[:, 1], np.roll(p[:, 1], -1))
        hi = np.maximum(p[:, 1], np.roll(p[:, 1], -1))
        s = np.searchsorted(cy, lo)
        e = np.searchsorted(cy, hi)
        touched.append(int((e - s).sum()))
        return real(cx, cy, p)

    monkeypatch.setattr(density, "_crossings", counting)
    got = PointIndex(xy).in_polygon(poly)
    assert got.tolist() == np.flatnonzero(_brute_even_odd(xy, poly)).tolist()
    # every horizontal line crosses this closed curve a few times (≤ 6 here)
    assert touched and touched[0] <= 6 * len(xy)


def test_bins_count_classes_and_colours_mix_by_count():
    # bin (0, 0): 3 red + 1 blue; bin (0, 1): 2 blue; (1, 0): empty; (1, 1): 1 red
    x = np.array([0.1, 0.2, 0.3, 0.4, 1.5, 1.6, 1.7])
    y = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.5])
    cat = np.array([0, 0, 0, 1, 1, 1, 0])
    x[-1] = 1.5
    counts = bin_classes(x, y, cat, 2, (0.0, 0.0, 2.0, 2.0), (2, 2))
    assert counts.shape == (2, 2, 2)
    assert counts[0, 0].tolist() == [3, 1]
    assert counts[0, 1].tolist() == [0, 2]
    assert counts[1, 0].tolist() == [0, 0]
    assert counts[1, 1].tolist() == [1, 0]
    colors = np.array([[255, 0, 0], [0, 0, 255]])
    rgba = mix_colors(counts, colors, min_brightness=1.0)
    r, g, b, a = rgba[0, 0].astype(int)
    assert abs(r - 191) <= 1 and g == 0 and abs(b - 64) <= 1  # 3:1 red:blue
    assert rgba[0, 1, :3].tolist() == [0, 0, 255]
    assert rgba[1, 1, :3].tolist() == [255, 0, 0]
    assert rgba[1, 0, 3] == 0  # empty bin: transparent
    # more points, more opaque: the 4-point bin is the densest
    assert rgba[0, 0, 3] == 255 and 0 < rgba[1, 1, 3] < rgba[0, 1, 3] < 255


def test_density_image_drops_points_outside_and_bad_classes():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2, 10_000))
    cat = rng.integers(-1, 4, 10_000)
    img = density_image(x, y, cat, np.eye(3)[:, :3] * 255, (-1.0, -1.0, 2.0, 2.0), (40, 50))
    inside = (x >= -1) & (x < 1) & (y >= -1) & (y < 1) & (cat >= 0) & (cat < 3)
    assert img.rgba.shape == (40, 50, 4) and img.counts.shape == (40, 50)
    assert img.n_points == int(inside.sum())
    # bins are (row = y, column = x)
    iy = np.floor((y[inside] + 1) * 20).astype(int)
    ix = np.floor((x[inside] + 1) * 25).astype(int)
    ref = np.zeros((40, 50), int)
    np.add.at(ref, (iy, ix), 1)
    assert (img.counts == ref).all()


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_inputs(n):
    xy = np.zeros((n, 2))
    assert PointIndex(xy).nearest(0, 0) == (0 if n else -1)
    img = density_image(xy[:, 0], xy[:, 1], np.zeros(n, int), [[1, 2, 3]], (-1, -1, 2, 2), (3, 3))
    assert img.n_points == n


def test_row_set_helpers_match_numpy():
    from galaxy_explorer.core._arrays import difference_rows, union_rows, unique_rows

    rng = np.random.default_rng(7)
    for _ in range(20):
        a = rng.integers(-5, 300, int(rng.integers(0, 200)))
        b = rng.integers(-5, 300, int(rng.integers(0, 200)))
        assert unique_rows(a).tolist() == np.unique(a).tolist()
        assert union_rows(a, b).tolist() == np.union1d(a, b).tolist()
        assert difference_rows(a, b).tolist() == np.setdiff1d(a, b).tolist()
    assert unique_rows([]).tolist() == [] and unique_rows([3]).tolist() == [3]


def test_halo_marks_the_bins_of_marked_points_and_a_rim_around_them():
    from galaxy_explorer.core.density import halo_image

    colors = np.array([[255, 0, 0], [0, 0, 255]], float)
    # two marked points: class 0 in bin (y=2, x=2), class 1 in bin (y=2, x=7); one point
    # with no mark (-1) in bin (7, 7); a 10 x 10 grid over [0, 10)^2
    x = np.array([2.5, 7.5, 7.5])
    y = np.array([2.5, 2.5, 7.5])
    cat = np.array([0, 1, -1])
    rgba, core = halo_image(x, y, cat, colors, (0, 0, 10, 10), (10, 10), alpha=100, rim_alpha=200)
    assert core.sum() == 2 and core[2, 2] == 1 and core[2, 7] == 1
    a = rgba[..., 3]
    assert a[2, 2] == 100 and a[2, 7] == 100  # the marked bins
    ring = np.zeros((10, 10), bool)
    ring[1:4, 1:4] = ring[1:4, 6:9] = True
    ring[2, 2] = ring[2, 7] = False
    assert (a[ring] == 200).all()  # a one-bin rim all round
    assert (a[~ring & (core == 0)] == 0).all()  # nothing elsewhere, nothing for no mark
    assert tuple(rgba[2, 2, :3]) == (255, 0, 0) and tuple(rgba[1, 8, :3]) == (0, 0, 255)
    # spread 0: only the marked bins; nothing marked: fully transparent
    rgba0, _ = halo_image(x, y, cat, colors, (0, 0, 10, 10), (10, 10), spread=0)
    assert int((rgba0[..., 3] > 0).sum()) == 2
    empty, core0 = halo_image(x, y, np.full(3, -1), colors, (0, 0, 10, 10), (10, 10))
    assert not core0.any() and not empty[..., 3].any()
