"""``galaxy-explorer models`` / ``download`` / ``--revision``, against a fake hub on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hub_server import hub_server  # noqa: F401 - fixture

from galaxy_explorer.cli import main
from galaxy_explorer.core import hub
from galaxy_explorer.core.export import read_csv
from galaxy_explorer.core.model import bundled_model_path

SEED = hub.SEED_MODEL
ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "galaxy_explorer", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kw,
    )


def test_models_lists_bundled_as_default_then_the_download(hub_server, tiny_model, capsys):  # noqa: F811
    hub_server.add_folder(SEED, tiny_model)
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["default", "name", "size"]
    bundled_path = str(bundled_model_path())
    bundled = [ln for ln in lines if ln.endswith(bundled_path)]
    assert bundled and bundled[0].lstrip().startswith("*")
    assert SEED not in out
    assert f"download {SEED}" in err

    r = _run("download", SEED)
    assert r.returncode == 0, r.stderr
    snap = Path(r.stdout.strip())
    assert (snap / "model.safetensors").is_file()
    assert "downloading" in r.stderr and "B/s" in r.stderr or "100%" in r.stderr
    assert f"--model {SEED}" in r.stderr

    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    row = [ln for ln in out.splitlines() if SEED in ln]
    assert row and row[0].lstrip().startswith("*"), out  # the seed model is now the default
    assert not [
        ln for ln in out.splitlines() if ln.endswith(bundled_path) and ln.lstrip().startswith("*")
    ]
    assert str(snap) in out


def test_download_missing_repo_is_one_line_and_nonzero(hub_server):  # noqa: F811
    r = _run("download", "nobody/nothing-here")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: nobody/nothing-here: no such model")


def test_download_offline_refuses_without_a_request(hub_server, tiny_model, monkeypatch):  # noqa: F811
    hub_server.add_folder(SEED, tiny_model)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = _run("download", SEED)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "downloads are disabled (HF_HUB_OFFLINE=1)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert hub_server.requests == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert _run("download", SEED).returncode == 0
    n = len(hub_server.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = _run("download", SEED)  # already here: fine offline, still no request
    assert r.returncode == 0 and "already in the local cache" in r.stderr
    assert Path(r.stdout.strip()) == hub.local_snapshot(SEED)
    assert len(hub_server.requests) == n


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes(hub_server, tiny_model):  # noqa: F811
    repo = hub_server.add_folder(SEED, tiny_model)
    weights = len(repo.files["model.safetensors"])
    hub_server.delay = 0.2  # 16 kB every 200 ms: a slow line
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "galaxy_explorer", "download", SEED],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as from a terminal: a test run started in the background (`cmd &` in a script)
        # ignores SIGINT, and the child would inherit that and never see the Ctrl+C
        preexec_fn=_default_sigint,
    )
    blobs = hub.plan_download(SEED).repo_folder / "blobs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        parts = list(blobs.glob("*.incomplete")) if blobs.exists() else []
        if parts and parts[0].stat().st_size > 40000:
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("the download never started")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err and "run the same command again to resume" in err
    kept = parts[0].stat().st_size
    assert 0 < kept < weights
    assert hub.local_snapshot(SEED) is None

    hub_server.delay = 0
    r = _run("download", SEED)
    assert r.returncode == 0, r.stderr
    assert "already here" in r.stderr
    ranges = [h["Range"] for h in hub_server.file_requests("model.safetensors") if "Range" in h]
    assert ranges == [f"bytes={kept}-"]
    assert (Path(r.stdout.strip()) / "model.safetensors").read_bytes() == repo.files[
        "model.safetensors"
    ]


def test_revision_flag_on_embed_and_export_names_the_model(
    hub_server,
    tiny_model,
    cutouts,  # noqa: F811
    tmp_path,
    capsys,
):
    repo = hub_server.add_folder("someone/tiny-clip", tiny_model)
    repo.revisions["v1"] = repo.commit
    out = tmp_path / "out.csv"
    code = main(
        [
            "export",
            str(cutouts),
            "--model",
            "someone/tiny-clip",
            "--revision",
            "v1",
            "--cache",
            str(tmp_path / "cache"),
            "--csv",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    meta, _ = read_csv(out)
    assert meta["model"] == "someone/tiny-clip@v1"
    assert meta["model_name"] == "someone/tiny-clip@v1"
    assert meta["model_revision"] == repo.commit
    assert hub.local_snapshot("someone/tiny-clip", "v1") is not None

    assert main(["embed", str(cutouts), "--model", "auto", "--revision", "v1"]) == 2
    assert "--revision needs a hub id" in capsys.readouterr().err
    code = main(
        [
            "embed",
            str(cutouts),
            "--model",
            "someone/tiny-clip",
            "--revision",
            "nope",
            "--cache",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 1
    assert "no revision 'nope'" in capsys.readouterr().err


def test_bundled_model_is_named_honestly_in_export(tmp_path, cutouts, capsys, monkeypatch):
    if not (bundled_model_path() / "config.json").exists():
        pytest.skip("no bundled model in this checkout")
    out = tmp_path / "out.csv"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    assert (
        main(["export", str(cutouts), "--cache", str(tmp_path / "cache"), "--csv", str(out)]) == 0
    )
    meta, _ = read_csv(out)
    assert meta["model_name"] == hub.display_name(str(bundled_model_path()))
    assert "Galaxy-CLIP" not in meta["model_name"]
    assert f"model {meta['model_name']} on" in capsys.readouterr().err
