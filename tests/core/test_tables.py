"""ECSV / VOTable / FITS / Parquet export through astropy: round trips, names, errors."""

from __future__ import annotations

import io
import json
import math
import os
import sys
import warnings

import numpy as np
import pytest
from astropy.table import Table

from galaxy_explorer.core.export import ExportRow, Provenance, text_for_csv
from galaxy_explorer.core.tables import (
    TableError,
    build_table,
    format_for,
    read_table,
    votable_bytes,
    write_table,
)

LABELS = ["spiral galaxy", 'barred, "grand design"', "elliptique é"]
ODD = os.fsdecode(b"gal\xff\xfe")  # not valid UTF-8: any bytes a file system allows


def _prov() -> Provenance:
    return Provenance(
        model="juppy44/galaxy-clip-finetuned",
        model_revision="abc123",
        render="asinh-percentile-99.5",
        labels=LABELS,
        prompts=["{}", "an image of a {}"],
        query="spiral galaxy with prominent arms",
        extra={"command": "export", "top": "5"},
    )


def _rows() -> list[ExportRow]:
    return [
        ExportRow(
            path=f"/data/{ODD} é 中.fits",
            name=f"{ODD} é 中.fits",
            sha256="aa" * 32,
            ra=150.1234567891234,
            dec=-2.5,
            score=0.3125,
            predicted_label="spiral galaxy",
            probs={"spiral galaxy": 0.7, 'barred, "grand design"': 0.2, "elliptique é": 0.1},
            label='barred, "grand design"',
        ),
        ExportRow(path="/data/b,#c.jpg", name="b,#c.jpg", sha256="bb" * 32, score=float("nan")),
        ExportRow(path="/c.png", name="c.png", sha256="cc" * 32, ra=1.0, dec=2.0, probs={}),
    ]


def _s(col) -> list[str]:
    """Text cells; a masked cell (ECSV reads an empty text back as missing) is ''."""
    filled = col.filled("") if hasattr(col, "filled") else col
    return [str(x) for x in filled]


# the same rows, values and units as the rows above, as any astropy reader returns them
def _check_values(t: Table, pcols: list[str]) -> None:
    assert len(t) == 3
    assert str(t["ra"].unit) == "deg" and str(t["dec"].unit) == "deg"
    t = t.copy()
    for c in t.colnames:  # VOTable / FITS readers mask NaN cells: a missing number is NaN
        if t[c].dtype.kind == "f":
            unit = t[c].unit
            t[c] = np.ma.filled(np.ma.asarray(t[c]), np.nan)
            t[c].unit = unit
    assert list(t.colnames[:7]) == [
        "path",
        "name",
        "sha256",
        "ra",
        "dec",
        "score",
        "predicted_label",
    ]
    assert t.colnames[-1] == "label"
    assert t.colnames[7:-1] == pcols
    assert str(t["ra"].unit) == "deg" and str(t["dec"].unit) == "deg"
    assert _s(t["path"]) == [text_for_csv(r.path) for r in _rows()]
    assert str(t["path"][0]) == "/data/gal\\xff\\xfe é 中.fits"
    assert _s(t["sha256"]) == ["aa" * 32, "bb" * 32, "cc" * 32]
    assert float(t["ra"][0]) == 150.1234567891234  # exact, not rounded to text
    assert float(t["dec"][0]) == -2.5
    assert math.isnan(float(t["ra"][1])) and math.isnan(float(t["score"][1]))
    assert float(t["score"][0]) == 0.3125
    assert _s(t["predicted_label"]) == ["spiral galaxy", "", ""]
    assert _s(t["label"]) == ['barred, "grand design"', "", ""]
    assert [float(x) for x in t[pcols[0]]][0] == 0.7
    assert float(t[pcols[2]][0]) == 0.1
    assert all(math.isnan(float(x)) for x in t[pcols[1]][1:])


SAFE = ["p_spiral_galaxy", "p_barred___grand_design_", "p_elliptique__"]
RAW = [f"p_{n}" for n in LABELS]


@pytest.mark.parametrize(
    ("ext", "fmt", "pcols"),
    [
        ("ecsv", "ascii.ecsv", RAW),
        ("vot", "votable", SAFE),
        ("fits", "fits", SAFE),
        ("parquet", "parquet", RAW),
    ],
)
def test_round_trip_with_plain_astropy(tmp_path, ext, fmt, pcols):
    out = tmp_path / f"out{ODD}:#.{ext}"  # the output name is odd too
    assert write_table(out, _rows(), _prov(), LABELS) == 3
    assert os.listdir(tmp_path) == [out.name]  # no temporary left behind
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open(out, "rb") as fh:  # pyarrow cannot open every name by path
            t = Table.read(fh, format=fmt) if ext == "parquet" else Table.read(out, format=fmt)
    _check_values(t, pcols)
    # and our reader finds the provenance and the labels of renamed columns
    t2 = read_table(out)
    _check_values(t2, pcols)
    prov = t2.meta["galaxy_explorer"]
    assert prov["model"] == "juppy44/galaxy-clip-finetuned"
    assert prov["labels"] == LABELS  # a list: data, not a comment
    assert prov["extra"] == {"command": "export", "top": "5"}
    assert prov["p_columns"] == dict(zip(pcols, LABELS, strict=True))
    assert [t2[c].meta["label"] for c in pcols] == LABELS


def test_ecsv_provenance_is_table_metadata(tmp_path):
    out = tmp_path / "x.ecsv"
    write_table(out, _rows(), _prov(), LABELS)
    t = Table.read(out, format="ascii.ecsv")
    assert t.meta["galaxy_explorer"]["query"] == "spiral galaxy with prominent arms"
    assert t.meta["galaxy_explorer"]["prompts"] == ["{}", "an image of a {}"]
    assert t["p_elliptique é"].meta["label"] == "elliptique é"
    assert t["ra"].meta["ucd"] == "pos.eq.ra;meta.main"


def test_votable_ucds_and_infos(tmp_path):
    from astropy.io.votable import parse_single_table

    out = tmp_path / "x.vot"
    write_table(out, _rows(), _prov(), LABELS)
    vt = parse_single_table(out)
    ucd = {f.name: f.ucd for f in vt.fields}
    assert ucd["ra"] == "pos.eq.ra;meta.main"
    assert ucd["dec"] == "pos.eq.dec;meta.main"
    assert ucd["name"] == "meta.id;meta.main"
    assert {f.name: f.unit for f in vt.fields}["ra"] == "deg"
    desc = {f.name: f.description for f in vt.fields}
    assert 'barred, "grand design"' in desc["p_barred___grand_design_"]
    infos = {i.name: i.value for i in vt.infos}
    assert infos["model"] == "juppy44/galaxy-clip-finetuned"
    assert json.loads(infos["galaxy_explorer"])["labels"] == LABELS


def test_votable_bytes_parses():
    from astropy.io.votable import parse_single_table

    t = parse_single_table(io.BytesIO(votable_bytes(_rows(), _prov(), LABELS))).to_table()
    assert len(t) == 3 and str(t["ra"].unit) == "deg"


def test_fits_header_names_are_safe(tmp_path):
    from astropy.io import fits

    out = tmp_path / "x.fits"
    write_table(out, _rows(), _prov(), LABELS)
    with fits.open(out) as hdul:
        h = hdul[1].header
        names = [h[f"TTYPE{i}"] for i in range(1, h["TFIELDS"] + 1)]
        assert all(n.isascii() and n.replace("_", "").isalnum() for n in names)
        assert hdul[1].name == "GALAXIES"
        assert json.loads(h["GE_PROV"])["labels"] == LABELS


def test_empty_selection_every_format(tmp_path):
    for ext in ("ecsv", "vot", "fits", "parquet"):
        out = tmp_path / f"e.{ext}"
        assert write_table(out, [], _prov(), LABELS) == 0
        t = read_table(out)
        assert len(t) == 0 and "ra" in t.colnames


def test_format_choice():
    assert format_for("a.ECSV") == "ecsv"
    assert format_for("a.xml") == "votable"
    assert format_for("a.fit") == "fits"
    assert format_for("a.pq") == "parquet"
    assert format_for("a.txt") == "csv"
    assert format_for("-") == "csv"
    assert format_for("a.csv", "vot") == "votable"
    with pytest.raises(TableError, match="unknown table format 'xls'"):
        format_for("a.csv", "xls")


def test_fmt_overrides_extension(tmp_path):
    out = tmp_path / "x.dat"
    write_table(out, _rows(), _prov(), LABELS, fmt="fits")
    assert out.read_bytes().startswith(b"SIMPLE")


def test_csv_goes_to_the_csv_writer(tmp_path):
    out = tmp_path / "x.csv"
    write_table(out, _rows(), _prov(), LABELS, excel_safe=True)
    assert out.read_text(encoding="utf-8").startswith("# galaxy-explorer export\n")


def test_ecsv_to_stream_binary_refused():
    buf = io.StringIO()
    assert write_table(buf, _rows(), _prov(), LABELS, fmt="ecsv") == 3
    assert "# %ECSV" in buf.getvalue()
    with pytest.raises(TableError, match="binary format"):
        write_table(io.StringIO(), _rows(), _prov(), LABELS, fmt="fits")


def test_parquet_without_pyarrow_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow → ImportError
    out = tmp_path / "x.parquet"
    out.write_text("keep me")
    with pytest.raises(TableError, match="Parquet needs pyarrow: pip install pyarrow") as e:
        write_table(out, _rows(), _prov(), LABELS)
    assert "\n" not in str(e.value)
    assert out.read_text() == "keep me"  # the earlier file is untouched
    assert sorted(os.listdir(tmp_path)) == ["x.parquet"]


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    out = tmp_path / "x.fits"
    out.write_bytes(b"old")
    import galaxy_explorer.core.tables as tables

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(tables, "_write_to", boom)
    with pytest.raises(OSError, match="disk full"):
        write_table(out, _rows(), _prov(), LABELS)
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.fits"]


def test_read_errors_are_one_line(tmp_path):
    bad = tmp_path / f"{ODD}.fits"
    bad.write_bytes(b"SIMPLE  = T" + b"\0" * 100)
    for path, msg in [
        (bad, "not a readable fits table"),
        (tmp_path / "none.vot", "no such file"),
        (tmp_path, "is a folder"),
    ]:
        with pytest.raises(TableError, match=msg) as e:
            read_table(path, "fits" if path == tmp_path else None)
        assert "\n" not in str(e.value)
    with pytest.raises(TableError) as e:
        read_table(bad)
    assert "\\xff" in str(e.value)  # the odd name is shown escaped, printable


def test_build_table_duplicate_labels():
    with pytest.raises(ValueError, match="duplicate"):
        build_table(_rows(), _prov(), ["a", "a"])


def test_safe_names_never_collide():
    t = build_table([], _prov(), ["a b", "a-b", "a_b", "A_B"], safe_names=True)
    names = t.colnames[7:-1]
    assert len({n.lower() for n in names}) == 4
    assert [t[n].meta["label"] for n in names] == ["a b", "a-b", "a_b", "A_B"]


def test_numbers_are_float64():
    t = build_table(_rows(), _prov(), LABELS)
    assert t["ra"].dtype == np.float64 and t["score"].dtype == np.float64


@pytest.mark.parametrize("ext", [".ecsv", ".vot", ".fits", ".parquet", ".csv"])
def test_catalogue_extra_columns_reach_every_format(tmp_path, ext):
    """A catalogue's columns (ExportRow.extra) follow the standard ones in every format."""
    if ext == ".parquet":
        pytest.importorskip("pyarrow")
    rows = _rows()
    rows[0].extra = {"z": 0.031, "survey flag": "good"}
    rows[2].extra = {"z": 0.2}
    out = tmp_path / f"t{ext}"
    write_table(out, rows, _prov(), LABELS)
    if ext == ".csv":
        t = Table.read(out, format="ascii.csv", comment="#")
        flag = "survey flag"
    else:
        t = Table.read(out)
        flag = "survey_flag" if ext in (".vot", ".fits") else "survey flag"
    assert t.colnames[-2:] == ["z", flag]
    z = np.ma.filled(np.ma.asarray(t["z"], dtype=float), np.nan)
    assert z[0] == pytest.approx(0.031) and math.isnan(z[1]) and z[2] == pytest.approx(0.2)
    flags = ["" if np.ma.is_masked(v) else str(v) for v in t[flag]]
    assert flags[0] == "good" and flags[1] in ("", "--")
