"""``export`` (and query / classify) to ECSV, VOTable, FITS, Parquet; ``export --samp``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.table import Table
from samp_fixtures import samp_env, samp_hub, topcat  # noqa: F401


@pytest.mark.parametrize(
    ("name", "fmt", "reader"),
    [
        ("out.ecsv", None, "ascii.ecsv"),
        ("out.vot", None, "votable"),
        ("out.fits", None, "fits"),
        ("out.parquet", None, "parquet"),
        ("out.dat", "votable", "votable"),
    ],
)
def test_export_formats(run, cutouts, tmp_path, name, fmt, reader):
    out = tmp_path / name
    args = ["export", str(cutouts), "--out", str(out), "--labels", "spiral galaxy,elliptical"]
    code, _, err = run(*args, *(["--format", fmt] if fmt else []))
    assert code == 0, err
    t = Table.read(out, format=reader)
    assert len(t) == 8
    assert str(t["ra"].unit) == "deg"
    fits_rows = [i for i, n in enumerate(t["name"]) if str(n).endswith(".fits")]
    assert fits_rows and all(150 <= float(t["ra"][i]) < 151 for i in fits_rows)
    pcols = [c for c in t.colnames if c.startswith("p_")]
    assert len(pcols) == 2
    assert f"({fmt or reader.split('.')[-1]})" in err or "rows to" in err


def test_export_ecsv_to_stdout_and_binary_refused(run, cutouts, tmp_path):
    code, out, _ = run("export", str(cutouts), "--out", "-", "--format", "ecsv")
    assert code == 0 and out.startswith("# %ECSV")
    code, _, err = run("export", str(cutouts), "-o", "-", "--format", "fits")
    assert code == 2 and "binary" in err and err.count("\n") == 1


def test_export_needs_out_or_samp(run, cutouts):
    code, _, err = run("export", str(cutouts))
    assert code == 2 and "--out FILE, --samp" in err


def test_export_odd_output_name(run, cutouts, tmp_path):
    out = tmp_path / os.fsdecode(b"sel\xff #:.parquet")
    code, _, err = run("export", str(cutouts), "--out", str(out))
    assert code == 0, err
    with open(out, "rb") as fh:
        assert len(Table.read(fh, format="parquet")) == 8
    assert "\\xff" in err  # the name is printed escaped, on one line


def test_query_writes_votable_by_extension(run, cutouts, tmp_path):
    out = tmp_path / "q.vot"
    code, _, _ = run("query", str(cutouts), "spiral galaxy", "--top", "3", "--csv", str(out))
    assert code == 0
    t = Table.read(out, format="votable")
    assert len(t) == 3 and "score" in t.colnames


@pytest.mark.timeout(120)
def test_export_samp_to_topcat(run, cutouts, topcat):
    code, _, err = run("export", str(cutouts), "--samp", "--labels", "spiral galaxy,elliptical")
    assert code == 0, err
    assert "sent 8 rows to TOPCAT (SAMP)" in err
    mtype, params = topcat.get()
    assert mtype == "table.load.votable"
    t = topcat.tables[-1]
    assert len(t) == 8 and str(t["ra"].unit) == "deg"


@pytest.mark.timeout(120)
def test_export_samp_named_client_missing(run, cutouts, topcat):
    code, _, err = run("export", str(cutouts), "--samp", "Aladin")
    assert code == 1
    assert "SAMP: no SAMP client named 'Aladin' (on the hub: TOPCAT)" in err
    assert topcat.received.empty()


@pytest.mark.timeout(120)
def test_export_samp_no_hub(run, cutouts, samp_env, tmp_path):
    out = tmp_path / "also.ecsv"
    code, _, err = run("export", str(cutouts), "--out", str(out), "--samp")
    assert code == 1 and "SAMP: no SAMP hub is running" in err
    assert out.is_file()  # the file was written before the send failed


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_export_samp_real_process_file_and_samp(tiny_model, cutouts, topcat, tmp_path):
    out = tmp_path / "sel.fits"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cmd = [
        sys.executable,
        "-m",
        "galaxy_explorer",
        "export",
        str(cutouts),
        "--model",
        str(tiny_model),
        "--cache",
        str(tmp_path / "c"),
        "--query",
        "spiral galaxy",
        "--top",
        "3",
        "-o",
        str(out),
        "--samp",
        "TOPCAT",
    ]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stderr
    assert len(Table.read(out)) == 3
    t = topcat.tables[-1]
    assert len(t) == 3
    assert [str(x) for x in t["sha256"]] == [str(x) for x in Table.read(out)["sha256"]]
