"""The application icon: shipped, loaded at every size, and set by run_app on the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SIZES = [16, 22, 24, 32, 48, 64, 128, 256, 512]


def test_app_icon_has_every_size(qapp):
    from galaxy_explorer.gui.app import app_icon

    icon = app_icon()
    assert not icon.isNull()
    assert sorted(s.width() for s in icon.availableSizes()) == SIZES
    img = icon.pixmap(64, 64).toImage()
    # a galaxy on a dark tile: bright core, dark corners inside the tile, transparent outside
    centre = img.pixelColor(32, 32)
    assert centre.lightness() > 180
    assert img.pixelColor(0, 0).alpha() == 0
    assert img.pixelColor(32, 4).lightness() < 80  # night sky at the top of the tile


SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication
    from galaxy_explorer.gui import app as app_mod

    out = sys.argv[1]
    seen = {}

    def check_and_close():
        app = QApplication.instance()
        wins = [w for w in app.topLevelWidgets() if hasattr(w, "c") and w.isVisible()]
        if not wins:
            QTimer.singleShot(50, check_and_close)
            return
        seen.update(app_sizes=sorted(s.width() for s in app.windowIcon().availableSizes()),
                    window_icon=not wins[0].windowIcon().isNull(),
                    desktop_file=QGuiApplication.desktopFileName())
        wins[0].close()
        app.quit()

    QTimer.singleShot(0, check_and_close)
    seen["rc"] = app_mod.run_app([], model=sys.argv[2], cache_dir=Path(sys.argv[3]))
    Path(out).write_text(json.dumps(seen))
""")


@pytest.mark.slow
def test_run_app_sets_the_window_icon(tmp_path, tiny_model):
    out = tmp_path / "seen.json"
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        GALAXY_EXPLORER_LOG=str(tmp_path / "gui.log"),
    )
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(tiny_model), str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(out.read_text())
    assert seen["rc"] == 0
    assert seen["app_sizes"] == SIZES
    assert seen["window_icon"]
    assert seen["desktop_file"] == "galaxy-explorer"
