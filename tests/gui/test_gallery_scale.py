"""Gallery work on the GUI thread stays proportional to what is on screen, not to N."""

from __future__ import annotations

from conftest import wait_embedded
from PySide6.QtCore import QEvent, QObject


class _Paints(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.n += 1
        return False


def test_label_change_repaints_visible_cells_without_touching_every_row(
    qtbot, make_window, cutouts
):
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    g = win.gallery
    changed: list[tuple[int, int]] = []
    g.model.dataChanged.connect(lambda a, b, roles=(): changed.append((a.row(), b.row())))
    paints = _Paints()
    g.view.viewport().installEventFilter(paints)
    qtbot.wait(50)
    paints.n = 0
    g.model.refresh_visible()  # what a label or prediction change calls
    qtbot.waitUntil(lambda: paints.n > 0, timeout=5000)  # the visible cells are repainted
    # and no change notice spans rows: Qt's icon-mode list walks every row of such a range
    assert not [r for r in changed if r[1] - r[0] + 1 == g.model.rowCount() > 1]
