"""Crash, race and damage suite for the embedding cache, run through the real command line.

The writers that race or are killed are real ``python -m galaxy_explorer`` processes
(several at once where the failure needs them); the other commands (set-up, damage,
full disks, the checks afterwards) run the same ``main`` in this process. Each test then
checks that nothing was lost and that the user saw one clear line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import make_cutout_folder, write_jpeg

from galaxy_explorer.core.cache import STORE_DIR

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "galaxy_explorer", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


@pytest.fixture
def run(capsys):
    """The command line in this process (same code path as the console script)."""
    from galaxy_explorer.cli import main

    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out.out, out.err)

    return _run


def model_args(model: Path, cache: Path) -> list[str]:
    return ["--model", str(model), "--cache", str(cache), "-q"]


def shards(cache: Path) -> list[Path]:
    return sorted((cache / STORE_DIR / "shards").glob("*/*.gxs"))


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def summary(err: str) -> str:
    return next(ln for ln in err.splitlines() if " embedded, " in ln)


@contextlib.contextmanager
def tmpfs(size: str, *, readonly_after: Path | None = None):
    """A real small filesystem (tmpfs) for full-disk and read-only tests (needs root)."""
    where = Path(tempfile.mkdtemp(prefix="ge-tmpfs-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:  # a developer's machine without root: CI runs as root
        shutil.rmtree(where, ignore_errors=True)
        pytest.skip(f"a real small filesystem needs root to mount: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


def test_two_embed_runs_on_different_folders_into_one_cache_lose_nothing(run, tiny_model, tmp_path):
    a = make_cutout_folder(tmp_path / "a", n_fits=0, n_jpeg=0)
    b = make_cutout_folder(tmp_path / "b", n_fits=0, n_jpeg=0)
    for i in range(100):
        write_jpeg(a / f"a{i:03d}.jpg", seed=1000 + i)
        write_jpeg(b / f"b{i:03d}.jpg", seed=5000 + i)
    cache = tmp_path / "cache"
    procs = [
        start("embed", str(d), *model_args(tiny_model, cache), "--batch-size", "4") for d in (a, b)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "100 embedded" in summary(err)
    for d in (a, b):  # checked in this process: the writers above were the real ones
        r = run("embed", str(d), *model_args(tiny_model, cache))
        assert r.returncode == 0 and "0 embedded, 100 cached, 0 failed" in summary(r.stderr)
    assert len(shards(cache)) <= 3  # appends, not a file per batch


def test_killed_embed_resumes_and_matches_an_uninterrupted_run(run, tiny_model, tmp_path):
    folder = make_cutout_folder(tmp_path / "cut", n_fits=0, n_jpeg=0)
    for i in range(150):
        write_jpeg(folder / f"g{i:03d}.jpg", seed=i)
    cache = tmp_path / "killed"
    rng = random.Random(7)
    for _ in range(3):  # kill -9 at random moments while batches are being written
        p = start("embed", str(folder), *model_args(tiny_model, cache), "--batch-size", "4")
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            if any(s.stat().st_size > 64 for s in shards(cache)):
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        p.communicate()
    # the resume and the uninterrupted reference run in this process (one interpreter and
    # model load less each); the processes killed above were real
    r = run("embed", str(folder), *model_args(tiny_model, cache))
    assert r.returncode == 0 and "0 failed (150 unique images)" in summary(r.stderr)
    ref = tmp_path / "ref"
    assert run("embed", str(folder), *model_args(tiny_model, ref)).returncode == 0

    from galaxy_explorer.core.model import ClipAdapter
    from galaxy_explorer.core.session import Session

    adapter = ClipAdapter.load(str(tiny_model), device="cpu")
    vecs = []
    for c in (cache, ref):
        s = Session(folder, cache_dir=c, adapter=adapter)
        s.scan()
        items, v = s.embeddings()
        assert len(items) == 150
        vecs.append(v)
    assert (vecs[0] * vecs[1]).sum(1).min() > 0.999
    leftovers = [p for p in (cache / STORE_DIR).rglob("*.tmp")]
    assert not leftovers


@pytest.mark.parametrize("damage", ["half_truncated", "garbled", "deleted", "short_rows"])
def test_damaged_shard_is_recovered_by_the_same_command(run, tiny_model, tmp_path, damage):
    folder = make_cutout_folder(tmp_path / "cut", n_fits=4, n_jpeg=20)
    cache = tmp_path / "cache"
    assert run("embed", str(folder), *model_args(tiny_model, cache)).returncode == 0
    (shard,) = shards(cache)
    raw = shard.read_bytes()
    if damage == "half_truncated":
        shard.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbled":
        shard.write_bytes(raw[:200] + os.urandom(300) + raw[500:])
    elif damage == "deleted":
        shard.unlink()
    else:
        shard.write_bytes(raw[:-40])
    r = run("query", str(folder), "spiral galaxy", *model_args(tiny_model, cache), "--top", "100")
    no_traceback(r)
    assert r.returncode == 0
    warnings = [ln for ln in r.stderr.splitlines() if "damaged" in ln]
    assert len(warnings) == 1, r.stderr
    assert "0 failed (24 unique images)" in summary(r.stderr)
    assert int(summary(r.stderr).split()[0]) > 0  # the lost ones were embedded again
    assert len(r.stdout.strip().splitlines()) == 1 + 24  # header + every image ranked
    again = run("embed", str(folder), *model_args(tiny_model, cache))
    assert "0 embedded, 24 cached" in summary(again.stderr)


def test_garbled_index_is_rebuilt_by_the_same_command(run, tiny_model, tmp_path):
    folder = make_cutout_folder(tmp_path / "cut")
    cache = tmp_path / "cache"
    assert run("embed", str(folder), *model_args(tiny_model, cache)).returncode == 0
    idx = cache / STORE_DIR / "index.sqlite"
    for suffix in ("-wal", "-shm"):
        idx.with_name(idx.name + suffix).unlink(missing_ok=True)
    idx.write_bytes(b"garbage" * 2000)
    r = run("query", str(folder), "spiral galaxy", *model_args(tiny_model, cache))
    no_traceback(r)
    assert r.returncode == 0
    assert "0 embedded, 8 cached" in summary(r.stderr)
    assert sum("rebuilt" in ln for ln in r.stderr.splitlines()) == 1


def test_read_only_cache_serves_queries(run, tiny_model, tmp_path):
    folder = make_cutout_folder(tmp_path / "cut")
    with tmpfs("64m") as mnt:
        cache = mnt / "cache"
        assert run("embed", str(folder), *model_args(tiny_model, cache)).returncode == 0
        write_jpeg(folder / "new_one.jpg", seed=999)  # not in the cache
        view = Path(tempfile.mkdtemp(prefix="ge-ro-"))  # a read-only view of the same files
        subprocess.run(["mount", "--bind", str(mnt), str(view)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        try:
            assert not os.access(view / "cache", os.W_OK)
            _query_read_only(run, folder, tiny_model, view / "cache", tmp_path)
        finally:
            subprocess.run(["umount", "-l", str(view)], check=False)


def _query_read_only(run, folder, tiny_model, cache, tmp_path):
    if True:
        r = run(
            "query", str(folder), "spiral galaxy", *model_args(tiny_model, cache), "--top", "50"
        )
        no_traceback(r)
        assert r.returncode == 0, r.stderr
        assert len(r.stdout.strip().splitlines()) == 1 + 8
        assert "read-only" in r.stderr and "1 image(s)" in r.stderr
        r = run(
            "export", str(folder), *model_args(tiny_model, cache), "--csv", str(tmp_path / "o.csv")
        )
        no_traceback(r)
        assert r.returncode == 0


def test_full_disk_gives_one_line_and_keeps_what_was_written(run, tiny_model, tmp_path):
    folder = make_cutout_folder(tmp_path / "cut", n_fits=0, n_jpeg=0)
    for i in range(20):
        write_jpeg(folder / f"g{i:03d}.jpg", seed=i)
    with tmpfs("2m") as mnt:
        cache = mnt / "cache"
        assert run("embed", str(folder), *model_args(tiny_model, cache)).returncode == 0
        for i in range(20, 400):
            write_jpeg(folder / f"g{i:03d}.jpg", seed=i)
        fd = os.open(mnt / "ballast", os.O_WRONLY | os.O_CREAT)  # fill the disk...
        size = 0
        with contextlib.suppress(OSError):
            while True:
                size += os.write(fd, b"\1" * 4096)
        # ...then leave ~96 KB free: enough to open the index (its WAL index alone takes
        # 32 KB), not enough for 380 more images
        os.ftruncate(fd, max(0, size - 96 * 1024))
        os.close(fd)
        r = run("embed", str(folder), *model_args(tiny_model, cache), "--batch-size", "8")
        no_traceback(r)
        assert r.returncode == 1
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "disk full" in errors[0], r.stderr
        (mnt / "ballast").unlink()
        r = run("embed", str(folder), *model_args(tiny_model, cache))  # space again: resumes
        assert r.returncode == 0
        embedded, cached = (int(x.split()[0]) for x in summary(r.stderr).split(", ")[:2])
        assert cached > 20 and embedded + cached == 400  # nothing written before was lost


def test_non_utf8_names_and_duplicate_bad_files(run, tiny_model, tmp_path):
    folder = make_cutout_folder(tmp_path / "cut", n_fits=2, n_jpeg=2)
    bad = os.fsencode(folder) + b"/broken\xff\xfe\x1b[2J.png"
    with open(bad, "wb") as fh:
        fh.write(b"not a png at all")
    (folder / "empty_a.png").write_bytes(b"")
    (folder / "empty_b.png").write_bytes(b"")  # same content: both must be named
    good = os.fsencode(folder) + b"/good\xe9.jpg"
    shutil.copy(folder / "img_000.jpg", os.fsdecode(good))
    write_jpeg(Path(os.fsdecode(good)), seed=4242)
    cache = tmp_path / "cache"
    for _attempt in range(2):  # a re-run must work too (it crashed on today's code)
        r = run("embed", str(folder), *model_args(tiny_model, cache))
        no_traceback(r)
        assert r.returncode == 0, r.stderr
        assert "\x1b" not in r.stderr  # terminal control characters are escaped
        assert "empty_a.png" in r.stderr and "empty_b.png" in r.stderr
        assert "broken" in r.stderr
        assert "2 failed" in summary(r.stderr)  # unique contents: the two empty files are one
    assert "5 cached" in summary(r.stderr)


def test_same_weights_in_two_folders_share_the_cache(run, tiny_model, tmp_path):
    folder = make_cutout_folder(tmp_path / "cut")
    a = shutil.copytree(tiny_model, tmp_path / "install_a" / "model")
    b = shutil.copytree(tiny_model, tmp_path / "elsewhere" / "copy")
    cache = tmp_path / "cache"
    assert "8 embedded" in summary(run("embed", str(folder), *model_args(a, cache)).stderr)
    assert "0 embedded, 8 cached" in summary(
        run("embed", str(folder), *model_args(b, cache)).stderr
    )


def test_cache_info_verify_merge(run, tiny_model, tmp_path):
    one = make_cutout_folder(tmp_path / "one", n_fits=2, n_jpeg=2)
    two = make_cutout_folder(tmp_path / "two", n_fits=0, n_jpeg=0)
    for i in range(3):
        write_jpeg(two / f"t{i}.jpg", seed=700 + i)
    c1, c2, dst = tmp_path / "c1", tmp_path / "c2", tmp_path / "dst"
    assert run("embed", str(one), *model_args(tiny_model, c1)).returncode == 0
    assert run("embed", str(two), *model_args(tiny_model, c2)).returncode == 0
    r = run("cache", "merge", str(c1), str(c2), "--into", str(dst))
    assert r.returncode == 0 and "7 embeddings added" in r.stderr
    r = run("cache", "info", str(dst))
    assert r.returncode == 0 and "7 embeddings" in r.stdout
    r = run("cache", "verify", str(dst))
    assert r.returncode == 0 and "7 embeddings intact" in r.stdout
    for d, n in ((one, 4), (two, 3)):
        r = run("embed", str(d), *model_args(tiny_model, dst))
        assert f"0 embedded, {n} cached" in summary(r.stderr)
    (f,) = [s for s in shards(dst) if s.stat().st_size > 200][:1]
    f.write_bytes(f.read_bytes()[:100])
    r = run("cache", "verify", str(dst))
    assert r.returncode == 1 and "damaged" in r.stdout
    r = run("cache", "info", str(tmp_path / "nothing_here"))
    no_traceback(r)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_cache_that_is_a_file_is_one_line(run, tiny_model, tmp_path):
    folder = make_cutout_folder(tmp_path / "cut")
    f = tmp_path / "file"
    f.write_text("x")
    r = run("query", str(folder), "spiral", "--model", str(tiny_model), "--cache", str(f))
    no_traceback(r)
    assert r.returncode in (1, 2)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(f) in errors[0] and "is a file" in errors[0]


def test_full_disk_at_open_is_not_taken_for_a_damaged_index(run, tiny_model, tmp_path):
    """With no room for the WAL's shared-memory file SQLite says "disk I/O error": the
    index was then moved aside as damaged, and its rebuild died with a traceback."""
    folder = make_cutout_folder(tmp_path / "cut", n_fits=0, n_jpeg=0)
    for i in range(12):
        write_jpeg(folder / f"g{i:03d}.jpg", seed=i)
    with tmpfs("2m") as mnt:
        cache = mnt / "cache"
        assert run("embed", str(folder), *model_args(tiny_model, cache)).returncode == 0
        index = next(cache.rglob("index.sqlite"))
        before = index.read_bytes()
        write_jpeg(folder / "g999.jpg", seed=999)
        fd = os.open(mnt / "ballast", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\1" * 4096)
        os.close(fd)
        r = run("embed", str(folder), *model_args(tiny_model, cache))
        no_traceback(r)
        assert r.returncode == 1
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "disk full" in errors[0], r.stderr
        assert index.read_bytes() == before and not list(cache.rglob("damaged"))
        (mnt / "ballast").unlink()
        r = run("embed", str(folder), *model_args(tiny_model, cache))
        assert r.returncode == 0 and summary(r.stderr).startswith("1 embedded, 12 cached")
