"""Tests for the synthetic galaxy generator (galaxy_explorer.train.synth)."""

from __future__ import annotations

import argparse
import csv
import math

import numpy as np
import pytest

from galaxy_explorer.train import synth
from galaxy_explorer.train.synth import (
    CLASSES,
    MAIN_CLASSES,
    GalaxyParams,
    generate,
    generate_one,
    render_bands,
    sample_params,
    to_rgb,
    write_dataset,
)


def _params(cls: str, seed: int) -> GalaxyParams:
    return sample_params(np.random.default_rng([seed, 99]), cls)


def _clean(p: GalaxyParams) -> GalaxyParams:
    """Same galaxy without background stars / neighbours (for measuring the target)."""
    p.n_stars = 0
    p.n_neighbours = 0
    return p


def _moments_ellipticity(img: np.ndarray) -> float:
    """1 - b/a from flux-weighted second moments of the pixels above 5% of the peak."""
    w = np.where(img > 0.05 * img.max(), img, 0.0)
    y, x = np.mgrid[: img.shape[0], : img.shape[1]]
    s = w.sum()
    mx, my = (w * x).sum() / s, (w * y).sum() / s
    cxx = (w * (x - mx) ** 2).sum() / s
    cyy = (w * (y - my) ** 2).sum() / s
    cxy = (w * (x - mx) * (y - my)).sum() / s
    tr, det = cxx + cyy, cxx * cyy - cxy**2
    l1 = tr / 2 + math.sqrt(max(tr * tr / 4 - det, 0))
    l2 = tr / 2 - math.sqrt(max(tr * tr / 4 - det, 0))
    return 1 - math.sqrt(max(l2, 0) / l1)


def _arm_power(img: np.ndarray, p: GalaxyParams, size: int) -> float:
    """Mean relative m=2..4 Fourier amplitude in deprojected annuli (0.8–3 scale lengths)."""
    pix = p.fov_arcsec / size
    c = (size - 1) / 2
    y, x = (np.mgrid[:size, :size] - c) * pix
    t = math.radians(p.pa_deg)
    u = (x - p.x0) * math.cos(t) + (y - p.y0) * math.sin(t)
    v = (-(x - p.x0) * math.sin(t) + (y - p.y0) * math.cos(t)) / p.axis_ratio
    r = np.hypot(u, v)
    th = np.arctan2(v, u)
    scale = p.disk_h_arcsec or p.re_arcsec
    amps = []
    for lo, hi in ((0.8, 1.5), (1.5, 2.2), (2.2, 3.0)):
        sel = (r >= lo * scale) & (r < hi * scale)
        w = img[sel]
        for m in (2, 3, 4):
            amps.append(abs((w * np.exp(-1j * m * th[sel])).sum()) / w.sum())
    return float(np.mean(amps))


def _count_peaks(img: np.ndarray, frac: float = 0.1) -> int:
    """Local maxima (3x3, after light smoothing) above ``frac`` of the global maximum."""
    f = np.fft.rfft2(img)
    n = img.shape[0]
    k2 = np.fft.fftfreq(n)[:, None] ** 2 + np.fft.rfftfreq(n)[None, :] ** 2
    sm = np.fft.irfft2(f * np.exp(-2 * (math.pi * 1.5) ** 2 * k2), s=img.shape)
    core = sm[1:-1, 1:-1]
    nb = np.stack(
        [
            sm[1 + dy : n - 1 + dy, 1 + dx : n - 1 + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if dy or dx
        ]
    )
    peaks = (core > nb.max(axis=0)) & (core > frac * sm.max())
    return int(peaks.sum())


def test_classes_and_main_classes():
    assert CLASSES == (
        "elliptical",
        "lenticular",
        "spiral",
        "barred_spiral",
        "edge_on",
        "irregular",
        "merger",
        "ring",
        "compact",
        "artifact",
    )
    assert set(MAIN_CLASSES) <= set(CLASSES)
    with pytest.raises(ValueError):
        sample_params(np.random.default_rng(0), "quasar-ish")


@pytest.mark.parametrize("cls", CLASSES)
def test_every_class_renders(cls):
    p = sample_params(np.random.default_rng(1), cls)
    assert p.cls == cls
    bands = render_bands(p, 64, np.random.default_rng(2))
    assert bands.shape == (3, 64, 64) and bands.dtype == np.float32
    assert np.isfinite(bands).all()
    assert bands[1].max() > 10 * synth.SKY_SIGMA[1]  # something visible above the noise
    rgb = to_rgb(bands)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 2


@pytest.mark.parametrize("size", [64, 96, 256])
def test_sizes(size):
    p, bands, rgb, caption = generate_one(3, seed=5, size=size)
    assert bands.shape == (3, size, size)
    assert rgb.shape == (size, size, 3)
    assert caption


def test_deterministic_and_regenerable():
    a = list(generate(4, seed=11, size=64))
    b = list(generate(4, seed=11, size=64))
    for (pa, ba, ra, ca), (pb, bb, rb, cb) in zip(a, b, strict=True):
        assert pa == pb and ca == cb
        np.testing.assert_array_equal(ba, bb)
        np.testing.assert_array_equal(ra, rb)
    # any image can be regenerated alone
    p2, b2, _, c2 = generate_one(2, seed=11, size=64, cls=CLASSES[2])
    np.testing.assert_array_equal(b2, a[2][1])
    assert c2 == a[2][3]
    # another seed gives other images
    c = next(generate(1, seed=12, size=64))
    assert not np.array_equal(c[1], a[0][1])
    # classes cycle
    assert [t[0].cls for t in a] == list(CLASSES[:4])


def test_same_scene_at_two_sizes():
    p = _params("spiral", 4)
    lo = render_bands(p, 64)
    hi = render_bands(p, 128)
    # same field of view, surface-brightness units: mean level agrees; binned high-res
    # matches low-res
    assert abs(lo.mean() - hi.mean()) / hi.mean() < 0.05
    down = hi.reshape(3, 64, 2, 64, 2).mean(axis=(2, 4))
    assert np.corrcoef(down.ravel(), lo.ravel())[0, 1] > 0.98


def test_edge_on_much_flatter_than_face_on_spiral():
    e_edge = [
        _moments_ellipticity(render_bands(_clean(_params("edge_on", s)), 96)[1]) for s in range(4)
    ]
    spirals = []
    s = 0
    while len(spirals) < 4:
        p = _clean(_params("spiral", s))
        s += 1
        if p.inclination_deg < 35:
            spirals.append(_moments_ellipticity(render_bands(p, 96)[1]))
    assert min(e_edge) > 0.6
    assert max(spirals) < 0.35
    assert np.mean(e_edge) > np.mean(spirals) + 0.4


def test_spirals_have_arm_power_ellipticals_do_not():
    sp = [
        _arm_power(render_bands(_clean(_params("spiral", s)), 96)[1], _params("spiral", s), 96)
        for s in range(4)
    ]
    el = [
        _arm_power(
            render_bands(_clean(_params("elliptical", s)), 96)[1], _params("elliptical", s), 96
        )
        for s in range(4)
    ]
    assert min(sp) > max(el)
    assert np.mean(sp) > 2.5 * np.mean(el)


def test_mergers_have_two_peaks_ellipticals_one():
    two = [_count_peaks(render_bands(_clean(_params("merger", s)), 96)[1]) >= 2 for s in range(6)]
    one = [
        _count_peaks(render_bands(_clean(_params("elliptical", s)), 96)[1]) == 1 for s in range(6)
    ]
    assert sum(two) >= 5
    assert all(one)


def test_colours_red_ellipticals_blue_irregulars():
    def g_minus_r(cls):
        vals = []
        for s in range(3):
            b = render_bands(_clean(_params(cls, s)), 64)
            vals.append(-2.5 * math.log10(b[0].sum() / b[1].sum()))
        return np.mean(vals)

    assert g_minus_r("elliptical") > g_minus_r("irregular") + 0.3


def test_write_dataset_fits_and_jpeg(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS
    from PIL import Image

    csv_path = write_dataset(
        tmp_path / "ds", n=10, seed=3, size=64, formats=("fits", "jpg"), fits_fraction=0.5
    )
    assert csv_path == tmp_path / "ds" / "truth.csv"
    rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    assert len(rows) == 10
    assert {"path", "class", "caption"} <= set(rows[0])
    assert [r["class"] for r in rows] == list(CLASSES)
    exts = {r["path"].rsplit(".", 1)[1] for r in rows}
    assert exts == {"fits", "jpg"}
    n_fits = sum(r["path"].endswith(".fits") for r in rows)
    assert 3 <= n_fits <= 7
    for r in rows:
        f = tmp_path / "ds" / r["path"]
        assert f.is_file()
        if f.suffix == ".jpg":
            with Image.open(f) as im:
                assert im.size == (64, 64) and im.mode == "RGB"
            continue
        with fits.open(f, memmap=False) as hdul:
            data = hdul[0].data
            h = hdul[0].header
            assert data.shape == (3, 64, 64) and np.isfinite(data).all()
            assert h["BUNIT"] == "nanomaggy"
            assert [h["BAND0"], h["BAND1"], h["BAND2"]] == ["g", "r", "z"]
            w = WCS(h).celestial
            assert w.wcs.ctype[0] == "RA---TAN" and w.wcs.ctype[1] == "DEC--TAN"
            ra, dec = w.wcs_pix2world([[31.5, 31.5]], 0)[0]
            assert abs(ra - float(r["ra"])) < 1e-4 and abs(dec - float(r["dec"])) < 1e-4
            pix = abs(w.proj_plane_pixel_scales()[0].to_value("arcsec"))
            assert pix == pytest.approx(float(r["fov_arcsec"]) / 64, rel=1e-3)
            assert h["PIXSCALE"] == pytest.approx(pix, rel=1e-3)
            # FITS is stored south-up (row 0 = bottom); flipped back it is the rendered image
            i = int(r["index"])
            _, bands, _, _ = generate_one(i, seed=3, size=64, cls=r["class"])
            np.testing.assert_allclose(data[:, ::-1, :], bands, rtol=1e-6)


def test_write_dataset_png_only(tmp_path):
    csv_path = write_dataset(tmp_path, n=3, seed=1, size=64, formats=("png",), classes=["ring"])
    rows = list(csv.DictReader(open(csv_path, encoding="utf-8")))
    assert all(r["path"].endswith(".png") and r["class"] == "ring" for r in rows)
    with pytest.raises(ValueError):
        write_dataset(tmp_path, n=1, seed=1, formats=("gif",))
    with pytest.raises(ValueError):
        write_dataset(tmp_path, n=1, seed=1, classes=["nebula"])


def test_cli_subcommand(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="galaxy-explorer")
    sub = parser.add_subparsers(dest="command")
    synth.add_synth_command(sub)
    args = parser.parse_args(
        ["synth", str(tmp_path / "out"), "--n", "3", "--seed", "7", "--size", "64"]
    )
    assert args.func(args) == 0
    assert (tmp_path / "out" / "truth.csv").is_file()
    assert len(list((tmp_path / "out" / "images").iterdir())) == 3
    bad = parser.parse_args(["synth", str(tmp_path / "bad"), "--n", "2", "--classes", "nope"])
    assert synth.run_synth(bad) == 2
    assert "nope" in capsys.readouterr().err
    # python -m entry
    assert synth.main([str(tmp_path / "m"), "--n", "2", "--size", "64"]) == 0


def test_to_rgb_validates_and_handles_nan():
    with pytest.raises(ValueError):
        to_rgb(np.zeros((64, 64)))
    b = np.zeros((3, 8, 8), np.float32)
    b[0, 0, 0] = np.nan
    assert to_rgb(b).shape == (8, 8, 3)


def test_speed_smoke():
    import time

    t = time.perf_counter()
    list(generate(20, seed=0, size=128))
    dt = time.perf_counter() - t
    assert dt < 10  # generous: thousands per minute expected; this only catches regressions


def _radial_profile(img: np.ndarray, p: GalaxyParams, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean brightness in deprojected annuli around the target centre (radius in arcsec)."""
    pix = p.fov_arcsec / size
    c = (size - 1) / 2
    y, x = (np.mgrid[:size, :size] - c) * pix
    t = math.radians(p.pa_deg)
    u = (x - p.x0) * math.cos(t) + (y - p.y0) * math.sin(t)
    v = (-(x - p.x0) * math.sin(t) + (y - p.y0) * math.cos(t)) / p.axis_ratio
    r = np.hypot(u, v)
    edges = np.arange(0, r.max(), pix)
    idx = np.digitize(r.ravel(), edges)
    prof = np.bincount(idx, img.ravel(), len(edges) + 1) / np.maximum(
        np.bincount(idx, minlength=len(edges) + 1), 1
    )
    return edges[:-1] + pix / 2, prof[1 : len(edges)]


def test_rings_are_brighter_than_their_inner_gap():
    for s in range(4):
        p = _clean(_params("ring", s))
        p.extra["nucleus_offset"] = 0.0
        r, prof = _radial_profile(render_bands(p, 128)[1], p, 128)
        at_ring = prof[np.argmin(abs(r - p.ring_radius_arcsec))]
        gap = prof[np.argmin(abs(r - 0.55 * p.ring_radius_arcsec))]
        assert at_ring > 1.3 * gap, (s, at_ring, gap)


def test_compact_sources_are_psf_sized_and_galaxies_are_not():
    def fwhm_like(p):
        img = render_bands(_clean(p), 128)[1]
        pix = p.fov_arcsec / 128
        return math.sqrt((img > 0.5 * img.max()).sum() / math.pi) * 2 * pix  # arcsec

    for s in range(3):
        pc = _params("compact", s)
        assert fwhm_like(pc) < 1.6 * pc.psf_fwhm_arcsec
        pe = _params("elliptical", s)
        assert fwhm_like(pe) > fwhm_like(pc)


def test_fits_cube_renders_like_its_rgb_twin(tmp_path):
    """The app's FITS loader shows a synthetic grz cube exactly as the training RGB looks."""
    from galaxy_explorer.core.imaging import load_rgb
    from galaxy_explorer.train.synth import _write_fits, generate_one

    params, bands, rgb, caption = generate_one(3, seed=11, size=64)
    _write_fits(tmp_path / "g.fits", bands, params, caption)
    shown = load_rgb(tmp_path / "g.fits")
    assert shown.shape == rgb.shape
    assert np.abs(shown.astype(int) - rgb.astype(int)).max() <= 1
