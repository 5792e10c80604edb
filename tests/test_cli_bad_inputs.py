"""Small bad inputs get one clear line and exit status 1 or 2; odd file names work end to end."""

from __future__ import annotations

import csv
import io
import os
import sys

import pytest
from helpers import write_jpeg

from galaxy_explorer.cli import main
from galaxy_explorer.core._text import terminal_text


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_paths_from_a_binary_file(run, cutouts, tmp_path):
    binary = tmp_path / "list.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    code, _, err = run(
        "export", str(cutouts), "--csv", str(tmp_path / "o.csv"), "--paths-from", str(binary)
    )
    assert code == 2
    assert "binary file, not a list of paths" in _one_error_line(err)
    assert not (tmp_path / "o.csv").exists()


def test_labels_file_a_folder(run, cutouts, tmp_path):
    folder = tmp_path / "labels_dir"
    folder.mkdir()
    code, _, err = run(
        "export", str(cutouts), "--csv", str(tmp_path / "o.csv"), "--labels-file", str(folder)
    )
    assert code == 2 and "is a folder" in _one_error_line(err)
    assert list(folder.iterdir()) == []


def test_cache_a_file(run, cutouts, tmp_path):
    not_a_dir = tmp_path / "cache.txt"
    not_a_dir.write_text("hello")
    code, _, err = run("embed", str(cutouts), cache_dir=not_a_dir)
    assert code == 2 and "--cache" in _one_error_line(err) and "is a file" in err
    assert not_a_dir.read_text() == "hello"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-0.1", "1.5", "abc"])
def test_threshold_must_be_a_probability(cutouts, capsys, value):
    with pytest.raises(SystemExit) as e:
        main(["classify", str(cutouts), "--labels", "a,b", f"--threshold={value}"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--threshold" in err and "Traceback" not in err


def test_newer_labels_file_refused_by_export_and_left_alone(run, cutouts, tmp_path):
    labels = tmp_path / "labels.json"
    raw = b'{"format": "galaxy-explorer-labels", "version": 9, "labels": {}}'
    labels.write_bytes(raw)
    code, _, err = run(
        "export", str(cutouts), "--csv", str(tmp_path / "o.csv"), "--labels-file", str(labels), "-q"
    )
    assert code == 1
    assert "newer version" in [ln for ln in err.splitlines() if ln.startswith("error:")][0]
    assert labels.read_bytes() == raw
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("labels")) == [
        "labels.json"
    ]  # not renamed, no database created beside it
    assert not list(tmp_path.glob("*.corrupt*"))


def test_terminal_text_escapes_controls_and_odd_bytes():
    assert terminal_text("a\x1b[31mb\nc\u202ed") == "a\\x1b[31mb\\x0ac\\u202ed"
    assert terminal_text(os.fsdecode(b"gal\xff.png")) == "gal\\xff.png"
    assert terminal_text(b"gal\xff.png") == "gal\\xff.png"
    assert terminal_text("ordinary/path é.fits") == "ordinary/path é.fits"


def test_non_utf8_and_control_character_names_end_to_end(tiny_model, tmp_path, monkeypatch):
    """The CLI on names with bad bytes and escapes, printing to strict UTF-8 streams."""
    folder = tmp_path / "odd"
    folder.mkdir()
    write_jpeg(folder / "plain.jpg", seed=1)
    bad = os.fsencode(folder) + b"/gal\xff\xfe.jpg"
    evil = os.fsencode(folder) + b"/red\x1b[31m\x07.jpg"
    for i, name in enumerate((bad, evil)):
        tmp = write_jpeg(folder / f"tmp{i}.jpg", seed=10 + i)
        os.rename(tmp, name)
    cache, labels, out = tmp_path / "cache", tmp_path / "labels.sqlite", tmp_path / "all.csv"

    def cli(*args):
        streams = [
            io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict") for _ in range(2)
        ]
        monkeypatch.setattr(sys, "stdout", streams[0])
        monkeypatch.setattr(sys, "stderr", streams[1])
        code = main(
            [
                *args,
                "--model",
                str(tiny_model),
                "--cache",
                str(cache),
                "--labels-file",
                str(labels),
                "-q",
            ]
        )
        got = []
        for st in streams:
            st.flush()
            got.append(st.buffer.getvalue())
        monkeypatch.undo()
        return code, got[0], got[1]

    # label the non-UTF-8 file through the store, with its exact path
    from galaxy_explorer.core.catalog import scan
    from galaxy_explorer.core.labels import LabelStore

    items = {os.fsencode(it.path): it for it in scan(folder).items}
    store = LabelStore(labels)
    store.set([items[bad].sha256], "odd-bytes", paths=[items[bad].path])
    store.close()

    code, stdout, stderr = cli("query", str(folder), "galaxy")
    assert code == 0, stderr
    assert b"\x1b" not in stdout and b"\x07" not in stdout and b"\x1b" not in stderr
    assert b"gal\\xff\\xfe.jpg" in stdout and b"red\\x1b[31m\\x07.jpg" in stdout

    code, _, stderr = cli("export", str(folder), "--csv", str(out))
    assert code == 0, stderr
    with open(out, encoding="utf-8", newline="") as fh:  # strictly valid UTF-8
        rows = list(csv.DictReader(ln for ln in fh if not ln.startswith("#")))
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"plain.jpg", "gal\\xff\\xfe.jpg", "red\x1b[31m\x07.jpg"}
    assert by_name["gal\\xff\\xfe.jpg"]["label"] == "odd-bytes"
    assert by_name["gal\\xff\\xfe.jpg"]["sha256"] == items[bad].sha256

    # the exported CSV selects the same files again, odd names included
    sub = tmp_path / "sub.csv"
    code, _, stderr = cli("export", str(folder), "--csv", str(sub), "--paths-from", str(out))
    assert code == 0, stderr
    with open(sub, encoding="utf-8", newline="") as fh:
        again = list(csv.DictReader(ln for ln in fh if not ln.startswith("#")))
    assert sorted(r["sha256"] for r in again) == sorted(r["sha256"] for r in rows)
