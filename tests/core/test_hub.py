"""Listing, naming and downloading models, against a fake hub on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest
from hub_server import hub_server  # noqa: F401 - fixture

from galaxy_explorer.core import hub, model_source
from galaxy_explorer.core import model as model_mod
from galaxy_explorer.core.model import ClipAdapter, ModelLoadError, resolve_model_spec

SEED = hub.SEED_MODEL
UNNEEDED = {
    "pytorch_model.bin": b"\x80\x04pickle" * 100,
    "README.md": b"# card\n",
    "flax_model.msgpack": b"m" * 500,
}


@pytest.fixture
def seed_repo(hub_server, tiny_model):  # noqa: F811 - fixture
    repo = hub_server.add_folder(SEED, tiny_model, extra=UNNEEDED)
    repo.revisions["v1"] = repo.commit
    return repo


def _cache() -> Path:
    return model_mod.hub_cache_dir()


def test_download_fetches_needed_files_with_progress_into_hub_layout(
    hub_server,
    seed_repo,  # noqa: F811
    tiny_model,
    monkeypatch,
):
    plan = hub.plan_download(SEED)
    names = {f.name for f in plan.files}
    assert "model.safetensors" in names and "config.json" in names
    assert not names & set(UNNEEDED)
    assert plan.total_bytes == sum(len(seed_repo.files[n]) for n in names)
    assert plan.commit == seed_repo.commit
    assert "already here" not in plan.describe()

    steps = list(hub.download_job(plan, chunk_size=4096, report_every=0))
    dones = [p.done for p in steps]
    assert dones == sorted(dones), "progress never goes back"
    assert len(steps) > 10  # per-chunk progress on the weights
    assert all(p.total == plan.total_bytes for p in steps)
    assert any(p.rate > 0 and p.eta is not None for p in steps[:-1])
    last = steps[-1]
    assert last.finished and last.done == last.total and last.files_done == len(plan.files)
    snap = last.snapshot
    assert snap == _cache() / "models--juppy44--galaxy-clip-finetuned" / "snapshots" / plan.commit
    assert (
        _cache() / "models--juppy44--galaxy-clip-finetuned" / "refs" / "main"
    ).read_text() == plan.commit
    for n in names:
        assert (snap / n).read_bytes() == (tiny_model / n).read_bytes()
        assert (snap / n).is_symlink()
    # only needed files were requested
    fetched = {p.rsplit("/", 1)[1] for p, _ in hub_server.requests if "/resolve/" in p}
    assert fetched == names
    assert not list(
        (_cache() / "models--juppy44--galaxy-clip-finetuned" / "blobs").glob("*.incomplete")
    )

    # found offline afterwards: by --model auto, by the adapter, and by huggingface_hub itself
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n_requests = len(hub_server.requests)
    assert resolve_model_spec("auto") == SEED
    adapter = ClipAdapter.load("auto", device="cpu", precision="fp32")
    assert adapter.folder == snap and adapter.revision == plan.commit
    from huggingface_hub import snapshot_download

    assert Path(snapshot_download(SEED, local_files_only=True, cache_dir=_cache())) == snap
    assert len(hub_server.requests) == n_requests
    models = hub.list_local_models()
    seed = [m for m in models if m.spec == SEED]
    assert len(seed) == 1 and seed[0].default and seed[0].kind == "hub"
    assert seed[0].size == plan.total_bytes
    assert not [m for m in models if m.kind == "bundled" and m.default]

    # a second run fetches nothing
    monkeypatch.delenv("HF_HUB_OFFLINE")
    again = list(hub.download_job(hub.plan_download(SEED)))
    assert again[-1].finished and again[-1].done == plan.total_bytes
    assert len(hub_server.file_requests("model.safetensors")) == 1


def test_cancel_then_resume_with_range(hub_server, seed_repo):  # noqa: F811
    plan = hub.plan_download(SEED)
    weights = len(seed_repo.files["model.safetensors"])
    cancel = threading.Event()
    seen = []
    for p in hub.download_job(plan, cancel, chunk_size=4096, report_every=0):
        seen.append(p)
        if p.file == "model.safetensors" and p.done > 3 * 4096:
            cancel.set()
    assert seen[-1].cancelled and not seen[-1].finished and seen[-1].snapshot is None
    blobs = plan.repo_folder / "blobs"
    part = blobs / (
        hashlib.sha256(seed_repo.files["model.safetensors"]).hexdigest() + ".incomplete"
    )
    kept = part.stat().st_size
    assert 0 < kept < weights
    assert hub.local_snapshot(SEED) is None
    assert not (plan.repo_folder / "snapshots").exists()
    assert not (plan.repo_folder / "refs").exists()
    assert resolve_model_spec("auto") != SEED

    plan2 = hub.plan_download(SEED)
    assert "already here" in plan2.describe()
    assert hub_server.range_requests == 0
    steps = list(hub.download_job(plan2, chunk_size=4096))
    assert steps[0].done >= kept, "progress starts from what is already here"
    assert steps[-1].finished
    ranged = [h for h in hub_server.file_requests("model.safetensors") if "Range" in h]
    assert [h["Range"] for h in ranged] == [f"bytes={kept}-"]
    assert (steps[-1].snapshot / "model.safetensors").read_bytes() == seed_repo.files[
        "model.safetensors"
    ]


def test_closing_the_generator_cancels_too(hub_server, seed_repo):  # noqa: F811
    plan = hub.plan_download(SEED)
    job = hub.download_job(plan, chunk_size=4096, report_every=0)
    for p in job:
        if p.file == "model.safetensors" and p.done > 2 * 4096:
            break
    job.close()
    assert hub.local_snapshot(SEED) is None
    assert list(plan.repo_folder.glob("blobs/*.incomplete"))
    assert hub.download(SEED) == plan.repo_folder / "snapshots" / plan.commit


def test_truncated_file_is_reported_kept_for_resume_and_not_installed(hub_server, seed_repo):  # noqa: F811
    hub_server.cut["model.safetensors"] = 5000
    plan = hub.plan_download(SEED)
    with pytest.raises(hub.HubError, match="cut short") as err:
        list(hub.download_job(plan))
    assert "\n" not in str(err.value)
    assert hub.local_snapshot(SEED) is None
    sha = hashlib.sha256(seed_repo.files["model.safetensors"]).hexdigest()
    assert not (plan.repo_folder / "blobs" / sha).exists()
    assert (plan.repo_folder / "blobs" / (sha + ".incomplete")).stat().st_size == 5000
    del hub_server.cut["model.safetensors"]
    assert hub.download(SEED).is_dir()
    assert hub_server.file_requests("model.safetensors")[-1]["Range"] == "bytes=5000-"


def test_corrupt_file_fails_its_checksum_and_is_deleted(hub_server, seed_repo):  # noqa: F811
    plan = hub.plan_download(SEED)
    good = seed_repo.files["model.safetensors"]
    seed_repo.files["model.safetensors"] = bytes(b ^ 0xFF for b in good[:100]) + good[100:]
    with pytest.raises(hub.HubError, match="failed its checksum"):
        list(hub.download_job(plan))
    assert hub.local_snapshot(SEED) is None
    assert not list(plan.repo_folder.glob("blobs/*.incomplete"))
    assert not (plan.repo_folder / "blobs" / hashlib.sha256(good).hexdigest()).exists()
    # a small (non-LFS) file is checked by its git blob hash
    seed_repo.files["model.safetensors"] = good
    shutil.rmtree(plan.repo_folder)
    cfg = seed_repo.files["config.json"]
    seed_repo.files["config.json"] = cfg.replace(b"{", b"[", 1)
    with pytest.raises(hub.HubError, match="config.json failed its checksum"):
        list(hub.download_job(plan))


def test_server_ignoring_range_restarts_the_file(hub_server, seed_repo):  # noqa: F811
    hub_server.cut["model.safetensors"] = 5000
    with pytest.raises(hub.HubError):
        hub.download(SEED)
    del hub_server.cut["model.safetensors"]
    hub_server.ignore_range = True
    snap = hub.download(SEED)
    assert (snap / "model.safetensors").read_bytes() == seed_repo.files["model.safetensors"]


def test_missing_repo_and_revision_are_one_line_errors(hub_server, seed_repo):  # noqa: F811
    with pytest.raises(hub.HubError, match="no such model") as err:
        hub.plan_download("nobody/nothing-here")
    assert "\n" not in str(err.value) and hub_server.url in str(err.value)
    with pytest.raises(hub.HubError, match="no revision 'v9'"):
        hub.plan_download(SEED, "v9")
    with pytest.raises(hub.HubError, match="not a hub model id"):
        hub.plan_download("../../etc")
    with pytest.raises(ModelLoadError, match="no such model"):
        ClipAdapter.load("nobody/nothing-here", device="cpu")


def test_unreachable_server_is_a_one_line_error(hub_server, monkeypatch, seed_repo):  # noqa: F811
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(hub.HubError, match="cannot reach"):
        hub.plan_download(SEED)


def test_offline_refuses_before_any_request(hub_server, seed_repo, monkeypatch):  # noqa: F811
    plan = hub.plan_download(SEED)
    n = len(hub_server.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubError, match="downloads are disabled"):
        hub.plan_download(SEED)
    with pytest.raises(hub.HubError, match="downloads are disabled"):
        list(hub.download_job(plan))
    with pytest.raises(ModelLoadError, match="downloads are disabled"):
        ClipAdapter.load(SEED, device="cpu")
    assert len(hub_server.requests) == n


def test_revision_in_spec_downloads_and_loads_that_revision(hub_server, seed_repo):  # noqa: F811
    adapter = ClipAdapter.load(f"{SEED}@v1", device="cpu", precision="fp32")
    assert adapter.revision == seed_repo.commit
    folder = _cache() / "models--juppy44--galaxy-clip-finetuned"
    assert (folder / "refs" / "v1").read_text() == seed_repo.commit
    assert not (folder / "refs" / "main").exists()
    assert hub.local_snapshot(SEED) is None and hub.local_snapshot(SEED, "v1") is not None
    assert resolve_model_spec("auto") != SEED  # auto means main only
    [m] = [m for m in hub.list_local_models() if m.kind == "hub"]
    assert m.spec == f"{SEED}@v1" and m.name == f"{SEED}@v1" and not m.default
    # by commit, too
    assert hub.local_snapshot(SEED, seed_repo.commit) == adapter.folder


def test_repo_without_safetensors_is_refused(hub_server, tmp_path):  # noqa: F811
    d = tmp_path / "pickle-only"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "clip"}')
    (d / "pytorch_model.bin").write_bytes(b"x" * 10)
    hub_server.add_folder("some/pickled", d)
    with pytest.raises(hub.HubError, match="no safetensors"):
        hub.plan_download("some/pickled")


def test_list_local_models_only_clip_compatible(tmp_path, tiny_model, monkeypatch):
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    commit = "a" * 40
    for repo, cfg in (("org/clip-one", None), ("org/a-bert", {"model_type": "bert"})):
        base = cache / ("models--" + repo.replace("/", "--"))
        snap = base / "snapshots" / commit
        shutil.copytree(tiny_model, snap)
        if cfg is not None:
            (snap / "config.json").write_text(json.dumps(cfg))
        (base / "refs").mkdir()
        (base / "refs" / "main").write_text(commit)
    (cache / "models--org--broken" / "snapshots" / commit).mkdir(parents=True)  # no files
    models = hub.list_local_models(folders=[tiny_model, tmp_path / "gone"])
    kinds = [(m.kind, m.spec) for m in models]
    assert kinds[0][0] == "bundled"
    assert ("hub", "org/clip-one") in kinds
    assert not any("bert" in s or "broken" in s for _, s in kinds)
    assert ("folder", str(tiny_model.resolve())) in kinds
    assert [m.kind for m in models if m.default] == ["bundled"]
    assert all(m.size > 0 for m in models)


def test_display_names_say_what_a_model_is(tmp_path, tiny_model):
    bundled = model_mod.bundled_model_path()
    assert hub.display_name(str(bundled)) in (
        hub.BUNDLED_DISPLAY_NAME,
        hub._card_display_name(bundled),
    )
    assert "Galaxy-CLIP" not in hub.display_name(str(bundled))
    assert hub.display_name(SEED) == SEED
    assert hub.display_name(f"{SEED}@v2") == f"{SEED}@v2"
    assert hub.display_name(f"{SEED}@main") == SEED
    assert hub.display_name(str(tiny_model)) == tiny_model.name
    named = tmp_path / "named"
    shutil.copytree(tiny_model, named)
    (named / "README.md").write_text(
        "---\nlicense: mit\ndisplay_name: 'my  survey model'\n---\n# x\n"
    )
    assert hub.display_name(str(named)) == "my survey model"
    snap = tmp_path / "models--org--thing" / "snapshots" / ("b" * 40)
    shutil.copytree(tiny_model, snap)
    assert hub.display_name(str(snap)) == "org/thing@bbbbbbbbbb"


def test_bundled_display_name_from_card_or_default(tmp_path, tiny_model, monkeypatch):
    fake = tmp_path / "bundled"
    shutil.copytree(tiny_model, fake)
    monkeypatch.setattr(model_source, "bundled_model_path", lambda: fake)
    assert hub.display_name(str(fake)) == hub.BUNDLED_DISPLAY_NAME
    (fake / "README.md").write_text("---\ndisplay_name: bundled galaxy model v2\n---\n")
    assert hub.display_name(str(fake)) == "bundled galaxy model v2"


def test_split_join_and_is_hub_id(tmp_path, monkeypatch):
    assert hub.split_spec("a/b@refs/pr/1") == ("a/b", "refs/pr/1")
    assert hub.join_spec("a/b", "main") == "a/b"
    assert hub.is_hub_id("a/b") and hub.is_hub_id("a/b@v1")
    assert not hub.is_hub_id("auto") and not hub.is_hub_id("/abs/path") and not hub.is_hub_id("a")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert not hub.is_hub_id("a/b")  # an existing folder wins
    assert hub.format_bytes(1234567) == "1.2 MB" and hub.format_bytes(12) == "12 B"


def test_a_second_process_downloading_the_same_file_is_refused(hub_server, seed_repo):  # noqa: F811
    import subprocess
    import sys

    plan = hub.plan_download(SEED)
    weights = next(f for f in plan.files if f.name == "model.safetensors")
    lock = plan.cache_dir / ".locks" / plan.repo_folder.name / f"{weights.blob_name}.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            f"l = FileLock({str(lock)!r}); l.acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(hub.HubError, match="being downloaded by another process"):
            list(hub.download_job(plan))
        assert hub.local_snapshot(SEED) is None
    finally:
        holder.kill()
        holder.wait()
    assert hub.download(SEED).is_dir()  # the lock died with its process


def test_redirect_to_a_cdn_keeps_range_and_drops_the_token(hub_server, seed_repo, monkeypatch):  # noqa: F811
    from hub_server import start_fake_hub

    cdn = start_fake_hub()
    try:
        cdn.repos = hub_server.repos
        hub_server.redirect_to = cdn
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        cdn.cut["model.safetensors"] = 6000
        with pytest.raises(hub.HubError, match="cut short"):
            hub.download(SEED)
        cdn.cut.clear()
        snap = hub.download(SEED)
        assert (snap / "model.safetensors").read_bytes() == seed_repo.files["model.safetensors"]
        assert all(h.get("Authorization") == "Bearer hf_secret" for _, h in hub_server.requests)
        assert cdn.requests and not any("Authorization" in h for _, h in cdn.requests)
        assert cdn.file_requests("model.safetensors")[-1]["Range"] == "bytes=6000-"
    finally:
        cdn.server.shutdown()
        cdn.server.server_close()
