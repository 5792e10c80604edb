"""The parameters of one synthetic galaxy cutout, and facts derived from them alone.

Kept apart from :mod:`galaxy_explorer.train.synth` (which draws and renders parameters) so that
:mod:`galaxy_explorer.train.captions` can describe parameters without importing the renderer:
the synth imports the captions, the captions import this module, and nothing imports back.
Everything here is re-exported by :mod:`galaxy_explorer.train.synth`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

#: reference pixel scale (arcsec / pixel) of DECaLS / Legacy Survey cutouts
PIXSCALE: float = 0.262
#: default field of view: 128 reference pixels
DEFAULT_FOV: float = 128 * PIXSCALE


@dataclass
class GalaxyParams:
    """All parameters of one synthetic cutout (lengths in arcsec, angles in degrees).

    Attributes are shared by all classes; the ones that do not apply to a class keep their
    neutral defaults (0, False, ""). Small-scale structure (knot positions, flocculent
    patterns, background sources) is drawn from ``structure_seed`` at render time.
    """

    cls: str
    subtype: str = ""
    structure_seed: int = 0
    # sky position (for the WCS) and field
    ra: float = 0.0
    dec: float = 0.0
    fov_arcsec: float = DEFAULT_FOV
    # main object geometry
    x0: float = 0.0  # centre offset, arcsec (+x right)
    y0: float = 0.0  # centre offset, arcsec (+y down in the image)
    pa_deg: float = 0.0  # position angle of the major axis (image x axis = 0)
    inclination_deg: float = 0.0
    axis_ratio: float = 1.0  # apparent b/a of the main body
    mag_r: float = 17.0  # total r magnitude of the target object
    re_arcsec: float = 3.0  # half-light radius of the ellipsoid / bulge / nucleus
    sersic_n: float = 4.0
    boxiness: float = 2.0  # generalised-ellipse exponent c (2 = ellipse, > 2 boxy, < 2 disky)
    # disk galaxies
    bulge_to_total: float = 0.0
    disk_h_arcsec: float = 0.0  # exponential scale length
    n_arms: int = 0
    pitch_deg: float = 0.0
    arm_strength: float = 0.0
    arm_style: str = ""  # grand_design | flocculent | multi_arm
    has_bar: bool = False
    bar_length_arcsec: float = 0.0  # semi-major axis
    bar_axis_ratio: float = 0.0
    bar_angle_deg: float = 0.0  # in the disk plane, relative to the major axis
    has_ring: bool = False
    ring_radius_arcsec: float = 0.0
    ring_width_arcsec: float = 0.0
    dust_lane: float = 0.0  # optical depth (g band) of the dust lane / arm dust
    n_knots: int = 0
    # mergers
    companion_sep_arcsec: float = 0.0
    companion_flux_ratio: float = 0.0  # companion / primary
    companion_kind: str = ""  # elliptical | disk
    n_tails: int = 0
    has_bridge: bool = False
    # artefacts
    has_spikes: bool = False
    has_trail: bool = False
    trail_band: int = -1  # -1 = all bands
    # colours (magnitudes): old population / young population
    g_r: float = 0.7
    r_z: float = 0.4
    g_r_young: float = 0.2
    # observing conditions
    psf_fwhm_arcsec: float = 1.3
    psf_beta: float = 3.5  # Moffat beta; 0 = Gaussian
    depth: float = 1.0  # sky noise multiplier
    n_stars: int = 0
    n_neighbours: int = 0
    #: apparent-size factor already applied to every length above (and to the field of view):
    #: > 1 is a nearer, larger, brighter galaxy in a proportionally larger cutout, as in
    #: Galaxy-Zoo-style cutouts scaled to the galaxy; the PSF stays the same in arcsec
    zoom: float = 1.0
    extra: dict = field(default_factory=dict)

    def to_row(self) -> dict[str, object]:
        """Flat dict of scalar parameters for a CSV row (``extra`` is dropped)."""
        row = dataclasses.asdict(self)
        row.pop("extra", None)
        for k, v in row.items():
            if isinstance(v, float):
                row[k] = round(v, 4)
        return row


def _edge_on_zeff(p: GalaxyParams) -> float:
    z0 = float(p.extra.get("z0", 0.1 * p.disk_h_arcsec))
    ci = math.cos(math.radians(p.inclination_deg))
    return math.sqrt(z0 * z0 + (p.disk_h_arcsec * ci) ** 2)


def dust_lane_width(p: GalaxyParams) -> float:
    """Width (arcsec, Gaussian sigma) of the edge-on dust lane of ``p`` as rendered."""
    return max(0.45 * _edge_on_zeff(p), 0.4)


def dust_lane_visible(p: GalaxyParams) -> bool:
    """Whether the edge-on dust lane of ``p`` is resolved at its seeing (used by captions)."""
    return (
        p.cls == "edge_on"
        and p.dust_lane > 0
        and 2.355 * dust_lane_width(p) >= 0.8 * p.psf_fwhm_arcsec
    )


__all__ = ["DEFAULT_FOV", "PIXSCALE", "GalaxyParams", "dust_lane_visible", "dust_lane_width"]
