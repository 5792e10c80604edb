"""Detail view: the current cutout large, FITS stretch controls, header, labels, neighbours."""

from __future__ import annotations

import html
import logging
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QIcon, QPalette, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from galaxy_explorer.gui import _style
from galaxy_explorer.gui._thumbs import rgb_to_qimage
from galaxy_explorer.gui.controller import Controller

log = logging.getLogger(__name__)

__all__ = ["DetailView", "STRETCHES", "LIMITS"]

STRETCHES = ("linear", "log", "sqrt", "asinh", "histeq")
LIMITS = ("minmax", "percentile", "zscale")


class _ImageLabel(QLabel):
    """A label that keeps its pixmap scaled to the available space."""

    def __init__(self) -> None:
        super().__init__()
        self._pix: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pix: QPixmap | None) -> None:
        self._pix = pix
        self._rescale()

    def resizeEvent(self, ev: Any) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(ev)
        self._rescale()

    def _rescale(self) -> None:
        if self._pix is None or self._pix.isNull():
            self.setPixmap(QPixmap())
            return
        self.setPixmap(
            self._pix.scaled(
                self.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation
                if self._pix.width() < self.width() / 2
                else Qt.TransformationMode.SmoothTransformation,
            )
        )


class DetailView(QWidget):
    """The current row: image with stretch controls, facts, probabilities, similar images.

    Signals
    -------
    settings_changed()
        The display stretch changed (the window remembers it).
    """

    settings_changed = Signal()

    def __init__(self, controller: Controller, thumbs: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.c = controller
        self.thumbs = thumbs
        self._row = -1
        self._goto = -1
        self._planes = 0
        self._rendered: tuple[int, Any] | None = None
        self.last_result: dict | None = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        split = QSplitter(Qt.Orientation.Vertical)
        lay.addWidget(split)

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("<i>Nothing selected</i>")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long file name must not widen the panel (the docks would resize themselves)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        tl.addWidget(self.title)
        self.image = _ImageLabel()
        self.image.setToolTip(
            "The selected cutout at full resolution (display stretch below; "
            "it does not change the embeddings)"
        )
        tl.addWidget(self.image, 1)
        ctl = QHBoxLayout()
        self.stretch_combo = QComboBox()
        self.stretch_combo.addItems(STRETCHES)
        self.stretch_combo.setCurrentText("asinh")
        self.stretch_combo.setToolTip("FITS intensity stretch (DS9 semantics)")
        self.limits_combo = QComboBox()
        self.limits_combo.addItems(LIMITS)
        self.limits_combo.setCurrentText("percentile")
        self.limits_combo.setToolTip("How black and white points are chosen")
        self.percentile = QDoubleSpinBox(
            minimum=50.5, maximum=100.0, singleStep=0.5, decimals=1, value=99.5
        )
        self.percentile.setToolTip("Upper percentile for 'percentile' limits (lower = 100 - p)")
        self.bands_edit = QLineEdit()
        self.bands_edit.setPlaceholderText("auto")
        fm = self.bands_edit.fontMetrics()
        self.bands_edit.setMinimumWidth(fm.horizontalAdvance("00,00,00") + 16)
        self.bands_edit.setMaximumWidth(fm.horizontalAdvance("00,00,00") + 40)
        self.bands_edit.setToolTip("Cube planes for R,G,B, e.g. '2,1,0' (empty = automatic)")
        self.lupton_check = QCheckBox("Lupton colour")
        self.lupton_check.setChecked(True)
        self.lupton_check.setToolTip(
            "Multi-band FITS: colour-preserving Lupton asinh RGB (as "
            "used for the embeddings). Untick to stretch each band with "
            "the settings on the left."
        )
        for lbl, w in (("Stretch", self.stretch_combo), ("Limits", self.limits_combo)):
            ctl.addWidget(QLabel(lbl))
            ctl.addWidget(w)
        ctl.addStretch(1)
        tl.addLayout(ctl)
        # why the stretch controls are greyed out (colour FITS with Lupton colour on)
        self.stretch_hint = QLabel("Set by Lupton colour (untick to change)")
        self.stretch_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stretch_hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.stretch_hint.hide()
        tl.addWidget(self.stretch_hint)
        ctl2 = QHBoxLayout()
        ctl2.addWidget(QLabel("p"))
        ctl2.addWidget(self.percentile)
        ctl2.addSpacing(6)
        ctl2.addWidget(self.lupton_check)
        ctl2.addSpacing(6)
        ctl2.addStretch(1)
        tl.addLayout(ctl2)
        ctl2 = QHBoxLayout()
        ctl2.addWidget(QLabel("RGB"))
        ctl2.addWidget(self.bands_edit)
        self.planes_label = QLabel("")
        self.planes_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.planes_label.setMinimumWidth(
            self.planes_label.fontMetrics().horizontalAdvance("99 bands")
        )
        ctl2.addWidget(self.planes_label, 1)
        tl.addLayout(ctl2)
        split.addWidget(top)

        tabs = QTabWidget()
        self.tabs = tabs  # other panels add theirs (the catalogue row)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        info_box = QWidget()
        il = QVBoxLayout(info_box)
        il.addWidget(self.info)
        il.addWidget(QLabel("Most similar:"))
        self.similar = QListWidget()
        self.similar.setViewMode(QListWidget.ViewMode.IconMode)
        self.similar.setIconSize(QSize(64, 64))
        self.similar.setFlow(QListWidget.Flow.LeftToRight)
        self.similar.setWrapping(False)
        # a fixed grid cell per neighbour: icons that arrive later never overlap
        line = self.similar.fontMetrics().height()
        self.similar.setGridSize(QSize(64 + 10, 64 + line + 10))
        self.similar.setUniformItemSizes(True)
        self.similar.setMovement(QListWidget.Movement.Static)
        self.similar.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.similar.setFixedHeight(64 + line + 10 + 24)  # one row + a horizontal scroll bar
        self.similar.setToolTip("Nearest neighbours in embedding space — click to show")
        self.similar.itemClicked.connect(self._on_similar_clicked)
        il.addWidget(self.similar)
        il.addStretch(1)
        # scrolls rather than growing: the window's minimum height never depends on the
        # row shown (a long path, nine probabilities), and nothing resizes the panels
        info_scroll = QScrollArea()
        info_scroll.setWidgetResizable(True)
        info_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        info_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        info_scroll.setWidget(info_box)
        tabs.addTab(info_scroll, "Info")
        self.header = QPlainTextEdit()
        self.header.setReadOnly(True)
        self.header.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        f = self.header.font()
        f.setFamily("monospace")
        self.header.setFont(f)
        tabs.addTab(self.header, "FITS header")
        split.addWidget(tabs)
        split.setSizes([420, 300])

        self._render_timer = QTimer(self, singleShot=True, interval=120)
        self._render_timer.timeout.connect(self._request)
        self.stretch_combo.currentIndexChanged.connect(self._on_settings)
        self.limits_combo.currentIndexChanged.connect(self._on_settings)
        self.percentile.valueChanged.connect(self._on_settings)
        self.bands_edit.editingFinished.connect(self._on_settings)
        self.lupton_check.toggled.connect(self._on_settings)
        c = controller
        c.current_changed.connect(self._on_current)
        c.detail_ready.connect(self._on_ready)
        c.predictions_changed.connect(self._update_info)
        c.labels_changed.connect(self._update_info)
        c.suggestions_changed.connect(self._update_info)
        c.scores_changed.connect(self._update_info)  # "Query score" goes with Clear
        c.embeddings_changed.connect(self._on_embeddings)
        c.catalogue_opened.connect(self._on_catalogue)
        if thumbs is not None:
            thumbs.ready.connect(self._on_thumb_ready)

    # --------------------------------------------------------------- settings
    def render_settings(self) -> Any:
        from galaxy_explorer.core.imaging import RenderSettings

        bands = None
        txt = self.bands_edit.text().strip()
        if txt:
            try:
                parts = tuple(int(x) for x in txt.replace(" ", "").split(","))
                if len(parts) == 3:
                    bands = parts
            except ValueError:
                bands = None
        return RenderSettings(
            stretch=self.stretch_combo.currentText(),
            limits=self.limits_combo.currentText(),
            percentile=float(self.percentile.value()),
            bands=bands,
            lupton=self.lupton_check.isChecked(),
        )

    def settings_dict(self) -> dict[str, Any]:
        return dict(
            stretch=self.stretch_combo.currentText(),
            limits=self.limits_combo.currentText(),
            percentile=float(self.percentile.value()),
            lupton=int(self.lupton_check.isChecked()),
        )

    def apply_settings(self, d: dict[str, Any]) -> None:
        if d.get("stretch") in STRETCHES:
            self.stretch_combo.setCurrentText(d["stretch"])
        if d.get("limits") in LIMITS:
            self.limits_combo.setCurrentText(d["limits"])
        try:
            self.percentile.setValue(float(d.get("percentile", self.percentile.value())))
        except (TypeError, ValueError):
            pass
        if d.get("lupton") is not None:
            self.lupton_check.setChecked(str(d["lupton"]).lower() not in ("0", "false", ""))

    @Slot()
    def _on_settings(self) -> None:
        self._update_controls(self._planes)
        self.settings_changed.emit()
        self._render_timer.start()

    # --------------------------------------------------------------- controller
    @Slot()
    def _on_catalogue(self) -> None:
        self._row = -1
        self.image.set_pixmap(None)
        self.title.setText("<i>Nothing selected</i>")
        self.info.setText("Click a point on the map or a thumbnail.")
        self.header.setPlainText("")
        self.similar.clear()

    @Slot(int)
    def _on_current(self, row: int) -> None:
        self._row = row
        if row < 0:
            self._on_catalogue()
            return
        it = self.c.items[row]
        self.title.setText(f"<b>{html.escape(it.name)}</b>")
        self.title.setToolTip(str(it.path))
        self.header.setPlainText("")
        self.last_result = None
        self._update_info()
        self._fill_similar()
        self._request()

    @Slot()
    def _request(self) -> None:
        if self._row >= 0:
            try:
                settings = self.render_settings()
            except ValueError as exc:
                self.c.status.emit(f"Stretch: {exc}")
                return
            self._rendered = (self._row, settings)
            self.c.request_detail(self._row, settings)

    @Slot(int, object)
    def _on_ready(self, row: int, result: Any) -> None:
        if row < 0:
            if self._row >= 0:
                self.image.set_pixmap(None)
                self.image.setText(f"Cannot show this image:\n{result}")
            return
        if row != self._row:
            return
        self.last_result = result
        rgb = result["rgb"]
        self.image.setText("")
        self.image.set_pixmap(QPixmap.fromImage(rgb_to_qimage(rgb)))
        self._update_controls(int(result.get("planes", 0)))
        hdr = result.get("header") or {}
        if hdr:
            lines = [f"{k:<8} = {v!r}" for k, v in hdr.items()]
            self.header.setPlainText("\n".join(lines))
        else:
            self.header.setPlainText("(not a FITS file)")
        self._update_info()

    def _update_controls(self, planes: int) -> None:
        """Stretch controls apply to FITS; with Lupton colour only to single-band images."""
        fits = planes > 0
        per_band = fits and (planes < 2 or not self.lupton_check.isChecked())
        by_lupton = fits and planes >= 2 and self.lupton_check.isChecked()
        why = (
            "Greyed out: colour FITS are shown with Lupton RGB colour, which sets its own "
            "stretch. Untick 'Lupton colour' to stretch each band with these settings."
        )
        for w, tip in (
            (self.stretch_combo, "FITS intensity stretch (DS9 semantics)"),
            (self.limits_combo, "How black and white points are chosen"),
            (self.percentile, "Upper percentile for 'percentile' limits (lower = 100 - p)"),
        ):
            w.setToolTip(why if by_lupton else tip)
        self.stretch_hint.setVisible(by_lupton)
        for w in (self.stretch_combo, self.limits_combo):
            w.setEnabled(per_band)
        self.percentile.setEnabled(per_band and self.limits_combo.currentText() == "percentile")
        self._planes = planes
        self.lupton_check.setEnabled(planes >= 2)
        self.bands_edit.setEnabled(planes >= 2)
        self.planes_label.setText("" if not fits else f"{planes} band{'s' if planes != 1 else ''}")

    @Slot()
    def _on_embeddings(self) -> None:
        if self._row >= 0 and self.similar.count() == 0:
            self._fill_similar()

    @Slot()
    def _update_info(self) -> None:
        row = self._row
        c = self.c
        if row < 0 or row >= c.n:
            return
        it = c.items[row]
        # break opportunities after / _ - . : a long path wraps instead of widening the panel
        path = html.escape(str(it.path))
        for ch in "/_-.":
            path = path.replace(ch, ch + "\u200b")
        parts = [f"<span style='color:gray'>{path}</span>"]
        res = self.last_result
        if res is not None:
            ra, dec = res.get("ra"), res.get("dec")
            if ra is not None and dec is not None:
                parts.append(f"RA {ra:.5f}°, Dec {dec:+.5f}°")
            h, w = res["rgb"].shape[:2]
            parts.append(f"{w} × {h} px, {it.size / 1024:.1f} KiB")
        man = c.manual_label(row)
        parts.append(
            f"Manual label: <b>{html.escape(man)}</b>"
            if man
            else "Manual label: <i>none</i> (drag to a bin or press 1–9)"
        )
        sug = c.suggestion(row)
        if sug:
            parts.append(f"Suggested (few-shot): <i>{html.escape(sug[0])}</i> ({sug[1]:.2f})")
        pred = c.predicted_label(row)
        probs = c.probabilities(row)
        if probs:
            parts.append(f"Predicted: <b>{html.escape(pred or '?')}</b>")
            rows = []
            for _i, (name, p) in enumerate(sorted(probs.items(), key=lambda kv: -kv[1])):
                col = _style.label_color(c.label_names().index(name)).name()
                bar = int(round(p * 120))
                rows.append(
                    f"<tr><td>{html.escape(name)}</td><td>"
                    f"<span style='background:{col}'>{'&nbsp;' * max(1, bar // 6)}</span>"
                    f"</td><td align=right>{p:.3f}</td></tr>"
                )
            parts.append("<table cellspacing=2>" + "".join(rows) + "</table>")
        elif not c.have[row]:
            parts.append(f"<i>{html.escape(c.failed.get(row, 'not embedded yet'))}</i>")
        if c.scores is not None and np.isfinite(c.scores[row]):
            parts.append(f"Query score: {c.scores[row]:.3f}")
        self.info.setText("<br>".join(parts))

    def _fill_similar(self) -> None:
        self.similar.clear()
        for r, s in self.c.similar_to(self._row, 8):
            it = self.c.items[r]
            li = QListWidgetItem(f"{s:.2f}")
            li.setData(Qt.ItemDataRole.UserRole, r)
            li.setToolTip(f"{it.name} — similarity {s:.3f}")
            pix = self.thumbs.get(it.sha256, it.path) if self.thumbs is not None else None
            # a placeholder of the icon's size until the thumbnail arrives: the cell is
            # laid out at its final size, so later icons never overlap their neighbours
            li.setIcon(QIcon(pix) if pix is not None else self._placeholder_icon())
            self.similar.addItem(li)

    def _placeholder_icon(self) -> QIcon:
        size = self.similar.iconSize()
        pix = QPixmap(size)
        pix.fill(self.palette().color(QPalette.ColorRole.AlternateBase))
        return QIcon(pix)

    @Slot(str)
    def _on_thumb_ready(self, key: str) -> None:
        for i in range(self.similar.count()):
            li = self.similar.item(i)
            r = li.data(Qt.ItemDataRole.UserRole)
            if self.c.items[r].sha256 == key:
                pix = self.thumbs.peek(key)
                if pix is not None:
                    li.setIcon(QIcon(pix))

    @Slot(QListWidgetItem)
    def _on_similar_clicked(self, item: QListWidgetItem) -> None:
        # the list is rebuilt for the new row: not inside the item's own click signal
        self._goto = int(item.data(Qt.ItemDataRole.UserRole))
        QTimer.singleShot(0, self._go_to_similar)

    @Slot()
    def _go_to_similar(self) -> None:
        r = self._goto
        if 0 <= r < self.c.n:
            self.c.set_selection([r], source="detail")
            self.c.set_current(r)
