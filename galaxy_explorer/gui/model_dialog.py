"""The model dialog (File ▸ Models…) and the one-time hint about a larger model.

The dialog lists the bundled model, every CLIP-style model in the local Hugging Face cache,
folders chosen before, and the seed model ``juppy44/galaxy-clip-finetuned`` with a
**Download** button. A download asks first (showing its size), runs off the GUI thread on a
:class:`~galaxy_explorer.gui.workers.Runner` task around
:func:`galaxy_explorer.core.hub.download_job`, shows bytes / rate / ETA, can be cancelled and
resumes next time; when it has finished the window switches to the new model (which
re-embeds the catalogue, with progress in the status bar; the old model's embeddings stay in
the cache).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from galaxy_explorer.core import hub
from galaxy_explorer.gui.workers import Runner, Task

log = logging.getLogger(__name__)

__all__ = ["ModelDialog", "ModelHintBanner", "maybe_hint_larger_model", "HINT_SETTING"]

HINT_SETTING = "hints/larger_model_shown"
FOLDERS_SETTING = "model_folders"
HINT_TEXT = (
    "You are using the small bundled model, trained on synthetic galaxies. For real "
    f"survey images, a larger model ({hub.SEED_MODEL}, CLIP fine-tuned on real "
    "galaxies) is one download away: File ▸ Models…"
)

SEED_ABOUT = (
    f"{hub.SEED_MODEL}: OpenAI CLIP fine-tuned on real galaxy images, for survey "
    "cutouts. Download… asks the hub for its size and asks you before it fetches "
    "anything; only the weights (safetensors), config, tokenizer and processor files "
    "are fetched, into the Hugging Face cache."
)

COL_NAME, COL_SIZE, COL_WHERE, COL_STATE = range(4)


def _plan_job(repo_id: str, revision: str | None) -> Any:
    """A one-step job: ask the hub what a download would fetch (no file data)."""
    yield hub.plan_download(repo_id, revision)


class ModelDialog(QDialog):
    """List, download and choose models.

    Parameters
    ----------
    parent : QWidget, optional
    current : str
        The model in use now (marked "in use").
    settings : QSettings, optional
        Remembers folders chosen with **Choose Folder…** (listed next time).

    Attributes
    ----------
    confirm : callable
        ``confirm(plan) -> bool`` asks before a download; the default shows a question with
        the download's size (tests put their own answer here).

    Signals
    -------
    model_chosen(str)
        The user chose a model (a spec for ``--model``), or a download finished.
    """

    model_chosen = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, current: str = "", settings: QSettings | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setModal(False)
        self.current = current
        self.settings = settings
        self.confirm: Callable[[hub.DownloadPlan], bool] = self._ask
        self.last_error = ""
        self.last_progress: hub.DownloadProgress | None = None
        self._worker: Task | None = None
        self._runner = Runner(1, "download", self)
        self._downloading: tuple[str, str | None] | None = None
        self._models: list[dict[str, Any]] = []
        self._plan: hub.DownloadPlan | None = None

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Model", "Size", "Where", ""])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(COL_SIZE, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(COL_WHERE, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(COL_STATE, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._clear_info)
        self.table.itemDoubleClicked.connect(self._on_double_click)

        self.use_button = QPushButton("Use")
        self.use_button.setToolTip(
            "Switch to the selected model (the catalogue is embedded again; "
            "embeddings of other models stay cached)"
        )
        self.download_button = QPushButton("Download…")
        self.download_button.setToolTip("Fetch the selected hub model (asks first, shows its size)")
        self.folder_button = QPushButton("Choose Folder…")
        self.folder_button.setToolTip("A model folder saved with save_pretrained")
        self.cancel_button = QPushButton("Cancel Download")
        self.cancel_button.setToolTip(
            "Stop now; the part already fetched is kept and the next download resumes it"
        )
        self.close_button = QPushButton("Close")
        self.use_button.clicked.connect(self._on_use)
        self.download_button.clicked.connect(self._on_download)
        self.folder_button.clicked.connect(self._on_folder)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.close_button.clicked.connect(self.close)
        self.cancel_button.hide()

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        for b in (self.use_button, self.download_button, self.folder_button, self.cancel_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.addWidget(
            QLabel(
                "Models on this machine, and the galaxy model on the Hugging Face "
                f"hub ({hub.endpoint()}):"
            )
        )
        lay.addWidget(self.table, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.info)
        lay.addLayout(buttons)
        self.resize(900, 330)
        self.refresh()

    # ------------------------------------------------------------------ listing
    def _folders(self) -> list[Path]:
        if self.settings is None:
            return []
        value = self.settings.value(FOLDERS_SETTING) or []
        if isinstance(value, str):
            value = [value]
        return [Path(str(v)) for v in value]

    def refresh(self) -> None:
        """Read the list of models again (bundled, hub cache, chosen folders, seed model)."""
        selected = self.selected_spec()
        rows: list[dict[str, Any]] = []
        try:
            local = hub.list_local_models(folders=self._folders())
        except Exception as exc:  # a damaged cache must not stop the dialog
            log.warning("listing models failed: %s", exc)
            local = []
        for m in local:
            where = str(m.path)
            rows.append(
                dict(
                    spec=m.spec,
                    name=m.name,
                    size=hub.format_bytes(m.size),
                    where=where,
                    kind=m.kind,
                    default=m.default,
                    local=True,
                )
            )
        if not any(r["spec"] == hub.SEED_MODEL for r in rows):
            rows.append(
                dict(
                    spec=hub.SEED_MODEL,
                    name=hub.SEED_MODEL,
                    size="",
                    where=f"{hub.endpoint()}/{hub.SEED_MODEL}",
                    kind="remote",
                    default=False,
                    local=False,
                )
            )
        self._models = rows
        self.table.blockSignals(True)  # a refresh keeps the message shown below the table
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            state = []
            if self._is_current(r["spec"]):
                state.append("in use")
            if r["default"]:
                state.append("default")
            if not r["local"]:
                state.append("not downloaded")
            for col, text in (
                (COL_NAME, r["name"]),
                (COL_SIZE, r["size"]),
                (COL_WHERE, r["where"]),
                (COL_STATE, ", ".join(state)),
            ):
                item = QTableWidgetItem(text)
                item.setToolTip(r["where"] if col == COL_WHERE else text)
                if col == COL_SIZE:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(i, col, item)
        pick = next((i for i, r in enumerate(rows) if r["spec"] == selected), None)
        if pick is None:
            pick = next((i for i, r in enumerate(rows) if self._is_current(r["spec"])), 0)
        if rows:
            self.table.selectRow(pick)
        self.table.blockSignals(False)
        self._on_selection()

    def _is_current(self, spec: str) -> bool:
        cur = str(self.current or "")
        if cur == "auto":
            return any(r["spec"] == spec and r["default"] for r in self._models)
        if spec == cur:
            return True
        try:
            return (
                Path(spec).exists()
                and Path(cur).exists()
                and Path(spec).resolve() == Path(cur).resolve()
            )
        except OSError:
            return False

    def row_of(self, spec: str) -> int:
        """Table row of a model spec (-1 when not listed)."""
        return next((i for i, r in enumerate(self._models) if r["spec"] == spec), -1)

    def model_rows(self) -> list[dict[str, Any]]:
        """What the table shows, one dict per row (spec, name, size, where, kind, ...)."""
        return [dict(r) for r in self._models]

    def selected_spec(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self._models):
            return None
        return str(self._models[rows[0].row()]["spec"])

    def select(self, spec: str) -> None:
        i = self.row_of(spec)
        if i >= 0:
            self.table.selectRow(i)

    @Slot()
    def _on_selection(self) -> None:
        spec = self.selected_spec()
        row = self._models[self.row_of(spec)] if spec is not None else None
        busy = self._worker is not None
        self.use_button.setEnabled(bool(row and row["local"]) and not busy)
        self.download_button.setEnabled(bool(row and not row["local"]) and not busy)
        if row is not None and not busy and not self.info.text():
            if row["spec"] == hub.SEED_MODEL and not row["local"]:
                self.info.setText(SEED_ABOUT)

    @Slot()
    def _clear_info(self) -> None:
        self.info.setText("")
        self._on_selection()

    @Slot(QTableWidgetItem)
    def _on_double_click(self, _item: QTableWidgetItem) -> None:
        if self.use_button.isEnabled():
            self._on_use()

    # ------------------------------------------------------------------ choosing
    @Slot()
    def _on_use(self) -> None:
        spec = self.selected_spec()
        if spec is not None:
            self._choose(spec)

    def _choose(self, spec: str) -> None:
        self.current = spec
        self.refresh()
        self.info.setText(
            f"Using {hub.display_name(spec)}; the catalogue is embedded with it now "
            "(progress in the status bar)."
        )
        self.model_chosen.emit(spec)

    @Slot()
    def _on_folder(self) -> None:
        start = (
            str(self.settings.value("last_model_dir", str(Path.home())))
            if self.settings
            else str(Path.home())
        )
        d = QFileDialog.getExistingDirectory(self, "Choose a model folder", start)
        if d:
            self.use_folder(Path(d))

    def use_folder(self, folder: Path) -> bool:
        """Use a model folder (remembered for the list); False with a message if it is none."""
        folder = Path(folder).expanduser()
        if not (folder / "config.json").is_file():
            self.info.setText(f"{folder}: not a model folder (no config.json)")
            return False
        if self.settings is not None:
            self.settings.setValue("last_model_dir", str(folder.parent))
            folders = [str(p) for p in self._folders() if p != folder.resolve()]
            self.settings.setValue(FOLDERS_SETTING, [str(folder.resolve()), *folders][:10])
        self._choose(str(folder.resolve()))
        return True

    # ------------------------------------------------------------------ download
    def _ask(self, plan: hub.DownloadPlan) -> bool:
        have = plan.present_bytes()
        text = (
            f"Download {plan.repo_id} ({len(plan.files)} files, "
            f"{hub.format_bytes(plan.total_bytes)}) from {plan.endpoint}?"
        )
        if have:
            text += f"\n{hub.format_bytes(have)} of it is already here; the download resumes."
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Download model",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setInformativeText(f"Into the Hugging Face cache: {plan.cache_dir}")
        return box.exec() == QMessageBox.StandardButton.Yes

    @Slot()
    def _on_download(self) -> None:
        spec = self.selected_spec()
        if spec is not None:
            self.start_download(spec)

    def start_download(self, spec: str) -> None:
        """Ask the hub for the size, ask the user, then download ``spec`` (off the GUI thread)."""
        if self._worker is not None:
            return
        repo_id, revision = hub.split_spec(spec)
        self._downloading = (repo_id, revision)
        self.last_error = ""
        self.info.setText(f"Asking {hub.endpoint()} about {repo_id}…")
        self._start(lambda cancel: _plan_job(repo_id, revision), self._on_plan)

    def _start(self, factory: Callable[[Any], Any], on_value: Callable[[Any], None]) -> None:
        self._worker = self._runner.start(
            "download",
            factory,
            on_yield=on_value,
            on_error=self._on_failed,
            on_done=self._on_done,
        )
        self._on_selection()

    def _on_plan(self, plan: Any) -> None:
        self._plan = plan
        self.info.setText(plan.describe())

    def _begin_download(self, plan: hub.DownloadPlan) -> None:
        self.progress.setValue(int(1000 * plan.present_bytes() / max(plan.total_bytes, 1)))
        self.progress.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.info.setText(f"Downloading {plan.describe()}")
        self._start(lambda cancel: hub.download_job(plan, cancel), self._on_progress)

    def _on_progress(self, p: Any) -> None:
        self.last_progress = p
        self.progress.setValue(int(1000 * p.done / max(p.total, 1)))
        self.info.setText(f"Downloading {p.repo_id}: {p.describe()}")

    def _on_failed(self, message: str, _details: str) -> None:
        self.last_error = message
        self.info.setText(f"Download failed: {message}")

    def _on_done(self, cancelled: bool) -> None:
        self._worker = None
        plan, self._plan = self._plan, None
        last = self.last_progress if plan is None else None
        self.cancel_button.hide()
        if plan is not None and not self.last_error and not cancelled:
            # the hub answered: now ask, then fetch
            if self.confirm(plan):
                self.last_progress = None
                self._begin_download(plan)
                return
            self.info.setText("Download not started.")
        elif cancelled:
            have = self.last_progress.done if self.last_progress else 0
            self.info.setText(
                f"Download cancelled; {hub.format_bytes(have)} kept, the next download resumes."
            )
        self.progress.hide()
        self._on_selection()
        if last is not None and last.finished and last.snapshot is not None and not cancelled:
            repo_id, revision = self._downloading or (last.repo_id, None)
            self.refresh()
            self._choose(hub.join_spec(repo_id, revision))
        else:
            self.refresh()

    def cancel_download(self) -> None:
        """Stop the download between chunks (the part already fetched is kept)."""
        if self._worker is not None:
            self._worker.cancel()
            self.cancel_button.setEnabled(False)

    def busy(self) -> bool:
        """Whether a look-up or download is running."""
        return self._worker is not None

    def shutdown(self) -> None:
        """Cancel and wait for the worker (call before the window goes away)."""
        self.cancel_download()
        self._runner.shutdown(30000)


class ModelHintBanner(QFrame):
    """A one-line, non-modal note with a button to the model dialog and a close button."""

    def __init__(
        self, text: str, on_open: Callable[[], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ModelHintBanner")
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.open_button = QPushButton("Models…")
        self.open_button.clicked.connect(on_open)
        self.close_button = QPushButton("✕")
        self.close_button.setFlat(True)
        self.close_button.setToolTip("Hide this note")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 2, 4, 2)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.open_button)
        lay.addWidget(self.close_button)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def maybe_hint_larger_model(window: Any) -> bool:
    """Tell the user once that a larger model exists, if they opened their own folder with
    the bundled model. Shown as a banner under the toolbar and in the status bar, never a
    modal dialog; remembered in the window's settings. Returns whether it was shown now.
    """
    from galaxy_explorer.core import model_source
    from galaxy_explorer.gui.controller import resources_dir

    c = window.c
    adapter = getattr(c, "adapter", None)
    if adapter is None or not c.roots or _truthy(window.settings.value(HINT_SETTING, False)):
        return False
    try:
        spec = Path(str(getattr(adapter, "spec", "")))
        if not (spec.exists() and spec.resolve() == model_source.bundled_model_path().resolve()):
            return False
        sample = (resources_dir() / "sample").resolve()
        own = [r for r in c.roots if not Path(r).resolve().is_relative_to(sample)]
    except OSError:
        return False
    if not own:
        return False
    window.settings.setValue(HINT_SETTING, True)
    bar = QToolBar("Model note", window)
    bar.setObjectName("ModelHintBar")
    bar.setMovable(False)
    banner = ModelHintBanner(HINT_TEXT, window.show_model_dialog, bar)
    banner.close_button.clicked.connect(bar.hide)
    banner.open_button.clicked.connect(bar.hide)
    bar.addWidget(banner)
    bar.banner = banner  # type: ignore[attr-defined]
    window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    window.model_hint_bar = bar
    window.statusBar().showMessage(HINT_TEXT, 30000)
    return True
