"""The widened synthetic domain (train/widen.py) and the real-image proxies' helpers."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_explorer.train.widen import (
    generate_widened,
    photo_effects,
    render_widened,
    widen_params,
)


def test_widened_stream_is_deterministic_and_varied():
    a = render_widened(6, seed=3, render_sizes=(64,), classes=["spiral", "elliptical"])
    b = render_widened(6, seed=3, render_sizes=(64,), classes=["spiral", "elliptical"], workers=1)
    assert [x.tobytes() for x in a[0]] == [x.tobytes() for x in b[0]]
    assert a[1] == b[1] and a[2] == ["spiral", "elliptical"] * 3
    assert all(r.dtype == np.uint8 and r.ndim == 3 and r.shape[2] == 3 for r in a[0])
    assert len({r.tobytes() for r in a[0]}) == 6


def test_inclined_spirals_stay_spirals_and_edge_on_stays_thin():
    from galaxy_explorer.train import synth

    qs = []
    for i in range(200):
        p = synth.sample_params(np.random.default_rng([1, i]), "spiral")
        widen_params(p, np.random.default_rng([2, i]))
        assert p.cls == "spiral"
        qs.append(p.axis_ratio)
    assert min(qs) < 0.45  # strongly inclined spirals are in the widened set
    assert min(qs) > 0.25  # ... but never as thin as an edge-on disk
    for i in range(50):
        p = synth.sample_params(np.random.default_rng([3, i]), "edge_on")
        widen_params(p, np.random.default_rng([4, i]))
        assert p.axis_ratio <= 0.25


def test_photo_effects_keep_an_rgb_image():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for i in range(20):
        out = photo_effects(rgb, np.random.default_rng(i))
        assert out.dtype == np.uint8 and out.shape[2] == 3 and 16 <= out.shape[0] <= 64
    params, rgb2, cap = generate_widened(0, 1, 64, "edge_on")
    assert params.cls == "edge_on" and isinstance(cap, str) and cap


def test_hdf_labelled_cutouts_match_their_sources():
    pytest.importorskip("skimage")
    from galaxy_explorer.train.real_proxies import HDF_LABELS, hdf_cutouts, hdf_labelled

    rgbs, labels = hdf_labelled()
    assert len(rgbs) == len(HDF_LABELS) == 27
    assert set(labels) == {"spiral", "elliptical", "irregular", "edge_on"}
    centres = {(c[0], c[1]) for c in hdf_cutouts()}
    assert all((cy, cx) in centres for cy, cx, _h, _l in HDF_LABELS)  # detection unchanged
