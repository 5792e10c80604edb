"""Atomic file writes: the one way every core module saves a file.

Write to a temporary file in the destination folder, flush, fsync, ``os.replace`` over the
target, then fsync the folder so the rename itself is durable. A process killed at any
point leaves either the old file or the new one, never a mix; on an error the temporary
file is removed and the old file is untouched.

A process killed between ``mkstemp`` and ``os.replace`` (``kill -9``, power cut) leaves its
temporary file behind. Temporary files are named ``.<target>.<host>-<pid>.<random>.tmp`` so
that :func:`remove_stale_temps` can later tell a dead writer's leftovers from a live write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import stat as _stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

__all__ = ["atomic_open", "atomic_write_bytes", "remove_stale_temps"]

#: Temporary files of a dead or foreign writer older than this (seconds) are removed.
STALE_AGE_S = 60.0
#: A temporary file written from another host is removed only when older than this.
FOREIGN_STALE_AGE_S = 3600.0

_UMASK_LOCK = threading.Lock()


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"


def _temp_prefix(target_name: str) -> str:
    return f".{target_name}.{_host_tag()}-{os.getpid()}."


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends cleanly."""
    if "w" not in mode:
        raise ValueError("atomic_open is for writing ('w' modes)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        _set_normal_mode(fd, path)
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _current_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:  # Linux >= 4.7: read it, so no other thread ever sees a changed umask
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _set_normal_mode(fd: int, target: Path) -> None:
    """Give the temporary file the mode a plain ``open(target, "w")`` would leave.

    ``mkstemp`` creates files ``0600``; the replaced file keeps its own mode, a new one gets
    ``0666 & ~umask``.
    """
    if os.name != "posix":
        return
    try:
        mode = _stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_current_umask()
    try:
        os.fchmod(fd, mode)
    except OSError:  # e.g. a file system without modes: keep mkstemp's
        log.debug("cannot set the mode of a temporary file for %s", target, exc_info=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def _fsync_dir(folder: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.[^.]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_temps(
    folder: str | os.PathLike[str],
    targets: Iterable[str] | None = None,
    max_age: float = STALE_AGE_S,
) -> list[Path]:
    """Delete temporary files that a killed :func:`atomic_open` left in ``folder``.

    A temporary file is stale when its writer (pid in its name, same host) is no longer
    running, or, when the writer cannot be checked (another host, or a name from an older
    version without a pid), when it is older than ``max_age`` seconds (an hour for another
    host). A live writer's temporary file is never touched. Only files named like this
    module's temporary files (``.<target>.….tmp``) are considered; the folder is not
    searched recursively. Errors (a vanished file, no permission, no folder) are ignored.

    Parameters
    ----------
    folder : path
        The folder to clean.
    targets : iterable of str, optional
        Only remove temporary files of these target file names (e.g. ``["labels.json"]``);
        all targets by default.
    max_age : float
        Age in seconds after which an unverifiable temporary file counts as stale.

    Returns
    -------
    list of Path
        The files removed.
    """
    wanted = set(targets) if targets is not None else None
    now = time.time()
    host = _host_tag()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        m = _TEMP_RE.match(name)
        if wanted is not None:
            if not any(name.startswith(f".{t}.") for t in wanted):
                continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if m is not None and m.group("host") == host:
            stale = not _pid_alive(int(m.group("pid")))
        elif m is not None:
            stale = age > max(max_age, FOREIGN_STALE_AGE_S)
        else:
            stale = age > max_age
        if not stale:
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    if removed:
        log.info("removed %d stale temporary file(s) in %s", len(removed), folder)
    return removed
