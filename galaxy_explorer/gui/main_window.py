"""The main window: map in the centre, gallery / detail / labels in docks, menus, status bar."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolBar,
    QWidget,
)

from galaxy_explorer import __version__
from galaxy_explorer.gui import _style
from galaxy_explorer.gui._thumbs import ThumbnailCache
from galaxy_explorer.gui.controller import Controller, LabelDef
from galaxy_explorer.gui.detail import DetailView
from galaxy_explorer.gui.gallery import GalleryView
from galaxy_explorer.gui.label_panel import LabelPanel
from galaxy_explorer.gui.query_box import QueryBox
from galaxy_explorer.gui.scatter import MapView

log = logging.getLogger(__name__)

__all__ = ["MainWindow"]

APP_NAME = "Galaxy Explorer"


def _fmt_eta(sec: float | None) -> str:
    if sec is None or not np.isfinite(sec):
        return ""
    sec = int(sec)
    if sec >= 3600:
        return f"{sec // 3600}h{(sec % 3600) // 60:02d}m"
    if sec >= 60:
        return f"{sec // 60}m{sec % 60:02d}s"
    return f"{sec}s"


#: First-start window size: fits a 1280×800 screen with its title bar and panels.
DEFAULT_SIZE = (1280, 740)
#: First-start dock widths (labels, gallery: two thumbnail columns, detail); the map gets
#: the rest (about 400 px at 1280).
DEFAULT_DOCK_WIDTHS = (300, 292, 280)


def default_size(screen: Any = None) -> tuple[int, int]:
    """The first-start window size: :data:`DEFAULT_SIZE`, smaller on a smaller screen."""
    w, h = DEFAULT_SIZE
    if screen is not None:
        avail = screen.availableGeometry()
        if avail.width() > 0 and avail.height() > 0:
            w, h = min(w, avail.width() - 16), min(h, avail.height() - 48)
    return w, h


#: After the window's first paint, the open job waits this long more (see MainWindow.event).
OPEN_AFTER_PAINT_MS = 250


class MainWindow(QMainWindow):
    """Galaxy Explorer's main window.

    Parameters
    ----------
    controller : Controller
        Shared state (the window owns it and shuts it down on close).
    settings : QSettings, optional
        Where geometry, last folder, labels and stretch are remembered (tests pass their own).
    log_path : Path, optional
        Shown in error messages ("details in …").
    """

    def __init__(
        self,
        controller: Controller,
        settings: QSettings | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.c = controller
        # the open job waits (at most a second) until this window has been painted once:
        # the first showing calls into Python hundreds of times, and each call waited for
        # the GIL while the open worker built a million rows (a 0.5 s freeze at 1M, #12)
        self._painted = threading.Event()
        self._painted_once = False
        controller.open_gate = self._painted
        self.settings = settings if settings is not None else QSettings()
        self.log_path = log_path
        self.quiet_errors = False  # tests: no message boxes
        self.model_dialog: Any = None
        self.model_hint_bar: Any = None
        self.last_error: tuple[str, str] | None = None
        self.last_info: tuple[str, str] | None = None
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.setDockOptions(
            QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
        )

        self.thumbs = ThumbnailCache(parent=self)
        self.map = MapView(controller, self.thumbs)
        self.gallery = GalleryView(controller, self.thumbs)
        self.detail = DetailView(controller, self.thumbs)
        self.labels = LabelPanel(controller)
        self.query = QueryBox(controller)

        self.setCentralWidget(self.map)
        self.gallery_dock = self._dock(
            "Gallery", self.gallery, Qt.DockWidgetArea.RightDockWidgetArea, "GalleryDock"
        )
        self.detail_dock = self._dock(
            "Detail", self.detail, Qt.DockWidgetArea.RightDockWidgetArea, "DetailDock"
        )
        self.labels_dock = self._dock(
            "Labels", self.labels, Qt.DockWidgetArea.LeftDockWidgetArea, "LabelsDock"
        )
        self.splitDockWidget(self.gallery_dock, self.detail_dock, Qt.Orientation.Horizontal)

        tb = QToolBar("Query")
        tb.setObjectName("QueryToolBar")
        tb.setMovable(False)
        tb.addWidget(self.query)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)

        self._build_status_bar()
        self._build_menus()
        from galaxy_explorer.gui.catalogue_panel import install_catalogue

        install_catalogue(self)  # catalogue and sky docks, detail tab, File ▸ Open Catalogue…
        from galaxy_explorer.gui.samp_menu import install_samp_menu

        self.samp = install_samp_menu(self)
        # an incoming table.load.votable opens as a catalogue over the cutouts already open
        self.samp.set_table_handler(
            lambda path, name: self.catalogue.open(path, name=name, derive_images=False)
        )

        c = controller
        c.job_started.connect(self._on_job_started)
        c.job_progress.connect(self._on_job_progress)
        c.job_finished.connect(self._on_job_finished)
        c.status.connect(self._on_status)
        c.error.connect(self._on_error)
        c.model_info.connect(self._on_model_info)
        c.busy_changed.connect(self._on_busy)
        c.catalogue_opened.connect(self._on_catalogue_opened)
        c.label_defs_changed.connect(self._on_label_defs_changed)
        c.selection_changed.connect(self._on_selection_changed)
        self.detail.settings_changed.connect(self._save_stretch)
        self.map.context_menu_requested.connect(self._on_map_context_menu)
        self._restore_settings()
        self._initial_layout = not self.settings.value("window_state")
        if self._initial_layout:
            self.resize(*default_size(self.screen()))

    # --------------------------------------------------------------- layout
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        d.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, d)
        return d

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.rate_label = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(
            "Stop embedding after the batch in flight (results so far are kept and cached)"
        )
        self.cancel_button.clicked.connect(self.c.cancel_job)
        self.cancel_button.hide()
        self.busy_label = QLabel("")
        # long background work (the UMAP map) shows a busy bar and the time it has taken
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(80)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        self._busy_text = ""
        self._busy_t0 = 0.0
        self._busy_timer = QTimer(self, interval=1000)
        self._busy_timer.timeout.connect(self._tick_busy)
        self.model_label = QLabel("model: not loaded")
        self.model_label.setToolTip("Model and compute device")
        sb.addPermanentWidget(self.busy_label)
        sb.addPermanentWidget(self.busy_bar)
        sb.addPermanentWidget(self.rate_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        sb.addPermanentWidget(self.model_label)

    def _action(
        self, menu: Any, text: str, slot: Any, shortcut: Any = None, tip: str = ""
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(tip)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(
            f,
            "&Open Folder…",
            self.open_folder_dialog,
            QKeySequence.StandardKey.Open,
            "Open a folder of cutouts (FITS, JPEG, PNG, TIFF)",
        )
        self._action(
            f,
            "&Add Files or Folder…",
            self.add_dialog,
            "Ctrl+Shift+O",
            "Add more images to the catalogue",
        )
        self._action(f, "&Rescan", self.c.reopen, "F5", "Look for new files and embed them")
        self._action(
            f,
            "&Models…",
            self.show_model_dialog,
            "Ctrl+M",
            "List, download and switch models (bundled, Hugging Face cache, folders)",
        )
        self._action(
            f,
            "Choose &Model Folder…",
            self.choose_model_dialog,
            None,
            "Use another CLIP-style model saved with save_pretrained",
        )
        self._action(
            f,
            "Use &Default Model",
            lambda: self.set_model("auto"),
            None,
            "The galaxy model from the hub if it is downloaded, else the small bundled model",
        )
        f.addSeparator()
        self.export_sel_action = self._action(
            f,
            "Export &Selection…",
            self.export_selection_dialog,
            "Ctrl+E",
            "Write the selected images to CSV",
        )
        self._action(
            f,
            "Export &All…",
            self.export_all_dialog,
            "Ctrl+Shift+E",
            "Write the whole catalogue to CSV",
        )
        self._action(
            f,
            "Copy &Paths",
            self.copy_selected_paths,
            "Ctrl+Shift+C",
            "Copy the paths of the selected images",
        )
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        e = mb.addMenu("&Edit")
        self.undo_action = self._action(e, "&Undo Label", self.c.undo_labels, "Ctrl+Z")
        self.redo_action = self._action(e, "&Redo Label", self.c.redo_labels, "Ctrl+Shift+Z")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        e.addSeparator()
        self._action(e, "Select &All", self.select_all, QKeySequence.StandardKey.SelectAll)
        self._action(e, "Select &None", lambda: self.c.set_selection([], "menu"), "Esc")
        e.addSeparator()
        lab = e.addMenu("&Label Selection")
        self.label_menu = lab
        self._label_actions: list[QAction] = []
        self._rebuild_label_actions()
        self._action(
            e,
            "&Propagate Labels",
            self.c.propagate,
            "Ctrl+P",
            "Suggest labels for unlabelled images from your examples (few-shot)",
        )
        self._action(e, "Accept Suggestions", lambda: self.labels._on_accept())

        q = mb.addMenu("&Search")
        self._action(q, "&Focus Search Box", self.focus_query, "Ctrl+F")
        self._action(q, "Find &Similar to Selection", self.find_similar_selection, "Ctrl+Shift+F")
        self._action(q, "&Clear Query", self.query.clear, "Ctrl+Backspace")

        v = mb.addMenu("&View")
        self._action(
            v, "Colour by &Predicted Label", lambda: self.c.set_color_mode("predicted"), "Ctrl+1"
        )
        self._action(
            v, "Colour by &Manual Label", lambda: self.c.set_color_mode("manual"), "Ctrl+2"
        )
        v.addSeparator()
        self._action(v, "&Pan Mode", lambda: self.map.set_mode("pan"), "P")
        self._action(v, "&Box Select", lambda: self.map.set_mode("box"), "B")
        self._action(v, "&Lasso Select", lambda: self.map.set_mode("lasso"), "L")
        self._action(v, "&Fit Map", self.map.fit, "F")
        v.addSeparator()
        for d in (self.gallery_dock, self.detail_dock, self.labels_dock):
            v.addAction(d.toggleViewAction())

        h = mb.addMenu("&Help")
        self._action(h, "&About Galaxy Explorer", self.about)
        self._action(h, "Show &Log File", self.show_log)

    def _rebuild_label_actions(self) -> None:
        for a in self._label_actions:
            self.removeAction(a)
            a.deleteLater()
        self.label_menu.clear()
        self._label_actions = []
        names = self.c.label_names()
        for i, name in enumerate(names[: len(_style.CLASS_KEYS)]):
            key = _style.class_key(i)
            a = QAction(f"{key}  {name}", self)
            a.setShortcut(QKeySequence(key))
            a.setData(name)
            a.triggered.connect(self._on_label_action)
            self.label_menu.addAction(a)
            self._label_actions.append(a)
        clear = _style.clear_keys(len(names))
        a = QAction("Clear label", self)
        a.setShortcuts([QKeySequence(k) for k in clear])
        a.setData(None)
        a.triggered.connect(self._on_label_action)
        self.label_menu.addAction(a)
        self._label_actions.append(a)

    @Slot()
    def _on_label_action(self) -> None:
        a = self.sender()
        if isinstance(a, QAction):
            self.label_selection(a.data())

    def label_selection(self, label: str | None) -> None:
        """Give the selected rows a manual label (None clears)."""
        rows = self.c.selection
        if not len(rows):
            self._on_status(
                "Select images first (click, box or lasso on the map, or in the gallery)"
            )
            return
        self.c.set_manual_label(rows, label)

    # --------------------------------------------------------------- actions
    def open_folder_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        d = QFileDialog.getExistingDirectory(self, "Open a folder of cutouts", start)
        if d:
            self.open_paths([Path(d)])

    def add_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Add images",
            start,
            "Images (*.fits *.fit *.fts *.fits.gz *.fits.fz *.jpg *.jpeg *.png *.tif *.tiff)",
        )
        if files:
            self.open_paths([Path(p) for p in files], add=True)

    def open_paths(self, paths: list[Path], add: bool = False) -> None:
        paths = [Path(p) for p in paths]
        if paths and not add:
            first = paths[0]
            self.settings.setValue("last_folder", str(first if first.is_dir() else first.parent))
        self.c.open_paths(paths, add=add)
        title = ", ".join(p.name for p in self.c.roots[:3]) + ("…" if len(self.c.roots) > 3 else "")
        self.setWindowTitle(f"{title} — {APP_NAME}" if title else APP_NAME)

    def choose_model_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(
            self,
            "Choose a model folder",
            str(self.settings.value("last_model_dir", str(Path.home()))),
        )
        if d:
            self.settings.setValue("last_model_dir", str(Path(d).parent))
            self.set_model(d)

    def set_model(self, spec: str) -> None:
        """Use another model from now on (remembered)."""
        self.settings.setValue("model", spec)
        self.c.set_model(spec)

    def show_model_dialog(self) -> Any:
        """Open the (non-modal) model dialog: list, download and switch models."""
        from galaxy_explorer.gui.model_dialog import ModelDialog

        if self.model_dialog is None:
            self.model_dialog = ModelDialog(self, current=self.c.model_spec, settings=self.settings)
            self.model_dialog.model_chosen.connect(self._on_model_chosen)
        self.model_dialog.current = self.c.model_spec
        self.model_dialog.refresh()
        self.model_dialog.show()
        self.model_dialog.raise_()
        return self.model_dialog

    @Slot(str)
    def _on_model_chosen(self, spec: str) -> None:
        self.set_model(spec)

    def show_hint(self, text: str) -> None:
        self.map._set_hint(text)
        self._on_status(" ".join(text.split()))

    def _csv_dialog(self, title: str, default: str) -> Path | None:
        start = Path(str(self.settings.value("last_export_dir", str(Path.home())))) / default
        out, _ = QFileDialog.getSaveFileName(
            self,
            title,
            str(start),
            "CSV (*.csv);;ECSV, with units (*.ecsv);;VOTable (*.vot *.xml);;FITS table (*.fits)"
            ";;Parquet (*.parquet)",
        )
        if not out:
            return None
        p = Path(out)
        if p.suffix.lower() not in (".csv", ".ecsv", ".vot", ".xml", ".fits", ".parquet"):
            p = p.with_suffix(".csv")
        self.settings.setValue("last_export_dir", str(p.parent))
        return p

    def export_selection_dialog(self) -> None:
        rows = self.c.selection
        if not len(rows):
            self._on_error("Export Selection", "Nothing is selected.")
            return
        p = self._csv_dialog("Export selection", "selection.csv")
        if p:
            self.c.export_csv(p, rows)

    def export_all_dialog(self) -> None:
        p = self._csv_dialog("Export all", "catalogue.csv")
        if p:
            self.c.export_csv(p, None)

    def copy_selected_paths(self) -> None:
        rows = [int(r) for r in self.c.selection]
        if rows:
            self.gallery.copy_paths(rows)

    def select_all(self) -> None:
        self.c.set_selection(
            self.c.embedded_rows() if self.c.have.any() else np.arange(self.c.n), "menu"
        )

    def focus_query(self) -> None:
        self.query.edit.setFocus()
        self.query.edit.selectAll()

    def find_similar_selection(self) -> None:
        if len(self.c.selection):
            self.c.find_similar(self.c.selection)

    def about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("About Galaxy Explorer")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(
            f"<h3>Galaxy Explorer {__version__}</h3>"
            "<p>Explore folders of galaxy survey cutouts (FITS, JPEG, PNG) through a CLIP-style "
            "vision-language model: map, text and image search, zero-shot labels and "
            "drag-and-drop classification.</p>"
            f"<p>Model: {self.model_label.text()}</p>"
            "<p>BSD-3-Clause licence.</p>"
        )
        box.setIcon(QMessageBox.Icon.Information)
        box.open()

    def show_log(self) -> None:
        """Open the log file's folder; say where the log is when nothing can open it."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        if self.log_path is None:
            self._on_info("Show Log", "This session writes no log file.")
            return
        path = Path(self.log_path)
        folder = path.parent if path.parent.is_dir() else path
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self._on_status(f"Log file: {path}")
            return
        from PySide6.QtGui import QGuiApplication

        QGuiApplication.clipboard().setText(str(path))
        self._on_info(
            "Show Log",
            f"No file manager could be opened. The log file is:\n{path}\n\n"
            "(the path is on the clipboard)",
        )

    def _on_info(self, title: str, message: str) -> None:
        """A message for the user (status bar; a box unless ``quiet_errors``)."""
        self.last_info = (title, message)
        self.statusBar().showMessage(f"{title}: {' '.join(message.split())}", 15000)
        if self.quiet_errors:
            return
        box = QMessageBox(
            QMessageBox.Icon.Information, title, message, QMessageBox.StandardButton.Ok, self
        )
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()

    # --------------------------------------------------------------- controller slots
    @Slot(str)
    def _on_job_started(self, text: str) -> None:
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.rate_label.setText("scanning…")
        if self.c.adapter is None:  # the job loads the model after scanning (seconds)
            self.model_label.setText("loading model…")
        self._on_status(text)

    @Slot(object)
    def _on_job_progress(self, p: Any) -> None:
        total = max(int(p.total), 1)
        self.progress.setRange(0, total)
        self.progress.setValue(int(p.done))
        self.progress.setFormat("%v / %m")
        bits = []
        if p.rate:
            bits.append(f"{p.rate:.1f} img/s")
        eta = _fmt_eta(p.eta)
        if eta:
            bits.append(f"ETA {eta}")
        if p.cached:
            bits.append(f"{p.cached} cached")
        if p.failed:
            bits.append(f"{p.failed} failed")
        self.rate_label.setText(" · ".join(bits))

    @Slot(str)
    def _on_job_finished(self, status: str) -> None:
        self.progress.hide()
        self.cancel_button.hide()
        self.rate_label.setText("")
        if self.c.adapter is None:
            self.model_label.setText("model: not loaded")
        if status == "cancelled":
            self._on_status("Embedding cancelled — embedded images are kept")

    @Slot(str)
    def _on_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    @Slot(str)
    def _on_busy(self, text: str) -> None:
        import time

        if text and text != self._busy_text:
            self._busy_t0 = time.monotonic()
        self._busy_text = text
        self.busy_label.setText(text)
        self.busy_bar.setVisible(bool(text))
        self.busy_label.setToolTip(
            "The UMAP map is fitted in a separate process; the first fit in a session also "
            "compiles UMAP's code (tens of seconds). The quick PCA view stays until it is ready."
            if "UMAP" in text
            else ""
        )
        if text:
            self._busy_timer.start()
        else:
            self._busy_timer.stop()

    @Slot()
    def _tick_busy(self) -> None:
        import time

        if self._busy_text:
            secs = int(time.monotonic() - self._busy_t0)
            self.busy_label.setText(f"{self._busy_text} {_fmt_eta(secs) or '0s'}")

    @Slot(str)
    def _on_model_info(self, text: str) -> None:
        self.model_label.setText(text)
        self.rate_label.setText("embedding…")
        if self.c.adapter is not None:
            from galaxy_explorer.gui.model_dialog import maybe_hint_larger_model

            maybe_hint_larger_model(self)

    @Slot(str, str)
    def _on_error(self, title: str, message: str) -> None:
        log.warning("%s: %s", title, message)
        self.last_error = (title, message)
        self.statusBar().showMessage(f"{title}: {message}", 15000)
        if self.quiet_errors:
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self
        )
        if self.log_path is not None:
            box.setInformativeText(f"Details are in the log: {self.log_path}")
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()  # never blocks the event loop

    @Slot()
    def _on_catalogue_opened(self) -> None:
        root = self.c.thumbs_dir() if hasattr(self.c, "thumbs_dir") else None
        self.thumbs.configure(root, getattr(self.c.session, "render", None))

    @Slot()
    def _on_label_defs_changed(self) -> None:
        self._rebuild_label_actions()
        self.settings.setValue("labels", [[d.name, d.prompt] for d in self.c.label_defs])
        self.settings.setValue("templates", list(self.c.templates))

    @Slot(str)
    def _on_selection_changed(self, source: str) -> None:
        n = len(self.c.selection)
        self.export_sel_action.setEnabled(n > 0)
        if source in ("map", "gallery") and n > 1:
            self._on_status(f"{n} selected")

    @Slot(object)
    def _on_map_context_menu(self, global_pos: Any) -> None:
        """The gallery's menu (Find similar, Label as…, Copy paths …) for the map selection."""
        if len(self.c.selection):
            menu = self.gallery.build_context_menu()
            menu.addSeparator()
            menu.addAction("Export Selection…", self.export_selection_dialog)
            menu.popup(global_pos)

    @Slot()
    def _save_stretch(self) -> None:
        for k, v in self.detail.settings_dict().items():
            self.settings.setValue(f"stretch/{k}", v)

    # --------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        s = self.settings
        geo = s.value("geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        state = s.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        labels = s.value("labels")
        if isinstance(labels, list) and labels:
            try:
                defs = [
                    LabelDef(str(x[0]), str(x[1]) if len(x) > 1 else "")
                    for x in labels
                    if isinstance(x, (list, tuple)) and x
                ]
                templates = s.value("templates")
                if isinstance(templates, str):
                    templates = [templates]
                if defs:
                    self.c.set_label_defs(defs, list(templates) if templates else None)
            except Exception:  # a corrupt setting must not stop the app
                log.warning("ignoring stored labels", exc_info=True)
        self.detail.apply_settings(
            {
                k: s.value(f"stretch/{k}")
                for k in ("stretch", "limits", "percentile", "lupton")
                if s.value(f"stretch/{k}") is not None
            }
        )
        try:
            thr = float(s.value("threshold", 0.0))
            self.c.set_threshold(thr)
            self.labels.threshold.setValue(thr)
        except (TypeError, ValueError):
            pass

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("window_state", self.saveState())
        s.setValue("threshold", float(self.c.threshold))
        s.setValue("labels", [[d.name, d.prompt] for d in self.c.label_defs])
        s.setValue("templates", list(self.c.templates))
        self._save_stretch()
        s.sync()

    def event(self, ev: Any) -> bool:
        handled = super().event(ev)
        # a top-level widget's UpdateRequest paints the whole window: it has been painted
        if not self._painted_once and ev.type() == QEvent.Type.UpdateRequest:
            self._painted_once = True
            # the docks settle and the views lay out in the next few turns of the loop
            QTimer.singleShot(OPEN_AFTER_PAINT_MS, self._painted.set)
        return handled

    def showEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(ev)
        if self._initial_layout:  # first start: sensible dock widths (later: as the user left them)
            self._initial_layout = False
            QTimer.singleShot(0, self._apply_initial_dock_sizes)

    @Slot()
    def _apply_initial_dock_sizes(self) -> None:
        self.resizeDocks(
            [self.labels_dock, self.gallery_dock, self.detail_dock],
            list(DEFAULT_DOCK_WIDTHS),
            Qt.Orientation.Horizontal,
        )

    def closeEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self.save_settings()
        if self.model_dialog is not None:
            self.model_dialog.shutdown()
        self.thumbs.shutdown()
        self.catalogue.shutdown()
        self.samp.shutdown()
        self.map.shutdown()
        self.c.shutdown()
        super().closeEvent(ev)

    # --------------------------------------------------------------- drag and drop of files
    def dragEnterEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            from galaxy_explorer.gui.gallery import ROWS_MIME

            if not ev.mimeData().hasFormat(ROWS_MIME):  # our own thumbnails: not a new file
                ev.acceptProposedAction()

    def dropEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in ev.mimeData().urls() if u.isLocalFile()]
        from galaxy_explorer.core.catalogue import looks_like_table

        tables = [p for p in paths if looks_like_table(p)]
        if tables:  # a catalogue table dropped: open it beside the cutouts
            ev.acceptProposedAction()
            self.catalogue.open(tables[0])
            paths = [p for p in paths if p not in tables]
        if paths:
            ev.acceptProposedAction()
            self.open_paths(paths, add=bool(self.c.roots))
