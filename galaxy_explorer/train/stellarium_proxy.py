"""A labelled real-galaxy proxy built from Stellarium's deep-sky images (Debian ``stellarium-data``).

Stellarium ships real photographs of nearby galaxies (Messier, NGC, IC, UGC, PGC objects) as
sky textures under ``/usr/share/stellarium/nebulae/default/``, next to its deep-sky catalogue
``catalog.dat`` (gzip'd Qt data stream, format 3.16 in Debian 12's 0.22.2) that gives each
object its type, its morphological type (RC3 style, e.g. ``SA(s)b``, ``E2``, ``IBm``, or a
numerical de Vaucouleurs stage) and its major and minor axes. This module builds the proxy
at evaluation time from the installed package; nothing is copied into the repository.

Licence: the package is GPL-2+; the images are credited per file in ``textures.json`` and
the package's ``copyright`` (e.g. Grasslands Observatory / Tim Hunter and James McGaha: "use
the image freely as long as it is credited"; Peter Vasey, Plover Hill Observatory; DSS and
SDSS survey cut-outs). Used here only to measure, never redistributed.

Labels come from the catalogue, by a rule written down here (:func:`label_from_catalogue`),
keeping only clear cases of the four kinds of issue 9:

* **elliptical**: Hubble type E (``E``, ``E0``–``E7``, ``E+``; stage T ≤ −4); not E/S0,
  not dwarf spheroidals (``dSph``, ``dE``);
* **irregular**: ``I``, ``Im``, ``IB(s)m``, ``IAB(s)m``, ``I0``, ``dIrr``, ``dIm``, ``dI``
  (stage 10), axis ratio > 0.25 (thin irregulars are left out);
* **edge_on**: a disc galaxy (S0 to Sd, stage −3 … 8) with catalogue axis ratio ≤ 0.25, the
  issue's bar for "really thin";
* **spiral**: Sa … Sd (stages 1 … 8), barred or not, axis ratio ≥ 0.30 (inclined spirals
  whose arms still show are spirals).

Left out: lenticulars that are not edge-on, Magellanic spirals (Sm, Sdm, stage 9), anything
with an uncertain (``...``) type, axis ratios 0.25–0.30, objects the catalogue calls
interacting, and :data:`EXCLUDE` (19 images judged by eye: groups, pairs, mergers, a
polar ring, the Sombrero, tiny objects, each with its reason).
The catalogue axis ratio is an isophotal one; a few highly inclined spirals sit near 0.25.

The measures (zero-shot, confusion, everyday queries) are in
:func:`galaxy_explorer.train.real_proxies.stellarium_measures`; run them on a model with
``python -m galaxy_explorer.train.real_proxies --model DIR``.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: where Debian's stellarium-data puts the deep-sky textures and catalogue
DEFAULT_DIR = Path("/usr/share/stellarium/nebulae/default")
#: environment variable naming another folder with the same files (e.g. an unpacked .deb)
ENV_DIR = "GALAXY_EXPLORER_STELLARIUM_DIR"

#: Stellarium object types that are galaxies (0 galaxy, 1 active, 2 radio, 3 interacting)
GALAXY_TYPES = (0, 1, 2)
#: images left out by eye (file stem: why); every other clear-case catalogue type is kept
EXCLUDE: dict[str, str] = {
    "n691group-vasey": "a group",
    "n7318-vasey": "Stephan's Quintet",
    "n4038-9": "the Antennae, a merger",
    "ic883h": "a merger",
    "n5257h": "an interacting pair",
    "n4567": "a pair (with NGC 4568)",
    "n4298": "a pair (with edge-on NGC 4302)",
    "n6769": "a pair",
    "n2805-vasey": "a group",
    "n92": "Robert's Quartet",
    "n3750": "a compact group",
    "n5982oleg": "three galaxies of similar size",
    "n660": "a polar-ring galaxy",
    "n3718oleg": "a warped peculiar disc",
    "m104": "the Sombrero: 84 deg inclined, edge-on or spiral by taste",
    "n1055": "a dust lane across a nearly edge-on disc (catalogue axis ratio 0.48)",
    "n4631-vasey": "axis ratio 0.30 and looks edge-on",
    "n4274-dss": "the galaxy is a few pixels wide in the texture",
    "n4394-dss": "the galaxy is a few pixels wide in the texture",
}

_CAT_KEYS = ("NGC", "IC", "M", "C", "B", "Sh2", "VdB", "RCW", "LDN", "LBN", "Cr", "Mel")
_CAT_KEYS2 = ("PGC", "UGC")
_PREFIX = {"m": "M", "n": "NGC", "ic": "IC", "u": "UGC", "p": "PGC"}


@dataclass(frozen=True)
class ProxyImage:
    """One labelled proxy image."""

    name: str  #: texture file name, e.g. ``n891.png``
    label: str  #: spiral / elliptical / irregular / edge_on
    morph: str  #: the catalogue's morphological type
    axis_ratio: float  #: catalogue minor / major axis
    rgb: np.ndarray  #: (H, W, 3) uint8


def stellarium_dir() -> Path | None:
    """The folder with ``catalog.dat`` and the textures, or None when not installed."""
    cand = os.environ.get(ENV_DIR)
    d = Path(cand) if cand else DEFAULT_DIR
    if (d / "catalog.dat").is_file() and (d / "textures.json").is_file():
        return d
    return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.b, self.p = data, 0

    def u32(self) -> int:
        (v,) = struct.unpack_from(">I", self.b, self.p)
        self.p += 4
        return int(v)

    def f64(self) -> float:
        (v,) = struct.unpack_from(">d", self.b, self.p)
        self.p += 8
        return float(v)

    def qstr(self) -> str:
        n = self.u32()
        if n == 0xFFFFFFFF:
            return ""
        v = self.b[self.p : self.p + n].decode("utf-16-be")
        self.p += n
        return v


def read_catalogue(path: Path) -> list[dict[str, Any]]:
    """Parse Stellarium's ``catalog.dat`` (format 3.x, gzip'd ``QDataStream``).

    Returns one dict per object with ``type``, ``morph``, ``ra``/``dec`` (degrees),
    ``maj``/``min`` (degrees) and the catalogue numbers (``M``, ``NGC``, ``IC``, ``UGC``,
    ``PGC``; 0 when none). Raises ValueError on another format.
    """
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    r = _Reader(raw)
    try:
        version = r.qstr()
        r.qstr()  # edition
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a Stellarium DSO catalogue") from exc
    if not version.startswith("3."):
        raise ValueError(f"{path}: unsupported Stellarium catalogue version {version!r}")
    out = []
    try:
        while r.p < len(raw):
            o: dict[str, Any] = {"id": r.u32()}
            o["ra"], o["dec"] = math.degrees(r.f64()), math.degrees(r.f64())
            r.f64(), r.f64()  # B and V magnitudes
            o["type"], o["morph"] = r.u32(), r.qstr()
            o["maj"], o["min"] = r.f64(), r.f64()
            r.u32()  # orientation
            for _ in range(6):  # redshift, parallax, distance and their errors
                r.f64()
            for k in _CAT_KEYS + _CAT_KEYS2:
                o[k] = r.u32()
            r.qstr()  # Ced
            r.u32(), r.u32()  # Arp, VV
            for _ in range(7):  # PK, PNG, SNRG, ACO, HCG, ESO, VdBH
                r.qstr()
            for _ in range(5):  # DWB, Tr, St, Ru, VdBHa
                r.u32()
            out.append(o)
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: damaged Stellarium catalogue at byte {r.p}") from exc
    return out


_SPIRAL = re.compile(r"^S(A|AB|B)?\s*(\([rs]+\))?\s*(a|ab|b|bc|c|cd|d)\b")
_IRR = re.compile(r"^(I0|I|Im|IB(\(s\))?m|IAB(\(s\))?m|IB|dIrr|dIm|dI)\b")
_ELL = re.compile(r"^E(\d|\+|\b)")


def label_from_catalogue(morph: str, axis_ratio: float) -> str | None:
    """The issue-9 kind of a catalogued galaxy, or None when it is not a clear case.

    See the module docstring for the rule. ``morph`` is Stellarium's morphological type
    (RC3 notation or a numerical stage), ``axis_ratio`` minor / major axis.
    """
    m = morph.strip()
    if not m or "..." in m or not axis_ratio > 0:
        return None
    disc = False
    if re.fullmatch(r"-?\d+", m):  # a de Vaucouleurs stage
        t = int(m)
        if t <= -4:
            return "elliptical"
        if t == 10:
            return "irregular" if axis_ratio > 0.25 else None
        if -3 <= t <= 0:
            return "edge_on" if axis_ratio <= 0.25 else None
        if 1 <= t <= 8:
            disc = True
        else:
            return None
    else:
        m = re.sub(r"^\(R'?(_\d)?\)?\s*", "", m)  # outer ring
        if _ELL.match(m) and "S0" not in m and "+S" not in m:
            return "elliptical"
        if _IRR.match(m):
            return "irregular" if axis_ratio > 0.25 else None
        if m.startswith(("S0", "SA0", "SB0", "SAB0", "SA(s)0", "SB(s)0", "SB(rs)0", "SAB(rs)0")):
            return "edge_on" if axis_ratio <= 0.25 else None
        if _SPIRAL.match(m):
            disc = True
    if not disc:
        return None
    if axis_ratio <= 0.25:
        return "edge_on"
    if axis_ratio >= 0.30:
        return "spiral"
    return None


def _textures(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """Image file name -> its four sky corners (RA, Dec in degrees) from ``textures.json``.

    Read with a regular expression: the file is loose JSON (comments, trailing commas). The
    corners map to texture coordinates (0,0), (1,0), (1,1), (0,1), (0,0) being the image's
    bottom-left corner.
    """
    txt = (folder / "textures.json").read_text(encoding="utf-8", errors="replace")
    out = {}
    pat = r'"imageUrl"\s*:\s*"([^"/\\]+\.png)"\s*,\s*"worldCoords"\s*:\s*\[\[(.*?)\]\]'
    for name, coords in re.findall(pat, txt, re.S):
        nums = [float(x) for x in re.findall(r"-?\d*\.?\d+(?:[eE][-+]?\d+)?", coords)]
        if len(nums) >= 8:
            out[name] = [(nums[i], nums[i + 1]) for i in range(0, 8, 2)]
    return out


def _texture_position(
    corners: list[tuple[float, float]], ra: float, dec: float
) -> tuple[float, float, float]:
    """``(u, v, width)``: a sky position in texture coordinates and the texture's width in
    degrees (affine from three corners; textures span a fraction of a degree)."""
    ra0, dec0 = corners[0]
    c = math.cos(math.radians(dec0))

    def local(r: float, d: float) -> tuple[float, float]:
        return ((r - ra0 + 180.0) % 360.0 - 180.0) * c, d - dec0

    x1, y1 = local(*corners[1])
    x3, y3 = local(*corners[3])
    x, y = local(ra, dec)
    det = x1 * y3 - x3 * y1
    if abs(det) < 1e-12:
        return 0.5, 0.5, 0.0
    return (x * y3 - x3 * y) / det, (x1 * y - x * y1) / det, math.hypot(x1, y1)


def crop_square(rgb: np.ndarray, u: float, v: float, side_frac: float) -> np.ndarray:
    """A square around texture position ``(u, v)``, ``side_frac`` of the image width (at
    least 96 px, at most the image), moved inside the image; the centre when (u, v) is off."""
    h, w = rgb.shape[:2]
    s = int(round(min(h, w, max(96.0, side_frac * w))))
    cx, cy = u * w, (1.0 - v) * h
    if not (0 <= cx < w and 0 <= cy < h):
        cx, cy = w / 2, h / 2
    x0 = int(round(min(max(cx - s / 2, 0), w - s)))
    y0 = int(round(min(max(cy - s / 2, 0), h - s)))
    return np.ascontiguousarray(rgb[y0 : y0 + s, x0 : x0 + s])


def _to_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "P", "PA"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
            im = Image.alpha_composite(bg, im)
        return np.asarray(im.convert("RGB"))


def catalogue_labels(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every clear-case galaxy texture: ``name``, ``label``, ``morph``, ``axis_ratio``, and
    where it sits in its texture (``u``, ``v``) and its major axis as a fraction of the
    texture's width (``size``)."""
    folder = folder or stellarium_dir()
    if folder is None:
        return []
    by: dict[str, dict[str, Any]] = {}
    for o in read_catalogue(folder / "catalog.dat"):
        for pre, key in _PREFIX.items():
            if o[key]:
                by.setdefault(f"{pre}{o[key]}", o)
    out = []
    for name, corners in sorted(_textures(folder).items()):
        stem = name[:-4]
        mm = re.match(r"^(ic|m|n|u|p)(\d+)", stem)
        if mm is None or stem in EXCLUDE:
            continue
        o = by.get(f"{mm.group(1)}{int(mm.group(2))}")
        if o is None or o["type"] not in GALAXY_TYPES or not o["maj"]:
            continue
        q = float(o["min"] / o["maj"])
        lab = label_from_catalogue(o["morph"], q)
        if lab is None or not (folder / name).is_file():
            continue
        u, v, width = _texture_position(corners, o["ra"], o["dec"])
        size = float(o["maj"] / width) if width > 0 else 1.0
        out.append(
            {"name": name, "label": lab, "morph": o["morph"], "axis_ratio": round(q, 3)}
            | {"u": u, "v": v, "size": size}
        )
    return out


def stellarium_galaxies(folder: Path | None = None, margin: float = 1.5) -> list[ProxyImage]:
    """The labelled proxy images (empty when stellarium-data is not installed).

    Each texture is cropped to a square of ``margin`` × the galaxy's catalogue major axis
    around its catalogue position (never below 96 px or beyond the texture), flattened on
    black where it has transparency. Unreadable images are skipped with a warning.
    """
    folder = folder or stellarium_dir()
    out = []
    for row in catalogue_labels(folder):
        path = (folder or DEFAULT_DIR) / row["name"]
        try:
            rgb = crop_square(_to_rgb(path), row["u"], row["v"], margin * row["size"])
        except (OSError, ValueError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        out.append(ProxyImage(row["name"], row["label"], row["morph"], row["axis_ratio"], rgb))
    return out
