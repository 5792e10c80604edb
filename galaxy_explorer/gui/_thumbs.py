"""Thumbnail cache: renders thumbnails off the GUI thread, newest requests first.

An in-memory LRU of QPixmaps in front of an on-disk PNG cache (``<cache>/thumbs``), so
reopening a catalogue shows thumbnails at once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from galaxy_explorer.gui.workers import Runner

log = logging.getLogger(__name__)

THUMB_SIZE = 128


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 → a QImage that owns its memory (safe to create off-thread)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _render_thumb(
    key: str, path: Path, render: Any, disk: Path | None, size: int
) -> tuple[str, QImage | None, str]:
    """(key, image, "") or (key, None, reason): runs on a worker thread."""
    try:
        img = None
        if disk is not None and disk.exists():
            img = QImage(str(disk))
            if img.isNull():
                img = None
        if img is None:
            from galaxy_explorer.core import imaging

            rgb = imaging.load_rgb(path, render) if render is not None else imaging.load_rgb(path)
            img = rgb_to_qimage(imaging.thumbnail(rgb, size))
            if disk is not None:
                try:
                    disk.parent.mkdir(parents=True, exist_ok=True)
                    tmp = disk.with_suffix(".tmp.png")
                    if img.save(str(tmp), "PNG"):
                        tmp.replace(disk)
                except OSError:
                    pass
        return key, img, ""
    except Exception as exc:  # unreadable image: remember the reason
        return key, None, str(exc) or type(exc).__name__


class ThumbnailCache(QObject):
    """Lazily rendered thumbnails keyed by content hash.

    Signals
    -------
    ready(str)
        The thumbnail for a key (sha256) is now available (or failed).
    """

    ready = Signal(str)

    # 1500 pixmaps of 128 px ≈ 100 MB; the PNG files on disk hold the rest
    def __init__(
        self,
        size: int = THUMB_SIZE,
        capacity: int = 1500,
        threads: int = 2,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._pix: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: dict[str, str] = {}
        self._pending: OrderedDict[str, tuple[Path, Any]] = OrderedDict()
        self._inflight: set[str] = set()
        self._threads = threads
        self._runner = Runner(threads, "thumbnails", self)
        self.disk_dir: Path | None = None
        self.render: Any = None
        self.render_key = ""
        self._closed = False

    def configure(self, disk_dir: Path | None, render: Any) -> None:
        """Set the on-disk folder and render settings (a new catalogue / render)."""
        self.disk_dir = disk_dir
        self.render = render
        try:
            key = render.key() if render is not None else "default"
        except Exception:
            key = "default"
        if key != self.render_key:
            self._pix.clear()
            self._failed.clear()
        self.render_key = key
        self._pending.clear()

    def get(self, key: str, path: Path) -> QPixmap | None:
        """The thumbnail if ready, else None (and it is queued for rendering)."""
        pix = self._pix.get(key)
        if pix is not None:
            self._pix.move_to_end(key)
            return pix
        if key in self._failed or key in self._inflight:
            return None
        self._pending[key] = (path, self.render)
        self._pending.move_to_end(key)
        self._pump()
        return None

    def peek(self, key: str) -> QPixmap | None:
        return self._pix.get(key)

    def error(self, key: str) -> str | None:
        return self._failed.get(key)

    def _disk_path(self, key: str) -> Path | None:
        if self.disk_dir is None:
            return None
        safe = "".join(c for c in self.render_key if c.isalnum())[:24] or "d"
        return self.disk_dir / key[:2] / f"{key}_{safe}_{self.size}.png"

    def _pump(self) -> None:
        while self._pending and len(self._inflight) < self._threads * 2 and not self._closed:
            key, (path, render) = self._pending.popitem(last=True)  # newest first
            self._inflight.add(key)
            self._runner.start(
                "thumbnail",
                partial(_render_thumb, key, path, render, self._disk_path(key), self.size),
                on_result=self._on_done,
                supersede=False,
            )

    def _on_done(self, result: tuple[str, QImage | None, str]) -> None:
        key, img, err = result
        self._inflight.discard(key)
        if self._closed:
            return
        if img is None:
            self._failed[key] = err
        else:
            self._pix[key] = QPixmap.fromImage(img)
            while len(self._pix) > self.capacity:
                self._pix.popitem(last=False)
        self.ready.emit(key)
        self._pump()

    def shutdown(self) -> None:
        self._closed = True
        self._pending.clear()
        self._runner.shutdown(30000)
