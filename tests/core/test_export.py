from __future__ import annotations

import csv
import io
import os

import numpy as np
import pytest

import galaxy_explorer
from galaxy_explorer.core.export import ExportRow, Provenance, columns, read_csv, write_csv

LABELS = ["spiral galaxy", 'barred, "grand design"', "elliptical"]


def _prov(**kw) -> Provenance:
    base = dict(
        model="juppy44/galaxy-clip-finetuned",
        model_revision="abc123",
        render="asinh-percentile-99.5",
        labels=LABELS,
        prompts=["{}", "an image of a {}"],
        query="spiral galaxy with prominent arms",
    )
    base.update(kw)
    return Provenance(**base)


def _rows() -> list[ExportRow]:
    return [
        ExportRow(
            path="/data/a.fits",
            name="a.fits",
            sha256="aa" * 32,
            ra=150.1234567891,
            dec=-2.5,
            score=0.3125,
            predicted_label="spiral galaxy",
            probs={"spiral galaxy": 0.7, 'barred, "grand design"': 0.2, "elliptical": 0.1},
            label='barred, "grand design"',
        ),
        ExportRow(
            path="/data/with, comma/b.jpg",
            name="b.jpg",
            sha256="bb" * 32,
            score=float("nan"),
            probs={"elliptical": 1.0},
        ),
        ExportRow(path="#odd/c.png", name="c.png", sha256="cc" * 32, ra=1.0, dec=2.0, score=0.1),
    ]


def test_columns():
    assert columns() == ["path", "name", "sha256", "ra", "dec", "score", "predicted_label", "label"]
    assert columns(["a", "b"])[-3:] == ["p_a", "p_b", "label"]
    with pytest.raises(ValueError, match="duplicate"):
        columns(["a", "a"])


def test_csv_module_round_trip(tmp_path):
    out = tmp_path / "sub" / "out.csv"
    n = write_csv(out, _rows(), _prov(), label_names=LABELS)
    assert n == 3
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# galaxy-explorer export\n")
    meta, rows = read_csv(out)
    assert meta["model"] == "juppy44/galaxy-clip-finetuned"
    assert meta["model_revision"] == "abc123"
    assert meta["tool_version"] == galaxy_explorer.__version__
    assert meta["query"] == "spiral galaxy with prominent arms"
    import json

    assert json.loads(meta["labels"]) == LABELS
    assert "T" in meta["date"]
    assert list(rows[0].keys()) == columns(LABELS)
    assert rows[0]["label"] == 'barred, "grand design"'
    assert rows[0][f"p_{LABELS[1]}"] == "0.2"
    assert float(rows[0]["ra"]) == pytest.approx(150.1234567891, abs=1e-9)
    assert rows[1]["path"] == "/data/with, comma/b.jpg"
    assert rows[1]["ra"] == rows[1]["dec"] == rows[1]["score"] == ""  # None and NaN → empty
    assert rows[1]["p_spiral galaxy"] == "" and rows[1]["p_elliptical"] == "1"
    assert rows[1]["label"] == rows[1]["predicted_label"] == ""
    assert rows[2]["path"] == "#odd/c.png"


def test_plain_csv_reader_with_comment_skip(tmp_path):
    out = tmp_path / "out.csv"
    write_csv(out, _rows(), _prov(), label_names=LABELS)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(line for line in fh if not line.startswith("#")))
    assert rows[0] == columns(LABELS)
    assert len(rows) == 4
    assert rows[3][0] == "#odd/c.png"


def test_astropy_round_trip(tmp_path):
    from astropy.table import Table

    out = tmp_path / "out.csv"
    write_csv(out, _rows(), _prov(), label_names=LABELS)
    t = Table.read(out, format="ascii.csv", comment="#")
    assert t.colnames == columns(LABELS)
    assert len(t) == 3
    assert list(t["name"]) == ["a.fits", "b.jpg", "c.png"]
    assert t["path"][1] == "/data/with, comma/b.jpg"
    assert t["path"][2] == "#odd/c.png"
    assert t["label"][0] == 'barred, "grand design"'
    assert t["ra"].dtype.kind == "f" and t["ra"][0] == pytest.approx(150.1234567891)
    assert np.ma.is_masked(t["ra"][1]) and np.ma.is_masked(t["score"][1])
    assert t[f"p_{LABELS[1]}"][0] == pytest.approx(0.2)
    assert t["score"].dtype.kind == "f"


def test_astropy_reads_all_empty_optional_columns(tmp_path):
    from astropy.table import Table

    out = tmp_path / "plain.csv"
    rows = [ExportRow(path=f"/d/{i}.jpg", name=f"{i}.jpg", sha256=f"f{i}" * 32) for i in range(3)]
    write_csv(out, rows, Provenance(model="m"))
    t = Table.read(out, format="ascii.csv", comment="#")
    assert t.colnames == columns()
    assert len(t) == 3
    assert all(np.ma.is_masked(v) for v in t["ra"])


def test_write_to_stream():
    buf = io.StringIO()
    n = write_csv(buf, _rows()[:1], _prov(), label_names=None)
    assert n == 1
    lines = buf.getvalue().splitlines()
    header = next(line for line in lines if not line.startswith("#"))
    assert header == "path,name,sha256,ra,dec,score,predicted_label,label"
    assert not buf.closed


def test_provenance_newlines_cannot_break_comment_block(tmp_path):
    out = tmp_path / "q.csv"
    write_csv(out, _rows(), _prov(query="line one\nline two", extra={"top_k": "10"}))
    lines = out.read_text().splitlines()
    comment = [line for line in lines if line.startswith("#")]
    assert any(line == '# query: "line one\\nline two"' for line in comment)
    assert "# top_k: 10" in comment
    meta, rows = read_csv(out)
    assert len(rows) == 3 and meta["top_k"] == "10"


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    write_csv(out, _rows(), _prov())
    before = out.read_bytes()

    def boom():
        yield _rows()[0]
        raise RuntimeError("simulated crash mid-write")

    with pytest.raises(RuntimeError):
        write_csv(out, boom(), _prov())
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.csv"]  # temp file cleaned up

    def fail_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError):
        write_csv(out, _rows()[:1], _prov())
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.csv"]


def test_duplicate_label_names_rejected_before_writing(tmp_path):
    out = tmp_path / "x.csv"
    with pytest.raises(ValueError):
        write_csv(out, _rows(), _prov(), label_names=["a", "a"])
    assert not out.exists()


def test_numpy_scalars_and_path_objects(tmp_path):
    out = tmp_path / "np.csv"
    row = ExportRow(
        path=tmp_path / "x.fits",
        name="x.fits",
        sha256="0" * 64,
        ra=np.float64(10.5),
        dec=np.float32(-1.25),
        score=np.float32(0.5),
        probs={"a": np.float32(0.25)},
    )
    write_csv(out, [row], Provenance(model="m"), label_names=["a"])
    _, rows = read_csv(out)
    assert rows[0]["path"] == str(tmp_path / "x.fits")
    assert rows[0]["ra"] == "10.5" and rows[0]["dec"] == "-1.25"
    assert rows[0]["score"] == "0.5" and rows[0]["p_a"] == "0.25"


def test_hash_in_cells_survives_comment_aware_readers(tmp_path):
    """'#' inside a path or label must not cut the row for pandas/astropy with comment='#'."""
    import pandas as pd
    from astropy.table import Table

    from galaxy_explorer.core.export import ExportRow, Provenance, write_csv

    rows = [
        ExportRow(
            path="/data/field#3/x.fits",
            name="x.fits",
            sha256="ab",
            ra=1.5,
            dec=-2.0,
            score=0.25,
            predicted_label="spiral",
            probs={"spiral": 0.7, "arc #1": 0.3},
            label="merger #2",
        ),
        ExportRow(path="#top.fits", name="#top.fits", sha256="cd"),
    ]
    out = tmp_path / "hash.csv"
    write_csv(out, rows, Provenance(model="m"), label_names=["spiral", "arc #1"])
    df = pd.read_csv(out, comment="#")
    assert list(df["path"]) == ["/data/field#3/x.fits", "#top.fits"]
    assert df.loc[0, "label"] == "merger #2" and df.loc[0, "p_arc #1"] == 0.3
    assert df.loc[0, "ra"] == 1.5
    t = Table.read(out, format="ascii.csv", comment="#")
    assert list(t["path"]) == ["/data/field#3/x.fits", "#top.fits"]


# ------------------------------------------------------- odd names, line breaks, formulas
def _read_all(out):
    """(astropy table, pandas frame, read_csv rows) of one file."""
    import pandas as pd
    from astropy.table import Table

    t = Table.read(out, format="ascii.csv", comment="#")
    df = pd.read_csv(out, comment="#", dtype=str, keep_default_na=False)
    return t, df, read_csv(out)[1]


def test_non_utf8_file_name_exports_as_valid_utf8(tmp_path):
    raw = os.fsencode(tmp_path) + b"/gal\xff\xfe.png"
    with open(raw, "wb") as fh:
        fh.write(b"x")
    path = os.fsdecode(raw)  # what scanning the folder gives
    from pathlib import Path

    rows = [
        ExportRow(path=Path(path), name=Path(path).name, sha256="ab" * 32, label="spiral"),
        ExportRow(path=raw, name=b"gal\xff\xfe.png", sha256="cd" * 32),
    ]  # bytes too
    out = tmp_path / "out.csv"
    assert write_csv(out, rows, Provenance(model="m", query=f"similar to {path}")) == 2
    text = out.read_bytes().decode("utf-8")  # strictly valid UTF-8
    assert "gal\\xff\\xfe.png" in text
    t, df, plain = _read_all(out)
    want = os.fsencode(tmp_path).decode() + "/gal\\xff\\xfe.png"
    assert list(t["path"]) == [want, want] and list(df["path"]) == [want, want]
    assert [r["name"] for r in plain] == ["gal\\xff\\xfe.png"] * 2
    assert list(df["sha256"]) == ["ab" * 32, "cd" * 32]


LINE_BREAKS = [
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\r",
    "\n",
    "\r\n",
]


def test_line_separators_in_names_keep_one_row_per_item(tmp_path):
    rows = [
        ExportRow(
            path=f"/d/gal{sep}{i}.fits",
            name=f"gal{sep}{i}.fits",
            sha256=f"{i:064x}",
            ra=float(i),
            label=f"lab{sep}el",
        )
        for i, sep in enumerate(LINE_BREAKS)
    ]
    out = tmp_path / "out.csv"
    write_csv(out, rows, Provenance(model="m"))
    t, df, plain = _read_all(out)
    n = len(LINE_BREAKS)
    # every reader sees one row per item, with the other columns intact
    assert len(t) == n and len(df) == n and len(plain) == n
    assert list(t["sha256"]) == [r.sha256 for r in rows]
    assert list(t["ra"]) == [float(i) for i in range(n)]
    # pandas and the csv module read the exact values back
    assert list(df["name"]) == [r.name for r in rows]
    assert [r["label"] for r in plain] == [r.label for r in rows]
    # astropy reads the right rows; it turns some line breaks inside a cell into "\n"
    for r, got in zip(rows, t["name"], strict=True):
        assert got in (r.name, r.name.replace("\r\n", "\n").replace(r.name[3], "\n"))


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+2", "-3", "@SUM(1)", "=1+1"]


def test_formula_like_cells_are_kept_exact_by_default(tmp_path):
    rows = [
        ExportRow(
            path=f"/d/{f}.fits",
            name=f,
            sha256=f"{i:064x}",
            dec=-5.0,
            score=-0.25,
            predicted_label=f,
            label=f,
        )
        for i, f in enumerate(FORMULAS)
    ]
    out = tmp_path / "out.csv"
    write_csv(out, rows, Provenance(model="m"), label_names=None)
    t, df, plain = _read_all(out)
    assert list(t["name"]) == FORMULAS and list(df["name"]) == FORMULAS
    assert list(t["label"]) == FORMULAS and [r["predicted_label"] for r in plain] == FORMULAS
    assert list(t["dec"]) == [-5.0] * len(FORMULAS)


def test_excel_safe_prefixes_text_cells_only(tmp_path):
    rows = [
        ExportRow(
            path=f"/d/{f}.fits",
            name=f,
            sha256=f"{i:064x}",
            dec=-5.0,
            score=-0.25,
            probs={"-neg": -0.0},
            label=f,
        )
        for i, f in enumerate(FORMULAS)
    ]
    out = tmp_path / "out.csv"
    write_csv(out, rows, Provenance(model="m"), label_names=["-neg"], excel_safe=True)
    t, df, plain = _read_all(out)
    assert list(df["name"]) == ["'" + f for f in FORMULAS]
    assert list(df["label"]) == ["'" + f for f in FORMULAS]
    assert list(df["path"]) == [f"/d/{f}.fits" for f in FORMULAS]  # starts with "/": as is
    assert list(t["dec"]) == [-5.0] * len(FORMULAS)  # numbers are never touched
    assert list(t["score"]) == [-0.25] * len(FORMULAS)
    assert "p_-neg" in t.colnames
    meta, _ = read_csv(out)
    assert "excel_safe" in meta
