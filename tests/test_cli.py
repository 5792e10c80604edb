"""The command line, end to end, on tiny cutouts with a tiny saved model."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from helpers import write_jpeg

from galaxy_explorer.cli import main


@pytest.fixture
def run(tiny_model, tmp_path, capsys):
    cache = tmp_path / "cache"

    def _run(*args, model=True):
        extra = ["--model", str(tiny_model), "--cache", str(cache)] if model else []
        code = main([*args[:2], *extra, *args[2:]] if len(args) >= 2 else list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


def _read(path):
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def test_embed_then_cached(run, cutouts):
    code, _, err = run("embed", str(cutouts))
    assert code == 0 and "8 embedded, 0 cached, 0 failed" in err
    code, _, err = run("embed", str(cutouts))
    assert code == 0 and "0 embedded, 8 cached, 0 failed" in err


def test_query_table_and_csv(run, cutouts, tmp_path):
    out_csv = tmp_path / "q.csv"
    code, out, _ = run("query", str(cutouts), "spiral galaxy", "--top", "3", "--csv", str(out_csv))
    assert code == 0
    table = out.strip().splitlines()
    assert table[0].split() == ["rank", "score", "name", "path"] and len(table) == 4
    rows = _read(out_csv)
    assert len(rows) == 3
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert [r["name"] for r in rows] == [ln.split()[2] for ln in table[1:]]
    fits_rows = [r for r in rows if r["name"].endswith(".fits")]
    for r in fits_rows:  # RA/Dec come from the FITS header
        assert 150 <= float(r["ra"]) < 151 and 2 <= float(r["dec"]) < 3
    from astropy.table import Table

    t = Table.read(out_csv, format="ascii.csv", comment="#")
    assert len(t) == 3 and "sha256" in t.colnames
    assert "# query: spiral galaxy" in out_csv.read_text()


def test_similar_excludes_self_and_ranks_copy_first(run, cutouts, tmp_path):
    import shutil

    shutil.copy(cutouts / "img_001.jpg", cutouts / "copy_of_1.jpg")
    write_jpeg(tmp_path / "outside.jpg", seed=101)  # same pixels as img_001.jpg
    code, out, _ = run("similar", str(cutouts), str(tmp_path / "outside.jpg"), "--top", "2")
    assert code == 0
    names = [ln.split()[2] for ln in out.strip().splitlines()[1:]]
    assert (
        "img_001.jpg" not in names and "copy_of_1.jpg" not in names
    )  # same content as the example
    code, out, _ = run("similar", str(cutouts), str(cutouts / "img_002.jpg"), "--include-self")
    names = [ln.split()[2] for ln in out.strip().splitlines()[1:]]
    assert "img_002.jpg" in names and len(names) == 9


def test_classify_writes_probabilities(run, cutouts, tmp_path):
    out_csv = tmp_path / "c.csv"
    code, out, err = run(
        "classify",
        str(cutouts),
        "--labels",
        "spiral galaxy, elliptical galaxy",
        "--csv",
        str(out_csv),
    )
    assert code == 0 and "counts:" in err
    rows = _read(out_csv)
    assert len(rows) == 8
    for r in rows:
        p = float(r["p_spiral galaxy"]) + float(r["p_elliptical galaxy"])
        assert abs(p - 1) < 1e-3
        assert r["predicted_label"] in ("spiral galaxy", "elliptical galaxy")
    code, _, err = run("classify", str(cutouts), "--labels", "only one")
    assert code == 2 and "at least two" in err


def test_export_modes(run, cutouts, tmp_path):
    out_csv = tmp_path / "e.csv"
    assert run("export", str(cutouts), "--csv", str(out_csv))[0] == 0
    assert len(_read(out_csv)) == 8
    assert (
        run("export", str(cutouts), "--csv", str(out_csv), "--query", "galaxy", "--top", "2")[0]
        == 0
    )
    assert len(_read(out_csv)) == 2
    lst = tmp_path / "list.txt"
    lst.write_text(f"{cutouts / 'gal_001.fits'}\n{cutouts / 'img_003.jpg'}\n/nowhere/x.fits\n")
    code, _, err = run("export", str(cutouts), "--csv", str(out_csv), "--paths-from", str(lst))
    assert code == 0 and "/nowhere/x.fits: not in the catalogue" in err
    assert [r["name"] for r in _read(out_csv)] == ["gal_001.fits", "img_003.jpg"]
    code, _, _ = run(
        "export", str(cutouts), "--csv", str(out_csv), "--labels", "a b,c d", "--predicted", "a b"
    )
    assert code == 0 and all(r["predicted_label"] == "a b" for r in _read(out_csv))


def test_export_by_manual_label(run, cutouts, tmp_path):
    from galaxy_explorer.core.catalog import scan
    from galaxy_explorer.core.labels import LabelStore

    labels_file = tmp_path / "labels.json"
    items = scan(cutouts).items
    LabelStore(labels_file).set([items[0].sha256, items[5].sha256], "merger")
    out_csv = tmp_path / "m.csv"
    code, _, _ = run(
        "export",
        str(cutouts),
        "--csv",
        str(out_csv),
        "--label",
        "merger",
        "--labels-file",
        str(labels_file),
    )
    assert code == 0
    rows = _read(out_csv)
    assert {r["sha256"] for r in rows} == {items[0].sha256, items[5].sha256}
    assert all(r["label"] == "merger" for r in rows)


def test_bad_files_reported_and_run_goes_on(run, cutouts):
    (cutouts / "broken.fits").write_bytes(b"not a fits file at all")
    (cutouts / "trunc.jpg").write_bytes((cutouts / "img_000.jpg").read_bytes()[:200])
    code, _, err = run("embed", str(cutouts))
    assert code == 0
    assert "broken.fits" in err and "trunc.jpg" in err
    assert "8 embedded, 0 cached, 2 failed" in err


def test_nothing_processable_is_an_error(run, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run("embed", str(tmp_path / "empty"))
    assert code == 1 and "no image files found" in err
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    code, _, err = run("embed", str(only_bad))
    assert code == 1 and "no image could be embedded" in err


def test_argument_errors(run, cutouts, tmp_path):
    assert run("embed", str(tmp_path / "missing"))[0:1] == (2,)
    code, _, err = run(
        "query", str(cutouts), "galaxy", "--model", "someone/uncached-model", model=False
    )
    assert code == 1 and "not in the local Hugging Face cache" in err
    with pytest.raises(SystemExit) as e:
        main(["embed", str(cutouts), "--device", "gpu"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        main(["query", str(cutouts), "x", "--top", "0"])
    with pytest.raises(SystemExit):
        main(["embed", str(cutouts), "--batch-size", "-3"])


def test_help_is_instant_and_imports_nothing_heavy():
    code = (
        "import sys; from galaxy_explorer.cli import build_parser; build_parser();"
        "print([m for m in ('torch','transformers','PySide6','umap') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["galaxy_explorer", "galaxy_explorer.cli"])
def test_module_entry_points_run_the_cli(module):
    """``python -m galaxy_explorer`` and ``python -m galaxy_explorer.cli`` both run the CLI
    (the second once did nothing and exited 0)."""
    out = subprocess.run(
        [sys.executable, "-m", module, "embed", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0
    assert "usage:" in out.stdout and "embed" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", module, "no-such-command"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_ra_dec_come_from_the_cache_on_later_runs(run, cutouts, tmp_path, monkeypatch):
    from galaxy_explorer.core import imaging

    calls = []
    real = imaging.sky_position
    monkeypatch.setattr(imaging, "sky_position", lambda p: calls.append(p) or real(p))
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    assert run("export", str(cutouts), "--csv", str(first))[0] == 0
    assert len(calls) == 8  # each file's header read once...
    assert run("export", str(cutouts), "--csv", str(second))[0] == 0
    assert len(calls) == 8  # ...and never again
    a, b = _read(first), _read(second)
    assert [(r["ra"], r["dec"]) for r in a] == [(r["ra"], r["dec"]) for r in b]
    assert sum(1 for r in b if r["ra"]) == 4  # the FITS ones
