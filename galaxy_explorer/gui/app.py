"""Start the desktop app: ``run_app(paths, model, cache_dir, device)``."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

GUI_SWITCH_INTERVAL = 0.001

__all__ = ["run_app", "create_window", "log_file_path", "sample_catalogue", "app_icon"]


def startup_model(settings, model: str) -> str:  # type: ignore[no-untyped-def]
    """The model to open with: an explicit one (remembered), else the remembered one.

    ``auto`` means the model chosen last time (File ▸ Choose Model Folder… or ``--model``),
    unless that folder no longer exists; then the default (seed model if cached, else the
    bundled one).
    """
    if model == "auto":
        model = str(settings.value("model", "auto"))
        if model != "auto" and Path(model).is_absolute() and not Path(model).exists():
            log.warning("remembered model folder %s is gone; using the default model", model)
            model = "auto"
            settings.setValue("model", model)
    else:
        if Path(model).expanduser().exists():  # remember folders by absolute path
            model = str(Path(model).expanduser().resolve())
        settings.setValue("model", model)
    return model


def log_file_path() -> Path:
    """The GUI's log file (details of every error shown in the window)."""
    env = os.environ.get("GALAXY_EXPLORER_LOG")
    if env:
        return Path(env)
    from platformdirs import user_log_dir

    return Path(user_log_dir("galaxy-explorer", appauthor=False)) / "galaxy-explorer.log"


def _setup_file_logging() -> Path | None:
    path = log_file_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=2, encoding="utf-8"
        )
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("galaxy_explorer")
    for old in [h for h in root.handlers if getattr(h, "_galaxy_explorer_gui", False)]:
        root.removeHandler(old)  # one log file per process, also when run twice
        old.close()
    handler._galaxy_explorer_gui = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return path


def sample_catalogue() -> Path | None:
    """The bundled sample catalogue folder, if it exists and holds images."""
    from galaxy_explorer.gui.controller import resources_dir

    d = resources_dir() / "sample"
    if d.is_dir() and any(p.is_file() for p in d.rglob("*")):
        return d
    return None


def app_icon():  # type: ignore[no-untyped-def]
    """The application icon (a QIcon) with every shipped PNG size, or the SVG if none."""
    from PySide6.QtGui import QIcon

    from galaxy_explorer._desktop import icon_files

    icon = QIcon()
    files = icon_files()
    for size, path in files.items():
        if size != "scalable" and path.is_file():
            icon.addFile(str(path))
    if icon.isNull() and files["scalable"].is_file():
        icon.addFile(str(files["scalable"]))
    if icon.isNull():
        log.warning("no application icon found in %s", files["scalable"].parent)
    return icon


def _install_excepthook() -> None:
    """Unexpected exceptions in slots go to the log and the status bar, not a traceback."""
    previous = sys.excepthook

    def hook(etype, value, tb):  # type: ignore[no-untyped-def]
        if issubclass(etype, KeyboardInterrupt):
            return previous(etype, value, tb)
        log.error("unexpected error", exc_info=(etype, value, tb))
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        for w in app.topLevelWidgets() if app is not None else []:
            if hasattr(w, "_on_error"):
                w.statusBar().showMessage(f"Unexpected error: {value} (details in the log)", 15000)
                break

    sys.excepthook = hook


def create_window(
    paths: list[Path] | None = None,
    model: str = "auto",
    cache_dir: Path | None = None,
    device: str = "auto",
    settings=None,
    log_path: Path | None = None,  # type: ignore[no-untyped-def]
    catalogue: Path | None = None,
    **controller_options,
):
    """Build (but do not show) the main window and start opening ``paths``.

    ``paths=None`` opens the bundled sample catalogue (or shows a hint when there is none);
    an empty list opens nothing. ``catalogue`` is a table to open beside them (with no
    ``paths``, the folder its path column points into). ``controller_options`` go to
    :class:`Controller`
    (e.g. ``batch_size``, ``umap``).
    """
    from galaxy_explorer.gui.controller import Controller
    from galaxy_explorer.gui.main_window import MainWindow

    # Worker threads (decoding, model, thumbnails) hold the GIL in slices of the switch
    # interval; every Qt call from the GUI thread may have to wait for one. A shorter slice
    # keeps the event loop smooth while jobs run (measured in tests/gui/test_responsiveness).
    if sys.getswitchinterval() > GUI_SWITCH_INTERVAL:
        sys.setswitchinterval(GUI_SWITCH_INTERVAL)
    controller = Controller(model=model, cache_dir=cache_dir, device=device, **controller_options)
    win = MainWindow(controller, settings=settings, log_path=log_path)
    if paths is None:
        sample = sample_catalogue()
        if sample is not None:
            win.open_paths([sample])
        else:
            win.show_hint(
                "No sample catalogue is bundled.\nFile ▸ Open Folder…\n"
                "or drop a folder of cutouts here"
            )
    elif paths:
        win.open_paths([Path(p) for p in paths])
    if catalogue is not None:
        win.catalogue.open(Path(catalogue))
    return win


def run_app(
    paths: list[Path] | None = None,
    model: str = "auto",
    cache_dir: Path | None = None,
    device: str = "auto",
    catalogue: Path | None = None,
) -> int:
    """Run the desktop app until its window closes; returns the exit status.

    Parameters
    ----------
    paths : list of Path, optional
        Folders / files to open; ``None`` opens the bundled sample catalogue.
    model : str
        Hub id, model folder or ``auto``.
    cache_dir : Path, optional
        Embedding cache folder (default: the platform's user cache).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    catalogue : Path, optional
        A catalogue table to open beside the images.
    """
    t0 = time.perf_counter()
    from PySide6.QtCore import QCoreApplication, QSettings, Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from galaxy_explorer import __version__

    log_path = _setup_file_logging()
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    QCoreApplication.setOrganizationName("galaxy-explorer")
    QCoreApplication.setApplicationName("Galaxy Explorer")
    QCoreApplication.setApplicationVersion(__version__)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationDisplayName("Galaxy Explorer")
    app.setWindowIcon(app_icon())
    # Wayland compositors take the icon from the menu entry of this name (--install-desktop)
    QGuiApplication.setDesktopFileName("galaxy-explorer")
    _install_excepthook()
    settings = QSettings()
    model = startup_model(settings, model)
    win = create_window(
        paths,
        model=model,
        cache_dir=cache_dir,
        device=device,
        settings=settings,
        log_path=log_path,
        catalogue=catalogue,
    )
    win.show()
    log.info("window shown %.2fs after start of run_app", time.perf_counter() - t0)
    _quit_on_sigint(app, win)
    try:
        return int(app.exec())
    finally:
        win.c.shutdown()  # idempotent; stops workers if the loop ended otherwise
        win.thumbs.shutdown()


def _quit_on_sigint(app, win) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+C in the terminal closes the window cleanly (workers stopped, settings saved)."""
    import signal

    from PySide6.QtCore import QTimer

    def handler(signum, frame):  # type: ignore[no-untyped-def]
        win.close()
        app.quit()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return
    # the interpreter only runs signal handlers when Python code runs: wake it up regularly
    timer = QTimer(win)
    timer.setInterval(250)
    timer.timeout.connect(lambda: None)
    timer.start()
