"""Catalogue tables: reading every format, matching rows to cutouts, filters, export columns."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from galaxy_explorer.core import catalogue as C
from galaxy_explorer.core.catalog import scan
from galaxy_explorer.core.export import ExportRow, Provenance, read_csv, write_csv
from galaxy_explorer.core.imaging import sky_position


@pytest.fixture
def items(cutouts):
    return scan([cutouts]).items


def _table(items, **extra):
    names = [it.name for it in items]
    t = Table({"file": names, "z": np.linspace(0.01, 0.08, len(names))})
    t["cls"] = ["spiral" if i % 2 else "elliptical" for i in range(len(names))]
    for k, v in extra.items():
        t[k] = v
    return t


@pytest.mark.parametrize("ext", [".fits", ".csv", ".ecsv", ".vot", ".xml"])
def test_every_format_reads_back_and_matches_by_file_name(tmp_path, items, ext):
    t = _table(items)
    t["z"].unit = "" if ext == ".csv" else None
    path = tmp_path / f"cat{ext}"
    fmt = {".fits": "fits", ".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}.get(ext, "votable")
    t.write(path, format=fmt)
    cat = C.open_catalogue(path)
    assert cat.n == len(items)
    assert cat.kind("cls") == "text"  # FITS byte strings are decoded
    m = C.match_catalogue(cat, items)
    assert m.method == "path" and m.column == "file"
    assert m.n_matched == len(items)
    for r, i in enumerate(m.item_of_row):
        assert items[i].name == cat.values("file")[r]
        assert m.row_of_item[i] == r


def test_unreadable_tables_give_one_line_errors(tmp_path, cutouts):
    cases = {
        "missing.csv": None,
        "empty.csv": b"",
        "garbage.fits": b"\x00\x01not fits at all" * 10,
        "bad.vot": b"<VOTABLE><oops",
        "noext": b"a,b\n1,2\n",
        "header_only.csv": b"a,b\n",
    }
    for name, data in cases.items():
        p = tmp_path / name
        if data is not None:
            p.write_bytes(data)
        with pytest.raises(C.CatalogueError) as ei:
            C.open_catalogue(p)
        msg = str(ei.value)
        assert "\n" not in msg and name in msg
    # a FITS image is not a table
    img = next(cutouts.glob("*.fits"))
    with pytest.raises(C.CatalogueError, match="without a table"):
        C.open_catalogue(img)
    assert not C.looks_like_table(img)
    with pytest.raises(C.CatalogueError, match="is a folder"):
        C.open_catalogue(tmp_path)


def test_path_matching_relative_absolute_stem_and_unmatched_rows_are_listed(tmp_path, items):
    base = items[0].path.parent
    values = [
        str(items[0].path),  # absolute
        items[1].name,  # bare name
        f"{base.name}/{items[2].name}",  # relative to the folder above
        Path(items[3].name).stem,  # an ID equal to the stem
        "nothere.fits",
        "",
        items[1].name,  # the same cutout again
    ]
    t = Table({"path": values, "v": np.arange(len(values))})
    cat = C.open_catalogue(t, base_dir=base.parent)
    m = C.match_catalogue(cat, items)
    assert list(m.item_of_row[:4]) == [0, 1, 2, 3]
    assert list(m.unmatched) == [4, 5, 6]
    assert "no cutout named 'nothere.fits'" in m.reasons[4]
    assert "empty" in m.reasons[5]
    assert "same cutout as row 1" in m.reasons[6]
    lines = C.unmatched_lines(cat, m)
    assert len(lines) == 3 and lines[0].startswith("row 4 (path=nothere.fits)")
    assert "3 without a cutout" in m.summary()


def test_duplicate_names_in_subfolders_pick_the_longest_common_tail(tmp_path):
    from helpers import write_jpeg

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        write_jpeg(tmp_path / sub / "x.jpg", seed=1 if sub == "a" else 2)
    items = scan([tmp_path]).items
    cat = C.open_catalogue(Table({"path": ["b/x.jpg", "x.jpg"]}))
    m = C.match_catalogue(cat, items)
    assert items[m.item_of_row[0]].path.parent.name == "b"
    assert m.item_of_row[1] == -1 and "ambiguous" in m.reasons[1]


def test_sha256_matching(items):
    t = Table({"sha256": [items[2].sha256.upper(), "0" * 64], "q": [1, 2]})
    m = C.match_catalogue(C.open_catalogue(t), items)
    assert m.method == "sha256" and list(m.item_of_row) == [2, -1]


def test_radec_crossmatch_with_tolerance(items):
    pos = [sky_position(it.path) for it in items]
    fits_rows = [i for i, p in enumerate(pos) if p[0] is not None]
    assert len(fits_rows) == 4
    ra = [pos[i][0] + 0.5 / 3600 for i in fits_rows] + [10.0, np.nan]
    dec = [pos[i][1] for i in fits_rows] + [10.0, 5.0]
    # a second row 1.5" from the first cutout: the nearer row wins it
    ra.append(pos[fits_rows[0]][0])
    dec.append(pos[fits_rows[0]][1] + 1.5 / 3600)
    t = Table({"RAJ2000": ra, "DEJ2000": dec})
    cat = C.open_catalogue(t)
    m = C.match_catalogue(cat, items, pos)
    assert m.method == "radec"
    assert list(m.item_of_row[:4]) == fits_rows
    np.testing.assert_allclose(
        m.separation_arcsec[:4], 0.5 * np.cos(np.radians(dec[:4])), rtol=1e-3
    )
    assert m.item_of_row[4] == -1 and "away" in m.reasons[4]
    assert "no valid RA/Dec" in m.reasons[5]
    assert "nearer to row 0" in m.reasons[6]
    # a tighter tolerance drops them all
    tight = C.match_catalogue(cat, items, pos, C.MatchOptions(tolerance_arcsec=0.1))
    assert tight.n_matched == 0
    with pytest.raises(C.CatalogueError, match="positive"):
        C.MatchOptions(tolerance_arcsec=-1)


def test_radec_in_sexagesimal_text_and_hourangle_units(items):
    pos = [sky_position(it.path) for it in items]
    i = next(k for k, p in enumerate(pos) if p[0] is not None)
    from astropy.coordinates import Angle

    ra_text = Angle(pos[i][0], unit="deg").to_string(unit="hourangle", sep=":", precision=3)
    dec_text = Angle(pos[i][1], unit="deg").to_string(unit="deg", sep=":", precision=2)
    cat = C.open_catalogue(Table({"ra": [ra_text], "dec": [dec_text]}))
    assert C.match_catalogue(cat, items, pos).item_of_row[0] == i
    t = Table({"ra": [pos[i][0] / 15.0], "dec": [pos[i][1]]})
    t["ra"].unit = "hourangle"
    t["dec"].unit = "deg"
    assert C.match_catalogue(C.open_catalogue(t), items, pos).item_of_row[0] == i


def test_nothing_to_match_on_is_a_clear_error(items):
    cat = C.open_catalogue(Table({"z": [0.1, 0.2]}))
    with pytest.raises(C.CatalogueError, match="nothing to match"):
        C.match_catalogue(cat, items)
    with pytest.raises(C.CatalogueError, match="no column 'nope'"):
        C.match_catalogue(cat, items, options=C.MatchOptions(column="nope"))


def test_auto_falls_back_to_radec_when_no_path_matches(items):
    pos = [sky_position(it.path) for it in items]
    i = next(k for k, p in enumerate(pos) if p[0] is not None)
    t = Table({"path": ["/elsewhere/other.fits"], "ra": [pos[i][0]], "dec": [pos[i][1]]})
    m = C.match_catalogue(C.open_catalogue(t), items, pos)
    assert m.method == "radec" and m.item_of_row[0] == i and m.notes


# ------------------------------------------------------------------------- filters
@pytest.fixture
def fcols():
    return {
        "z": np.array([0.01, 0.04, 0.06, np.nan]),
        "mag_r": np.array([16.0, 18.0, 16.5, 15.0]),
        "class": np.array(["spiral", "ring", "spiral", ""], dtype=object),
        "has_bar": np.array([True, False, False, True]),
        "p(spiral)": np.array([0.9, 0.1, 0.6, 0.2]),
    }


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("z < 0.05 and mag_r < 17", [True, False, False, False]),
        ("z < 0.05 or mag_r < 17", [True, True, True, True]),
        ("not (z < 0.05)", [False, False, True, True]),  # NaN fails the comparison
        ("0.02 < z < 0.07", [False, True, True, False]),
        ("class == 'spiral'", [True, False, True, False]),
        ("class != 'spiral'", [False, True, False, True]),
        ("class in ('ring', 'spiral') and not has_bar", [False, True, True, False]),
        ("class not in ['ring']", [True, False, True, True]),
        ("has_bar", [True, False, False, True]),
        ("has_bar == True", [True, False, False, True]),
        ("`p(spiral)` >= 0.5", [True, False, True, False]),
        ("mag_r - 2 * z > 16", [False, True, True, False]),
        ("abs(mag_r - 16) <= 0.5 and log10(mag_r) > 1", [True, False, True, False]),
        ("MAG_R < 16.2", [True, False, False, True]),  # case-insensitive column names
        ("(z < 0.02) | (z > 0.05)", [True, False, True, False]),
        ("mag_r >= -1", [True, True, True, True]),
    ],
)
def test_filter_language(fcols, expr, expected):
    assert C.compile_filter(expr).evaluate(fcols).tolist() == expected


@pytest.mark.parametrize(
    "expr, message",
    [
        ("", "empty"),
        ("z = 0.05", "=="),
        ("z < 0.05 && mag_r < 17", "and / or"),
        ("__import__('os').system('echo hi')", "can be called"),
        ("open('x')", "only abs"),
        ("z.real > 0", "attribute"),
        ("mag_r[0] > 1", "indexing"),
        ("lambda: 1", "lambda"),
        ("z ** 2 > 1", "**"),
        ("[x for x in z]", "cannot read"),
        ("[x + 1 for x in (1, 2)] == 1", "cannot read"),
        ("class < 3", "text is compared with a number"),
        ("z", "not true/false"),
        ("nosuch > 1", "unknown column 'nosuch'"),
        ("z and mag_r", "true/false"),
        ("class in (1, 2)", "numbers in a list"),
        ("z in (a, b)", "only numbers or 'quoted text'"),
        ("`unclosed > 1", "not closed"),
        ("(" * 500 + "z" + ")" * 500 + " > 1", ""),
        ("z > None", "None"),
    ],
)
def test_bad_filters_are_one_line_errors_and_never_run_code(fcols, expr, message, capfd):
    with pytest.raises(C.FilterError) as ei:
        C.compile_filter(expr).evaluate(fcols)
    assert message in str(ei.value)
    assert "\n" not in str(ei.value)
    assert "hi" not in capfd.readouterr().out


def test_filter_over_a_catalogue_with_masked_cells():
    t = Table()
    t["z"] = MaskedColumn([0.01, 0.02, 0.03], mask=[False, True, False])
    t["kind"] = MaskedColumn(["a", "b", "c"], mask=[False, False, True])
    t["flag"] = ["True", "false", "TRUE"]  # CSV-style booleans are booleans
    cat = C.open_catalogue(t)
    assert cat.kind("flag") == "bool"
    assert C.filter_rows(cat, "z < 0.05").tolist() == [True, False, True]
    assert C.filter_rows(cat, "kind != 'a'").tolist() == [False, True, True]
    assert C.filter_rows(cat, "flag and z > 0").tolist() == [True, False, True]
    with pytest.raises(C.FilterError, match="unknown column"):
        C.filter_rows(cat, "zz > 1")


# -------------------------------------------------------------------------- exports
def test_catalogue_columns_carried_into_csv_export(tmp_path, items):
    t = _table(items)
    t["ra"] = np.arange(len(items), dtype=float)  # clashes with the export's ra
    t["n_obj"] = np.arange(len(items), dtype=np.int64) * 1000000007
    t["f32"] = np.full(len(items), 0.3, dtype=np.float32)
    t["z"] = MaskedColumn(t["z"], mask=[i == 1 for i in range(len(items))])
    cat = C.open_catalogue(t)
    m = C.match_catalogue(cat, items)
    chosen = [3, 1]
    names, vals = C.export_values(cat, m, chosen)
    assert names == ["file", "z", "cls", "cat_ra", "n_obj", "f32"]
    rows = [
        ExportRow(path=str(items[i].path), name=items[i].name, sha256=items[i].sha256, extra=v)
        for i, v in zip(chosen, vals, strict=True)
    ]
    rows.append(ExportRow(path="/x/none.png", name="none.png", sha256="0" * 64))  # no extra
    out = tmp_path / "out.csv"
    write_csv(out, rows, Provenance(model="m"))
    _, back = read_csv(out)
    assert list(back[0])[-6:] == names
    assert back[0]["file"] == items[3].name and back[0]["cls"] == "spiral"
    assert back[0]["n_obj"] == str(3 * 1000000007)
    assert back[0]["f32"] == "0.3"  # float32 written in its shortest exact form
    assert back[1]["z"] == ""  # masked cell
    assert back[2]["file"] == "" and back[2]["cls"] == ""
    # astropy reads the same file back with the columns
    tb = Table.read(out, format="ascii.csv", comment="#")
    assert tb["cat_ra"][0] == 3.0


def test_writer_rejects_extra_columns_that_clash():
    buf = io.StringIO()
    with pytest.raises(ValueError, match="clash"):
        write_csv(buf, [], Provenance(model="m"), extra_columns=["path"])
    assert buf.getvalue() == ""


def test_export_then_open_as_catalogue_round_trip(tmp_path, items):
    rows = [
        ExportRow(path=str(it.path), name=it.name, sha256=it.sha256, label="x")
        for it in items[::-1]
    ]
    out = tmp_path / "e.csv"
    write_csv(out, rows, Provenance(model="m"))
    cat = C.open_catalogue(out)
    m = C.match_catalogue(cat, items)
    assert m.method == "sha256" and m.n_matched == len(items)
    assert [items[i].sha256 for i in m.item_of_row] == [r.sha256 for r in rows]


def test_undecodable_file_names_match_by_their_exported_text(tmp_path):
    import os

    from helpers import write_jpeg

    folder = tmp_path / "odd"
    folder.mkdir()
    raw = os.fsencode(str(folder)) + b"/gal\xff.jpg"
    write_jpeg(Path(os.fsdecode(raw)), seed=3)
    write_jpeg(folder / "plain.jpg", seed=4)
    items = scan([folder]).items
    out = tmp_path / "e.csv"
    write_csv(
        out,
        [ExportRow(path=str(it.path), name=it.name, sha256=it.sha256) for it in items],
        Provenance(model="m"),
    )
    t = Table.read(out, format="ascii.csv", comment="#")
    t.remove_column("sha256")  # match by the path text alone
    m = C.match_catalogue(C.open_catalogue(t), items)
    assert m.method == "path" and m.n_matched == 2
    assert [items[i].sha256 for i in m.item_of_row] == [it.sha256 for it in items]


def test_windows_separators_in_a_path_column(items):
    base = items[2].path.parent.name
    cat = C.open_catalogue(Table({"path": [f"C:\\survey\\{base}\\{items[2].name}"]}))
    assert C.match_catalogue(cat, items).item_of_row[0] == 2
    assert C.windows_seps("a\\xffb.jpg") == "a\\xffb.jpg"  # an escaped byte, not a folder
