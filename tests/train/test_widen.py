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


def test_a_share_of_the_stream_is_rendered_like_the_apps_fits_view():
    """``app_render_fraction``: those cutouts are the galaxy's bands rendered exactly as the
    app renders a 3-band FITS file; every other cutout is unchanged, captions too."""
    from galaxy_explorer.train import synth
    from galaxy_explorer.train._synth_bridge import app_render
    from galaxy_explorer.train.widen import uses_app_render

    kw = dict(seed=5, render_sizes=(48,), classes=["spiral", "elliptical", "edge_on"])
    plain = render_widened(12, **kw)
    mixed = render_widened(12, app_render_fraction=0.5, **kw)
    app = [uses_app_render(i, 0.5) for i in range(12)]
    assert 0 < sum(app) < 12
    assert plain[1] == mixed[1] and plain[2] == mixed[2]
    for i, is_app in enumerate(app):
        same = plain[0][i].tobytes() == mixed[0][i].tobytes()
        assert same != is_app, i
        if is_app:
            widened = (i * 0.6180339887498949 + 0.5) % 1.0 < 0.7  # render_widened's default
            _p, rgb, _c = generate_widened(
                i, 5, 48, kw["classes"][i % 3], widen=widened, app_render=True
            )
            np.testing.assert_array_equal(mixed[0][i], rgb)
    # an app-rendered cutout is the app's rendering of the generator's bands
    params = synth.sample_params(np.random.default_rng([5, 0, 10]), "spiral")
    bands = synth.render_bands(params, 48, np.random.default_rng([5, 0, 12]))
    _p, rgb, _c = generate_widened(0, 5, 48, "spiral", widen=False, app_render=True)
    np.testing.assert_array_equal(rgb, app_render(bands))
    # the share holds within every class, independent of the widened share
    share = np.array([uses_app_render(i, 0.3) for i in range(3000)])
    cls = np.arange(3000) % 10
    assert all(abs(share[cls == k].mean() - 0.3) < 0.02 for k in range(10))


def test_iter_widened_yields_the_stream_in_order_chunk_by_chunk():
    from galaxy_explorer.train.widen import iter_widened

    kw = dict(seed=2, render_sizes=(40, 48), classes=["irregular", "merger"])
    whole = render_widened(7, app_render_fraction=0.3, **kw)
    chunks = list(iter_widened(7, app_render_fraction=0.3, chunk=3, **kw))
    assert [len(c[0]) for c in chunks] == [3, 3, 1]
    assert [r.tobytes() for c in chunks for r in c[0]] == [r.tobytes() for r in whole[0]]
    assert [x for c in chunks for x in c[1]] == whole[1]
