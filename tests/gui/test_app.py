"""run_app: the entry point the command line calls (in a child process: after an
application's exec() returns, Qt refuses to start threads in that process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from galaxy_explorer.gui import app as app_mod

    folder, model, cache, out = sys.argv[1:5]
    seen = {}

    def check_and_close():
        wins = [w for w in QApplication.topLevelWidgets() if hasattr(w, "c") and w.isVisible()]
        if wins:
            win = wins[0]
            c = win.c
            if not c.job_running and c.have.any() and win.map.point_count == int(c.have.sum()):
                seen.update(n=c.n, points=win.map.point_count, title=win.windowTitle(),
                            model=win.model_label.text())
                win.close()
                QApplication.instance().quit()
                return
        QTimer.singleShot(50, check_and_close)

    QTimer.singleShot(0, check_and_close)
    rc = app_mod.run_app([Path(folder)], model=model, cache_dir=Path(cache))
    seen["rc"] = rc
    Path(out).write_text(json.dumps(seen))
""")


@pytest.mark.slow
def test_run_app_opens_a_folder_and_exits_cleanly(gui_env, tiny_model, cutouts):
    out = gui_env.tmp / "seen.json"
    env = dict(
        os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(gui_env.tmp / "config")
    )  # QSettings of the child
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cutouts), str(tiny_model), str(gui_env.cache), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(out.read_text())
    assert seen["rc"] == 0
    assert seen["n"] == 8 and seen["points"] == 8
    assert "cutouts" in seen["title"] and "Galaxy Explorer" in seen["title"]
    assert "cpu" in seen["model"]
    assert (gui_env.tmp / "gui.log").exists()  # details of errors go to a log file
    assert "Traceback" not in proc.stderr


def test_startup_model_remembers_folders_and_forgets_missing_ones(
    tmp_path, tiny_model, monkeypatch
):
    from PySide6.QtCore import QSettings

    from galaxy_explorer.gui.app import startup_model

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert startup_model(settings, "auto") == "auto"
    monkeypatch.chdir(tiny_model.parent)
    assert startup_model(settings, tiny_model.name) == str(tiny_model.resolve())
    assert startup_model(settings, "auto") == str(tiny_model.resolve())  # remembered
    gone = tmp_path / "deleted-model"
    settings.setValue("model", str(gone))
    assert startup_model(settings, "auto") == "auto"
    assert settings.value("model") == "auto"
    assert startup_model(settings, "owner/hub-model") == "owner/hub-model"  # hub ids kept as is
