"""The query box: free text ranked as you type, plus positive / negative example images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from galaxy_explorer.gui.controller import Controller
from galaxy_explorer.gui.gallery import ROWS_MIME, rows_from_mime

log = logging.getLogger(__name__)

__all__ = ["QueryBox"]


class _Chip(QToolButton):
    def __init__(self, text: str, positive: bool, parent: QWidget) -> None:
        super().__init__(parent)
        self.setText(("+ " if positive else "− ") + text + "  ×")
        self.setAutoRaise(False)
        color = "#59a14f" if positive else "#e15759"
        self.setStyleSheet(
            f"QToolButton {{ border: 1px solid {color}; border-radius: 8px;"
            f" padding: 1px 6px; color: {color}; }}"
        )
        self.setToolTip(("Positive" if positive else "Negative") + " example — click to remove")


class QueryBox(QWidget):
    """Debounced text query with example chips; accepts dropped thumbnails or image files.

    Dropping gallery thumbnails adds them as positive examples (hold Alt or Shift for
    negative); dropping image files embeds them and uses them as examples.
    """

    def __init__(
        self, controller: Controller, parent: QWidget | None = None, debounce_ms: int = 300
    ) -> None:
        super().__init__(parent)
        self.c = controller
        self.setAcceptDrops(True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(4)
        self.edit = QLineEdit()
        self.edit.setObjectName("QueryEdit")
        self.edit.setPlaceholderText(
            "Search: describe a galaxy, e.g. “spiral galaxy with "
            "prominent arms”  — or drop an image here"
        )
        self.edit.setClearButtonEnabled(True)
        self.edit.setToolTip(
            "Ranks the whole catalogue as you type.\nDrop thumbnails or image "
            "files here to search by example (Alt/Shift: negative example)."
        )
        self.edit.setMinimumWidth(200)
        lay.addWidget(self.edit, 3)
        self.chips = QHBoxLayout()
        self.chips.setSpacing(3)
        lay.addLayout(self.chips)
        self.clear_button = QToolButton(text="Clear")
        self.clear_button.setToolTip("Clear text and example images (Esc in the search box)")
        self.clear_button.clicked.connect(self.clear)
        lay.addWidget(self.clear_button)
        self.state = QLabel("")
        self.state.setMinimumWidth(70)
        lay.addWidget(self.state)

        self.edit.installEventFilter(self)
        self._timer = QTimer(self, singleShot=True, interval=debounce_ms)
        self._timer.timeout.connect(self._fire)
        self.edit.textEdited.connect(self._on_text)
        self.edit.returnPressed.connect(self._fire)
        c = controller
        c.scores_changed.connect(self._on_scores)

    @Slot(str)
    def _on_text(self, text: str) -> None:
        self.state.setText("typing…")
        self._timer.start()

    @Slot()
    def _fire(self) -> None:
        self._timer.stop()
        if self.edit.text() != self.c.query.text:
            self.state.setText("ranking…")
            self.c.set_query_text(self.edit.text())

    def set_text(self, text: str, immediate: bool = True) -> None:
        self.edit.setText(text)
        if immediate:
            self._fire()
        else:
            self._timer.start()

    @Slot()
    def clear(self) -> None:
        self.edit.clear()
        self._timer.stop()
        self.c.clear_query()

    def eventFilter(self, obj: Any, ev: Any) -> bool:  # noqa: N802 - Qt API
        """Esc in the search box clears the query (not the window's "Select None")."""
        if (
            obj is self.edit
            and ev.type() == QEvent.Type.ShortcutOverride
            and ev.key() == Qt.Key.Key_Escape
            and (self.edit.text() or self.c.query.active)
        ):
            ev.accept()
        return super().eventFilter(obj, ev)

    def keyPressEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        if ev.key() == Qt.Key.Key_Escape:
            self.clear()
            return
        super().keyPressEvent(ev)

    @Slot()
    def _on_scores(self) -> None:
        q = self.c.query
        if self.edit.text() != q.text and not self.edit.hasFocus():
            self.edit.setText(q.text)
        while self.chips.count():
            w = self.chips.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for positive, lst in ((True, q.positive), (False, q.negative)):
            for i, (name, _) in enumerate(lst):
                chip = _Chip(name, positive, self)
                chip.clicked.connect(self._make_remover(i, positive))
                self.chips.addWidget(chip)
        if self.c.scores is None:
            self.state.setText("" if not q.active else "waiting for model…")
        else:
            self.state.setText("ranked")

    def _make_remover(self, index: int, positive: bool) -> Any:
        c = self.c

        def remove() -> None:  # a GUI-thread click handler, not a worker signal
            c.remove_example(index, positive)

        return remove

    # --------------------------------------------------------------- drops
    def dragEnterEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        md = ev.mimeData()
        if md.hasFormat(ROWS_MIME) or md.hasUrls():
            ev.acceptProposedAction()

    def dragMoveEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        self.dragEnterEvent(ev)

    def dropEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        md = ev.mimeData()
        negative = bool(
            ev.modifiers() & (Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ShiftModifier)
        )
        self.drop_mime(md, positive=not negative)
        ev.acceptProposedAction()

    def drop_mime(self, md: Any, positive: bool = True) -> None:
        """Use the rows / files in a drag as query examples."""
        rows = rows_from_mime(md)
        if rows:
            self.c.add_examples(rows, positive)
            return
        for url in md.urls():
            if url.isLocalFile():
                self.c.add_example_file(Path(url.toLocalFile()), positive)
