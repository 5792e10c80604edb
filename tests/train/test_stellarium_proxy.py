"""The Stellarium real-galaxy proxy (train/stellarium_proxy.py, measured by train/real_proxies.py).

CI has no stellarium-data (a 246 MB package), so most tests build a tiny folder in its
format: a gzip'd catalogue in Stellarium's 3.16 ``QDataStream`` layout, a loose-JSON
``textures.json`` and small PNGs. The last test runs on the installed package when present.
"""

from __future__ import annotations

import gzip
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from galaxy_explorer.train import real_proxies as rp
from galaxy_explorer.train import stellarium_proxy as sp


def _qstr(s: str) -> bytes:
    b = s.encode("utf-16-be")
    return struct.pack(">I", len(b)) + b


def _record(
    oid: int, ra: float, dec: float, otype: int, morph: str, maj: float, mnr: float, **cat: int
) -> bytes:
    out = struct.pack(">I", oid)
    out += struct.pack(">4d", math.radians(ra), math.radians(dec), 99.0, 9.0)
    out += struct.pack(">I", otype) + _qstr(morph)
    out += struct.pack(">2d", maj, mnr) + struct.pack(">I", 45) + struct.pack(">6d", *[0.0] * 6)
    keys = ("NGC", "IC", "M", "C", "B", "Sh2", "VdB", "RCW", "LDN", "LBN", "Cr", "Mel", "PGC")
    out += b"".join(struct.pack(">I", cat.get(k, 0)) for k in (*keys, "UGC"))
    out += _qstr("") + struct.pack(">2I", 0, 0) + b"".join(_qstr("") for _ in range(7))
    return out + struct.pack(">5I", *[0] * 5)


#: (file, object type, morph, major axis deg, minor axis deg, catalogue numbers)
OBJECTS = [
    ("m49.png", 0, "E2", 0.17, 0.14, {"M": 49, "NGC": 4472}),
    ("n891.png", 0, "SA(s)b?", 0.225, 0.042, {"NGC": 891}),
    ("m101-vasey.png", 0, "SAB(rs)cd", 0.48, 0.45, {"M": 101, "NGC": 5457}),
    ("n4449.png", 0, "IBm", 0.10, 0.07, {"NGC": 4449}),
    ("n3115.png", 0, "S0", 0.12, 0.042, {"NGC": 3115}),  # lenticular, not thin: left out
    ("n4038-9.png", 3, "SB(s)m pec", 0.09, 0.05, {"NGC": 4038}),  # interacting: left out
    ("m42.png", 15, "", 1.0, 1.0, {"M": 42}),  # a nebula: left out
]


def _fixture(folder: Path, draw_offset: bool = False) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    cat = _qstr("3.16") + _qstr("standard")
    tiles = []
    for i, (name, otype, morph, maj, mnr, ids) in enumerate(OBJECTS):
        ra, dec = 10.0 + 20 * i, 30.0
        cat += _record(i + 1, ra, dec, otype, morph, maj, mnr, **ids)
        half = maj  # texture spans 2 x the major axis
        c = math.cos(math.radians(dec))
        corners = [
            [ra + half / c, dec - half],
            [ra - half / c, dec - half],
            [ra - half / c, dec + half],
            [ra + half / c, dec + half],
        ]
        tiles.append(
            '\t{\n\t\t"imageCredits": {"short": "test"},\n'
            f'\t\t"imageUrl" : "{name}",\n\t\t"worldCoords" : [{corners}],\n'
            '\t\t"textureCoords" : [[[0,0], [1,0], [1,1], [0,1]]]\n\t},'
        )
        rgb = np.zeros((200, 300, 3), np.uint8)
        rgb[90:110, 140:160] = (200, 180, 160)  # the galaxy at the centre
        Image.fromarray(rgb).save(folder / name)
    (folder / "catalog.dat").write_bytes(gzip.compress(cat))
    # loose JSON like Stellarium's: a comment line and trailing commas
    (folder / "textures.json").write_text(
        '{\n"shortName": "Nebulae", // comment\n"subTiles" : [\n' + "\n".join(tiles) + "\n]}\n"
    )
    return folder


def test_catalogue_types_map_to_the_four_kinds():
    lab = sp.label_from_catalogue
    assert lab("E2", 0.8) == "elliptical"
    assert lab("E+0-1 pec, NLRG Sy", 0.9) == "elliptical"
    assert lab("-5", 0.7) == "elliptical"
    assert lab("E/S0-1(E1)", 0.8) is None  # not a clear case
    assert lab("dSph/dE5", 0.6) is None
    assert lab("SA(s)b", 0.5) == "spiral"
    assert lab("(R)SB(r)ab", 0.6) == "spiral"
    assert lab("SA(s)b", 0.33) == "spiral"  # inclined spirals stay spirals
    assert lab("SA(s)b", 0.28) is None  # between the two bars: left out
    assert lab("SA(s)b?", 0.19) == "edge_on"
    assert lab("3", 0.2) == "edge_on" and lab("3", 0.6) == "spiral"
    assert lab("S0", 0.5) is None and lab("S0", 0.2) == "edge_on"
    assert lab("SB(s)m", 0.9) is None  # Magellanic spirals are left out
    for irr in ("IBm", "IB(s)m", "IAB(s)m", "I0", "dIrr", "Im", "10"):
        assert lab(irr, 0.7) == "irregular", irr
    assert lab("Im", 0.18) is None  # a thin irregular is not a clear case
    assert lab("I...", 0.7) is None and lab("", 0.5) is None


def test_fixture_folder_is_read_labelled_and_cropped(tmp_path):
    folder = _fixture(tmp_path / "neb")
    rows = {r["name"]: r for r in sp.catalogue_labels(folder)}
    assert {n: r["label"] for n, r in rows.items()} == {
        "m49.png": "elliptical",
        "n891.png": "edge_on",
        "m101-vasey.png": "spiral",
        "n4449.png": "irregular",
    }
    for r in rows.values():  # the object sits at the texture's centre, half its width
        assert r["u"] == pytest.approx(0.5, abs=1e-6) and r["v"] == pytest.approx(0.5, abs=1e-6)
        assert r["size"] == pytest.approx(0.5, rel=1e-2)
    ims = sp.stellarium_galaxies(folder, margin=1.0)
    assert len(ims) == 4
    for p in ims:  # a square of the major axis (half the 300-px width), on the galaxy
        s = p.rgb.shape[0]
        assert p.rgb.dtype == np.uint8 and p.rgb.shape == (s, s, 3) and abs(s - 150) <= 2
        assert (p.rgb[s // 2 - 8 : s // 2 + 8, s // 2 - 8 : s // 2 + 8] == (200, 180, 160)).all()
    wide = sp.stellarium_galaxies(folder, margin=3.0)
    assert all(p.rgb.shape == (200, 200, 3) for p in wide)  # never beyond the texture


def test_crop_stays_inside_the_image_and_falls_back_to_the_centre():
    rgb = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    a = sp.crop_square(rgb, 0.99, 0.99, 0.5)  # top-right corner: moved inside
    assert a.shape == (96, 96, 3)  # never below 96 px
    assert np.array_equal(a, rgb[0:96, 24:120])
    b = sp.crop_square(rgb, 5.0, -3.0, 0.5)  # off the texture: the centre
    assert np.array_equal(b, rgb[2:98, 12:108])


def test_damaged_catalogue_is_a_clear_error(tmp_path):
    folder = _fixture(tmp_path / "neb")
    good = gzip.decompress((folder / "catalog.dat").read_bytes())
    (folder / "catalog.dat").write_bytes(gzip.compress(good[:-7]))
    with pytest.raises(ValueError, match="damaged Stellarium catalogue"):
        sp.catalogue_labels(folder)
    (folder / "catalog.dat").write_bytes(gzip.compress(_qstr("2.1") + _qstr("x")))
    with pytest.raises(ValueError, match="unsupported"):
        sp.catalogue_labels(folder)


def test_unreadable_image_is_skipped(tmp_path, caplog):
    folder = _fixture(tmp_path / "neb")
    (folder / "n891.png").write_bytes(b"not a png")
    names = [p.name for p in sp.stellarium_galaxies(folder)]
    assert "n891.png" not in names and len(names) == 3
    assert "skipping" in caplog.text


class _ColourAdapter:
    """Embeds an image by a fixed direction per label colour (for the metric arithmetic)."""

    def __init__(self, dirs: dict[tuple[int, int, int], int]) -> None:
        self.dirs = dirs

    def embed_images(self, rgbs):
        out = np.zeros((len(rgbs), 4), np.float32)
        for i, r in enumerate(rgbs):
            out[i, self.dirs[tuple(int(v) for v in r[r.shape[0] // 2, r.shape[1] // 2])]] = 1
        return out

    def embed_texts(self, texts):
        from galaxy_explorer.train.real_proxies import EVERYDAY_QUERIES, REAL_PROMPTS

        kinds = list(REAL_PROMPTS)
        q = dict(EVERYDAY_QUERIES)
        rows = [
            kinds.index(q[t]) if t in q else list(REAL_PROMPTS.values()).index(t) for t in texts
        ]
        return np.eye(4, dtype=np.float32)[rows]


def test_measures_of_the_hidden_evaluation():
    from galaxy_explorer.train.real_proxies import REAL_PROMPTS

    kinds = list(REAL_PROMPTS)  # spiral, elliptical, irregular, edge_on

    def img(c):
        return np.full((8, 8, 3), c, np.uint8)

    truth = ["spiral"] * 6 + ["elliptical"] * 2 + ["irregular"] * 2 + ["edge_on"] * 2
    # colour = the direction the fake model puts it in: 2 spirals go to edge-on
    pred = ["spiral"] * 4 + ["edge_on"] * 2 + ["elliptical"] * 2 + ["irregular", "spiral"]
    pred += ["edge_on"] * 2
    colours = {k: (i + 1, 0, 0) for i, k in enumerate(kinds)}
    images = [
        sp.ProxyImage(f"x{i}.png", t, "", 0.5, img(colours[p]))
        for i, (t, p) in enumerate(zip(truth, pred, strict=True))
    ]
    ad = _ColourAdapter({colours[k]: i for i, k in enumerate(kinds)})
    out = rp.stellarium_measures(ad, images)
    assert out["recall"] == {"spiral": 0.667, "elliptical": 1.0, "irregular": 0.5, "edge_on": 1.0}
    assert out["balanced_accuracy"] == pytest.approx((4 / 6 + 1 + 0.5 + 1) / 4, abs=1e-3)
    assert out["predicted_share"]["edge_on"] == pytest.approx(4 / 12, abs=1e-3)
    assert out["confusion"]["rows_true"][0] == [4, 0, 0, 2]
    assert out["true_count"] == {"spiral": 6, "elliptical": 2, "irregular": 2, "edge_on": 2}
    p10 = out["everyday_precision_at_10"]["per_kind"]
    # top 10: the images in the query's direction first, then ties in stable order (the
    # irregular called spiral, index 9, makes the tenth)
    assert p10["elliptical"] == 0.2 and p10["edge_on"] == 0.2 and p10["irregular"] == 0.2


def test_cli_skips_in_one_line_without_the_package(tmp_path):
    env = {"GALAXY_EXPLORER_STELLARIUM_DIR": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "galaxy_explorer.train.real_proxies", "--list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "skipped" in r.stderr


def test_installed_package_gives_a_hundred_labelled_galaxies():
    if sp.stellarium_dir() is None:
        pytest.skip("stellarium-data not installed")
    rows = sp.catalogue_labels()
    count = {k: sum(r["label"] == k for r in rows) for k in ("spiral", "elliptical", "irregular")}
    count["edge_on"] = sum(r["label"] == "edge_on" for r in rows)
    assert count == {"spiral": 81, "elliptical": 8, "irregular": 11, "edge_on": 9}
    names = {r["name"]: r["label"] for r in rows}
    assert names["m82-vasey.png"] == "irregular" and names["n891.png"] == "edge_on"
    assert names["m49.png"] == "elliptical" and names["m101-vasey.png"] == "spiral"


def test_bundled_model_on_the_installed_proxy():
    """The shipped model on the 109 Stellarium galaxies: balanced accuracy 0.831, 17 %
    called edge-on (true share 8 %) and everyday-words elliptical precision@10 0.6 when this
    test was written (the model before: 0.784 and 0.25); a floor, not the score."""
    if sp.stellarium_dir() is None:
        pytest.skip("stellarium-data not installed")
    from galaxy_explorer.core.model import ClipAdapter, bundled_model_path

    if not (bundled_model_path() / "model.safetensors").exists():
        pytest.skip("no bundled model")
    out = rp.stellarium_measures(ClipAdapter.load(str(bundled_model_path()), device="cpu"))
    assert out["n"] == 109
    assert out["balanced_accuracy"] >= 0.70, out
    assert out["predicted_share"]["edge_on"] <= 0.25, out
    assert min(out["recall"].values()) >= 0.5, out
    assert out["everyday_precision_at_10"]["per_kind"]["elliptical"] >= 0.5, out
