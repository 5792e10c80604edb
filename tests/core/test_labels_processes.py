"""Labels with real processes: concurrent writers, kill -9, concurrent JSON import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from galaxy_explorer.core.labels import LabelStore

ROOT = Path(__file__).resolve().parents[2]

# Each child waits for a start file (so they really run at the same time), then labels its
# items one set() per item, printing each sha once set() has returned.
_CHILD = r"""
import os, sys, time, json
from galaxy_explorer.core.labels import LabelStore
store_path, start, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
while not os.path.exists(start):
    time.sleep(0.002)
store = LabelStore(store_path)
print(json.dumps({"imported": store.imported}), flush=True)
for i in range(n):
    sha = f"{tag}{i:062x}"
    store.set([sha], f"label-{tag}", paths=[f"/data/{tag}/{i}.fits"])
    print(sha, flush=True)
store.close()
"""


def _spawn(store: Path, start: Path, tag: str, n: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store), str(start), tag, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_concurrent_writers_lose_nothing(tmp_path):
    store_path = tmp_path / "labels.sqlite"
    start = tmp_path / "go"
    tags = ["a1", "b2", "c3"]
    procs = [_spawn(store_path, start, t, 200) for t in tags]
    time.sleep(0.3)
    start.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    store = LabelStore(store_path)
    assert len(store) == 600
    for t in tags:
        assert len(store.shas_with(f"label-{t}")) == 200
    assert store.path_of(f"b2{5:062x}") == Path("/data/b2/5.fits")


def test_kill_9_mid_way_loses_nothing_acknowledged(tmp_path):
    store_path = tmp_path / "labels.sqlite"
    start = tmp_path / "go"
    start.touch()
    proc = _spawn(store_path, start, "dd", 100000)
    acked = []
    assert proc.stdout is not None
    json.loads(proc.stdout.readline())
    while len(acked) < 150:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # a few more may have been acknowledged after the 150th
    acked += [ln.strip() for ln in proc.stdout.read().splitlines() if ln.strip()]
    store = LabelStore(store_path)
    assert not store.warnings  # opens cleanly, nothing to recover
    have = store.all()
    missing = [s for s in acked if have.get(s) != "label-dd"]
    assert not missing, f"{len(missing)} acknowledged labels lost"
    assert store.set(["e" * 64], "after-crash")


def test_json_imported_once_by_concurrent_openers(tmp_path):
    legacy = tmp_path / "labels.json"
    legacy.write_text(
        json.dumps(
            {
                "format": "galaxy-explorer-labels",
                "version": 1,
                "labels": {
                    f"{i:064x}": {"label": "old", "path": f"/old/{i}.fits"} for i in range(2000)
                },
            }
        )
    )
    raw = legacy.read_bytes()
    start = tmp_path / "go"
    procs = [_spawn(legacy, start, t, 20) for t in ("f1", "f2", "f3")]
    time.sleep(0.3)
    start.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    imported = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        imported.append(json.loads(out.splitlines()[0])["imported"])
    assert sorted(imported, key=str) == [2000, None, None]  # exactly one process imported
    assert legacy.read_bytes() == raw  # the JSON file is kept as it was
    store = LabelStore(legacy)
    assert store.imported is None
    assert len(store) == 2060 and store.counts()["old"] == 2000


# A child driven line by line on stdin: "set SHA LABEL", "wait SECONDS", "close".
_STEPPED = r"""
import sys, time
from galaxy_explorer.core.labels import LabelStore
store = LabelStore(sys.argv[1])
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "set":
        store.set([cmd[1]], cmd[2])
    elif cmd[0] == "wait":
        time.sleep(float(cmd[1]))
    elif cmd[0] == "close":
        store.close()
    print("ok", flush=True)
    if cmd[0] == "close":
        break
"""


class _Stepped:
    def __init__(self, store: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _STEPPED, str(store)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def __call__(self, command: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        assert reply == "ok", self.proc.stderr.read() if self.proc.stderr else reply
        if command == "close":
            assert self.proc.wait(timeout=30) == 0


def test_background_flush_never_lets_another_process_drop_the_log(tmp_path):
    """The half-second background flush must keep this process's claim on the database.

    It used to fsync the WAL by opening and closing the files itself, which releases every
    POSIX lock the process holds on them (SQLite's too). A second process closing its
    connection then took the database for unused, checkpointed and deleted the WAL, and the
    first process's later labels went into the deleted file: lost once a third process
    wrote and both closed (the 1-in-20 loss of the concurrent-import test, made certain).
    """
    store_path = tmp_path / "labels.sqlite"
    a = _Stepped(store_path)
    a("set " + "a" * 64 + " first")
    a("wait 1.2")  # the background flush (0.5 s after a change) has run
    b = _Stepped(store_path)
    b("set " + "b" * 64 + " second")
    b("close")
    a("set " + "c" * 64 + " third")  # acknowledged: must survive
    c = _Stepped(store_path)
    c("set " + "d" * 64 + " fourth")
    a("close")
    c("close")
    have = LabelStore(store_path).all()
    assert have == {
        "a" * 64: "first",
        "b" * 64: "second",
        "c" * 64: "third",
        "d" * 64: "fourth",
    }
