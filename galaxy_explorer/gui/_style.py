"""Colours shared by the views: one colour per label name, readable on dark and light."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

# Okabe-Ito + tab10-like hues, distinguishable and readable on dark and light backgrounds
PALETTE = [
    "#4e9de6",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#b07aa1",
    "#bcbd22",
    "#76b7b2",
    "#ff9da7",
    "#9c755f",
    "#7f5fd0",  # violet: the old cyan (#3dbbd6) looked like the selection ring
    "#8cd17d",
    "#d37295",
]
UNCERTAIN_COLOR = "#8c8c8c"
UNLABELLED_COLOR = "#a0a0a0"
HIGHLIGHT_COLOR = "#ffd400"
SELECTION_COLOR = "#00e5ff"
CURRENT_COLOR = "#ff2bd6"


#: Keys that label the selection: classes 1-10 get 1-9 and 0 (the number row).
CLASS_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")
#: Clearing a manual label: Delete always; 0 as well while there are fewer than 10 classes.
CLEAR_KEY = "Del"


def class_key(index: int) -> str:
    """The key that labels the selection as the ``index``-th class ('' past the 10th)."""
    return CLASS_KEYS[index] if 0 <= index < len(CLASS_KEYS) else ""


def clear_keys(n_classes: int) -> list[str]:
    """Keys that clear the manual label with ``n_classes`` classes defined."""
    return [CLEAR_KEY, "0"] if n_classes < len(CLASS_KEYS) else [CLEAR_KEY]


def label_color(index: int) -> QColor:
    """Colour of the ``index``-th label (cycles)."""
    if index < 0:
        return QColor(UNCERTAIN_COLOR)
    return QColor(PALETTE[index % len(PALETTE)])


def is_dark() -> bool:
    app = QApplication.instance()
    if app is None:
        return False
    pal = app.palette()  # type: ignore[attr-defined]
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def plot_colors() -> tuple[QColor, QColor]:
    """(background, foreground) for plots following the application palette."""
    app = QApplication.instance()
    if app is None:
        return QColor("white"), QColor("black")
    pal = app.palette()  # type: ignore[attr-defined]
    return pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.Text)
