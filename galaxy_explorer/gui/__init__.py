"""The desktop app (the only package that imports PySide6 / pyqtgraph).

Importing it applies :func:`_guard_singleton_refcounts` (see there): PySide6 6.12 on
CPython 3.11 returns ``None`` / ``True`` / ``False`` from wrapped calls without taking a
reference, so every void Qt call or signal ``emit`` lowers their reference counts by one;
after some hundreds of repaints the interpreter aborts with "deallocating None". CPython
3.12+ makes these objects immortal, which is what the guard emulates.
"""

from __future__ import annotations

import sys


def _guard_singleton_refcounts() -> None:
    """Make None, True and False effectively immortal on CPython < 3.12.

    They are statically allocated and never freed, so a very large reference count is
    harmless; it only keeps a binding's missing ``Py_INCREF`` from ever reaching zero
    (measured: ~175 lost references to None per gallery + map repaint, about 140k present
    after start-up, i.e. a crash within minutes of scrolling without this guard).
    """
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return
    import ctypes

    for obj in (None, True, False):
        refcnt = ctypes.c_ssize_t.from_address(id(obj))
        if refcnt.value < (1 << 40):
            refcnt.value += 1 << 40


_guard_singleton_refcounts()
