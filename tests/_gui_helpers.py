"""Helpers shared by the GUI tests and the GUI benchmarks (imports Qt; not a conftest).

- :class:`LatenessProbe`: the 10 ms event-loop lateness probe (how long the GUI froze);
- :func:`map_controller`: a real :class:`~galaxy_explorer.gui.controller.Controller` holding
  ``n`` stub items, coordinates and predictions, without a catalogue or a model, for the map
  tests and benchmarks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Slot


class LatenessProbe(QObject):
    """A 10 ms timer that records how late each tick arrives.

    ``max_late`` (seconds) is the longest event-loop freeze since :meth:`start`, ``ticks``
    the number of ticks.
    """

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.interval = interval_ms / 1000
        self.max_late = 0.0
        self.ticks = 0
        self._last = time.perf_counter()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    @Slot()
    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_late = max(self.max_late, now - self._last - self.interval)
        self._last = now
        self.ticks += 1


@dataclass(frozen=True)
class StubItem:
    """What the map and the gallery read of a catalogue item: a path and a content hash."""

    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name


def map_controller(
    predicted: Any,
    coords: Any = None,
    *,
    uncertain: Any = None,
    confidence: Any = None,
) -> Any:
    """A Controller with ``len(predicted)`` stub items (``/data/g{i}.fits``), all embedded.

    ``coords`` (N, 2) are left unset when None (a benchmark hands them to the map itself);
    ``uncertain`` defaults to none, ``confidence`` to 1, and nothing is suggested.
    """
    from galaxy_explorer.gui.controller import Controller

    n = len(predicted)
    c = Controller()
    c.items = [StubItem(Path(f"/data/g{i}.fits"), f"{i:064x}") for i in range(n)]
    c.have = np.ones(n, bool)
    if coords is not None:
        c.coords = np.asarray(coords, dtype=np.float32)
    c.predicted = np.asarray(predicted, dtype=np.int32)
    c.uncertain = np.zeros(n, bool) if uncertain is None else np.asarray(uncertain, bool)
    c.confidence = (
        np.ones(n, np.float32) if confidence is None else np.asarray(confidence, np.float32)
    )
    c.suggested = np.full(n, -1, np.int32)
    return c
