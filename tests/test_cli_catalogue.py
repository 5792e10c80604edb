"""``--catalogue`` on query / classify / export, and ``label --import / --export``."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from helpers import write_jpeg


def _read(path):
    lines = [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


@pytest.fixture
def catalogue(cutouts, tmp_path):
    """A FITS catalogue: rows for 7 of the 8 cutouts by file name, plus one with no cutout."""
    names = sorted(p.name for p in cutouts.iterdir())
    rows = names[:7] + ["missing.fits"]
    t = Table(
        {
            "filename": rows,
            "z": np.round(np.linspace(0.01, 0.08, len(rows)), 3),
            "morph": ["spiral" if i % 2 else "elliptical" for i in range(len(rows))],
        }
    )
    path = tmp_path / "cat.fits"
    t.write(path)
    return path, names


def test_query_classify_export_carry_catalogue_columns(run, cutouts, catalogue, tmp_path):
    cat, names = catalogue
    q = tmp_path / "q.csv"
    code, _, err = run(
        "query", str(cutouts), "spiral", "--top", "8", "--csv", str(q), "--catalogue", str(cat)
    )
    assert code == 0, err
    assert "7 of 8 catalogue rows matched a cutout by the 'filename' column" in err
    assert "row 7 (filename=missing.fits): no cutout named 'missing.fits'" in err
    rows = _read(q)
    header = list(rows[0])
    assert header[-3:] == ["filename", "z", "morph"] and header[:3] == ["path", "name", "sha256"]
    by_name = {r["name"]: r for r in rows}
    assert by_name[names[1]]["z"] == "0.02" and by_name[names[1]]["morph"] == "spiral"
    assert by_name[names[7]]["z"] == "" and by_name[names[7]]["filename"] == ""  # no row

    c = tmp_path / "c.csv"
    code, _, err = run(
        "classify",
        str(cutouts),
        "--labels",
        "spiral,elliptical",
        "--csv",
        str(c),
        "--catalogue",
        str(cat),
    )
    assert code == 0, err
    rows = _read(c)
    assert list(rows[0])[-5:] == ["p_elliptical", "label", "filename", "z", "morph"]

    e = tmp_path / "e.csv"
    code, _, err = run("export", str(cutouts), "--csv", str(e), "--catalogue", str(cat))
    assert code == 0, err
    rows = _read(e)
    assert len(rows) == 8 and sum(r["morph"] != "" for r in rows) == 7


def test_catalogue_errors_are_one_line_and_before_the_model(run, cutouts, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02garbage")
    out = str(tmp_path / "o.csv")
    for cat, msg in ((tmp_path / "none.csv", "no such file"), (bad, "bad.csv")):
        code, _, err = run("export", str(cutouts), "--csv", out, "--catalogue", str(cat))
        assert code == 2
        assert msg in err and "Traceback" not in err
        assert "error:" in err and len([ln for ln in err.splitlines() if "error" in ln]) == 1
        assert "model " not in err  # failed before the model was loaded
    with pytest.raises(SystemExit) as ei:  # argparse: a usage error
        run("export", str(cutouts), "--csv", out, "--catalogue", str(bad), "--tolerance", "-3")
    assert ei.value.code == 2
    t = tmp_path / "nomatch.csv"
    Table({"zz": [1.0]}).write(t)
    code, _, err = run("export", str(cutouts), "--csv", out, "--catalogue", str(t))
    assert code == 2 and "nothing to match cutouts on" in err
    assert not Path(out).exists()  # nothing written on a bad catalogue


def test_label_import_export_round_trip(run, cutouts, catalogue, tmp_path):
    cat, names = catalogue
    code, out, err = run("label", str(cutouts), "--import", str(cat), model=False)
    assert code == 0, err
    assert "imported 7 labels (2 classes) from column 'morph'" in err
    assert "1 rows had no cutout" in err
    counts = {ln.split()[1]: int(ln.split()[0]) for ln in out.strip().splitlines()}
    assert counts == {"elliptical": 4, "spiral": 3}
    # a second import with another column keeps existing labels unless --overwrite
    t = Table.read(cat)
    t["other"] = ["x"] * len(t)
    cat2 = tmp_path / "cat2.ecsv"
    t.write(cat2)
    code, _, err = run(
        "label", str(cutouts), "--import", str(cat2), "--label-column", "other", model=False
    )
    assert "7 kept a different existing label" in err
    out_csv = tmp_path / "labels.csv"
    code, _, err = run("label", str(cutouts), "--export", str(out_csv), model=False)
    assert code == 0 and "wrote 7 labels" in err
    rows = _read(out_csv)
    assert {r["name"]: r["label"] for r in rows} == {
        names[i]: ("spiral" if i % 2 else "elliptical") for i in range(7)
    }
    # the exported file imports back (matched by sha256) into a fresh labels file
    code, _, err = run(
        "label",
        str(cutouts),
        "--import",
        str(out_csv),
        "--labels-file",
        str(tmp_path / "fresh.sqlite"),
        model=False,
    )
    assert code == 0 and "by content hash ('sha256')" in err and "imported 7 labels" in err
    code, _, err = run(
        "label",
        str(cutouts),
        "--import",
        str(cat2),
        "--label-column",
        "other",
        "--overwrite",
        model=False,
    )
    assert "imported 7 labels (1 classes)" in err


def test_label_import_by_radec_and_bad_label_column(run, cutouts, tmp_path):
    from galaxy_explorer.core.imaging import sky_position

    fits = sorted(cutouts.glob("*.fits"))
    pos = [sky_position(p) for p in fits]
    t = Table(
        {
            "RA": [p[0] + 1 / 3600 for p in pos],
            "DEC": [p[1] for p in pos],
            "gz2class": ["Sc", "Ei", "Sb", "Er"],
        }
    )
    cat = tmp_path / "gz.vot"
    t.write(cat, format="votable")
    code, _, err = run("label", str(cutouts), "--import", str(cat), "--match", "radec", model=False)
    assert code == 1 or code == 0
    assert "4 of 4 catalogue rows matched a cutout by RA/Dec" in err
    assert "imported 4 labels (4 classes) from column 'gz2class'" in err
    code, _, err = run(
        "label", str(cutouts), "--import", str(cat), "--tolerance", "0.5", model=False
    )
    assert "0 of 4 catalogue rows matched" in err and code == 1
    code, _, err = run(
        "label", str(cutouts), "--import", str(cat), "--label-column", "zzz", model=False
    )
    assert code == 2 and "no column 'zzz'" in err
    code, _, err = run("label", str(cutouts), "--export", str(tmp_path / "x.fits"), model=False)
    assert code == 0 and "wrote 4 labels" in err  # FITS (or ECSV, VOTable) by the extension
    back = Table.read(tmp_path / "x.fits")
    assert sorted(str(v) for v in back["label"]) == ["Ei", "Er", "Sb", "Sc"]
    assert str(back["ra"].unit) == "deg"


def test_label_import_beside_a_concurrent_writer(tmp_path):
    """Another process labelling the same catalogue while an import runs: nothing is lost."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        write_jpeg(folder / f"g{i:03d}.jpg", seed=i)
    names = sorted(p.name for p in folder.iterdir())
    t = Table({"file": names[:40], "class": [f"c{i % 5}" for i in range(40)]})
    cat = tmp_path / "cat.csv"
    t.write(cat)
    labels = tmp_path / "labels.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    writer = textwrap.dedent(
        f"""
        import hashlib, sys
        from pathlib import Path
        from galaxy_explorer.core.labels import LabelStore
        folder = Path({str(folder)!r})
        files = sorted(folder.iterdir())[40:]
        shas = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
        s = LabelStore({str(labels)!r})
        for k in range(40):
            for sha, p in zip(shas, files):
                s.set([sha], f"w{{k}}", paths=[p])
        s.close()
        """
    )
    cmd = [
        sys.executable,
        "-m",
        "galaxy_explorer",
        "label",
        str(folder),
        "--import",
        str(cat),
        "--labels-file",
        str(labels),
        "--cache",
        str(tmp_path / "cache"),
        "-q",
    ]
    w = subprocess.Popen([sys.executable, "-c", writer], env=env)
    imp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert w.wait(timeout=300) == 0
    assert imp.returncode == 0, imp.stderr
    assert "imported 40 labels" in imp.stderr
    from galaxy_explorer.core.labels import LabelStore

    s = LabelStore(labels)
    try:
        got = s.all()
    finally:
        s.close()
    assert len(got) == 60
    assert sorted(v for v in got.values() if v.startswith("c")) == sorted(t["class"].tolist())
    assert sum(v == "w39" for v in got.values()) == 20
