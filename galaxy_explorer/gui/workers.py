"""Background work for the GUI: a generator worker on a QThread and a small task runner.

Both emit plain Python objects through Qt signals. Connect them only to ``@Slot`` methods
of QObjects that live on the GUI thread (never to bare lambdas: PySide6 would run those on
the worker thread). Every result carries the generation it was started with so that the
receiver can drop stale results.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

log = logging.getLogger(__name__)

__all__ = ["GeneratorWorker", "TaskRunner", "lower_thread_priority"]

WORKER_NICE = 10


def lower_thread_priority(nice: int = WORKER_NICE) -> None:
    """Make the calling (worker) thread yield the CPU to the GUI thread.

    Linux applies ``nice`` per thread, and threads started from here inherit it (the
    core's decoding pool included). Elsewhere this is a no-op.
    """
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:  # not permitted / not supported
        pass


class GeneratorWorker(QThread):
    """Run ``factory(cancel_event)`` (a generator) on its own thread.

    Each yielded value is emitted; cancellation is checked between yields (the core's jobs
    also check the event between batches).

    Signals
    -------
    yielded(int, object)
        ``(generation, value)`` for every value the generator yields.
    failed(int, str, str)
        ``(generation, message, details)`` when the generator raises.
    done(int, bool)
        ``(generation, cancelled)`` once the generator is exhausted, cancelled or failed.
    """

    yielded = Signal(int, object)
    failed = Signal(int, str, str)
    done = Signal(int, bool)

    def __init__(
        self,
        factory: Callable[[threading.Event], Iterator[Any]],
        generation: int,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._factory = factory
        self.generation = generation
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        """Ask the generator to stop at its next cancellation point."""
        self.cancel_event.set()

    def run(self) -> None:  # noqa: D102 - QThread API
        gen = self.generation
        lower_thread_priority()
        try:
            it = self._factory(self.cancel_event)
            for value in it:
                if self.cancel_event.is_set():
                    close = getattr(it, "close", None)
                    if close is not None:
                        close()
                    break
                self.yielded.emit(gen, value)
        except Exception as exc:  # report, never crash the thread
            details = traceback.format_exc()
            log.error("background job failed: %s\n%s", exc, details)
            self.failed.emit(gen, _message(exc), details)
        self.done.emit(gen, self.cancel_event.is_set())


def _is_data_error(exc: BaseException) -> bool:
    """True for errors that describe the user's file, not a bug (logged as one line)."""
    from galaxy_explorer.core.imaging import ImageLoadError

    return isinstance(exc, ImageLoadError)


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


class _TaskSignals(QObject):
    finished = Signal(str, int, object)
    failed = Signal(str, int, str, str)


class _Task(QRunnable):
    def __init__(
        self,
        signals: _TaskSignals,
        kind: str,
        generation: int,
        fn: Callable[[], Any],
        current: Callable[[str, int], bool] | None = None,
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._current = current
        self._signals = signals
        self._kind = kind
        self._gen = generation
        self._fn = fn

    def run(self) -> None:
        if self._current is not None and not self._current(self._kind, self._gen):
            return  # superseded while queued: skip the work
        lower_thread_priority()
        try:
            result = self._fn()
        except Exception as exc:
            details = traceback.format_exc()
            if _is_data_error(exc):  # a damaged / unreadable file: one line, no traceback
                log.warning("%s: %s", self._kind, _message(exc))
            else:
                log.error("task %s failed: %s\n%s", self._kind, exc, details)
            try:
                self._signals.failed.emit(self._kind, self._gen, _message(exc), details)
            except RuntimeError:  # receiver gone during shutdown
                pass
            return
        try:
            self._signals.finished.emit(self._kind, self._gen, result)
        except RuntimeError:
            pass


class TaskRunner(QObject):
    """Run short functions on a thread pool, one generation counter per *kind*.

    ``submit(kind, fn)`` returns the new generation for that kind; a result whose generation
    is no longer the latest for its kind should be dropped by the receiver
    (:meth:`is_current`).

    Signals
    -------
    finished(str, int, object)
        ``(kind, generation, result)``.
    failed(str, int, str, str)
        ``(kind, generation, message, details)``.
    """

    def __init__(self, max_threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._signals = _TaskSignals(self)
        self.finished = self._signals.finished
        self.failed = self._signals.failed
        self._gen: dict[str, int] = {}
        self._closed = False

    def submit(self, kind: str, fn: Callable[[], Any], *, skip_stale: bool = True) -> int:
        """Queue ``fn`` and return its generation (stale older ones of the same kind).

        With ``skip_stale`` a queued task that has been superseded before it starts is skipped.
        """
        gen = self._gen.get(kind, 0) + 1
        self._gen[kind] = gen
        if not self._closed:
            self._pool.start(
                _Task(self._signals, kind, gen, fn, self.is_current if skip_stale else None)
            )
        return gen

    def bump(self, kind: str) -> None:
        """Invalidate pending results of ``kind`` without starting anything."""
        self._gen[kind] = self._gen.get(kind, 0) + 1

    def current(self, kind: str) -> int:
        """The latest generation handed out for ``kind``."""
        return self._gen.get(kind, 0)

    def is_current(self, kind: str, generation: int) -> bool:
        return self._gen.get(kind, 0) == generation

    def active(self) -> int:
        return self._pool.activeThreadCount()

    def clear(self) -> None:
        """Drop queued (not yet started) tasks."""
        self._pool.clear()

    def wait(self, msecs: int = -1) -> bool:
        """Wait for running tasks; ``True`` when all are done."""
        return self._pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 30000) -> bool:
        self._closed = True
        self._pool.clear()
        return self._pool.waitForDone(msecs)
