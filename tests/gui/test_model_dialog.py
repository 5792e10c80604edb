"""The model dialog: list, download (from a fake hub on 127.0.0.1), cancel, resume, switch."""

from __future__ import annotations

import pytest
from conftest import wait_embedded
from helpers import make_tiny_clip
from hub_server import hub_server  # noqa: F401 - fixture

from galaxy_explorer.core import hub, model_source
from galaxy_explorer.core import model as model_mod
from galaxy_explorer.core.cache import EmbeddingStore

SEED = hub.SEED_MODEL


@pytest.fixture(scope="module")
def other_clip(tmp_path_factory):
    """A second tiny CLIP with other weights (what the fake hub serves as the seed model)."""
    return make_tiny_clip(tmp_path_factory.mktemp("other_clip"), seed=7)


def _wait_switched(qtbot, win, spec, timeout=60000):
    qtbot.waitUntil(
        lambda: (
            win.c.model_spec == spec
            and win.c.adapter is not None
            and not win.c.job_running
            and bool(win.c.have.all())
        ),
        timeout=timeout,
    )


def test_dialog_lists_downloads_switches_and_switches_back(
    qtbot,
    make_window,
    cutouts,
    tiny_model,
    other_clip,
    hub_server,
    gui_env,  # noqa: F811
    monkeypatch,
):
    hub_server.add_folder(SEED, other_clip)
    hub_server.add_folder("org/cached-clip", other_clip)
    hub.download("org/cached-clip")  # already in the local cache before the app starts
    n_api = len(hub_server.requests)

    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    old_key, dim = win.c.adapter.model_key, win.c.adapter.dim
    render_key = win.c.session.render.key()
    shas = [it.sha256 for it in win.c.items]
    assert hub.display_name(str(tiny_model)) in win.model_label.text()

    dlg = win.show_model_dialog()
    assert dlg.isVisible() and not dlg.isModal()
    rows = {r["spec"]: r for r in dlg.model_rows()}
    bundled = str(model_mod.bundled_model_path())
    assert rows[bundled]["kind"] == "bundled" and rows[bundled]["default"]
    assert rows[bundled]["name"] == hub.display_name(bundled)
    assert rows["org/cached-clip"]["local"] and rows["org/cached-clip"]["kind"] == "hub"
    assert rows[SEED]["kind"] == "remote" and not rows[SEED]["local"]
    assert len(hub_server.requests) == n_api, "listing asks the network nothing"
    assert dlg.table.item(dlg.row_of(SEED), 3).text() == "not downloaded"

    # Download asks first, with the size; "no" fetches nothing
    from PySide6.QtWidgets import QMessageBox

    asked = []

    def answer_no(box):
        asked.append(box.text())
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "exec", answer_no)
    dlg.select(SEED)
    assert dlg.download_button.isEnabled() and not dlg.use_button.isEnabled()
    dlg.download_button.click()
    qtbot.waitUntil(lambda: bool(asked) and not dlg.busy(), timeout=20000)
    plan = hub.plan_download(SEED)
    assert (
        f"Download {SEED} ({len(plan.files)} files, {hub.format_bytes(plan.total_bytes)})"
        in asked[0]
    )
    assert plan.total_bytes > len(hub_server.repos[SEED].files["model.safetensors"])
    assert not hub_server.file_requests("model.safetensors", SEED)
    assert "not started" in dlg.info.text()
    assert win.c.model_spec == str(tiny_model)

    # yes: progress, then the window switches to the new model and embeds again
    dlg.confirm = lambda plan: True
    dlg.select(SEED)
    dlg.download_button.click()
    _wait_switched(qtbot, win, SEED)
    assert dlg.last_progress.finished and dlg.last_progress.done == plan.total_bytes
    assert hub.local_snapshot(SEED) is not None
    assert SEED in win.model_label.text()
    assert win.settings.value("model") == SEED
    rows = {r["spec"]: r for r in dlg.model_rows()}
    assert rows[SEED]["local"] and rows[SEED]["default"]
    assert "in use" in dlg.table.item(dlg.row_of(SEED), 3).text()
    assert win.c.adapter.model_key != old_key

    # the old model's embeddings are still cached: switching back embeds nothing
    store = EmbeddingStore(gui_env.cache, old_key, render_key, dim)
    try:
        assert store.get(shas)[1].all()
    finally:
        store.close()
    progress = []
    win.c.job_progress.connect(lambda p: progress.append(p))
    assert dlg.use_folder(tiny_model)
    _wait_switched(qtbot, win, str(tiny_model.resolve()))
    assert progress and progress[-1].embedded == 0 and progress[-1].cached == len(set(shas))
    assert str(tiny_model.resolve()) in [r["spec"] for r in dlg.model_rows()]  # remembered
    dlg.close()


def test_download_can_be_cancelled_and_resumes(
    qtbot, make_window, cutouts, tiny_model, other_clip, hub_server
):  # noqa: F811
    repo = hub_server.add_folder(SEED, other_clip)
    hub_server.delay = 0.2
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    dlg = win.show_model_dialog()
    dlg.confirm = lambda plan: True
    dlg.select(SEED)
    dlg.download_button.click()
    qtbot.waitUntil(
        lambda: dlg.last_progress is not None and dlg.last_progress.done > 40000, timeout=30000
    )
    assert dlg.cancel_button.isVisible() and dlg.progress.isVisible()
    assert "/s" in dlg.info.text() and "ETA" in dlg.info.text()
    dlg.cancel_button.click()
    qtbot.waitUntil(lambda: not dlg.busy(), timeout=30000)
    assert "cancelled" in dlg.info.text()
    assert hub.local_snapshot(SEED) is None
    assert win.c.model_spec == str(tiny_model)
    parts = list(hub.plan_download(SEED).repo_folder.glob("blobs/*.incomplete"))
    kept = parts[0].stat().st_size
    assert 0 < kept < len(repo.files["model.safetensors"])

    hub_server.delay = 0
    dlg.select(SEED)
    dlg.download_button.click()
    _wait_switched(qtbot, win, SEED)
    assert [h["Range"] for h in hub_server.file_requests("model.safetensors") if "Range" in h] == [
        f"bytes={kept}-"
    ]


def test_failed_download_is_shown_and_nothing_switches(
    qtbot, make_window, cutouts, tiny_model, other_clip, hub_server
):  # noqa: F811
    hub_server.add_folder(SEED, other_clip)
    hub_server.cut["model.safetensors"] = 3000
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    dlg = win.show_model_dialog()
    dlg.confirm = lambda plan: True
    dlg.select(SEED)
    dlg.download_button.click()
    qtbot.waitUntil(lambda: bool(dlg.last_error) and not dlg.busy(), timeout=30000)
    assert "cut short" in dlg.info.text()
    assert win.c.model_spec == str(tiny_model)
    assert hub.local_snapshot(SEED) is None


def test_offline_download_is_refused_in_the_dialog(
    qtbot, make_window, cutouts, other_clip, hub_server, monkeypatch
):  # noqa: F811
    hub_server.add_folder(SEED, other_clip)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    dlg = win.show_model_dialog()
    dlg.confirm = lambda plan: pytest.fail("must not ask when offline")
    dlg.select(SEED)
    dlg.download_button.click()
    qtbot.waitUntil(lambda: bool(dlg.last_error) and not dlg.busy(), timeout=30000)
    assert "HF_HUB_OFFLINE" in dlg.info.text()
    assert hub_server.requests == []


def test_bundled_model_hint_once_for_own_folder(
    qtbot, make_window, cutouts, tiny_model, monkeypatch, hub_server
):  # noqa: F811
    from galaxy_explorer.gui.model_dialog import HINT_SETTING, HINT_TEXT

    monkeypatch.setattr(model_source, "bundled_model_path", lambda: tiny_model)
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    assert win.model_hint_bar is not None and win.model_hint_bar.isVisible()
    assert win.model_label.text().startswith(hub.BUNDLED_DISPLAY_NAME)
    assert str(win.settings.value(HINT_SETTING)).lower() in ("true", "1")
    assert SEED in HINT_TEXT
    assert win.model_hint_bar.banner.label.text() == HINT_TEXT
    win.model_hint_bar.banner.close_button.click()
    assert not win.model_hint_bar.isVisible()
    win.c.reopen()
    wait_embedded(qtbot, win)
    bars = [
        b for b in win.findChildren(type(win.model_hint_bar)) if b.objectName() == "ModelHintBar"
    ]
    assert len(bars) == 1, "told once"
    again = make_window([cutouts])  # same settings file: not told again
    wait_embedded(qtbot, again)
    assert again.model_hint_bar is None
