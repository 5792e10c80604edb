"""Hostile command lines: what a careless or malicious user types loses nothing.

Each test fails on the code before its fix: an output that overwrote an input, a
traceback, a hang.
"""

from __future__ import annotations

import pytest

from galaxy_explorer.cli import main


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_output_over_an_input_image_is_refused(run, cutouts):
    image = sorted(p for p in cutouts.iterdir() if p.suffix == ".jpg")[0]
    before = image.read_bytes()
    for cmd in (
        ["export", str(cutouts), "--out", str(image)],
        ["query", str(cutouts), "spiral", "--csv", str(image)],
        ["classify", str(cutouts), "--labels", "a,b", "--csv", str(image)],
    ):
        code, _, err = run(*cmd)
        assert code == 2, err
        assert "one of the input images" in _one_error_line(err)
        assert image.read_bytes() == before


def test_output_over_the_catalogue_or_paths_list_is_refused(run, cutouts, tmp_path):
    cat = tmp_path / "cat.csv"
    cat.write_text("path,z\n" + "".join(f"{p.name},0.1\n" for p in sorted(cutouts.iterdir())))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in sorted(cutouts.iterdir())) + "\n")
    before = cat.read_bytes(), listing.read_bytes()
    code, _, err = run("export", str(cutouts), "--out", str(cat), "--catalogue", str(cat))
    assert code == 2 and "is the catalogue" in _one_error_line(err)
    code, _, err = run("export", str(cutouts), "--out", str(listing), "--paths-from", str(listing))
    assert code == 2 and "--paths-from" in _one_error_line(err)
    assert (cat.read_bytes(), listing.read_bytes()) == before


def test_output_inside_the_cache_is_refused(run, cutouts, tmp_path):
    assert run("embed", str(cutouts))[0] == 0
    victim = next(p for p in (tmp_path / "cache").rglob("*") if p.is_file())
    before = victim.read_bytes()
    code, _, err = run("export", str(cutouts), "--out", str(victim), "--format", "csv")
    assert code == 2 and "inside the embedding cache" in _one_error_line(err)
    assert victim.read_bytes() == before


def test_label_export_over_the_labels_file_or_an_image_is_refused(run, cutouts, tmp_path):
    labels = tmp_path / "labels.sqlite"
    cat = tmp_path / "cat.csv"
    cat.write_text("path,label\n" + "".join(f"{p.name},spiral\n" for p in cutouts.iterdir()))
    code, _, err = run(
        "label", str(cutouts), "--import", str(cat), "--labels-file", str(labels), model=False
    )
    assert code == 0, err
    image = sorted(cutouts.iterdir())[0]
    before = image.read_bytes()
    code, _, err = run(
        "label", str(cutouts), "--export", str(image), "--labels-file", str(labels), model=False
    )
    assert code == 2 and "one of the input images" in _one_error_line(err)
    assert image.read_bytes() == before
    code, _, err = run(
        "label", str(cutouts), "--export", str(labels), "--labels-file", str(labels), model=False
    )
    assert code == 2 and "the labels file" in _one_error_line(err)
    code, out, err = run(
        "label", str(cutouts), "--export", "-", "--labels-file", str(labels), model=False
    )
    assert code == 0 and out.count("spiral") == 8, err


def test_a_catalogue_with_too_many_columns_is_refused_before_reading(run, cutouts, tmp_path):
    """10⁶ columns (10 MB) kept astropy's reader busy for minutes; now one line at once."""
    n = 30_000
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(n)) + "\n" + ",".join("1" * n) + "\n")
    labels = tmp_path / "labels.sqlite"
    for path in (wide, tmp_path / "wide.csv.gz"):
        if path.suffix == ".gz":
            import gzip

            path.write_bytes(gzip.compress(wide.read_bytes()))
        code, _, err = run(
            "label", str(cutouts), "--import", str(path), "--labels-file", str(labels), model=False
        )
        assert code == 2
        assert "30000 columns" in _one_error_line(err)
    # an ordinary table with a comment block still reads
    ok = tmp_path / "ok.csv"
    ok.write_text(
        "# a comment, with commas, , , ,\n"
        "path,label\n" + "".join(f"{p.name},spiral\n" for p in cutouts.iterdir())
    )
    code, _, err = run(
        "label", str(cutouts), "--import", str(ok), "--labels-file", str(labels), model=False
    )
    assert code == 0, err


def test_a_csv_with_a_byte_order_mark_matches_by_its_first_column(run, cutouts, tmp_path):
    """Excel's "CSV UTF-8" starts with U+FEFF: the 'path' column was not found."""
    bom = tmp_path / "excel.csv"
    bom.write_bytes(
        b"\xef\xbb\xbfpath,label\n"
        + b"".join(p.name.encode() + b",spiral\n" for p in cutouts.iterdir())
    )
    code, _, err = run(
        "label",
        str(cutouts),
        "--import",
        str(bom),
        "--labels-file",
        str(tmp_path / "labels.sqlite"),
        model=False,
    )
    assert code == 0, err
    assert "8 of 8 catalogue rows matched" in err and "imported 8 labels" in err


def test_a_gzip_bomb_catalogue_is_refused_before_astropy_reads_it(run, cutouts, tmp_path):
    """2 MB of gzip that held 1 GB of CSV took 4 GB of memory; now refused by streaming."""
    import gzip

    name = sorted(cutouts.iterdir())[0].name
    row = f"{name},{'a' * 200}\n".encode()
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"path,label\n" + row * (80_000_000 // len(row)), 1))
    assert bomb.stat().st_size < 2_000_000
    code, _, err = run(
        "label",
        str(cutouts),
        "--import",
        str(bomb),
        "--labels-file",
        str(tmp_path / "labels.sqlite"),
        model=False,
    )
    assert code == 2
    assert "decompression bomb" in _one_error_line(err)


def test_votable_with_control_characters_is_well_formed(tmp_path):
    """A name, label or query with ESC (any C0 control) made a VOTable no reader opens."""
    from astropy.table import Table

    from galaxy_explorer.core.export import ExportRow, Provenance
    from galaxy_explorer.core.tables import votable_bytes, write_table

    rows = [
        ExportRow(path="/d/a\x1b[31m.png", name="a\x1b[31m.png", sha256="0" * 64, label="x\x07y"),
        ExportRow(path="/d/b.png", name="b.png", sha256="1" * 64, label="line\nbreak"),
    ]
    prov = Provenance(model="m", query="ring\x0bgalaxy")
    out = tmp_path / "t.vot"
    write_table(out, rows, prov, ["sp\x1bral", "ell"], fmt="votable")
    t = Table.read(out)
    assert list(t["label"]) == ["x\\x07y", "line\nbreak"]
    assert list(t["name"]) == ["a\\x1b[31m.png", "b.png"]
    assert "\\x1b" in t["p_sp_ral"].description
    sent = tmp_path / "sent.vot"  # what SAMP sends (BINARY) parses too
    sent.write_bytes(votable_bytes(rows, prov, ["sp\x1bral", "ell"]))
    assert list(Table.read(sent)["label"]) == ["x\\x07y", "line\nbreak"]


def test_fits_export_with_long_column_and_label_names(tmp_path):
    """A catalogue column or label of 100 characters crashed the FITS writer (traceback)."""
    from astropy.table import Table

    from galaxy_explorer.core.export import ExportRow, Provenance
    from galaxy_explorer.core.tables import write_table

    long_col, long_label = "x" * 100, "y" * 100
    rows = [
        ExportRow(
            path="/d/a.png",
            name="a.png",
            sha256="0" * 64,
            probs={long_label: 0.7, "Y" * 100: 0.3},
            extra={long_col: 1.5, "X" * 100: "t", "z": 2.0, "Z": 3.0},
        )
    ]
    for fmt in ("fits", "votable"):
        out = tmp_path / f"t.{fmt}"
        write_table(out, rows, Provenance(model="m"), [long_label, "Y" * 100], fmt=fmt)
        t = Table.read(out)
        names = [c.lower() for c in t.colnames]
        assert len(set(names)) == len(names) and max(map(len, names)) <= 68
        assert list(t[t.colnames[-4]]) == [1.5]  # the long catalogue column, cut, kept
        p = [c for c in t.colnames if c.startswith("p_")]
        assert sorted(float(t[c][0]) for c in p) == [0.3, 0.7]


def test_a_fifo_as_catalogue_is_refused_not_waited_on(tmp_path, cutouts):
    """``label DIR --import fifo.csv`` (no writer) blocked for ever; run as a real process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    fifo = tmp_path / "cat.csv"
    os.mkfifo(fifo)
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "galaxy_explorer", "label", str(cutouts), "--import", str(fifo)]
    cmd += ["--labels-file", str(tmp_path / "labels.sqlite"), "--cache", str(tmp_path / "c")]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("label --import on a FIFO hung")
    assert proc.returncode == 2, proc.stderr
    assert "not a regular file" in _one_error_line(proc.stderr)


def test_cache_info_on_a_damaged_index_says_how_to_repair(run, cutouts, tmp_path, capsys):
    """It said "the folder is read-only" of a writable folder; now it names cache verify."""
    assert run("embed", str(cutouts))[0] == 0
    cache = tmp_path / "cache"
    index = next(cache.rglob("index.sqlite"))
    index.write_bytes(b"\x00garbage" * 500)
    code = main(["cache", "info", str(cache)])
    err = capsys.readouterr().err
    assert code == 1
    line = _one_error_line(err)
    assert "damaged cache index" in line and "cache verify" in line and "read-only" not in line
    assert index.read_bytes() == b"\x00garbage" * 500  # info only looks
    assert main(["cache", "verify", str(cache)]) == 0
    capsys.readouterr()
    assert main(["cache", "info", str(cache)]) == 0
    assert "8 embeddings" in capsys.readouterr().out


def test_stretch_of_data_near_the_float32_limit(recwarn):
    """±3e38 pixels: data - lo overflowed (a RuntimeWarning on the terminal, 1e38 white)."""
    import numpy as np

    from galaxy_explorer.core.imaging import stretch

    data = np.array([[1e38, -1e38], [3e38, -3e38]], np.float32)
    out = stretch(data, "linear", "minmax")
    assert np.allclose(out, [[2 / 3, 1 / 3], [1.0, 0.0]], atol=1e-6)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_output_to_a_device_or_fifo_is_refused_and_left_alone(run, cutouts, tmp_path):
    """As root, ``label --export /dev/full`` replaced the device node with a plain file."""
    import os
    import stat

    labels = tmp_path / "labels.sqlite"
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    link = tmp_path / "null.csv"
    link.symlink_to(os.devnull)
    for out in (fifo, link):
        code, _, err = run(
            "label", str(cutouts), "--export", str(out), "--labels-file", str(labels), model=False
        )
        assert code == 2
        assert "not a regular file" in _one_error_line(err)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    code, _, err = run("export", str(cutouts), "--out", str(link))
    assert code == 2 and "not a regular file" in _one_error_line(err)
    assert link.is_symlink() and stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_command_run_in_process_closes_its_databases(run, cutouts, tmp_path):
    """main() left the cache index open until the garbage collector got to it: a later
    write to the cache folder then raced with SQLite's final checkpoint (order-dependent
    failures of the two tests above). Closed connections leave no write-ahead log."""
    assert run("embed", str(cutouts))[0] == 0
    assert run("export", str(cutouts), "--out", str(tmp_path / "all.csv"))[0] == 0
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*-wal")) == []
