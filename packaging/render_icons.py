"""Render resources/desktop/galaxy-explorer.svg into the PNG, ICO and ICNS icons.

Run after editing the SVG (the results are committed):
``QT_QPA_PLATFORM=offscreen python packaging/render_icons.py``. Uses Qt's SVG renderer
(PySide6) for the PNGs and Pillow for the Windows ``.ico`` and macOS ``.icns``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DESKTOP = Path(__file__).resolve().parents[1] / "resources" / "desktop"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(DESKTOP / "galaxy-explorer.svg"))
    if not renderer.isValid():
        raise SystemExit("galaxy-explorer.svg: Qt cannot render it")
    pngs = {}
    for size in SIZES:
        img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(painter)
        painter.end()
        out = DESKTOP / f"galaxy-explorer-{size}.png"
        if not img.save(str(out)):
            raise SystemExit(f"{out}: cannot write")
        pngs[size] = out
    big = Image.open(pngs[512])
    ico_sizes = [(s, s) for s in (16, 24, 32, 48, 64, 128, 256)]
    big.save(DESKTOP / "galaxy-explorer.ico", sizes=ico_sizes)
    big.save(DESKTOP / "galaxy-explorer.icns")
    print(f"wrote {len(pngs)} PNGs, galaxy-explorer.ico and galaxy-explorer.icns in {DESKTOP}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
