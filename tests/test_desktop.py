"""``galaxy-explorer --install-desktop`` / ``--uninstall-desktop``: the menu entry and icons
in the user's XDG folders (here ``$XDG_DATA_HOME`` = a temporary folder)."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from galaxy_explorer import _desktop
from galaxy_explorer.cli import main

SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def _entry(path: Path) -> dict[str, str]:
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # keys are case-sensitive
    cp.read_string(path.read_text(encoding="utf-8"))
    return dict(cp["Desktop Entry"])


def _exec_argv(value: str) -> list[str]:
    """Split an Exec= value as the Desktop Entry spec says (string escapes, then quoting)."""
    value = value.replace("\\\\", "\\")  # string type: "\\" is one backslash
    argv, i = [], 0
    while i < len(value):
        if value[i] == " ":
            i += 1
            continue
        arg = []
        if value[i] == '"':
            i += 1
            while value[i] != '"':
                if value[i] == "\\" and value[i + 1] in '"`$\\':
                    i += 1
                arg.append(value[i])
                i += 1
            i += 1
        else:
            while i < len(value) and value[i] != " ":
                arg.append(value[i])
                i += 1
        argv.append("".join(arg))
    return [a if a == "%F" else a.replace("%%", "%") for a in argv]


def test_shipped_desktop_file_names_an_icon_that_is_shipped():
    d = _desktop.desktop_resources()
    entry = _entry(d / "galaxy-explorer.desktop")
    assert entry["Type"] == "Application" and entry["Name"] == "Galaxy Explorer"
    assert entry["Icon"] == "galaxy-explorer"
    assert entry["Exec"].endswith("%F")
    for size, path in _desktop.icon_files().items():
        assert path.is_file(), size
    assert "<svg" in (d / "galaxy-explorer.svg").read_text()


def test_install_then_uninstall_in_xdg_data_home(tmp_path, monkeypatch, capsys):
    from PIL import Image

    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    keep = home / "applications" / "other-app.desktop"  # someone else's entry
    keep.parent.mkdir(parents=True)
    keep.write_text("[Desktop Entry]\nName=Other\n")

    assert main(["--install-desktop"]) == 0
    assert "application menu" in capsys.readouterr().err
    entry_path = home / "applications" / "galaxy-explorer.desktop"
    entry = _entry(entry_path)
    assert entry["Icon"] == "galaxy-explorer" and entry["Type"] == "Application"
    argv = _exec_argv(entry["Exec"])
    assert argv[-1] == "%F" and Path(argv[0]).is_absolute()
    for size in SIZES:
        png = home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "galaxy-explorer.png"
        with Image.open(png) as im:
            assert im.size == (size, size)
    svg = home / "icons" / "hicolor" / "scalable" / "apps" / "galaxy-explorer.svg"
    assert svg.read_bytes() == (_desktop.desktop_resources() / "galaxy-explorer.svg").read_bytes()
    assert main(["--install-desktop"]) == 0  # again: overwrites, no error

    assert main(["--uninstall-desktop"]) == 0
    assert "removed" in capsys.readouterr().err
    left = sorted(p.relative_to(home) for p in home.rglob("*") if p.is_file())
    # update-desktop-database (where installed) keeps the MIME cache of the folder
    left = [p for p in left if p.name != "mimeinfo.cache"]
    assert left == [Path("applications/other-app.desktop")]
    assert main(["--uninstall-desktop"]) == 0
    assert "nothing to remove" in capsys.readouterr().err


def test_menu_entry_command_runs_the_app(tmp_path):
    """The installed Exec= line runs this installation's app (here: its gui --help)."""
    _desktop.install_desktop(tmp_path)
    entry = _entry(tmp_path / "applications" / "galaxy-explorer.desktop")
    argv = _exec_argv(entry["Exec"])[:-1]
    out = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert out.returncode == 0, out.stderr
    assert "usage: galaxy-explorer gui" in out.stdout


@pytest.mark.parametrize(
    "path",
    [
        "/opt/Galaxy Explorer/galaxy-explorer",
        '/odd/"quote" $HOME `x` back\\slash 100%/app',
        "/ünïcode/galaxy-explorer",
    ],
)
def test_exec_line_quotes_odd_paths(tmp_path, path):
    text = _desktop.desktop_entry([path, "gui"])
    (tmp_path / "e.desktop").write_text(text, encoding="utf-8")
    argv = _exec_argv(_entry(tmp_path / "e.desktop")["Exec"])
    assert argv == [path, "gui", "%F"]


def test_paths_a_desktop_file_cannot_hold_are_refused():
    with pytest.raises(_desktop.DesktopError, match="line break"):
        _desktop.exec_value(["/a\nb"])
    with pytest.raises(_desktop.DesktopError, match="UTF-8"):
        _desktop.exec_value(["/x/" + b"\xff".decode("utf-8", "surrogateescape")])


def test_unwritable_target_is_one_line_error(tmp_path, monkeypatch, capsys):
    home = tmp_path / "xdg"
    home.mkdir()
    (home / "applications").write_text("a file where a folder should be")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    assert main(["--install-desktop"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot write" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_relative_xdg_data_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")
    assert _desktop.xdg_data_home() == tmp_path / ".local" / "share"


def test_install_and_uninstall_flags_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--install-desktop", "--uninstall-desktop"])
    assert exc.value.code == 2


def test_frozen_app_runs_its_own_executable(monkeypatch, tmp_path):
    exe = tmp_path / "bundle" / "galaxy-explorer"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    assert _desktop.launcher_command() == [str(exe), "gui"]
