"""Menu entry and icons in the user's XDG folders (``galaxy-explorer --install-desktop``).

The files come from the package's ``resources/desktop`` folder: the ``.desktop`` entry,
the scalable SVG icon and PNG renderings of it. Installing writes

- ``$XDG_DATA_HOME/applications/galaxy-explorer.desktop``, whose ``Exec=`` names the
  program that installed it (the bundle's executable, or this environment's
  ``galaxy-explorer-gui`` script), so the menu works without that folder on ``PATH``;
- ``$XDG_DATA_HOME/icons/hicolor/<N>x<N>/apps/galaxy-explorer.png`` for every size, and
  ``.../scalable/apps/galaxy-explorer.svg``.

``$XDG_DATA_HOME`` defaults to ``~/.local/share``. Uninstalling removes exactly these
files and nothing else. Each file is written atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from galaxy_explorer._resources import resource_path

log = logging.getLogger(__name__)

APP_ID = "galaxy-explorer"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


class DesktopError(Exception):
    """The menu entry cannot be installed or removed (message is one line for the user)."""


def desktop_resources() -> Path:
    """The folder holding the ``.desktop`` template and the icons."""
    return resource_path("desktop")


def icon_files() -> dict[str, Path]:
    """The shipped icon files by size: ``"16"`` … ``"512"`` (PNG) and ``"scalable"`` (SVG)."""
    d = desktop_resources()
    icons = {str(s): d / f"{APP_ID}-{s}.png" for s in ICON_SIZES}
    icons["scalable"] = d / f"{APP_ID}.svg"
    return icons


def xdg_data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute (XDG spec)."""
    env = os.environ.get("XDG_DATA_HOME", "")
    if env and Path(env).is_absolute():
        return Path(env)
    return Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """The command that opens the app: what the menu entry's ``Exec=`` runs (before ``%F``)."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: its own executable
        return [str(Path(sys.executable).resolve()), "gui"]
    script = Path(sys.executable).parent / "galaxy-explorer-gui"
    if script.is_file():
        return [str(script)]
    found = shutil.which("galaxy-explorer-gui")
    if found:
        return [str(Path(found).resolve())]
    return [str(Path(sys.executable).resolve()), "-m", "galaxy_explorer", "gui"]


_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`=")


def exec_value(command: Sequence[str]) -> str:
    """``command`` as the value of an ``Exec=`` key, quoted by the Desktop Entry spec.

    Raises
    ------
    DesktopError
        An argument that a desktop file cannot hold (a newline, bytes that are not UTF-8).
    """
    parts = []
    for arg in command:
        if "\n" in arg or "\r" in arg:
            raise DesktopError(f"{arg!r}: a menu entry cannot run a path with a line break")
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise DesktopError(
                f"{arg!r}: a menu entry cannot run a path that is not UTF-8"
            ) from None
        if any(c in _RESERVED for c in arg) or not arg:
            arg = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
        # "%" is a field code; a literal one is "%%". The string type escapes "\" once more.
        parts.append(arg.replace("%", "%%").replace("\\", "\\\\"))
    return " ".join(parts)


def desktop_entry(command: Sequence[str] | None = None) -> str:
    """The ``.desktop`` file's text with ``Exec=`` running ``command`` (default: this install)."""
    template = (desktop_resources() / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    exec_line = f"Exec={exec_value(command or launcher_command())} %F"
    lines = [exec_line if ln.startswith("Exec=") else ln for ln in template.splitlines()]
    return "\n".join(lines) + "\n"


def _targets(data_home: Path) -> dict[Path, Path | None]:
    """Installed path → shipped source (None for the generated ``.desktop`` file)."""
    hicolor = data_home / "icons" / "hicolor"
    out: dict[Path, Path | None] = {data_home / "applications" / f"{APP_ID}.desktop": None}
    for size, src in icon_files().items():
        sub = "scalable" if size == "scalable" else f"{size}x{size}"
        out[hicolor / sub / "apps" / f"{APP_ID}{src.suffix}"] = src
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _refresh_caches(data_home: Path) -> None:
    """Tell the desktop about the change where its tools exist (best effort, quiet).

    The icon cache is only refreshed where one exists: a new one would hide the icons
    that other programs install later without refreshing it.
    """
    hicolor = data_home / "icons" / "hicolor"
    commands = [["update-desktop-database", "-q", str(data_home / "applications")]]
    if (hicolor / "icon-theme.cache").exists():
        commands.append(["gtk-update-icon-cache", "-q", "-t", str(hicolor)])
    for cmd in commands:
        if shutil.which(cmd[0]):
            try:
                subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=30,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                log.debug("%s failed: %s", cmd[0], exc)


def install_desktop(
    data_home: Path | None = None, command: Sequence[str] | None = None
) -> list[Path]:
    """Add the menu entry and icons under ``data_home`` (default ``$XDG_DATA_HOME``).

    Parameters
    ----------
    data_home : Path, optional
        The XDG data folder to install into.
    command : sequence of str, optional
        What the menu entry runs (default: :func:`launcher_command`).

    Returns
    -------
    list of Path
        The files written (installing again overwrites them).

    Raises
    ------
    DesktopError
        A shipped file is missing or a file cannot be written.
    """
    data_home = Path(data_home) if data_home is not None else xdg_data_home()
    entry = desktop_entry(command).encode("utf-8")
    written = []
    for target, src in _targets(data_home).items():
        try:
            data = entry if src is None else src.read_bytes()
        except OSError as exc:
            raise DesktopError(
                f"{src}: shipped file missing ({exc.strerror or exc}); reinstall galaxy-explorer"
            ) from None
        try:
            _write_atomic(target, data)
        except OSError as exc:
            raise DesktopError(f"{target}: cannot write: {exc.strerror or exc}") from None
        written.append(target)
    _refresh_caches(data_home)
    return written


def uninstall_desktop(data_home: Path | None = None) -> list[Path]:
    """Remove the files :func:`install_desktop` writes; returns those that were there.

    Raises
    ------
    DesktopError
        A file exists but cannot be removed.
    """
    data_home = Path(data_home) if data_home is not None else xdg_data_home()
    removed = []
    for target in _targets(data_home):
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DesktopError(f"{target}: cannot remove: {exc.strerror or exc}") from None
        removed.append(target)
    if removed:
        _refresh_caches(data_home)
    return removed
