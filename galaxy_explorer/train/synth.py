"""Synthetic galaxy cutouts in g, r, z-like bands (vectorised numpy, no torch).

Every image is a small physical scene rendered in *nanomaggy-like* flux units per pixel
(the units of Legacy Survey cutouts): the target object built from analytic components
(Sérsic bulges and ellipticals, exponential disks with logarithmic spiral arms, Ferrers bars,
rings, dust lanes, star-forming knots, tidal tails ...), plus background stars and faint
neighbouring galaxies, convolved with a per-band Moffat or Gaussian PSF (FFT), with sky and
source (Poisson-like) noise added. :func:`to_rgb` renders the three bands the way survey
viewers do (Lupton et al. 2004 asinh colour-preserving stretch, z→red, r→green, g→blue).

Geometry is specified in arcseconds over a fixed field of view (``fov_arcsec``, 128 pixels of
0.262" by default), so the same parameters render the same scene at any output size
(64–256 px); only the sampling changes.

Determinism: image ``index`` of a dataset with seed ``seed`` uses
``np.random.default_rng([seed, index, k])`` streams (k=0 parameters, 1 noise, 2 caption), so
any image can be regenerated alone, and the same galaxy can be re-rendered at another size.

Typical use::

    from galaxy_explorer.train.synth import generate, write_dataset
    for params, bands, rgb, caption in generate(10, seed=1, size=128):
        ...
    csv_path = write_dataset("out", n=1000, seed=1)

Command line: ``galaxy-explorer synth OUT --n N --seed S`` or
``python -m galaxy_explorer.train.synth OUT --n N --seed S``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# the parameters live one layer down, so that captions can read them without importing the
# renderer (and the renderer can caption without an import cycle); re-exported here
from galaxy_explorer.train.captions import caption_for
from galaxy_explorer.train.galaxy_params import DEFAULT_FOV as DEFAULT_FOV
from galaxy_explorer.train.galaxy_params import PIXSCALE as PIXSCALE
from galaxy_explorer.train.galaxy_params import GalaxyParams as GalaxyParams
from galaxy_explorer.train.galaxy_params import dust_lane_visible as dust_lane_visible
from galaxy_explorer.train.galaxy_params import dust_lane_width

log = logging.getLogger(__name__)

#: class ids, in a fixed order
CLASSES: tuple[str, ...] = (
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
#: the main morphological classes (acceptance metrics are computed over these)
MAIN_CLASSES: tuple[str, ...] = CLASSES[:7]

BANDS: tuple[str, ...] = ("g", "r", "z")
DEFAULT_SIZE: int = 128
#: per-pixel sky noise (nanomaggies) at the reference pixel scale, typical DECaLS depth
SKY_SIGMA: np.ndarray = np.array([0.0040, 0.0060, 0.0140], dtype=np.float64)
#: effective gain (counts per nanomaggy) used for the source shot noise
#: (DECam coadds: ~10^4 electrons per nanomaggy in g and r, fewer in z; sky-limited)
GAIN: np.ndarray = np.array([8000.0, 9000.0, 2500.0], dtype=np.float64)
#: RGB multipliers for g, r, z (→ B, G, R), as the Legacy Survey viewer's ``dr2_rgb``
RGB_SCALES: tuple[float, float, float] = (6.0, 3.4, 2.2)

_ZP = 22.5  # nanomaggy zero point: flux = 10 ** ((22.5 - mag) / 2.5)


# ----------------------------------------------------------------------------------------------
# drawing parameters (GalaxyParams itself: galaxy_explorer.train.galaxy_params)
# ----------------------------------------------------------------------------------------------


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _disk_axis_ratio(incl_deg: float, q0: float = 0.15) -> float:
    ci = math.cos(math.radians(incl_deg))
    return math.sqrt(ci * ci * (1 - q0 * q0) + q0 * q0)


def _random_inclination(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Inclination with isotropic orientations (uniform in cos i) between lo and hi degrees."""
    c = rng.uniform(math.cos(math.radians(hi)), math.cos(math.radians(lo)))
    return math.degrees(math.acos(c))


def sample_params(rng: np.random.Generator, cls: str | None = None) -> GalaxyParams:
    """Draw the parameters of one cutout.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream (consumed).
    cls : str, optional
        Class id from :data:`CLASSES`; drawn uniformly when None.

    Returns
    -------
    GalaxyParams
    """
    if cls is None:
        cls = CLASSES[int(rng.integers(len(CLASSES)))]
    if cls not in CLASSES:
        raise ValueError(f"unknown class {cls!r}; expected one of {', '.join(CLASSES)}")
    p = GalaxyParams(cls=cls, structure_seed=int(rng.integers(2**31 - 1)))
    p.ra = _u(rng, 0, 360)
    p.dec = math.degrees(
        math.asin(rng.uniform(math.sin(math.radians(-20)), math.sin(math.radians(60))))
    )
    p.x0, p.y0 = (float(v) for v in np.clip(rng.normal(0, 0.8, 2), -2.5, 2.5))
    p.pa_deg = _u(rng, 0, 180)
    p.psf_fwhm_arcsec = float(np.clip(rng.lognormal(math.log(1.25), 0.15), 0.85, 2.0))
    p.psf_beta = 0.0 if rng.random() < 0.25 else _u(rng, 2.5, 4.5)
    p.depth = float(np.clip(rng.lognormal(0.0, 0.25), 0.6, 1.8))
    p.n_stars = int(rng.poisson(1.5))
    p.n_neighbours = int(rng.poisson(2.0))
    p.r_z = 0.0
    _SAMPLERS[cls](p, rng)
    if cls not in ("compact", "artifact"):
        mu = 1.6 if (cls == "edge_on" and p.dust_lane > 0) else 1.25
        _apply_zoom(p, float(np.clip(rng.lognormal(math.log(mu), 0.3), 0.8, 2.8)))
        p.n_stars = int(rng.poisson(1.5 * p.zoom**1.5))
        p.n_neighbours = int(rng.poisson(2.0 * p.zoom**1.5))
    if p.r_z == 0.0:
        p.r_z = float(0.1 + 0.45 * p.g_r + rng.normal(0, 0.05))
    return p


_ZOOM_LENGTHS = (
    "fov_arcsec",
    "x0",
    "y0",
    "re_arcsec",
    "disk_h_arcsec",
    "bar_length_arcsec",
    "ring_radius_arcsec",
    "ring_width_arcsec",
    "companion_sep_arcsec",
)
_ZOOM_EXTRA = ("z0", "companion_re", "nucleus_offset")


def _apply_zoom(p: GalaxyParams, z: float) -> None:
    """Scale the scene by ``z``: lengths and field ×z, flux ×z² (surface brightness kept)."""
    for k in _ZOOM_LENGTHS:
        setattr(p, k, getattr(p, k) * z)
    for k in _ZOOM_EXTRA:
        if k in p.extra:
            p.extra[k] *= z
    p.mag_r -= 5 * math.log10(z)
    p.zoom = z


def _sample_elliptical(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.sersic_n = _u(rng, 3.0, 6.0)
    p.axis_ratio = float(np.clip(rng.beta(4, 1.6), 0.5, 1.0))
    p.boxiness = float(np.clip(rng.normal(2.0, 0.15), 1.7, 2.4))
    p.re_arcsec = float(np.clip(rng.lognormal(math.log(3.2), 0.35), 1.4, 8.0))
    p.mag_r = float(
        np.clip(16.8 - 2.2 * math.log10(p.re_arcsec / 3.0) + rng.normal(0, 0.4), 13.5, 18.5)
    )
    p.g_r = float(rng.normal(0.85, 0.07))
    p.r_z = float(rng.normal(0.50, 0.05))
    p.subtype = "giant" if p.re_arcsec > 4.5 else ("compact" if p.re_arcsec < 2.0 else "normal")


def _sample_lenticular(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.inclination_deg = _random_inclination(rng, 40, 75)
    p.axis_ratio = _disk_axis_ratio(p.inclination_deg, 0.12)
    p.bulge_to_total = _u(rng, 0.2, 0.45)
    p.disk_h_arcsec = float(np.clip(rng.lognormal(math.log(3.2), 0.3), 1.6, 7.0))
    p.re_arcsec = p.disk_h_arcsec * _u(rng, 0.12, 0.3)
    p.sersic_n = _u(rng, 1.5, 3.5)
    p.boxiness = 2.0
    p.mag_r = float(
        np.clip(16.9 - 2.5 * math.log10(p.disk_h_arcsec / 3.0) + rng.normal(0, 0.4), 13.8, 18.5)
    )
    p.g_r = float(rng.normal(0.78, 0.07))
    p.r_z = float(rng.normal(0.46, 0.05))
    p.subtype = "with_lens" if rng.random() < 0.3 else "plain"


def _sample_disk_common(p: GalaxyParams, rng: np.random.Generator, max_incl: float = 65) -> None:
    p.inclination_deg = _random_inclination(rng, 0, max_incl)
    p.axis_ratio = _disk_axis_ratio(p.inclination_deg, 0.15)
    p.disk_h_arcsec = float(np.clip(rng.lognormal(math.log(3.6), 0.3), 2.0, 8.0))
    p.mag_r = float(
        np.clip(17.0 - 2.5 * math.log10(p.disk_h_arcsec / 3.5) + rng.normal(0, 0.4), 13.8, 18.5)
    )
    p.sersic_n = _u(rng, 1.0, 3.5)
    p.g_r = float(rng.normal(0.72, 0.08))  # bulge / old disk
    p.g_r_young = float(rng.normal(0.15, 0.1))


def _min_pitch(m: int) -> float:
    """Smallest pitch angle (deg) keeping successive windings of m arms resolvable
    (radial spacing of at least 0.45 in ln r) - tighter looks like concentric rings."""
    return math.degrees(math.atan(0.45 * max(m, 1) / (2 * math.pi))) + 2.0


def _sample_spiral(p: GalaxyParams, rng: np.random.Generator) -> None:
    _sample_disk_common(p, rng)
    style = rng.choice(["grand_design", "flocculent", "multi_arm"], p=[0.5, 0.3, 0.2])
    p.arm_style = str(style)
    p.n_arms = {
        "grand_design": 2,
        "flocculent": int(rng.integers(2, 5)),
        "multi_arm": int(rng.integers(3, 5)),
    }[p.arm_style]
    if p.arm_style == "grand_design" and rng.random() < 0.15:
        p.n_arms = 3
    p.pitch_deg = _u(rng, _min_pitch(p.n_arms) + (5 if p.arm_style == "flocculent" else 0), 35)
    p.arm_strength = _u(rng, 0.55, 0.9) if p.arm_style != "flocculent" else _u(rng, 0.5, 0.8)
    p.bulge_to_total = float(np.clip(rng.beta(1.6, 4.5), 0.03, 0.55))
    p.re_arcsec = p.disk_h_arcsec * _u(rng, 0.15, 0.35)
    p.n_knots = int(rng.integers(8, 40))
    p.dust_lane = _u(rng, 0.0, 0.6)
    p.has_ring = bool(rng.random() < 0.1)
    if p.has_ring:
        p.ring_radius_arcsec = p.disk_h_arcsec * _u(rng, 0.5, 0.9)
        p.ring_width_arcsec = _u(rng, 0.4, 0.8)


def _sample_barred(p: GalaxyParams, rng: np.random.Generator) -> None:
    _sample_disk_common(p, rng, max_incl=60)
    p.has_bar = True
    p.n_arms = 2 if rng.random() < 0.85 else 3
    p.arm_style = "grand_design" if rng.random() < 0.75 else "flocculent"
    p.pitch_deg = _u(rng, max(10.0, _min_pitch(p.n_arms)), 35)
    p.arm_strength = _u(rng, 0.5, 0.85)
    p.bulge_to_total = float(np.clip(rng.beta(2, 7), 0.04, 0.35))
    p.re_arcsec = p.disk_h_arcsec * _u(rng, 0.1, 0.2)
    p.bar_length_arcsec = p.disk_h_arcsec * _u(rng, 1.0, 1.6)
    p.bar_axis_ratio = _u(rng, 0.2, 0.35)
    p.bar_angle_deg = _u(rng, 0, 180)
    p.extra["bar_fraction"] = _u(rng, 0.22, 0.38)
    p.n_knots = int(rng.integers(6, 30))
    p.dust_lane = _u(rng, 0.0, 0.5)
    p.has_ring = bool(rng.random() < 0.4)
    if p.has_ring:
        p.ring_radius_arcsec = p.bar_length_arcsec * _u(rng, 0.95, 1.1)
        p.ring_width_arcsec = _u(rng, 0.35, 0.7)
    p.subtype = "inner_ring" if p.has_ring else "open"


def _sample_edge_on(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.inclination_deg = _u(rng, 84, 90)
    p.disk_h_arcsec = float(np.clip(rng.lognormal(math.log(3.0), 0.25), 1.8, 5.0))
    p.dust_lane = 0.0 if rng.random() < 0.2 else _u(rng, 3.0, 8.0)
    # dusty disks are drawn thicker so that the lane is resolved at survey seeing
    p.extra["z0"] = p.disk_h_arcsec * (_u(rng, 0.15, 0.25) if p.dust_lane else _u(rng, 0.06, 0.16))
    p.axis_ratio = float(
        max(
            p.extra["z0"] * 2.0 / (p.disk_h_arcsec * 3.4), _disk_axis_ratio(p.inclination_deg, 0.08)
        )
    )
    p.bulge_to_total = float(np.clip(rng.beta(1.8, 5), 0.02, 0.5))
    p.re_arcsec = p.disk_h_arcsec * _u(rng, 0.15, 0.3)
    p.sersic_n = _u(rng, 1.0, 3.0)
    p.boxiness = _u(rng, 2.0, 3.0)
    p.mag_r = float(
        np.clip(17.0 - 2.5 * math.log10(p.disk_h_arcsec / 4.0) + rng.normal(0, 0.4), 14.0, 18.5)
    )
    p.g_r = float(rng.normal(0.72, 0.08))
    p.g_r_young = float(rng.normal(0.45, 0.1))
    p.subtype = "dusty" if p.dust_lane > 0 else "dust_free"


def _sample_irregular(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.inclination_deg = _random_inclination(rng, 0, 70)
    p.axis_ratio = _disk_axis_ratio(p.inclination_deg, 0.35)
    p.disk_h_arcsec = float(np.clip(rng.lognormal(math.log(3.0), 0.3), 1.5, 6.5))
    p.re_arcsec = p.disk_h_arcsec * 1.68
    p.sersic_n = _u(rng, 0.6, 1.3)
    p.mag_r = float(
        np.clip(17.6 - 2.5 * math.log10(p.disk_h_arcsec / 3.0) + rng.normal(0, 0.4), 15.0, 19.0)
    )
    p.n_knots = int(rng.integers(6, 26))
    p.g_r = float(rng.normal(0.35, 0.1))
    p.g_r_young = float(rng.normal(0.0, 0.1))
    p.extra["lopsided"] = _u(rng, 0.3, 1.0)
    p.subtype = "dwarf" if p.mag_r > 17.8 else "magellanic"


def _sample_merger(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.companion_sep_arcsec = _u(rng, 5.5, 13.0)
    p.companion_flux_ratio = _u(rng, 0.3, 1.0)
    p.companion_kind = "disk" if rng.random() < 0.7 else "elliptical"
    p.extra["primary_kind"] = "disk" if rng.random() < 0.75 else "elliptical"
    p.extra["sep_angle"] = _u(rng, 0, 180)
    p.extra["companion_pa"] = _u(rng, 0, 180)
    p.inclination_deg = _random_inclination(rng, 0, 70)
    p.axis_ratio = _disk_axis_ratio(p.inclination_deg, 0.2)
    p.extra["companion_q"] = _u(rng, 0.4, 1.0)
    p.re_arcsec = float(np.clip(rng.lognormal(math.log(2.2), 0.25), 1.2, 4.5))
    p.extra["companion_re"] = p.re_arcsec * _u(rng, 0.6, 1.1)
    p.sersic_n = _u(rng, 1.0, 4.0)
    p.mag_r = float(np.clip(rng.normal(16.6, 0.6), 14.5, 18.3))
    p.n_tails = int(rng.choice([1, 2, 2, 2, 3, 4]))
    p.extra["tail_fraction"] = _u(rng, 0.15, 0.35)
    p.has_bridge = bool(rng.random() < 0.5)
    p.n_knots = int(rng.integers(4, 20))
    p.g_r = float(rng.normal(0.65, 0.12))
    p.g_r_young = float(rng.normal(0.2, 0.1))
    p.subtype = "tidal_tails" if p.n_tails >= 2 else "close_pair"


def _sample_ring(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.subtype = "collisional" if rng.random() < 0.55 else "hoag"
    p.inclination_deg = _random_inclination(rng, 0, 60)
    p.axis_ratio = _disk_axis_ratio(p.inclination_deg, 0.1)
    p.has_ring = True
    p.ring_radius_arcsec = _u(rng, 4.0, 10.0)
    p.ring_width_arcsec = p.ring_radius_arcsec * _u(rng, 0.06, 0.16)
    p.re_arcsec = _u(rng, 0.7, 2.0)
    p.sersic_n = _u(rng, 1.5, 4.0)
    p.bulge_to_total = _u(rng, 0.25, 0.55)  # nucleus share of the light
    p.mag_r = float(np.clip(rng.normal(16.8, 0.5), 14.8, 18.3))
    p.n_knots = int(rng.integers(6, 25)) if p.subtype == "collisional" else int(rng.integers(0, 6))
    p.extra["nucleus_offset"] = p.ring_radius_arcsec * (
        _u(rng, 0.1, 0.45) if p.subtype == "collisional" else 0.0
    )
    p.extra["nucleus_angle"] = _u(rng, 0, 360)
    p.extra["lopsided"] = _u(rng, 0.2, 0.7) if p.subtype == "collisional" else _u(rng, 0.0, 0.15)
    p.g_r = float(rng.normal(0.75, 0.08))
    p.g_r_young = (
        float(rng.normal(0.15, 0.1))
        if p.subtype == "collisional"
        else float(rng.normal(0.45, 0.12))
    )


def _sample_compact(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.subtype = str(rng.choice(["point", "compact_galaxy", "blue_compact"], p=[0.3, 0.4, 0.3]))
    p.re_arcsec = 0.05 if p.subtype == "point" else _u(rng, 0.25, 0.9)
    p.sersic_n = _u(rng, 1.0, 4.0)
    p.axis_ratio = _u(rng, 0.6, 1.0)
    p.mag_r = _u(rng, 17.0, 20.0)
    if p.subtype == "blue_compact":
        p.g_r = float(rng.normal(0.15, 0.1))
    elif p.subtype == "point":
        p.g_r = float(rng.normal(0.3, 0.25))
    else:
        p.g_r = float(rng.normal(0.8, 0.15))


def _sample_artifact(p: GalaxyParams, rng: np.random.Generator) -> None:
    p.subtype = str(
        rng.choice(["bright_star", "satellite_trail", "star_and_trail"], p=[0.55, 0.35, 0.10])
    )
    p.has_spikes = p.subtype != "satellite_trail"
    p.has_trail = p.subtype != "bright_star"
    p.mag_r = _u(rng, 10.5, 14.0) if p.has_spikes else _u(rng, 15.0, 18.0)
    p.g_r = float(np.clip(rng.normal(0.65, 0.3), -0.2, 1.5))
    p.extra["spike_angle"] = float(rng.normal(0, 2.0)) + (45.0 if rng.random() < 0.2 else 0.0)
    p.extra["trail_angle"] = _u(rng, 0, 180)
    p.extra["trail_offset"] = float(rng.normal(0, 6.0))
    p.extra["trail_width"] = _u(rng, 0.25, 0.6)
    p.extra["trail_sb"] = _u(rng, 0.25, 1.2)  # peak nanomaggy / arcsec^2 along the trail
    p.trail_band = int(rng.choice([-1, 0, 1, 2], p=[0.25, 0.25, 0.25, 0.25])) if p.has_trail else -1
    p.extra["bleed"] = bool(p.has_spikes and p.mag_r < 11.5 and rng.random() < 0.6)
    p.extra["ghost"] = bool(p.has_spikes and rng.random() < 0.3)


_SAMPLERS = {
    "elliptical": _sample_elliptical,
    "lenticular": _sample_lenticular,
    "spiral": _sample_spiral,
    "barred_spiral": _sample_barred,
    "edge_on": _sample_edge_on,
    "irregular": _sample_irregular,
    "merger": _sample_merger,
    "ring": _sample_ring,
    "compact": _sample_compact,
    "artifact": _sample_artifact,
}


# ----------------------------------------------------------------------------------------------
# colours
# ----------------------------------------------------------------------------------------------
def sed(g_r: float, r_z: float | None = None) -> np.ndarray:
    """Flux ratios (g, r, z) relative to r for the colours g-r and r-z (magnitudes)."""
    if r_z is None:
        r_z = 0.1 + 0.45 * g_r
    return np.array([10 ** (-0.4 * g_r), 1.0, 10 ** (0.4 * r_z)], dtype=np.float64)


def _mag_to_flux(mag: float) -> float:
    return 10 ** ((_ZP - mag) / 2.5)


# ----------------------------------------------------------------------------------------------
# rendering primitives
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Grid:
    n: int  # padded side length in pixels
    pad: int
    pixscale: float
    x: np.ndarray  # (n, n) arcsec, 0 at the stamp centre
    y: np.ndarray


@lru_cache(maxsize=16)
def _grid(size: int, fov: float) -> _Grid:
    pixscale = fov / size
    pad = max(8, size // 8)
    n = size + 2 * pad
    c = (n - 1) / 2
    ax = (np.arange(n, dtype=np.float32) - c) * np.float32(pixscale)
    x, y = np.meshgrid(ax, ax)
    x.setflags(write=False)
    y.setflags(write=False)
    return _Grid(n, pad, pixscale, x, y)


def _b_n(n: float) -> float:
    return 2 * n - 1 / 3 + 4 / (405 * n) + 46 / (25515 * n * n)


def _sersic_total(re: float, n: float, q: float) -> float:
    """Total flux of a Sérsic profile with I_e = 1 (analytic)."""
    b = _b_n(n)
    return 2 * math.pi * q * re * re * n * math.exp(b) * b ** (-2 * n) * math.gamma(2 * n)


def _rot(g: _Grid, x0: float, y0: float, pa_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (u) and across (v) the major axis of a body centred at (x0, y0)."""
    t = math.radians(pa_deg)
    c, s = np.float32(math.cos(t)), np.float32(math.sin(t))
    dx = g.x - np.float32(x0)
    dy = g.y - np.float32(y0)
    return dx * c + dy * s, -dx * s + dy * c


def _ell_radius(
    u: np.ndarray, v: np.ndarray, q: float, c: float = 2.0, soft: float = 0.0
) -> np.ndarray:
    if abs(c - 2.0) < 1e-3:
        r2 = u * u + (v / np.float32(q)) ** 2
        if soft:
            r2 = r2 + np.float32(soft * soft)
        return np.sqrt(r2)
    r = (np.abs(u) ** c + np.abs(v / np.float32(q)) ** c) ** (1.0 / c)
    if soft:
        r = np.sqrt(r * r + np.float32(soft * soft))
    return r


def _sersic(g: _Grid, r: np.ndarray, re: float, n: float, q: float, flux: float) -> np.ndarray:
    """Per-pixel flux of a Sérsic profile of total ``flux`` given elliptical radius map ``r``."""
    b = _b_n(n)
    prof = np.exp(-np.float32(b) * ((r / np.float32(re)) ** np.float32(1.0 / n) - 1.0))
    return prof * np.float32(flux * g.pixscale**2 / _sersic_total(re, n, q))


def _smooth_field(rng: np.random.Generator, n: int, corr_px: float) -> np.ndarray:
    """Zero-mean unit-variance Gaussian random field with correlation length ``corr_px``."""
    w = rng.standard_normal((n, n)).astype(np.float32)
    f = np.fft.rfft2(w)
    ky = np.fft.fftfreq(n)[:, None]
    kx = np.fft.rfftfreq(n)[None, :]
    f *= np.exp(-2 * (math.pi * corr_px) ** 2 * (kx * kx + ky * ky))
    out = np.fft.irfft2(f, s=(n, n)).astype(np.float32)
    out /= out.std() + 1e-12
    return out


def _add_blobs(
    img: np.ndarray,
    g: _Grid,
    xs: np.ndarray,
    ys: np.ndarray,
    sigmas: np.ndarray,
    fluxes: np.ndarray,
    colours: np.ndarray,
) -> None:
    """Add round Gaussian blobs (arcsec positions/sigmas, total r flux, (k,3) colours) in place."""
    n = g.n
    c = (n - 1) / 2
    for x, y, s, f, col in zip(xs, ys, sigmas, fluxes, colours, strict=True):
        px = x / g.pixscale + c
        py = y / g.pixscale + c
        sp = max(float(s) / g.pixscale, 0.35)
        h = int(math.ceil(4 * sp))
        ix0, ix1 = max(int(px) - h, 0), min(int(px) + h + 2, n)
        iy0, iy1 = max(int(py) - h, 0), min(int(py) + h + 2, n)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        xx = np.arange(ix0, ix1, dtype=np.float32) - np.float32(px)
        yy = np.arange(iy0, iy1, dtype=np.float32) - np.float32(py)
        gx = np.exp(-0.5 * (xx / sp) ** 2)
        gy = np.exp(-0.5 * (yy / sp) ** 2)
        stamp = np.outer(gy, gx) * np.float32(f / (2 * math.pi * sp * sp))
        img[:, iy0:iy1, ix0:ix1] += col[:, None, None].astype(np.float32) * stamp[None]


def _add_points(img: np.ndarray, g: _Grid, xs, ys, fluxes, colours) -> None:
    """Add unresolved sources (bilinear deposit; the PSF does the rest)."""
    n = g.n
    c = (n - 1) / 2
    for x, y, f, col in zip(xs, ys, fluxes, colours, strict=True):
        px = x / g.pixscale + c
        py = y / g.pixscale + c
        i, j = int(math.floor(py)), int(math.floor(px))
        fy, fx = py - i, px - j
        for di, wy in ((0, 1 - fy), (1, fy)):
            for dj, wx in ((0, 1 - fx), (1, fx)):
                ii, jj = i + di, j + dj
                if 0 <= ii < n and 0 <= jj < n:
                    img[:, ii, jj] += (col * (f * wy * wx)).astype(np.float32)


_MIX_SIGMAS = np.array([0.3, 0.5, 0.8, 1.3, 2.1, 3.4, 5.5, 9.0])  # in units of Moffat alpha


@lru_cache(maxsize=128)
def _moffat_mixture(beta: float) -> np.ndarray:
    """Weights of a Gaussian mixture (widths ``_MIX_SIGMAS`` × alpha) fitting a unit-flux Moffat."""
    r = np.linspace(0.0, 25.0, 400)
    target = (beta - 1) / math.pi * (1 + r * r) ** (-beta)
    basis = np.exp(-0.5 * (r[:, None] / _MIX_SIGMAS) ** 2) / (2 * math.pi * _MIX_SIGMAS**2)
    wt = np.sqrt(r + 0.05)[:, None]  # weight by area so the flux is fitted, not just the core
    from scipy.optimize import nnls  # scipy comes with scikit-learn

    # non-negative weights: a PSF with negative lobes would ring around bright stars
    w, _ = nnls(basis * wt, target * wt[:, 0])
    return w / w.sum()


@lru_cache(maxsize=16)
def _k2(n: int) -> np.ndarray:
    """Squared spatial frequency (cycles / pixel) on the rfft2 grid of an n×n image."""
    return (np.fft.fftfreq(n)[:, None] ** 2 + np.fft.rfftfreq(n)[None, :] ** 2).astype(np.float32)


def _psf_ft(g: _Grid, fwhm: float, beta: float) -> np.ndarray:
    """Per-band PSF transfer functions on the rfft2 grid, (3, n, n//2+1), computed analytically
    (a Gaussian, or a Moffat as a fitted Gaussian mixture); g slightly broader, z sharper."""
    k2 = _k2(g.n)
    out = np.empty((3, *k2.shape), dtype=np.float32)
    for i, scale in enumerate((1.04, 1.0, 0.96)):
        fw = fwhm * scale / g.pixscale  # pixels
        if beta <= 0:
            s = fw / 2.3548
            out[i] = np.exp(np.float32(-2 * (math.pi * s) ** 2) * k2)
        else:
            b = round(beta * 20) / 20
            alpha = fw / (2 * math.sqrt(2 ** (1 / b) - 1))
            acc = np.zeros_like(k2)
            for w, sg in zip(_moffat_mixture(b), _MIX_SIGMAS, strict=True):
                acc += np.float32(w) * np.exp(np.float32(-2 * (math.pi * sg * alpha) ** 2) * k2)
            out[i] = acc
    return out


# ----------------------------------------------------------------------------------------------
# components
# ----------------------------------------------------------------------------------------------
def _disk_plane(
    g: _Grid, x0: float, y0: float, pa: float, q: float
) -> tuple[np.ndarray, np.ndarray]:
    """Deprojected disk-plane coordinates (xd, yd) in arcsec."""
    u, v = _rot(g, x0, y0, pa)
    return u, v / np.float32(q)


def _to_sky(xd: np.ndarray, yd: np.ndarray, x0: float, y0: float, pa: float, q: float):
    t = math.radians(pa)
    u, v = xd, yd * q
    return x0 + u * math.cos(t) - v * math.sin(t), y0 + u * math.sin(t) + v * math.cos(t)


def _render_disk_galaxy(
    img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator
) -> None:
    """Bulge + exponential disk (+ arms, bar, ring, dust, knots) — spirals and lenticulars."""
    total = _mag_to_flux(p.mag_r)
    q = p.axis_ratio
    xd, yd = _disk_plane(g, p.x0, p.y0, p.pa_deg, q)
    rd = np.sqrt(xd * xd + yd * yd + np.float32((0.3 * g.pixscale) ** 2))
    theta = np.arctan2(yd, xd)
    h = p.disk_h_arcsec
    bulge_col = sed(p.g_r + 0.05, p.r_z + 0.03)
    disk_col = (
        sed(0.5 * (p.g_r + p.g_r_young) + 0.1)
        if p.cls != "lenticular"
        else sed(p.g_r - 0.03, p.r_z)
    )
    young = sed(p.g_r_young, 0.05 + 0.3 * p.g_r_young)

    bt = p.bulge_to_total
    bar_frac = float(p.extra.get("bar_fraction", 0.0)) if p.has_bar else 0.0
    ring_frac = 0.08 if p.has_ring else 0.0
    disk_frac = max(1.0 - bt - bar_frac - ring_frac, 0.05)

    # bulge (apparent, rounder than the disk)
    bq = min(1.0, max(q, 0.75 + 0.25 * q))
    u, v = _rot(g, p.x0, p.y0, p.pa_deg)
    rb = _ell_radius(u, v, bq, soft=0.3 * g.pixscale)
    img += (
        bulge_col[:, None, None].astype(np.float32)
        * _sersic(g, rb, p.re_arcsec, p.sersic_n, bq, bt * total)[None]
    )

    # disk surface density (unit total flux in the disk plane, projected: divide by 1/q area)
    disk = np.exp(-rd / np.float32(h)) * np.float32(g.pixscale**2 / (2 * math.pi * h * h * q))
    if p.cls == "lenticular":
        img += (
            disk_col[:, None, None].astype(np.float32)
            * (disk * np.float32(disk_frac * total))[None]
        )
        if p.subtype == "with_lens":
            lens = np.clip(1 - (rd / np.float32(1.6 * p.re_arcsec + 0.8 * h)) ** 2, 0, None) ** 0.7
            lens *= np.float32(
                0.08
                * total
                * g.pixscale**2
                / (math.pi * (1.6 * p.re_arcsec + 0.8 * h) ** 2 * q * 0.6)
            )
            img += bulge_col[:, None, None].astype(np.float32) * lens[None]
        return

    # arms
    m = max(p.n_arms, 1)
    tanp = math.tan(math.radians(p.pitch_deg))
    r_in = max(p.bar_length_arcsec if p.has_bar else 1.2 * p.re_arcsec + 0.3 * h, 0.5)
    phi0 = math.radians(p.bar_angle_deg) if p.has_bar else srng.uniform(0, 2 * math.pi)
    lnr = np.log(rd / np.float32(r_in))
    psi = m * (theta - np.float32(phi0) - lnr / np.float32(tanp))
    if p.arm_style == "flocculent":
        psi = psi + 0.7 * _smooth_field(srng, g.n, 0.35 * h / g.pixscale)
    elif p.arm_style == "multi_arm":
        psi = psi + 0.5 * _smooth_field(srng, g.n, 0.8 * h / g.pixscale)
    sharp = 4.0 if p.arm_style == "grand_design" else 2.5
    pattern = ((1 + np.cos(psi)) * 0.5) ** np.float32(sharp)
    mean_pat = math.gamma(sharp + 0.5) / (math.sqrt(math.pi) * math.gamma(sharp + 1))
    env = 1.0 - np.exp(-((rd / np.float32(r_in)) ** 3))  # arms start at r_in
    if p.arm_style == "flocculent":
        # short, patchy arm segments: switch the pattern off over half the disk
        clump = np.clip(0.3 + _smooth_field(srng, g.n, 0.3 * h / g.pixscale), 0, None) * 1.5
        pattern = pattern * clump
    a = p.arm_strength
    arm_part = pattern * np.float32(1.0 / mean_pat) * env
    smooth_disk = disk * np.float32(disk_frac * total * (1 - a))
    if p.has_bar:  # the disk inside the bar radius is swept clear
        smooth_disk *= 1 - 0.6 * np.exp(-((rd / np.float32(r_in)) ** 4))
    arm_disk = (
        disk * np.exp(rd / np.float32(4 * h)) * arm_part * np.float32(disk_frac * total * a * 0.7)
    )
    dcol = disk_col[:, None, None].astype(np.float32)
    img += dcol * smooth_disk[None]
    # arms: blue young light + part old
    img += (0.6 * young + 0.4 * disk_col)[:, None, None].astype(np.float32) * arm_disk[None]
    # dust on the inner (trailing) edge of the arms
    if p.dust_lane > 0.05:
        dpat = ((1 + np.cos(psi + np.float32(0.55))) * 0.5) ** np.float32(6.0) * env
        tau = np.float32(p.dust_lane) * dpat * np.exp(-rd / np.float32(2.5 * h))
        att = np.exp(-tau[None] * np.array([1.0, 0.7, 0.4], dtype=np.float32)[:, None, None])
        img *= att

    # bar
    if p.has_bar:
        bt_ang = math.radians(p.bar_angle_deg)
        bu = xd * np.float32(math.cos(bt_ang)) + yd * np.float32(math.sin(bt_ang))
        bv = -xd * np.float32(math.sin(bt_ang)) + yd * np.float32(math.cos(bt_ang))
        a_b = p.bar_length_arcsec
        b_b = a_b * p.bar_axis_ratio
        m2 = (np.abs(bu / np.float32(a_b)) ** 3 + np.abs(bv / np.float32(b_b)) ** 3) ** (2 / 3)
        ferrers = np.clip(1 - m2, 0, None) ** 1.2 + 0.1 * np.exp(-np.sqrt(m2) * 3)
        norm = float(ferrers.sum()) or 1.0
        img += (
            sed(p.g_r - 0.05)[:, None, None].astype(np.float32)
            * (ferrers * np.float32(bar_frac * total / norm))[None]
        )

    # ring
    if p.has_ring:
        rr = p.ring_radius_arcsec
        w = p.ring_width_arcsec
        ring = np.exp(-0.5 * ((rd - np.float32(rr)) / np.float32(w)) ** 2)
        if p.has_bar:  # inner rings are slightly elongated along the bar
            ring = np.exp(
                -0.5
                * (
                    (np.sqrt(bu * bu + (bv / np.float32(0.85)) ** 2) - np.float32(rr))
                    / np.float32(w)
                )
                ** 2
            )
        norm = float(ring.sum()) or 1.0
        img += (0.5 * young + 0.5 * disk_col)[:, None, None].astype(np.float32) * (
            ring * np.float32(ring_frac * total / norm)
        )[None]

    # star-forming knots along the arms
    k = p.n_knots
    if k:
        rk = r_in + srng.gamma(2.0, h * 0.9, k)
        arm_id = srng.integers(0, m, k)
        th = phi0 + np.log(rk / r_in) / tanp + 2 * math.pi * arm_id / m + srng.normal(0, 0.18, k)
        if p.arm_style == "flocculent":
            th = srng.uniform(0, 2 * math.pi, k)
        xs, ys = _to_sky(rk * np.cos(th), rk * np.sin(th), p.x0, p.y0, p.pa_deg, q)
        fl = srng.lognormal(0, 0.8, k)
        fl *= 0.12 * total * disk_frac * a / fl.sum()
        cols = np.tile(young, (k, 1))
        _add_blobs(img, g, xs, ys, srng.uniform(0.15, 0.5, k) * p.zoom, fl, cols)


def _render_elliptical(
    img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator
) -> None:
    u, v = _rot(g, p.x0, p.y0, p.pa_deg)
    total = _mag_to_flux(p.mag_r)
    # mild colour gradient: redder core, bluer outskirts (two components)
    r = _ell_radius(u, v, p.axis_ratio, p.boxiness, soft=0.3 * g.pixscale)
    core = _sersic(g, r, p.re_arcsec * 0.6, p.sersic_n, p.axis_ratio, 0.35 * total)
    env = _sersic(g, r, p.re_arcsec * 1.2, p.sersic_n, p.axis_ratio, 0.65 * total)
    img += sed(p.g_r + 0.05, p.r_z + 0.03)[:, None, None].astype(np.float32) * core[None]
    img += sed(p.g_r - 0.05, p.r_z - 0.03)[:, None, None].astype(np.float32) * env[None]


def _sech2(x: np.ndarray) -> np.ndarray:
    e = np.exp(-2 * np.abs(x))
    return 4 * e / (1 + e) ** 2


def _render_edge_on(img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator) -> None:
    total = _mag_to_flux(p.mag_r)
    u, v = _rot(g, p.x0, p.y0, p.pa_deg)
    h = p.disk_h_arcsec
    z0 = float(p.extra.get("z0", 0.1 * h))
    ci = math.cos(math.radians(p.inclination_deg))
    zeff = math.sqrt(z0 * z0 + (h * ci) ** 2)
    au = np.sqrt(u * u + np.float32((0.5 * g.pixscale) ** 2))
    # edge-on exponential disk: (|x|/h) K1(|x|/h) ~ exp(-|x|/h) (1 + |x|/h)^0.5 (good enough)
    disk = (
        np.exp(-au / np.float32(h)) * np.sqrt(1 + au / np.float32(h)) * _sech2(v / np.float32(zeff))
    )
    disk *= np.float32((1 - p.bulge_to_total) * total / float(disk.sum()))
    thin = np.exp(-au / np.float32(0.8 * h)) * _sech2(v / np.float32(0.5 * zeff))
    thin *= np.float32(0.25 * (1 - p.bulge_to_total) * total / float(thin.sum()))
    img += sed(0.5 * (p.g_r + p.g_r_young) + 0.1)[:, None, None].astype(np.float32) * disk[None]
    img += sed(p.g_r_young)[:, None, None].astype(np.float32) * thin[None]
    bq = _u(srng, 0.55, 0.9)
    rb = _ell_radius(u, v, bq, p.boxiness, soft=0.3 * g.pixscale)
    img += (
        sed(p.g_r + 0.05, p.r_z + 0.03)[:, None, None].astype(np.float32)
        * _sersic(g, rb, p.re_arcsec, p.sersic_n, bq, p.bulge_to_total * total)[None]
    )
    if p.dust_lane > 0:
        # the lane sits slightly off the midplane unless the disk is exactly edge-on
        off = np.float32(zeff * min(ci * 12, 0.8) * srng.choice([-1, 1]))
        w = np.float32(dust_lane_width(p))
        lane = np.exp(-0.5 * ((v - off) / w) ** 2) * np.exp(-au / np.float32(3.0 * h))
        lane *= np.clip(1 + 0.3 * _smooth_field(srng, g.n, 2.0), 0.3, None)
        tau = np.float32(p.dust_lane) * lane
        img *= np.exp(-tau[None] * np.array([1.0, 0.8, 0.55], dtype=np.float32)[:, None, None])


def _render_irregular(
    img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator
) -> None:
    total = _mag_to_flux(p.mag_r)
    u, v = _rot(g, p.x0, p.y0, p.pa_deg)
    h = p.disk_h_arcsec
    r = _ell_radius(u, v, p.axis_ratio, soft=0.3 * g.pixscale)
    lop = p.extra.get("lopsided", 0.5)
    field_ = _smooth_field(srng, g.n, 0.45 * h / g.pixscale)
    base = _sersic(g, r, 1.68 * h, p.sersic_n, p.axis_ratio, 0.55 * total)
    base *= np.clip(1 + 0.7 * lop * field_, 0.05, None)
    # lopsided: an offset second component
    ang = srng.uniform(0, 2 * math.pi)
    d = h * lop
    u2, v2 = _rot(
        g, p.x0 + d * math.cos(ang), p.y0 + d * math.sin(ang), p.pa_deg + srng.normal(0, 25)
    )
    base += _sersic(
        g,
        _ell_radius(u2, v2, min(1.0, p.axis_ratio * 1.2), soft=0.3 * g.pixscale),
        1.0 * h,
        0.8,
        1.0,
        0.2 * total,
    )
    img += sed(p.g_r)[:, None, None].astype(np.float32) * base[None]
    k = p.n_knots
    # knots in a few star-forming complexes
    nc = int(srng.integers(2, 5))
    cx = srng.normal(0, 0.9 * h, nc)
    cy = srng.normal(0, 0.9 * h, nc) * p.axis_ratio
    which = srng.integers(0, nc, k)
    kx = cx[which] + srng.normal(0, 0.45 * h, k)
    ky = cy[which] + srng.normal(0, 0.45 * h, k)
    xs, ys = _to_sky(kx, ky / max(p.axis_ratio, 0.3), p.x0, p.y0, p.pa_deg, p.axis_ratio)
    fl = srng.lognormal(0, 0.9, k)
    fl *= 0.25 * total / fl.sum()
    young = sed(p.g_r_young, 0.0)
    cols = young[None, :] * srng.uniform(0.9, 1.1, (k, 3))
    _add_blobs(img, g, xs, ys, srng.uniform(0.2, 0.9, k) * p.zoom, fl, cols)


def _tail(
    img: np.ndarray, g: _Grid, srng, x0, y0, ang0, r0, length, curv, flux, col, width0
) -> None:
    """A curved tidal tail (dense chain of Gaussian blobs) leaving a body at (x0, y0).

    The tail starts ``r0`` from the body centre at angle ``ang0``, grows to ``r0 + length`` while
    its direction turns by ``curv`` radians; it widens and fades outwards and is lumpy.
    """
    nb = 56
    t = np.linspace(0.0, 1.0, nb)
    ang = ang0 + curv * t**1.2
    rr = r0 + length * t
    xs = x0 + rr * np.cos(ang)
    ys = y0 + rr * np.sin(ang)
    sig = width0 * (0.8 + 2.2 * t**1.5)  # tails fan out and become diffuse
    fl = np.exp(-1.2 * t) * np.clip(1 + 0.35 * srng.standard_normal(nb), 0.3, None)
    fl *= flux / fl.sum()
    _add_blobs(img, g, xs, ys, sig, fl, np.tile(col, (nb, 1)))


def _render_body(img, g, kind, x0, y0, pa, q, re, n, flux, g_r, g_r_young, srng, arms=True) -> None:
    u, v = _rot(g, x0, y0, pa)
    if kind == "elliptical":
        r = _ell_radius(u, v, q, soft=0.3 * g.pixscale)
        img += (
            sed(g_r + 0.1)[:, None, None].astype(np.float32)
            * _sersic(g, r, re, max(n, 3.0), q, flux)[None]
        )
        return
    r = _ell_radius(u, v, q, soft=0.3 * g.pixscale)
    img += (
        sed(g_r + 0.05)[:, None, None].astype(np.float32)
        * _sersic(g, r, re * 0.35, 2.5, min(1, q + 0.3), 0.3 * flux)[None]
    )
    disk = _sersic(g, r, re * 1.2, 1.0, q, 0.7 * flux)
    disk *= np.clip(1 + 0.6 * _smooth_field(srng, g.n, 0.3 * re / g.pixscale), 0.1, None)
    img += sed(0.5 * (g_r + g_r_young))[:, None, None].astype(np.float32) * disk[None]


def _render_merger(img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator) -> None:
    total = _mag_to_flux(p.mag_r)
    f1 = total / (1 + p.companion_flux_ratio)
    f2 = total - f1
    sa = math.radians(p.extra.get("sep_angle", 0.0))
    d = p.companion_sep_arcsec
    w1 = p.companion_flux_ratio / (1 + p.companion_flux_ratio)
    x1, y1 = p.x0 - d * w1 * math.cos(sa), p.y0 - d * w1 * math.sin(sa)
    x2, y2 = x1 + d * math.cos(sa), y1 + d * math.sin(sa)
    k1 = p.extra.get("primary_kind", "disk")
    re2 = float(p.extra.get("companion_re", p.re_arcsec))
    _render_body(
        img,
        g,
        k1,
        x1,
        y1,
        p.pa_deg,
        p.axis_ratio,
        p.re_arcsec,
        p.sersic_n,
        f1 * 0.8,
        p.g_r,
        p.g_r_young,
        srng,
    )
    _render_body(
        img,
        g,
        p.companion_kind,
        x2,
        y2,
        p.extra.get("companion_pa", 0.0),
        p.extra.get("companion_q", 0.8),
        re2,
        p.sersic_n,
        f2 * 0.8,
        p.g_r + srng.normal(0, 0.05),
        p.g_r_young,
        srng,
    )
    tail_col = sed(0.65 * p.g_r + 0.35 * p.g_r_young)
    tails_flux = float(p.extra.get("tail_fraction", 0.3)) * total
    spin = srng.choice([-1.0, 1.0])
    for i in range(p.n_tails):
        on_first = i % 2 == 0
        bx, by = (x1, y1) if on_first else (x2, y2)
        rb = p.re_arcsec if on_first else re2
        # tails leave roughly perpendicular to the separation and sweep away from the pair
        away = sa + (math.pi if on_first else 0.0)
        ang0 = away + spin * (math.pi / 2) * srng.uniform(0.3, 1.0) + (math.pi if i >= 2 else 0.0)
        length = d * srng.uniform(1.0, 2.0)
        curv = -spin * srng.uniform(0.6, 1.6)
        _tail(
            img,
            g,
            srng,
            bx,
            by,
            ang0,
            0.8 * rb,
            length,
            curv,
            tails_flux / p.n_tails,
            tail_col,
            srng.uniform(0.45, 0.9) * p.zoom,
        )
    if p.has_bridge:
        nb = 16
        t = np.linspace(0.2, 0.8, nb)
        bend = srng.normal(0, 0.2) * d
        xs = x1 + (x2 - x1) * t - math.sin(sa) * bend * np.sin(math.pi * t)
        ys = y1 + (y2 - y1) * t + math.cos(sa) * bend * np.sin(math.pi * t)
        fl = np.full(nb, 0.05 * total / nb)
        _add_blobs(img, g, xs, ys, np.full(nb, 0.8 * p.zoom), fl, np.tile(tail_col, (nb, 1)))
    k = p.n_knots
    if k:
        ang = srng.uniform(0, 2 * math.pi, k)
        rad = np.abs(srng.normal(0, 0.6 * d, k))
        sel = srng.random(k) < 0.5
        bx = np.where(sel, x1, x2)
        by = np.where(sel, y1, y2)
        fl = srng.lognormal(0, 0.7, k)
        fl *= 0.05 * total / fl.sum()
        _add_blobs(
            img,
            g,
            bx + rad * np.cos(ang),
            by + rad * np.sin(ang),
            srng.uniform(0.2, 0.5, k) * p.zoom,
            fl,
            np.tile(sed(p.g_r_young), (k, 1)),
        )


def _render_ring(img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator) -> None:
    total = _mag_to_flux(p.mag_r)
    q = p.axis_ratio
    xd, yd = _disk_plane(g, p.x0, p.y0, p.pa_deg, q)
    rd = np.sqrt(xd * xd + yd * yd)
    th = np.arctan2(yd, xd)
    rr, w = p.ring_radius_arcsec, p.ring_width_arcsec
    lop = p.extra.get("lopsided", 0.0)
    ring = np.exp(-0.5 * ((rd - np.float32(rr)) / np.float32(w)) ** 2)
    ring *= 1 + np.float32(lop) * np.cos(th - np.float32(srng.uniform(0, 2 * math.pi)))
    ring *= np.clip(1 + 0.35 * _smooth_field(srng, g.n, w / g.pixscale), 0.2, None)
    ring_flux = (1 - p.bulge_to_total) * total * 0.85
    ring *= np.float32(ring_flux / float(ring.sum()))
    young = sed(p.g_r_young, 0.05 + 0.3 * p.g_r_young)
    img += young[:, None, None].astype(np.float32) * ring[None]
    # faint diffuse disk inside / around
    diffuse = np.exp(-rd / np.float32(rr * 0.8))
    diffuse *= np.float32(0.15 * (1 - p.bulge_to_total) * total / float(diffuse.sum()))
    img += sed(0.5 * (p.g_r + p.g_r_young))[:, None, None].astype(np.float32) * diffuse[None]
    off = float(p.extra.get("nucleus_offset", 0.0))
    na = math.radians(float(p.extra.get("nucleus_angle", 0.0)))
    nx, ny = _to_sky(
        np.array([off * math.cos(na)]), np.array([off * math.sin(na)]), p.x0, p.y0, p.pa_deg, q
    )
    u, v = _rot(g, float(nx[0]), float(ny[0]), p.pa_deg)
    rn = _ell_radius(u, v, min(1.0, q + 0.2), soft=0.3 * g.pixscale)
    img += (
        sed(p.g_r, p.r_z)[:, None, None].astype(np.float32)
        * _sersic(g, rn, p.re_arcsec, p.sersic_n, min(1.0, q + 0.2), p.bulge_to_total * total)[None]
    )
    k = p.n_knots
    if k:
        tk = srng.uniform(0, 2 * math.pi, k)
        rk = rr + srng.normal(0, 0.5 * w, k)
        xs, ys = _to_sky(rk * np.cos(tk), rk * np.sin(tk), p.x0, p.y0, p.pa_deg, q)
        fl = srng.lognormal(0, 0.6, k)
        fl *= 0.25 * ring_flux / fl.sum()
        _add_blobs(img, g, xs, ys, srng.uniform(0.15, 0.45, k) * p.zoom, fl, np.tile(young, (k, 1)))


def _render_compact(img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator) -> None:
    total = _mag_to_flux(p.mag_r)
    col = sed(p.g_r)
    if p.subtype == "point":
        _add_points(img, g, [p.x0], [p.y0], [total], [col])
        return
    u, v = _rot(g, p.x0, p.y0, p.pa_deg)
    r = _ell_radius(u, v, p.axis_ratio, soft=0.3 * g.pixscale)
    img += (
        col[:, None, None].astype(np.float32)
        * _sersic(g, r, p.re_arcsec, p.sersic_n, p.axis_ratio, total)[None]
    )


def _render_artifact(
    img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator
) -> np.ndarray | None:
    """Bright star / satellite trail.  Returns a post-PSF additive layer (trail, spikes)."""
    post = np.zeros_like(img)
    flux = _mag_to_flux(p.mag_r)
    col = sed(p.g_r)
    if p.has_spikes:
        _add_points(img, g, [p.x0], [p.y0], [flux * 0.85], [col])
        # extended halo (PSF wings, scattered light)
        r = np.sqrt((g.x - np.float32(p.x0)) ** 2 + (g.y - np.float32(p.y0)) ** 2 + np.float32(1.0))
        halo = r ** np.float32(-2.6)
        halo *= np.float32(0.05 * flux / float(halo.sum()))
        img += col[:, None, None].astype(np.float32) * halo[None]
        ang = math.radians(p.extra.get("spike_angle", 0.0))
        spike_len = 6.0 + 3.0 * (13.5 - p.mag_r)
        for k in range(4):
            a = ang + k * math.pi / 2
            uu = (g.x - np.float32(p.x0)) * np.float32(math.cos(a)) + (
                g.y - np.float32(p.y0)
            ) * np.float32(math.sin(a))
            vv = -(g.x - np.float32(p.x0)) * np.float32(math.sin(a)) + (
                g.y - np.float32(p.y0)
            ) * np.float32(math.cos(a))
            along = np.where(uu > 0, np.exp(-uu / np.float32(spike_len)) / (1 + uu / 2.0), 0.0)
            spike = along * np.exp(-0.5 * (vv / np.float32(0.45)) ** 2)
            spike *= np.float32(0.012 * flux / (float(spike.sum()) + 1e-9))
            post += col[:, None, None].astype(np.float32) * spike[None]
        if p.extra.get("ghost"):
            gx, gy = p.x0 + srng.normal(0, 6), p.y0 + srng.normal(0, 6)
            rg = np.sqrt((g.x - np.float32(gx)) ** 2 + (g.y - np.float32(gy)) ** 2)
            rad = srng.uniform(3, 7)
            ghost = np.exp(-0.5 * ((rg - np.float32(rad)) / 0.8) ** 2) + 0.4 * (rg < rad)
            ghost *= np.float32(0.004 * flux / float(ghost.sum()))
            post += np.array([0.6, 1.0, 1.3], dtype=np.float32)[:, None, None] * ghost[None]
        if p.extra.get("bleed"):
            sel = np.abs(g.x - np.float32(p.x0)) < np.float32(0.4)
            bleed = sel * np.exp(-np.abs(g.y - np.float32(p.y0)) / np.float32(8.0))
            bleed = bleed.astype(np.float32) * np.float32(0.01 * flux / (float(bleed.sum()) + 1e-9))
            post[2] += bleed
            post[1] += 0.3 * bleed
    if p.has_trail:
        a = math.radians(p.extra.get("trail_angle", 0.0))
        off = p.extra.get("trail_offset", 0.0)
        vv = -g.x * np.float32(math.sin(a)) + g.y * np.float32(math.cos(a)) - np.float32(off)
        w = p.extra.get("trail_width", 0.5)
        # peak surface brightness trail_sb (nanomaggy / arcsec^2) → per pixel
        trail = np.exp(-0.5 * (vv / np.float32(w)) ** 2) * np.float32(
            p.extra.get("trail_sb", 1.0) * g.pixscale**2
        )
        tcol = np.array([1.0, 1.0, 1.6], dtype=np.float32)
        if p.trail_band >= 0:
            tcol = np.zeros(3, dtype=np.float32)
            tcol[p.trail_band] = 1.5
        post += tcol[:, None, None] * trail[None]
        if p.subtype == "satellite_trail":
            # an ordinary faint galaxy or two behind the trail
            u, v = _rot(g, p.x0 * 3, p.y0 * 3, p.pa_deg)
            r = _ell_radius(u, v, 0.7, soft=0.3 * g.pixscale)
            img += (
                sed(0.6)[:, None, None].astype(np.float32)
                * _sersic(g, r, 1.2, 1.5, 0.7, _mag_to_flux(19.5))[None]
            )
    return post


_RENDERERS = {
    "elliptical": _render_elliptical,
    "lenticular": _render_disk_galaxy,
    "spiral": _render_disk_galaxy,
    "barred_spiral": _render_disk_galaxy,
    "edge_on": _render_edge_on,
    "irregular": _render_irregular,
    "merger": _render_merger,
    "ring": _render_ring,
    "compact": _render_compact,
    "artifact": _render_artifact,
}


def _add_background(img: np.ndarray, g: _Grid, p: GalaxyParams, srng: np.random.Generator) -> None:
    """Field stars and faint neighbouring galaxies scattered over the padded stamp."""
    half = p.fov_arcsec / 2 + 3.0  # independent of the output size / padding
    ns = p.n_stars
    if ns:
        xs = srng.uniform(-half, half, ns)
        ys = srng.uniform(-half, half, ns)
        mags = 23.5 - srng.exponential(1.6, ns)  # many faint, few bright
        mags = np.clip(mags, 15.5, 24.0)
        # keep stars that could pass for a second object off the target itself
        rmin = np.where(mags < 20.5, 0.22 * p.fov_arcsec, 0.0)
        if p.cls == "compact":
            rmin = np.maximum(rmin, 5.0)
        dx, dy = xs - p.x0, ys - p.y0
        rr = np.hypot(dx, dy) + 1e-6
        push = np.where(rr < rmin, (rmin + (rmin - rr)) / rr, 1.0)
        xs, ys = p.x0 + dx * push, p.y0 + dy * push
        gr = np.clip(srng.normal(0.9, 0.4, ns), -0.2, 1.6)
        cols = np.array([sed(c, 0.1 + 0.4 * c) for c in gr])
        _add_points(img, g, xs, ys, [_mag_to_flux(m) for m in mags], cols)
    nn = p.n_neighbours
    for _ in range(nn):
        r0 = srng.uniform(0.35, 1.0) * half
        a0 = srng.uniform(0, 2 * math.pi)
        x, y = p.x0 + r0 * math.cos(a0), p.y0 + r0 * math.sin(a0)
        mag = srng.uniform(19.0, 23.0)
        re = float(np.clip(srng.lognormal(math.log(0.8), 0.4), 0.3, 2.5))
        q = srng.uniform(0.3, 1.0)
        n = srng.uniform(0.8, 4.0)
        u, v = _rot(g, x, y, srng.uniform(0, 180))
        r = _ell_radius(u, v, q, soft=0.3 * g.pixscale)
        gr = srng.uniform(0.3, 1.4)  # includes redshifted red galaxies
        img += (
            sed(gr, 0.2 + 0.5 * gr)[:, None, None].astype(np.float32)
            * _sersic(g, r, re, n, q, _mag_to_flux(mag))[None]
        )


def render_bands(
    params: GalaxyParams, size: int = DEFAULT_SIZE, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Render the g, r, z images of one cutout.

    Parameters
    ----------
    params : GalaxyParams
        Scene parameters (from :func:`sample_params`).
    size : int
        Output side length in pixels (64–256 typical); the field of view is
        ``params.fov_arcsec`` whatever the size.
    rng : numpy.random.Generator, optional
        Noise stream; ``None`` renders the noise-free, sky-free model (PSF-convolved).

    Returns
    -------
    numpy.ndarray
        ``(3, size, size)`` float32, bands g, r, z; row 0 is the top. Units are nanomaggies
        per reference pixel of 0.262" (surface brightness, as resampled survey cutouts), so
        the total flux is ``bands.sum() * (pixscale / 0.262) ** 2``.
    """
    size = int(size)
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    g = _grid(size, float(params.fov_arcsec))
    srng = np.random.default_rng(params.structure_seed)
    img = np.zeros((3, g.n, g.n), dtype=np.float32)
    post = _RENDERERS[params.cls](img, g, params, srng)
    _add_background(img, g, params, np.random.default_rng(params.structure_seed + 7919))
    f = np.fft.rfft2(img)
    f *= _psf_ft(g, params.psf_fwhm_arcsec, params.psf_beta)
    out = np.fft.irfft2(f, s=(g.n, g.n)).astype(np.float32)
    if post is not None:
        out += post
    out = out[:, g.pad : g.pad + size, g.pad : g.pad + size]
    # surface-brightness units: nanomaggies per reference (0.262") pixel, as survey cutout
    # services deliver resampled cutouts; the picture then looks the same at any size / zoom
    binning = g.pixscale / PIXSCALE
    out *= np.float32(1.0 / binning**2)
    if rng is not None:
        neff = max(binning, 1.0)  # averaging binning² reference pixels lowers the noise
        sky_sigma = (SKY_SIGMA * params.depth / neff).astype(np.float32)
        var = sky_sigma[:, None, None] ** 2 + np.clip(out, 0, None) / (
            GAIN.astype(np.float32)[:, None, None] * np.float32(neff * neff)
        )
        noise = rng.standard_normal(out.shape, dtype=np.float32)
        if binning < 0.95:  # upsampled reference pixels: correlated noise, same variance
            k2 = _k2(size)
            sig = 0.6 * math.sqrt(1 / binning**2 - 1)
            noise = np.fft.irfft2(
                np.fft.rfft2(noise) * np.exp(-2 * (math.pi * sig) ** 2 * k2), s=(size, size)
            ).astype(np.float32)
            noise /= noise.std(axis=(1, 2), keepdims=True) + np.float32(1e-12)
        out = out + noise * np.sqrt(var)
        # imperfect sky subtraction: a small offset and gradient
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / np.float32(size) - 0.5
        for b in range(3):
            c0, cx, cy = rng.normal(0, 0.15, 3) * sky_sigma[b]
            out[b] += np.float32(c0) + np.float32(cx) * xx + np.float32(cy) * yy
        if params.cls == "artifact" and params.has_spikes:
            # saturated core: flat and white in the survey colour balance
            sat = np.float32(_mag_to_flux(params.mag_r) * 0.03)
            core = out[1] > sat
            white = np.float32(RGB_SCALES[1]) / np.asarray(RGB_SCALES, dtype=np.float32)
            out[:, core] = sat * white[:, None]
    return np.ascontiguousarray(out, dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# RGB
# ----------------------------------------------------------------------------------------------
def to_rgb(
    bands: np.ndarray,
    *,
    Q: float = 20.0,  # noqa: N803 - Lupton's symbol
    m: float = 0.03,
) -> np.ndarray:
    """Lupton et al. (2004) asinh colour composite of g, r, z bands (z→R, r→G, g→B).

    The Legacy Survey viewer's recipe, shared with the app's FITS loader
    (:func:`galaxy_explorer.core.imaging.survey_rgb`), so a FITS cube written by this module
    and its JPEG twin look the same to the model.

    Parameters
    ----------
    bands : numpy.ndarray
        ``(3, H, W)`` in the order g, r, z (nanomaggies, as from :func:`render_bands`).
    Q : float
        Asinh softening.
    m : float
        Black-level offset added to the scaled bands.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    from galaxy_explorer.core.imaging import survey_rgb

    b = np.asarray(bands, dtype=np.float32)
    if b.ndim != 3 or b.shape[0] != 3:
        raise ValueError(f"bands must have shape (3, H, W), got {b.shape}")
    return survey_rgb(b, BANDS, Q=Q, m=m)


# ----------------------------------------------------------------------------------------------
# streams and files
# ----------------------------------------------------------------------------------------------
def generate_one(index: int, seed: int, size: int = DEFAULT_SIZE, cls: str | None = None):
    """Regenerate image ``index`` of the stream with ``seed`` alone.

    Returns
    -------
    tuple
        ``(params, bands, rgb, caption)``.
    """
    params = sample_params(np.random.default_rng([seed, index, 0]), cls)
    bands = render_bands(params, size, np.random.default_rng([seed, index, 1]))
    rgb = to_rgb(bands)
    caption = caption_for(params, np.random.default_rng([seed, index, 2]))
    return params, bands, rgb, caption


def _class_for(index: int, classes: Sequence[str]) -> str:
    return classes[index % len(classes)]


def generate(
    n: int,
    seed: int,
    size: int = DEFAULT_SIZE,
    classes: Sequence[str] | None = None,
    start: int = 0,
) -> Iterator[tuple[GalaxyParams, np.ndarray, np.ndarray, str]]:
    """Yield ``n`` synthetic cutouts ``(params, bands, rgb, caption)``.

    Classes cycle through ``classes`` (default :data:`CLASSES`) so every class is equally
    represented; image ``i`` depends only on ``(seed, i)`` (see :func:`generate_one`).
    """
    classes = tuple(classes) if classes else CLASSES
    for c in classes:
        if c not in CLASSES:
            raise ValueError(f"unknown class {c!r}; expected one of {', '.join(CLASSES)}")
    for i in range(start, start + n):
        yield generate_one(i, seed, size, _class_for(i, classes))


def wcs_header(params: GalaxyParams, size: int) -> dict[str, object]:
    """FITS header cards (celestial TAN WCS, north up, east left) for a cutout."""
    pix = params.fov_arcsec / size
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CUNIT1": "deg",
        "CUNIT2": "deg",
        "CRPIX1": (size + 1) / 2,
        "CRPIX2": (size + 1) / 2,
        "CRVAL1": round(params.ra, 7),
        "CRVAL2": round(params.dec, 7),
        "CDELT1": -pix / 3600.0,
        "CDELT2": pix / 3600.0,
        "RADESYS": "ICRS",
        "EQUINOX": 2000.0,
    }


def _write_fits(path: Path, bands: np.ndarray, params: GalaxyParams, caption: str) -> None:
    from astropy.io import fits

    size = bands.shape[-1]
    # FITS convention: first row is the bottom (south); flip so north is up when displayed
    hdu = fits.PrimaryHDU(np.ascontiguousarray(bands[:, ::-1, :]))
    h = hdu.header
    for k, v in wcs_header(params, size).items():
        h[k] = v
    h["BUNIT"] = ("nanomaggy", "per 0.262 arcsec pixel; mag = 22.5-2.5log10(f)")
    h["BANDS"] = "grz"
    for i, b in enumerate(BANDS):
        h[f"BAND{i}"] = (b, f"band of plane {i}")
    h["RA"] = (round(params.ra, 7), "deg, centre")
    h["DEC"] = (round(params.dec, 7), "deg, centre")
    h["PIXSCALE"] = (round(params.fov_arcsec / size, 5), "arcsec/pixel")
    h["PSF_FWHM"] = (round(params.psf_fwhm_arcsec, 3), "arcsec, r band")
    h["SYNTHETC"] = (True, "synthetic image (galaxy_explorer.train.synth)")
    h["OBJCLASS"] = params.cls
    h["SUBTYPE"] = params.subtype
    h["ORIGIN"] = "galaxy-explorer synth"
    hdu.writeto(path, overwrite=True)


def _write_raster(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    im = Image.fromarray(rgb, "RGB")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        im.save(path, quality=92)
    else:
        im.save(path)


_CSV_PARAMS = (
    "subtype",
    "mag_r",
    "re_arcsec",
    "sersic_n",
    "axis_ratio",
    "pa_deg",
    "inclination_deg",
    "bulge_to_total",
    "disk_h_arcsec",
    "n_arms",
    "pitch_deg",
    "arm_strength",
    "arm_style",
    "has_bar",
    "bar_length_arcsec",
    "has_ring",
    "ring_radius_arcsec",
    "dust_lane",
    "n_knots",
    "companion_sep_arcsec",
    "companion_flux_ratio",
    "n_tails",
    "has_bridge",
    "has_spikes",
    "has_trail",
    "g_r",
    "r_z",
    "g_r_young",
    "psf_fwhm_arcsec",
    "depth",
    "n_stars",
    "n_neighbours",
    "x0",
    "y0",
    "ra",
    "dec",
    "fov_arcsec",
    "zoom",
)
TRUTH_COLUMNS: tuple[str, ...] = ("path", "class", "caption", "seed", "index", "size", *_CSV_PARAMS)


def _choose_format(index: int, formats: Sequence[str], fits_fraction: float) -> str:
    fmts = [f.lower().lstrip(".") for f in formats]
    raster = [f for f in fmts if f != "fits"]
    if "fits" not in fmts:
        return raster[0]
    if not raster:
        return "fits"
    # evenly interleaved, deterministic per index (golden-ratio sequence)
    return "fits" if (index * 0.6180339887498949) % 1.0 < fits_fraction else raster[0]


def _write_chunk(args) -> list[dict[str, object]]:
    out_dir, indices, seed, size, classes, formats, fits_fraction = args
    rows = []
    img_dir = Path(out_dir) / "images"
    for i in indices:
        params, bands, rgb, caption = generate_one(i, seed, size, _class_for(i, classes))
        fmt = _choose_format(i, formats, fits_fraction)
        rel = Path("images") / f"synth_{seed}_{i:06d}.{fmt}"
        if fmt == "fits":
            _write_fits(img_dir / rel.name, bands, params, caption)
        else:
            _write_raster(img_dir / rel.name, rgb)
        prow = params.to_row()
        row: dict[str, object] = {
            "path": rel.as_posix(),
            "class": params.cls,
            "caption": caption,
            "seed": seed,
            "index": i,
            "size": size,
        }
        row.update({k: prow[k] for k in _CSV_PARAMS})
        rows.append(row)
    return rows


def write_dataset(
    out_dir: str | Path,
    n: int,
    seed: int,
    size: int = DEFAULT_SIZE,
    formats: Sequence[str] = ("fits", "jpg"),
    fits_fraction: float = 0.5,
    classes: Sequence[str] | None = None,
    workers: int = 1,
    start: int = 0,
) -> Path:
    """Write ``n`` cutouts as real files plus ``truth.csv``.

    Parameters
    ----------
    out_dir : path
        Output folder (created); images go to ``out_dir/images``.
    n, seed, size, classes, start
        As in :func:`generate`.
    formats : sequence of str
        Any of ``"fits"``, ``"jpg"``, ``"png"``. Each image is written once: as FITS for a
        ``fits_fraction`` share of the images (when ``"fits"`` is listed), otherwise in the
        first raster format listed.
    workers : int
        Processes to use (1 = in this process). Output is identical for any value.

    Returns
    -------
    pathlib.Path
        Path of ``truth.csv`` (columns :data:`TRUTH_COLUMNS`; ``path`` relative to ``out_dir``).
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    classes = tuple(classes) if classes else CLASSES
    for c in classes:
        if c not in CLASSES:
            raise ValueError(f"unknown class {c!r}; expected one of {', '.join(CLASSES)}")
    for f in formats:
        if f.lower().lstrip(".") not in ("fits", "jpg", "jpeg", "png"):
            raise ValueError(f"unknown format {f!r}; expected fits, jpg or png")
    if not formats:
        raise ValueError("formats must not be empty")
    indices = list(range(start, start + n))
    t0 = time.perf_counter()
    if workers <= 1 or n < 64:
        rows = _write_chunk(
            (str(out_dir), indices, seed, size, classes, tuple(formats), fits_fraction)
        )
    else:
        from concurrent.futures import ProcessPoolExecutor

        step = max(16, math.ceil(n / (workers * 8)))
        chunks = [
            (
                str(out_dir),
                indices[k : k + step],
                seed,
                size,
                classes,
                tuple(formats),
                fits_fraction,
            )
            for k in range(0, n, step)
        ]
        rows = []
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for part in ex.map(_write_chunk, chunks):
                rows.extend(part)
    csv_path = out_dir / "truth.csv"
    tmp = csv_path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(TRUTH_COLUMNS))
        w.writeheader()
        w.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, csv_path)
    dt = time.perf_counter() - t0
    log.info(
        "wrote %d images to %s in %.1f s (%.0f images/min)", n, out_dir, dt, 60 * n / max(dt, 1e-9)
    )
    return csv_path


def contact_sheet(
    path: str | Path,
    seed: int = 0,
    per_class: int = 6,
    size: int = DEFAULT_SIZE,
    classes: Sequence[str] | None = None,
) -> Path:
    """Write a PNG grid (one row per class) of generated cutouts, for looking at them."""
    from PIL import Image, ImageDraw

    classes = tuple(classes) if classes else CLASSES
    label_w = 110
    sheet = Image.new(
        "RGB", (label_w + per_class * (size + 2), len(classes) * (size + 2)), (40, 40, 40)
    )
    draw = ImageDraw.Draw(sheet)
    nc = len(classes)
    for r, c in enumerate(classes):
        draw.text((4, r * (size + 2) + size // 2 - 6), c, fill=(230, 230, 230))
        for k in range(per_class):
            idx = CLASSES.index(c) + k * len(CLASSES) if nc == len(CLASSES) else r + k * nc
            _, _, rgb, _ = generate_one(idx, seed, size, c)
            sheet.paste(Image.fromarray(rgb), (label_w + k * (size + 2), r * (size + 2)))
    path = Path(path)
    sheet.save(path)
    return path


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def add_synth_command(subparsers) -> argparse.ArgumentParser:
    """Register the ``synth`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "synth",
        help="generate synthetic galaxy cutouts (FITS/JPEG) with ground truth and captions",
        description="Generate synthetic galaxy cutouts in g,r,z bands (FITS cubes with WCS and/or "
        "Lupton-RGB JPEG/PNG) plus truth.csv (path, class, caption, parameters).",
    )
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help=f"image side in pixels (default {DEFAULT_SIZE})",
    )
    p.add_argument(
        "--formats",
        default="fits,jpg",
        help="comma-separated subset of fits,jpg,png (default fits,jpg)",
    )
    p.add_argument(
        "--fits-fraction", type=float, default=0.5, help="share written as FITS (default 0.5)"
    )
    p.add_argument(
        "--classes",
        default=None,
        help=f"comma-separated class ids (default all: {','.join(CLASSES)})",
    )
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--start", type=int, default=0, help="first image index (default 0)")
    p.add_argument("--sheet", type=Path, default=None, help="also write a contact-sheet PNG here")
    p.set_defaults(func=run_synth)
    return p


def run_synth(args: argparse.Namespace) -> int:
    """Run the ``synth`` subcommand; returns the process exit status."""
    import sys

    try:
        classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        if args.n < 0:
            raise ValueError("--n must be >= 0")
        if not 16 <= args.size <= 2048:
            raise ValueError("--size must be between 16 and 2048")
        t0 = time.perf_counter()
        csv_path = write_dataset(
            args.out,
            args.n,
            args.seed,
            size=args.size,
            formats=formats,
            fits_fraction=args.fits_fraction,
            classes=classes,
            workers=args.workers,
            start=args.start,
        )
        dt = time.perf_counter() - t0
        if args.sheet:
            contact_sheet(args.sheet, seed=args.seed, size=args.size, classes=classes)
    except (ValueError, OSError) as e:
        print(f"galaxy-explorer synth: error: {e}", file=sys.stderr)
        return 2
    print(csv_path)
    print(
        f"{args.n} images in {dt:.1f} s ({60 * args.n / max(dt, 1e-9):.0f} images/min)",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m galaxy_explorer.train.synth``."""
    parser = argparse.ArgumentParser(prog="python -m galaxy_explorer.train.synth")
    sub = parser.add_subparsers(dest="command")
    sp = add_synth_command(sub)
    argv = list(argv) if argv is not None else None
    import sys

    raw = argv if argv is not None else sys.argv[1:]
    if raw and raw[0] != "synth" and not raw[0].startswith("-"):
        raw = ["synth", *raw]
    elif not raw or raw[0].startswith("-") and raw[0] not in ("-h", "--help"):
        raw = ["synth", *raw]
    elif raw[0] in ("-h", "--help"):
        sp.print_help()
        return 0
    args = parser.parse_args(raw)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
