"""Zero-shot label panel and drag-and-drop label bins.

The class list (name + optional prompt) drives both the zero-shot predictions and the
manual-label bins. Editing it re-embeds only the label texts; predictions update at once.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from galaxy_explorer.gui import _style
from galaxy_explorer.gui.controller import UNCERTAIN, Controller, LabelDef, load_default_labels
from galaxy_explorer.gui.gallery import ROWS_MIME, rows_from_mime

log = logging.getLogger(__name__)

__all__ = ["LabelBin", "LabelPanel"]


class LabelBin(QPushButton):
    """A drop target that labels the dropped gallery rows; a click labels the selection.

    Signals
    -------
    rows_dropped(list, object)
        ``(rows, label or None)``.
    """

    rows_dropped = Signal(list, object)

    def __init__(
        self, label: str | None, index: int, parent: QWidget | None = None, n_classes: int = 9
    ) -> None:
        super().__init__(parent)
        self.label = label
        self.index = index
        self.setAcceptDrops(True)
        self.setMinimumHeight(30)
        self.setMinimumWidth(60)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        color = _style.label_color(index) if label is not None else QColor(_style.UNLABELLED_COLOR)
        self._color = color
        self._set_style(False)
        keys = [_style.class_key(index)] if label is not None else _style.clear_keys(n_classes)
        keys = [k for k in keys if k]
        self.key = keys[-1] if keys else ""  # the short one shown on the bin
        self.name = label if label is not None else "clear label"
        self.count: int | None = None
        self._base = f"{self.key} {self.name}" if self.key else self.name
        self.setText(self._base)
        press = " or ".join(keys) if keys else ""
        self.setToolTip(
            f"Drop thumbnails here{f' (or press {press})' if press else ''} to label them '{label}'"
            if label is not None
            else f"Drop thumbnails here (or press {press}) to remove their manual label"
        )

    def _set_style(self, hot: bool) -> None:
        c = self._color
        bg = f"rgba({c.red()},{c.green()},{c.blue()},{200 if hot else 60})"
        self.setStyleSheet(
            f"QPushButton {{ border: 2px {'solid' if hot else 'dashed'} {c.name()};"
            f" border-radius: 6px; background: {bg}; padding: 4px 4px;"
            f" text-align: left; }}"
        )

    def set_count(self, count: int) -> None:
        self.count = count
        self._relabel()

    #: Horizontal room the style sheet takes from the text (padding 2×4, border 2×2, slack).
    _CHROME_PX = 16

    def text_room(self) -> int:
        """Pixels available for the text inside the bin's border and padding."""
        return max(0, self.width() - self._CHROME_PX)

    def _relabel(self) -> None:
        """Key, name and count; a long name is elided so that the count always shows."""
        head = f"{self.key} " if self.key else ""
        tail = f" ({self.count})" if self.count is not None else ""
        fm = self.fontMetrics()
        room = self.text_room() - fm.horizontalAdvance(head + tail)
        name = fm.elidedText(self.name, Qt.TextElideMode.ElideRight, max(room, 0))
        self.setText(head + (name or "…") + tail)

    def resizeEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(ev)
        self._relabel()

    def dragEnterEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        if ev.mimeData().hasFormat(ROWS_MIME):
            ev.acceptProposedAction()
            self._set_style(True)

    def dragLeaveEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self._set_style(False)

    def dropEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self._set_style(False)
        rows = rows_from_mime(ev.mimeData())
        if rows:
            ev.acceptProposedAction()
            self.rows_dropped.emit(rows, self.label)


class LabelPanel(QWidget):
    """Editable zero-shot classes, prompt templates, confidence threshold and label bins."""

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.c = controller
        self._filling = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)

        # --- zero-shot classes
        box = QGroupBox("Zero-shot classes")
        bl = QVBoxLayout(box)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Label", "Prompt", "#"])
        self.table.horizontalHeaderItem(2).setToolTip("Images predicted as this class")
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        # a prompt too long for the column wraps onto a second line (never cut off)
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.verticalHeader().setMinimumSectionSize(self.table.fontMetrics().height() + 8)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setToolTip(
            "Double-click to edit a label or its prompt. The prompt is the "
            "text the model compares images with (short descriptions work "
            "best); empty = use the label itself."
        )
        self.table.itemChanged.connect(self._on_item_changed)
        bl.addWidget(self.table)
        row = QHBoxLayout()
        for text, tip, slot in (
            ("Add", "Add a class", self.add_label),
            ("Remove", "Remove the selected classes", self.remove_selected),
            ("Defaults", "Restore the default classes", self.reset_defaults),
        ):
            b = QToolButton(text=text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            row.addWidget(b)
        row.addStretch(1)
        bl.addLayout(row)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.templates_edit = QLineEdit()
        self.templates_edit.setMinimumWidth(120)
        self.templates_edit.setToolTip(
            "Prompt templates separated by ';' — '{}' is replaced by "
            "each prompt; the class vector is the mean over templates"
        )
        self.templates_edit.editingFinished.connect(self._on_templates_edited)
        bl.addWidget(QLabel("Templates:"))
        bl.addWidget(self.templates_edit)  # the whole width of the panel
        self.threshold = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2)
        self.threshold.setToolTip("Items whose best probability is below this count as 'uncertain'")
        self.threshold.valueChanged.connect(self._on_threshold)
        self.uncertain_label = QLabel("")
        self.uncertain_label.setToolTip("Images whose best probability is below the threshold")
        thr_row = QHBoxLayout()
        thr_row.addWidget(self.threshold)
        thr_row.addWidget(QLabel("uncertain:"))
        thr_row.addWidget(self.uncertain_label, 1)
        form.addRow("Threshold:", thr_row)
        bl.addLayout(form)
        lay.addWidget(box, 3)

        # --- manual label bins
        bins = QGroupBox("Label bins")
        bins.setToolTip(
            "Drag thumbnails onto a bin, or select images and press 1–9, 0 (Delete clears; so "
            "does 0 with fewer than 10 classes); Ctrl+Z undoes"
        )
        self.bins_layout = QGridLayout(bins)
        self.bins_layout.setVerticalSpacing(4)
        self.bins_layout.setContentsMargins(6, 4, 6, 4)
        self.bins: list[LabelBin] = []
        lay.addWidget(bins, 2)
        self._bins_box = bins

        act = QHBoxLayout()
        self.undo_button = QToolButton(text="Undo")
        self.undo_button.setToolTip("Undo the last labelling (Ctrl+Z)")
        self.undo_button.clicked.connect(self.c.undo_labels)
        self.redo_button = QToolButton(text="Redo")
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(self.c.redo_labels)
        self.propagate_button = QPushButton("Propagate")
        self.propagate_button.setToolTip(
            "Train a few-shot classifier on your labels and suggest "
            "labels for the rest (a coloured halo on the map, '?' in the gallery)"
        )
        self.propagate_button.clicked.connect(self.c.propagate)
        self.accept_button = QToolButton(text="Accept")
        self.accept_button.setToolTip(
            "Turn the few-shot suggestions of the selection (or all, "
            "when nothing is selected) into manual labels"
        )
        self.accept_button.clicked.connect(self._on_accept)
        for w in (self.undo_button, self.redo_button, self.propagate_button, self.accept_button):
            act.addWidget(w)
        act.addStretch(1)
        lay.addLayout(act)
        lay.addStretch(0)

        self._apply_timer = QTimer(self, singleShot=True, interval=400)
        self._apply_timer.timeout.connect(self.apply)
        c = controller
        c.label_defs_changed.connect(self._fill)
        c.predictions_changed.connect(self._update_counts)
        c.labels_changed.connect(self._update_bin_counts)
        c.catalogue_opened.connect(self._update_bin_counts)
        self._fill()

    # --------------------------------------------------------------- table
    @Slot()
    def _fill(self) -> None:
        self._filling = True
        try:
            defs = self.c.label_defs
            self.table.setRowCount(len(defs))
            for i, d in enumerate(defs):
                name = QTableWidgetItem(d.name)
                name.setForeground(_style.label_color(i))
                f = name.font()
                f.setBold(True)
                name.setFont(f)
                self.table.setItem(i, 0, name)
                prompt = QTableWidgetItem(d.prompt)
                prompt.setToolTip(d.prompt or "(uses the label itself)")
                self.table.setItem(i, 1, prompt)
                cnt = QTableWidgetItem("")
                cnt.setFlags(Qt.ItemFlag.ItemIsEnabled)
                cnt.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, 2, cnt)
            self.templates_edit.setText("; ".join(self.c.templates))
            self.templates_edit.setCursorPosition(0)  # show the start, not the end
            self.templates_edit.setToolTip(
                "Prompt templates separated by ';' — '{}' is replaced by each prompt; the "
                "class vector is the mean over templates. Now:\n"
                + "\n".join(f"  {t}" for t in self.c.templates)
            )
            if abs(self.threshold.value() - self.c.threshold) > 1e-9:
                self.threshold.setValue(self.c.threshold)
        finally:
            self._filling = False
        self._rebuild_bins()
        self._update_counts()

    def label_defs(self) -> list[LabelDef]:
        """The classes as currently shown in the table."""
        out = []
        for i in range(self.table.rowCount()):
            n = self.table.item(i, 0)
            p = self.table.item(i, 1)
            name = n.text().strip() if n is not None else ""
            if name:
                out.append(LabelDef(name, p.text().strip() if p is not None else ""))
        return out

    def templates(self) -> list[str]:
        return [t.strip() for t in self.templates_edit.text().split(";") if t.strip()] or ["{}"]

    @Slot(QTableWidgetItem)
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if not self._filling and item.column() in (0, 1):
            self._apply_timer.start()

    @Slot()
    def _on_templates_edited(self) -> None:
        if self.templates() != self.c.templates:
            self._apply_timer.start()

    @Slot()
    def apply(self) -> None:
        """Push the table to the controller (re-embeds the label texts).

        A class renamed in place takes its hand-made labels along (one undo step).
        """
        self._apply_timer.stop()
        before = self.c.label_names()
        names = [
            self.table.item(i, 0).text().strip() if self.table.item(i, 0) else ""
            for i in range(self.table.rowCount())
        ]
        if len(names) == len(before):
            for old, new in zip(before, names, strict=True):
                if new and new != old and new not in before:
                    self.c.rename_manual_label(old, new)
        self.c.set_label_defs(self.label_defs(), self.templates())

    def set_labels(self, defs: list[LabelDef], templates: list[str] | None = None) -> None:
        self.c.set_label_defs(defs, templates)

    @Slot()
    def add_label(self) -> None:
        self._filling = True
        i = self.table.rowCount()
        self.table.insertRow(i)
        self.table.setItem(i, 0, QTableWidgetItem(""))
        self.table.setItem(i, 1, QTableWidgetItem(""))
        self._filling = False
        self.table.setCurrentCell(i, 0)
        self.table.editItem(self.table.item(i, 0))

    @Slot()
    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        if not rows:
            return
        self._filling = True
        for r in rows:
            self.table.removeRow(r)
        self._filling = False
        self.apply()

    @Slot()
    def reset_defaults(self) -> None:
        defs, templates = load_default_labels()
        self.c.set_label_defs(defs, templates)

    @Slot(float)
    def _on_threshold(self, value: float) -> None:
        if not self._filling:
            self.c.set_threshold(value)

    @Slot()
    def _update_counts(self) -> None:
        counts = self.c.predicted_counts()
        self._filling = True
        try:
            for i, d in enumerate(self.c.label_defs):
                it = self.table.item(i, 2)
                text = str(counts.get(d.name, 0))
                if it is not None and i < self.table.rowCount() and it.text() != text:
                    it.setText(text)  # only when changed: each set re-measures the row
        finally:
            self._filling = False
        self.uncertain_label.setText(str(counts.get(UNCERTAIN, 0)))

    # --------------------------------------------------------------- bins
    def _rebuild_bins(self) -> None:
        for b in self.bins:
            b.deleteLater()
        self.bins = []
        names: list[str | None] = list(self.c.label_names())
        names.append(None)
        for i, name in enumerate(names):
            b = LabelBin(name, i if name is not None else -1, self._bins_box, len(names) - 1)
            b.rows_dropped.connect(self._on_rows_dropped)
            b.clicked.connect(self._on_bin_clicked)
            self.bins_layout.addWidget(b, i // 2, i % 2)
            self.bins.append(b)
        self._update_bin_counts()

    def bin_for(self, label: str | None) -> LabelBin | None:
        for b in self.bins:
            if b.label == label:
                return b
        return None

    @Slot()
    def _update_bin_counts(self) -> None:
        counts = self.c.manual_counts() if self.c.session is not None else {}
        for b in self.bins:
            if b.label is not None:
                b.set_count(counts.get(b.label, 0))

    @Slot(list, object)
    def _on_rows_dropped(self, rows: list, label: object) -> None:
        self.c.set_manual_label(rows, label if isinstance(label, str) else None)

    @Slot()
    def _on_bin_clicked(self) -> None:
        b = self.sender()
        if isinstance(b, LabelBin) and len(self.c.selection):
            self.c.set_manual_label(self.c.selection, b.label)

    @Slot()
    def _on_accept(self) -> None:
        sel = self.c.selection
        self.c.accept_suggestions(sel if len(sel) else None)
