"""A user's catalogue table in the app: open, match, colour the map, filter the gallery.

:class:`CatalogueLink` holds the open catalogue (:mod:`galaxy_explorer.core.catalogue`) and
its match to the window's cutouts; everything proportional to the table or the cutouts
(reading, matching, filtering, colour classes, sky positions) runs on its worker, and the
GUI thread receives whole arrays. :class:`CataloguePanel` is its dock (summary, colour
column, filter field, rows without a cutout); :class:`CatalogueRowView` shows the current
cutout's catalogue row in the detail view; :func:`install_catalogue` wires all of it, and
the sky panel (:mod:`galaxy_explorer.gui.sky_panel`), into a main window.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from galaxy_explorer.core.catalogue import CatalogueError, FilterError
from galaxy_explorer.gui import _style
from galaxy_explorer.gui.workers import Runner

log = logging.getLogger(__name__)

#: A user's table or filter at fault: reported in the app, logged without a traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (CatalogueError, FilterError)

__all__ = [
    "CatalogueLink",
    "CataloguePanel",
    "CatalogueRowView",
    "ColourSource",
    "install_catalogue",
    "TABLE_FILTER",
]

TABLE_FILTER = (
    "Catalogue tables (*.fits *.fit *.fts *.fits.gz *.csv *.ecsv *.vot *.votable *.xml "
    "*.tsv *.parquet);;All files (*)"
)
#: colour classes of a numeric column (plus one for missing values)
NUMERIC_BINS = 16
#: most distinct values of a text column that get their own colour (the rest: "other")
MAX_CATEGORIES = 12
#: rows without a cutout listed in the panel (the count is always shown)
LIST_UNMATCHED = 1000


@dataclass
class ColourSource:
    """A map colouring from a catalogue column (see ``MapView.set_color_source``)."""

    title: str
    names: list[str]
    colors: list[QColor]
    category: np.ndarray
    legend: list[int] = field(default_factory=list)
    colorbar: tuple[float, float, Any] | None = None


def derive_image_roots(cat: Any, column: str | None = None) -> list[Path]:
    """The folder holding the files a catalogue's path column names (their common parent).

    Raises
    ------
    CatalogueError
        If the table has no path column, or none of its files exists.
    """
    from galaxy_explorer.core.catalogue import PATH_COLUMNS, CatalogueError, windows_seps

    col = cat.resolve_column(column) if column else cat.find_column(PATH_COLUMNS)
    if col is None:
        raise CatalogueError(
            f"{cat.name}: no path column to find the images by; open the images folder too "
            "(--images DIR, or File ▸ Open Folder…)"
        )
    base = cat.base_dir or Path.cwd()
    found = []
    for v in cat.text_values(col):
        if not v:
            continue
        p = Path(os.path.normpath(os.path.join(base, windows_seps(v))))
        if p.is_file():
            found.append(p.parent)
    if not found:
        raise CatalogueError(
            f"{cat.name}: none of the files in column {col!r} exists (relative to "
            f"{base}); open the images folder too (--images DIR)"
        )
    parents = sorted({str(p) for p in found})
    return [Path(os.path.commonpath(parents))]


class CatalogueLink(QObject):
    """The open catalogue and its match to the controller's rows.

    Signals
    -------
    changed()
        A catalogue was opened or closed, or matched anew (``match``, ``row_of_item``,
        ``sky`` and ``unmatched`` are up to date).
    filter_changed()
        ``filter_mask`` / ``filter_error`` / ``filter_count`` changed.
    colour_changed()
        ``colour`` (a :class:`ColourSource` or None) changed.
    message(str)
        A status-bar message.
    error(str)
        A user-facing error (one line).
    """

    changed = Signal()
    filter_changed = Signal()
    colour_changed = Signal()
    message = Signal(str)
    error = Signal(str)

    def __init__(self, controller: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from galaxy_explorer.core.catalogue import MatchOptions

        self.c = controller
        self.options = MatchOptions()
        self.cat: Any = None
        self.match: Any = None
        self.row_of_item = np.zeros(0, dtype=np.int64)
        self.unmatched: list[str] = []
        self.sky: dict[str, np.ndarray] | None = None
        self.filter_text = ""
        self.filter_mask: np.ndarray | None = None
        self.filter_error = ""
        self.filter_count = 0
        self.colour_column: str | None = None
        self.colour: ColourSource | None = None
        self.tasks = Runner(1, "catalogue", self)  # the app's one worker mechanism
        controller.catalogue_opened.connect(self._on_items)
        controller.export_extras = self.export_extras

    # ---------------------------------------------------------------- opening
    def open(
        self,
        source: Any,
        *,
        images: list[Path] | None = None,
        options: Any = None,
        name: str | None = None,
        derive_images: bool = True,
    ) -> None:
        """Open a catalogue (a path, or an astropy Table from SAMP) off the GUI thread.

        Without ``images`` and with no folder open yet, the folder its path column points
        into is opened, unless ``derive_images`` is false (tables that arrive by SAMP: an
        incoming message never makes the app open files the user did not choose).
        """
        from galaxy_explorer.core.catalogue import open_catalogue

        if options is not None:
            self.options = options
        need_roots = derive_images and not images and not self.c.roots
        column = self.options.column

        def run() -> Any:
            cat = open_catalogue(source, name=name)
            for col in cat.columns:  # column kinds once, here: the panel lists them
                cat.kind(col)
            roots = list(images or [])
            if need_roots:
                roots = derive_image_roots(cat, column)
            return cat, roots

        label = name or (Path(source).name if isinstance(source, (str, os.PathLike)) else "table")
        self.message.emit(f"Reading catalogue {label}…")
        self.tasks.start(
            "open",
            run,
            on_result=self._on_opened,
            on_error=self._on_failed,
            quiet_errors=_USER_ERRORS,  # a bad table: one line in the app, no traceback
        )

    def close_catalogue(self) -> None:
        self.tasks.bump("open")
        self.tasks.bump("match")
        self.cat = None
        self.match = None
        self.row_of_item = np.zeros(0, dtype=np.int64)
        self.unmatched = []
        self.sky = None
        self.set_filter("")
        self.set_colour(None)
        self.changed.emit()

    def shutdown(self) -> None:
        self.tasks.shutdown()

    @Slot()
    def _on_items(self) -> None:
        """The cutouts changed (opened, rescanned): match again."""
        self.row_of_item = np.full(self.c.n, -1, dtype=np.int64)
        self.match = None  # its rows were the old cutouts' (exports wait for the new one)
        if self.cat is not None:
            self.rematch()

    def rematch(self, options: Any = None) -> None:
        """Match the catalogue to the current cutouts again (off-thread)."""
        from galaxy_explorer.core.catalogue import match_catalogue

        if options is not None:
            self.options = options
        if self.cat is None or self.c.session is None or not self.c.n:
            return
        cat, items, session, opts = self.cat, list(self.c.items), self.c.session, self.options

        def run() -> Any:
            got: list[Any] = []

            def positions() -> Any:  # read only if the match needs them (RA/Dec)
                if not got:
                    got.append(session.sky_positions(items))
                return got[0]

            match = match_catalogue(cat, items, positions, opts)
            positions_read = got[0] if got else None
            from galaxy_explorer.core.catalogue import unmatched_lines

            lines = [*match.notes, *unmatched_lines(cat, match, LIST_UNMATCHED)]
            sky = _sky_arrays(cat, match, positions_read)
            return cat, len(items), match, lines, sky

        self.tasks.start(
            "match",
            run,
            on_result=self._on_matched,
            on_error=self._on_failed,
            quiet_errors=_USER_ERRORS,
        )

    # ---------------------------------------------------------------- filter / colour
    def set_filter(self, text: str) -> None:
        """Show in the gallery only rows whose catalogue row passes ``text`` ('' = all)."""
        from galaxy_explorer.core.catalogue import CatalogueError, FilterError, compile_filter

        text = text.strip()
        self.filter_text = text
        self.tasks.bump("filter")
        if not text or self.cat is None:
            self.filter_mask = None
            self.filter_error = "" if not text else "open a catalogue first"
            self.filter_changed.emit()
            return
        cat = self.cat
        try:
            expr = compile_filter(text)
            real = {n: cat.resolve_column(n) for n in expr.names}
        except (FilterError, CatalogueError) as exc:
            self.filter_error = str(exc)
            self.filter_changed.emit()
            return
        row_of_item = self.row_of_item

        def run() -> Any:
            cols = {n: cat.values(r) for n, r in real.items()}
            keep = expr.evaluate(cols, cat.n)
            mask = np.zeros(len(row_of_item), dtype=bool)
            has = row_of_item >= 0
            mask[has] = keep[row_of_item[has]]
            return text, mask, int(keep.sum())

        self.tasks.start(
            "filter",
            run,
            on_result=self._on_filtered,
            on_error=self._on_filter_failed,
            quiet_errors=_USER_ERRORS,
        )

    def set_colour(self, column: str | None) -> None:
        """Colour the map by a catalogue column (None: by labels again)."""
        self.colour_column = column
        self.tasks.bump("colour")
        if column is None or self.cat is None or not len(self.row_of_item):
            if self.colour is not None or column is None:
                self.colour = None
                self.colour_changed.emit()
            return
        cat, row_of_item = self.cat, self.row_of_item

        def run() -> Any:
            return column, _colour_classes(cat, column, row_of_item)

        self.tasks.start("colour", run, on_result=self._on_coloured, on_error=self._on_failed)

    # ---------------------------------------------------------------- export hook
    def export_extras(self, rows: Any) -> tuple[list[str], list[dict[str, Any]] | None]:
        """Catalogue columns for exported rows (called by the controller's export worker)."""
        cat, match = self.cat, self.match
        if cat is None or match is None or len(match.row_of_item) != self.c.n:
            return [], None
        from galaxy_explorer.core.catalogue import export_values

        names, values = export_values(cat, match, np.asarray(rows, dtype=np.int64))
        return names, values

    # ---------------------------------------------------------------- gallery sort
    def sort_columns(self) -> list[str]:
        """Columns the gallery can sort by (none until a catalogue is matched)."""
        if self.cat is None or self.match is None or len(self.row_of_item) != self.c.n:
            return []
        return list(self.cat.columns)

    def sort_key_fn(self, column: str, descending: bool = False) -> Any:
        """A function that builds ``column``'s sort key per cutout (the gallery calls it
        where it sorts: on its worker above 50k rows); None without a matched catalogue.

        Only references are taken here: the key (a rank of text, numbers, in the
        catalogue's cache after the first time) is built by the function.
        """
        cat, row_of_item = self.cat, self.row_of_item
        if cat is None or len(row_of_item) != self.c.n:
            return None

        def build() -> np.ndarray | None:
            from galaxy_explorer.core.sort_keys import item_sort_key

            try:
                return item_sort_key(cat, column, row_of_item, descending=descending)
            except Exception as exc:  # noqa: BLE001 - a damaged column: name order, one line
                log.warning("cannot sort by catalogue column %r: %s", column, exc)
                return None

        build.rows = cat.n  # type: ignore[attr-defined] # the gallery sorts a big one off-thread
        return build

    # ---------------------------------------------------------------- results
    def catalogue_row(self, row: int) -> int:
        """The catalogue row of controller row ``row`` (-1 if none)."""
        if 0 <= row < len(self.row_of_item):
            return int(self.row_of_item[row])
        return -1

    # each handler runs on the GUI thread, only for the newest task of its kind
    def _on_opened(self, result: tuple[Any, list[Path]]) -> None:
        cat, roots = result
        self.cat = cat
        self.match = None
        self.row_of_item = np.full(self.c.n, -1, dtype=np.int64)
        self.colour_column = None
        self.colour = None
        self.colour_changed.emit()
        self.changed.emit()
        self.message.emit(f"Catalogue {cat.name}: {cat.n} rows, matching…")
        if roots:
            self.c.open_paths(roots, add=bool(self.c.roots))  # matched once scanned
        else:
            self.rematch()

    def _on_matched(self, result: tuple[Any, int, Any, list[str], Any]) -> None:
        cat, n_items, match, lines, sky = result
        if cat is not self.cat or n_items != self.c.n:
            return  # a newer catalogue or scan: a newer match is coming
        self.match = match
        self.row_of_item = match.row_of_item
        self.unmatched = lines
        self.sky = sky
        self.changed.emit()
        self.message.emit(f"Catalogue {cat.name}: {match.summary()}")
        if self.filter_text:
            self.set_filter(self.filter_text)
        if self.colour_column:
            self.set_colour(self.colour_column)

    def _on_filtered(self, result: tuple[str, np.ndarray, int]) -> None:
        text, mask, count = result
        if text != self.filter_text or len(mask) != self.c.n:
            return
        self.filter_mask = mask
        self.filter_error = ""
        self.filter_count = count
        self.filter_changed.emit()

    def _on_coloured(self, result: tuple[str, dict[str, Any]]) -> None:
        column, spec = result
        if column != self.colour_column or len(spec["category"]) != self.c.n:
            return
        self.colour = _colour_source(column, spec)
        self.colour_changed.emit()

    def _on_filter_failed(self, message: str, details: str) -> None:
        self.filter_error = message
        self.filter_mask = None
        self.filter_changed.emit()

    def _on_failed(self, message: str, details: str) -> None:
        self.error.emit(message)


def _sky_arrays(cat: Any, match: Any, positions: Any) -> dict[str, np.ndarray] | None:
    """RA/Dec per catalogue row (the table's own, else its cutout's) and its item (-1)."""
    try:
        rd = cat.radec()
    except Exception:  # noqa: BLE001
        rd = None
    if rd is not None:
        ra, dec = rd[0].copy(), rd[1].copy()
    elif positions is not None:
        ra = np.full(cat.n, np.nan)
        dec = np.full(cat.n, np.nan)
        for r, i in enumerate(match.item_of_row.tolist()):
            if i >= 0 and positions[i][0] is not None:
                ra[r], dec[r] = positions[i]
    else:
        return None
    ok = np.isfinite(ra) & np.isfinite(dec)
    if not ok.any():
        return None
    rows = np.flatnonzero(ok)
    return {
        "ra": ra[rows],
        "dec": dec[rows],
        "row": rows,
        "item": match.item_of_row[rows].copy(),
    }


def _colour_classes(cat: Any, column: str, row_of_item: np.ndarray) -> dict[str, Any]:
    """Class per controller row for a column: numeric bins, or the most common values."""
    n = len(row_of_item)
    has = row_of_item >= 0
    kind = cat.kind(column)
    vals = cat.values(column)
    if kind == "number":
        v = np.full(n, np.nan)
        v[has] = vals[row_of_item[has]]
        fin = np.isfinite(v)
        if fin.any():
            lo, hi = np.percentile(v[fin], [1, 99])
            if not hi > lo:
                lo, hi = float(v[fin].min()), float(v[fin].max())
            if not hi > lo:
                hi = lo + 1.0
        else:
            lo, hi = 0.0, 1.0
        cat_idx = np.full(n, NUMERIC_BINS, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            b = np.floor((v[fin] - lo) / (hi - lo) * NUMERIC_BINS)
        cat_idx[fin] = np.clip(b, 0, NUMERIC_BINS - 1).astype(np.int64)
        return {"kind": "number", "category": cat_idx, "lo": float(lo), "hi": float(hi)}
    text = np.full(n, "", dtype=object)
    strs = vals.astype(str) if kind == "bool" else vals
    text[has] = strs[row_of_item[has]]
    present = text[has & (text != "")]
    uniq, counts = np.unique(present.astype(str), return_counts=True) if len(present) else ([], [])
    order = np.argsort(-np.asarray(counts), kind="stable")
    top = [str(uniq[i]) for i in order[:MAX_CATEGORIES]]
    index = {t: k for k, t in enumerate(top)}
    other, missing = len(top), len(top) + 1
    cat_idx = np.array(
        [index.get(t, other) if t != "" else missing for t in text.tolist()], dtype=np.int64
    )
    return {"kind": "text", "category": cat_idx, "values": top}


def _colour_source(column: str, spec: dict[str, Any]) -> ColourSource:
    import pyqtgraph as pg

    counts = np.bincount(spec["category"], minlength=NUMERIC_BINS + 2)
    if spec["kind"] == "number":
        cmap = pg.colormap.get("viridis")
        colors = list(cmap.map(np.linspace(0.0, 1.0, NUMERIC_BINS), mode="qcolor"))
        edges = np.linspace(spec["lo"], spec["hi"], NUMERIC_BINS + 1)
        names = [f"{edges[i]:.4g} – {edges[i + 1]:.4g}" for i in range(NUMERIC_BINS)]
        names.append("no value")
        colors.append(QColor(_style.UNLABELLED_COLOR))
        legend = [NUMERIC_BINS] if counts[NUMERIC_BINS] else []
        return ColourSource(
            column, names, colors, spec["category"], legend, (spec["lo"], spec["hi"], cmap)
        )
    top = spec["values"]
    names = [*top, "other", "no value"]
    colors = [_style.label_color(i) for i in range(len(top))]
    colors += [QColor(_style.UNCERTAIN_COLOR), QColor(_style.UNLABELLED_COLOR)]
    legend = [i for i in range(len(names)) if i < len(counts) and counts[i]]
    return ColourSource(column, names, colors, spec["category"], legend)


# ---------------------------------------------------------------------------- widgets
class CataloguePanel(QWidget):
    """The catalogue dock: what is open, how it matched, colour column, gallery filter."""

    def __init__(self, link: CatalogueLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.title = QLabel("<i>No catalogue</i>")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.title, 1)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open a catalogue table (FITS, CSV, ECSV, VOTable)")
        top.addWidget(self.open_button)
        lay.addLayout(top)
        self.summary = QLabel(
            "Open a table of your galaxies (File ▸ Open Catalogue…) to see "
            "its columns beside the cutouts."
        )
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        form = QFormLayout()
        self.colour_combo = QComboBox()
        self.colour_combo.setToolTip(
            "Colour the map by a catalogue column: a colour bar for numbers, "
            "one colour per value for text"
        )
        self.colour_combo.addItem("labels (no column)", None)
        form.addRow("Colour map by", self.colour_combo)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("e.g. z < 0.05 and mag_r < 17")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setToolTip(
            "Show in the gallery only galaxies whose catalogue row passes this filter.\n"
            "Columns, numbers, 'text', == != < <= > >= in, and / or / not, + - * /,\n"
            "abs() log10() sqrt(), parentheses; `odd names` in backquotes. Enter applies."
        )
        form.addRow("Filter gallery", self.filter_edit)
        lay.addLayout(form)
        self.filter_status = QLabel("")
        self.filter_status.setWordWrap(True)
        lay.addWidget(self.filter_status)
        self.unmatched_label = QLabel("")
        lay.addWidget(self.unmatched_label)
        self.unmatched_list = QListWidget()
        self.unmatched_list.setToolTip("Catalogue rows that have no cutout, and why")
        lay.addWidget(self.unmatched_list, 1)
        lay.addStretch(0)

        self.colour_combo.currentIndexChanged.connect(self._on_colour_combo)
        self.filter_edit.returnPressed.connect(self._on_filter)
        self.filter_edit.textChanged.connect(self._on_filter_text)
        link.changed.connect(self._on_changed)
        link.filter_changed.connect(self._on_filter_changed)

    def reset_colour(self) -> None:
        """Back to 'labels' in the combo (the map went back to label colours)."""
        self.colour_combo.blockSignals(True)
        self.colour_combo.setCurrentIndex(0)
        self.colour_combo.blockSignals(False)
        self.link.colour_column = None

    @Slot()
    def _on_changed(self) -> None:
        link = self.link
        cat = link.cat
        if cat is None:
            self.title.setText("<i>No catalogue</i>")
            self.summary.setText("")
            self.unmatched_label.setText("")
            self.unmatched_list.clear()
            return
        self.title.setText(f"<b>{html.escape(cat.name)}</b>")
        self.title.setToolTip(cat.source)
        self.summary.setText(
            link.match.summary() if link.match is not None else f"{cat.n} rows; matching…"
        )
        current = self.colour_combo.currentData()
        self.colour_combo.blockSignals(True)
        self.colour_combo.clear()
        self.colour_combo.addItem("labels (no column)", None)
        for col in cat.columns:
            self.colour_combo.addItem(f"{col}  ({cat.kind(col)})", col)
        i = self.colour_combo.findData(current)
        self.colour_combo.setCurrentIndex(max(i, 0))
        self.colour_combo.blockSignals(False)
        self.unmatched_list.clear()
        if link.match is not None:
            n = len(link.match.unmatched)
            self.unmatched_label.setText(
                f"Rows without a cutout: {n}" if n else "Every row has a cutout."
            )
            self.unmatched_list.addItems(link.unmatched)
            self.unmatched_list.setVisible(bool(n))

    @Slot(int)
    def _on_colour_combo(self, index: int) -> None:
        self.link.set_colour(self.colour_combo.itemData(index))

    @Slot()
    def _on_filter(self) -> None:
        self.link.set_filter(self.filter_edit.text())

    @Slot(str)
    def _on_filter_text(self, text: str) -> None:
        if not text.strip() and self.link.filter_text:
            self.link.set_filter("")  # the clear button

    @Slot()
    def _on_filter_changed(self) -> None:
        link = self.link
        if link.filter_error:
            self.filter_status.setText(
                f"<span style='color:#d04040'>{html.escape(link.filter_error)}</span>"
            )
        elif link.filter_mask is not None:
            shown = int(link.filter_mask.sum())
            self.filter_status.setText(
                f"{link.filter_count} catalogue rows pass; {shown} cutouts shown"
            )
        else:
            self.filter_status.setText("")


class CatalogueRowView(QTableWidget):
    """The current cutout's catalogue row: one line per column."""

    def __init__(self, controller: Any, link: CatalogueLink, parent: QWidget | None = None):
        super().__init__(0, 2, parent)
        self.c = controller
        self.link = link
        self.setHorizontalHeaderLabels(["column", "value"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        controller.current_changed.connect(self._refresh)
        link.changed.connect(self._refresh)

    def values(self) -> list[tuple[str, str]]:
        """(column, value) pairs shown for the current row."""
        return [(self.item(i, 0).text(), self.item(i, 1).text()) for i in range(self.rowCount())]

    @Slot()
    @Slot(int)
    def _refresh(self, *args: Any) -> None:
        link = self.link
        r = link.catalogue_row(self.c.current)
        cat = link.cat
        pairs: list[tuple[str, str]] = []
        if cat is not None and r >= 0:
            pairs.append(("(catalogue row)", str(r)))
            sep = link.match.separation_arcsec if link.match is not None else None
            if sep is not None and np.isfinite(sep[r]):
                pairs.append(("(match distance)", f'{sep[r]:.3g}"'))
            for col in cat.columns:
                v = cat.table[col][r]
                if np.ma.is_masked(v):
                    text = ""
                elif isinstance(v, (float, np.floating)):
                    text = "" if not np.isfinite(v) else f"{v:.7g}"
                else:
                    text = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                pairs.append((col, text))
        elif cat is not None and self.c.current >= 0:
            pairs.append(("", "no catalogue row for this cutout"))
        self.setRowCount(len(pairs))
        for i, (k, v) in enumerate(pairs):
            self.setItem(i, 0, QTableWidgetItem(k))
            self.setItem(i, 1, QTableWidgetItem(v))


def open_catalogue_dialog(window: Any, link: CatalogueLink) -> None:
    """Ask for a catalogue file and open it."""
    start = str(window.settings.value("last_catalogue_dir", str(Path.home())))
    path, _ = QFileDialog.getOpenFileName(window, "Open a catalogue table", start, TABLE_FILTER)
    if path:
        window.settings.setValue("last_catalogue_dir", str(Path(path).parent))
        link.open(Path(path))


def _back_to_labels(window: Any, panel: CataloguePanel) -> None:
    if window.map.color_source is not None:
        window.map.set_color_source(None)
        panel.reset_colour()


def install_catalogue(window: Any) -> CatalogueLink:
    """Add the catalogue and sky docks, the detail tab and the menu items to a main window.

    Returns
    -------
    CatalogueLink
        Also set as ``window.catalogue``.
    """
    from galaxy_explorer.gui.sky_panel import SkyPanel

    c = window.c
    link = CatalogueLink(c, parent=window)
    window.catalogue = link
    panel = CataloguePanel(link)
    window.catalogue_panel = panel
    window.catalogue_dock = window._dock(
        "Catalogue", panel, Qt.DockWidgetArea.LeftDockWidgetArea, "CatalogueDock"
    )
    sky = SkyPanel(c, link, getattr(window, "thumbs", None))
    window.sky_panel = sky
    window.sky_dock = window._dock("Sky", sky, Qt.DockWidgetArea.LeftDockWidgetArea, "SkyDock")
    # left column: Labels and Catalogue as tabs above, the sky below
    window.splitDockWidget(window.labels_dock, window.sky_dock, Qt.Orientation.Vertical)
    window.tabifyDockWidget(window.labels_dock, window.catalogue_dock)
    window.labels_dock.raise_()
    window.sky_dock.hide()  # shown when a catalogue with RA/Dec opens: until then the
    # labels panel keeps the whole left column (at 1280x800 it needs it)
    row_view = CatalogueRowView(c, link)
    window.catalogue_row_view = row_view
    window.detail.tabs.addTab(row_view, "Catalogue")

    panel.open_button.clicked.connect(lambda: open_catalogue_dialog(window, link))
    link.colour_changed.connect(lambda: window.map.set_color_source(link.colour))
    window.map.color_source_cleared.connect(panel.reset_colour)
    window.map.hovered.connect(sky.set_hover)
    sky.hovered.connect(window.map.mark_row)
    link.filter_changed.connect(lambda: window.gallery.model.set_mask(link.filter_mask))
    # the gallery sorts by a catalogue column once the catalogue is matched
    link.changed.connect(
        lambda: window.gallery.set_sort_columns(link.sort_columns(), link.sort_key_fn)
    )
    link.message.connect(window._on_status)
    link.error.connect(lambda msg: window._on_error("Catalogue", msg))

    def on_changed() -> None:
        if link.cat is not None:
            window.catalogue_dock.show()
            window.catalogue_dock.raise_()
            if link.sky is not None and not window.sky_dock.isVisible():
                window.sky_dock.show()

    link.changed.connect(on_changed)

    # File ▸ Open Catalogue… after "Add Files or Folder…"; View ▸ the two docks
    action = QAction("Open &Catalogue…", window)
    action.setShortcut(QKeySequence("Ctrl+Shift+K"))
    action.setStatusTip(
        "Open a table of your galaxies (FITS, CSV, ECSV, VOTable) beside the cutouts"
    )
    action.triggered.connect(lambda: open_catalogue_dialog(window, link))
    window.open_catalogue_action = action
    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        text = menu_action.text().replace("&", "")
        if text == "File":
            acts = menu.actions()
            after = next((a for a in acts if a.text().startswith("&Add Files")), None)
            idx = acts.index(after) + 1 if after is not None else 0
            menu.insertAction(acts[idx] if idx < len(acts) else None, action)
        elif text == "View":
            for a in menu.actions():  # "Colour by … Label" also leaves a catalogue colouring
                if a.text().replace("&", "").startswith("Colour by"):
                    a.triggered.connect(lambda *_: _back_to_labels(window, panel))
            menu.addAction(window.catalogue_dock.toggleViewAction())
            menu.addAction(window.sky_dock.toggleViewAction())
    return link
