"""Atomic writes: a killed writer's temporary file is cleaned up, a live one never."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from galaxy_explorer.core._atomic import atomic_open, atomic_write_bytes, remove_stale_temps

ROOT = Path(__file__).resolve().parents[2]

_WRITER = r"""
import sys, time
from galaxy_explorer.core._atomic import atomic_open
with atomic_open(sys.argv[1], "wb") as fh:
    fh.write(b"half of it")
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
    fh.write(b" and the rest")
"""


def _start_writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def test_kill_9_leftover_removed_live_writer_kept(tmp_path):
    target = tmp_path / "shard.npy"
    target.write_bytes(b"old")
    killed = _start_writer(target)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    live = _start_writer(tmp_path / "other.npy")
    try:
        temps = sorted(p.name for p in tmp_path.glob(".*.tmp"))
        assert len(temps) == 2  # the killed writer's leftover and the live one's
        removed = remove_stale_temps(tmp_path)
        assert [p.name for p in removed] == [t for t in temps if t.startswith(".shard.npy.")]
        assert [p.name for p in tmp_path.glob(".*.tmp")] == [
            t for t in temps if t.startswith(".other.npy.")
        ]
        assert target.read_bytes() == b"old"  # the previous file is intact
    finally:
        live.kill()
        live.wait(timeout=30)
    assert [p.name for p in remove_stale_temps(tmp_path)][0].startswith(".other.npy.")


def test_old_style_temps_removed_only_when_old(tmp_path):
    young, old = tmp_path / ".a.csv.x1y2.tmp", tmp_path / ".b.csv.z3w4.tmp"
    for p in (young, old):
        p.write_bytes(b"x")
    then = time.time() - 120
    os.utime(old, (then, then))
    (tmp_path / "keep.tmp").write_bytes(b"not ours: no leading dot")
    assert remove_stale_temps(tmp_path) == [old]
    assert remove_stale_temps(tmp_path, targets=["a.csv"], max_age=0) == [young]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tmp"]
    assert remove_stale_temps(tmp_path / "missing") == []


def test_atomic_open_still_replaces_and_cleans_on_error(tmp_path):
    target = tmp_path / "x.bin"
    with atomic_open(target, "wb") as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    try:
        with atomic_open(target, "wb") as fh:
            fh.write(b"partial")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["x.bin"]


_UMASK_CHILD = r"""
import os, sys
from pathlib import Path
os.umask(int(sys.argv[2], 8))
from galaxy_explorer.core._atomic import atomic_write_bytes
from galaxy_explorer.core.export import ExportRow, Provenance, write_csv
out = Path(sys.argv[1])
atomic_write_bytes(out / "plain.bin", b"x")
write_csv(out / "export.csv", [ExportRow(path="/a.fits", name="a.fits", sha256="0" * 64)],
          Provenance(model="m"))
"""


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize(("umask", "expected"), [("022", 0o644), ("027", 0o640), ("002", 0o664)])
def test_new_files_honour_the_umask(tmp_path, umask, expected):
    """Exports and other atomic writes get 0666 & ~umask, like any file (mkstemp gives 0600)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", _UMASK_CHILD, str(tmp_path), umask], check=True, env=env)
    for name in ("plain.bin", "export.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_replacing_a_file_keeps_its_mode(tmp_path):
    target = tmp_path / "shared.csv"
    target.write_bytes(b"old")
    target.chmod(0o664)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o664
