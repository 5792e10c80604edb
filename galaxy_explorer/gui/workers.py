"""The GUI's one worker mechanism: :class:`Runner` runs functions and generators off-thread.

Every piece of background work in the app (the embedding job, text queries, zero-shot
classes, projection, few-shot, export, detail renders, thumbnails, model downloads) is a
:class:`Task` started with :meth:`Runner.start`. A task is a plain function or a generator
(a yield is a progress report and a cancellation point, as in ``core.jobs``); it runs on the
runner's ``QThreadPool`` at a lowered priority, and its results come back to the GUI thread
through one queued signal to the runner's ``@Slot``, which then calls the handlers given to
:meth:`Runner.start` (bound methods of GUI-thread objects). So handlers always run on the GUI
thread, never on a worker, and never for a stale task: each *kind* of task has a generation
counter, and only the newest task of a kind delivers (older ones are skipped if still queued).
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

__all__ = ["Runner", "Task", "lower_thread_priority"]

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


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


@dataclass(eq=False)
class Task:
    """One piece of background work and what to do with its results (on the GUI thread).

    Attributes
    ----------
    kind : str
        Tasks of one kind supersede each other (generation counter).
    generation : int
        This task's number within its kind.
    cancel_event : threading.Event
        Set by :meth:`cancel`; generators are stopped at their next yield, and the
        function may pass it on (``fn(cancel_event)``) to stop sooner.
    """

    kind: str
    generation: int
    fn: Callable[..., Any]
    on_result: Callable[[Any], None] | None = None
    on_yield: Callable[[Any], None] | None = None
    on_error: Callable[[str, str], None] | None = None
    on_done: Callable[[bool], None] | None = None
    quiet_errors: tuple[type[BaseException], ...] = ()
    cancel_event: threading.Event = field(default_factory=threading.Event)
    finished_event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the task to stop at its next cancellation point; its results are dropped."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def is_finished(self) -> bool:
        """Whether the worker thread is done with this task (or it never started)."""
        return self.finished_event.is_set()


class _Job(QRunnable):
    def __init__(self, runner: Runner, task: Task, skip_stale: bool) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._runner = runner
        self._task = task
        self._skip_stale = skip_stale
        self._emit = runner._deliver_signal.emit  # bound now: safe from the worker

    def run(self) -> None:
        task = self._task
        try:
            if task.cancelled or (self._skip_stale and not self._runner.is_current(task)):
                self._send(task, "done", True)
                return
            lower_thread_priority()
            cancelled = False
            try:
                fn = task.fn
                takes_cancel = _takes_argument(fn)
                out = fn(task.cancel_event) if takes_cancel else fn()
                if inspect.isgenerator(out):
                    for value in out:
                        if task.cancelled:
                            out.close()
                            break
                        self._send(task, "yield", value)
                else:
                    self._send(task, "result", out)
                cancelled = task.cancelled
            except Exception as exc:  # report, never crash the thread
                details = traceback.format_exc()
                if isinstance(exc, task.quiet_errors):
                    log.info("%s: %s", task.kind, _message(exc))
                else:
                    log.error("background %s failed: %s\n%s", task.kind, exc, details)
                self._send(task, "error", (_message(exc), details))
            self._send(task, "done", cancelled)
        finally:
            task.finished_event.set()

    def _send(self, task: Task, what: str, value: Any) -> None:
        try:
            self._emit(task, what, value)
        except RuntimeError:  # the runner is gone (shutdown)
            pass


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        for p in sig.parameters.values()
    )


class Runner(QObject):
    """Run tasks on a thread pool; deliver their results to handlers on the GUI thread.

    Parameters
    ----------
    max_threads : int
        Tasks that run at once (more are queued, newest kinds first-come first-served).
    name : str
        For log messages.

    Create it on the GUI thread. Handlers given to :meth:`start` are called on the thread
    the runner lives on, only while the task is the newest of its kind and not cancelled
    (``on_done`` is called once at the end, cancelled or not, unless the task is stale or
    the runner was shut down).
    """

    _deliver_signal = Signal(object, str, object)

    def __init__(self, max_threads: int = 1, name: str = "", parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, max_threads))
        self._gen: dict[str, int] = {}
        self._tasks: list[Task] = []
        self._closed = False
        self._deliver_signal.connect(self._deliver)

    def start(
        self,
        kind: str,
        fn: Callable[..., Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_yield: Callable[[Any], None] | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_done: Callable[[bool], None] | None = None,
        skip_stale: bool = True,
        supersede: bool = True,
        quiet_errors: tuple[type[BaseException], ...] = (),
    ) -> Task:
        """Queue ``fn`` (``fn()`` or ``fn(cancel_event)``; a function or a generator).

        Parameters
        ----------
        kind : str
            With ``supersede``, a new task makes older ones of this kind stale: their
            results are dropped, and with ``skip_stale`` they are skipped if not started.
        on_result, on_yield, on_error, on_done : callable, optional
            Called on the GUI thread with the return value, each yielded value,
            ``(message, details)`` of an exception, and ``cancelled`` at the end.
        quiet_errors : tuple of exception types
            Expected failures (an unreadable file): logged as one INFO line, no traceback.
        """
        gen = self._gen.get(kind, 0) + (1 if supersede else 0)
        self._gen[kind] = gen
        if supersede:  # older ones can no longer deliver: let them stop early
            for t in self._tasks:
                if t.kind == kind:
                    t.cancel()
        task = Task(
            kind,
            gen,
            fn,
            on_result=on_result,
            on_yield=on_yield,
            on_error=on_error,
            on_done=on_done,
            quiet_errors=quiet_errors,
        )
        if self._closed:
            task.finished_event.set()
            return task
        self._tasks = [t for t in self._tasks if not t.is_finished()] + [task]
        self._pool.start(_Job(self, task, skip_stale and supersede))
        return task

    def bump(self, kind: str) -> None:
        """Make every task of ``kind`` stale without starting anything."""
        self._gen[kind] = self._gen.get(kind, 0) + 1

    def is_current(self, task: Task) -> bool:
        """Whether ``task`` is still the newest of its kind."""
        return self._gen.get(task.kind, 0) == task.generation

    def cancel(self, kind: str | None = None) -> None:
        """Cancel the running and queued tasks of ``kind`` (all kinds if None)."""
        for t in self._tasks:
            if kind is None or t.kind == kind:
                t.cancel()
        if kind is not None:
            self.bump(kind)

    def pending(self) -> list[Task]:
        """Tasks not finished yet."""
        self._tasks = [t for t in self._tasks if not t.is_finished()]
        return list(self._tasks)

    def active(self) -> int:
        return self._pool.activeThreadCount()

    def wait(self, msecs: int = -1) -> bool:
        """Wait for running tasks; ``True`` when all are done."""
        return self._pool.waitForDone(msecs)

    def shutdown(self, msecs: int = 30000) -> bool:
        """Cancel everything, drop queued tasks and wait for the running ones."""
        self._closed = True
        self.cancel()
        self._pool.clear()
        ok = self._pool.waitForDone(msecs)
        if ok:  # those cleared from the queue never ran
            for t in self._tasks:
                t.finished_event.set()
        return ok

    @Slot(object, str, object)
    def _deliver(self, task: Task, what: str, value: Any) -> None:
        if self._closed or not self.is_current(task):
            return  # stale: a newer task of this kind was started
        if what == "done":
            if task.on_done is not None:
                task.on_done(bool(value) or task.cancelled)
            return
        if task.cancelled:
            return
        if what == "yield" and task.on_yield is not None:
            task.on_yield(value)
        elif what == "result" and task.on_result is not None:
            task.on_result(value)
        elif what == "error" and task.on_error is not None:
            task.on_error(*value)
