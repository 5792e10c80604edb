"""Manual labels for a catalogue: persisted atomically, keyed by content hash, undoable.

The labels file is JSON::

    {"format": "galaxy-explorer-labels", "version": 1,
     "labels": {"<sha256>": {"label": "spiral", "path": "/last/known/path.fits"}, ...}}

Every :meth:`LabelStore.set` (and undo / redo) rewrites the file atomically — temp file in
the same folder, flush, fsync, ``os.replace`` — so a crash at any moment leaves either the
previous or the new file, never a half-written one. A file that cannot be parsed is never
silently dropped: it is renamed to ``<name>.corrupt-<UTC timestamp>`` and
:class:`LabelsFileError` is raised; opening the store again then starts empty.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from galaxy_explorer.core._atomic import atomic_open

log = logging.getLogger(__name__)

__all__ = ["LabelStore", "LabelsFileError", "default_labels_path"]

_FORMAT = "galaxy-explorer-labels"
_VERSION = 1


class LabelsFileError(Exception):
    """The labels file could not be read; it was moved aside to ``backup``.

    Attributes
    ----------
    path : Path
        The labels file.
    backup : Path or None
        Where the unreadable file now is (None if it could not be moved).
    reason : str
        What was wrong with it.
    """

    def __init__(self, path: Path, reason: str, backup: Path | None) -> None:
        self.path = path
        self.reason = reason
        self.backup = backup
        where = f"moved aside to {backup}" if backup else "could not be moved aside"
        super().__init__(f"{path}: unreadable labels file ({reason}); {where}")


@dataclass(frozen=True)
class _Entry:
    label: str
    path: str | None


# one undo step: sha -> (entry before, entry after); None = unlabelled
_Step = dict[str, tuple["_Entry | None", "_Entry | None"]]


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


class LabelStore:
    """Manual labels keyed by content hash (sha256), with the last-known path of each item.

    Parameters
    ----------
    path : Path
        The JSON labels file; created on the first :meth:`set`.
    max_undo : int
        How many undo steps to keep.

    Raises
    ------
    LabelsFileError
        If the file exists but is not a valid labels file (it is moved aside first).

    Notes
    -----
    Each :meth:`set` call is one undo step, however many items it touches. A call that
    changes nothing records no step. If writing the file fails, the in-memory state is
    rolled back and the error propagates, so memory and disk never disagree.
    Before each change the file is re-read if another process (another window, a script)
    changed it since, so concurrent writers do not overwrite each other's labels.
    Thread-safe.
    """

    def __init__(self, path: str | os.PathLike[str], max_undo: int = 1000) -> None:
        self.path = Path(path)
        self._entries: dict[str, _Entry] = {}
        self._undo: deque[_Step] = deque(maxlen=max_undo)
        self._redo: list[_Step] = []
        self._lock = threading.RLock()
        self._disk_sig: tuple[int, int, int] | None = None
        self._load()

    # ------------------------------------------------------------------ reading
    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> None:
        sig = self._signature()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            self._entries = self._parse(raw)
            self._disk_sig = sig
        except ValueError as exc:
            backup = self._move_aside()
            log.error("labels file %s unreadable (%s); moved to %s", self.path, exc, backup)
            raise LabelsFileError(self.path, str(exc), backup) from exc

    @staticmethod
    def _parse(raw: bytes) -> dict[str, _Entry]:
        if not raw.strip():
            raise ValueError("empty file")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError("not a galaxy-explorer labels file")
        version = doc.get("version")
        if not isinstance(version, int) or version > _VERSION:
            raise ValueError(f"unsupported labels file version {version!r}")
        labels = doc.get("labels")
        if not isinstance(labels, dict):
            raise ValueError("'labels' is not an object")
        out: dict[str, _Entry] = {}
        for sha, entry in labels.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
                raise ValueError(f"bad entry for {sha!r}")
            p = entry.get("path")
            out[str(sha)] = _Entry(entry["label"], p if isinstance(p, str) else None)
        return out

    def _move_aside(self) -> Path | None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for i in range(1000):
            suffix = f".corrupt-{stamp}" + (f"-{i}" if i else "")
            backup = self.path.with_name(self.path.name + suffix)
            if backup.exists():
                continue
            try:
                os.replace(self.path, backup)
                return backup
            except OSError as exc:
                log.error("could not move %s aside: %s", self.path, exc)
                return None
        return None

    def _refresh(self) -> None:
        """Adopt changes another process wrote to the file since we last read or wrote it."""
        sig = self._signature()
        if sig is None or sig == self._disk_sig:
            return
        try:
            self._load()
            log.info("labels file %s changed on disk; reloaded", self.path)
        except LabelsFileError as exc:
            # the unreadable file is kept aside; our complete state is written next
            log.warning("%s", exc)

    def reload(self) -> None:
        """Re-read the file if another process changed it (undo history is kept)."""
        with self._lock:
            self._refresh()

    # ------------------------------------------------------------------ writing
    def _save(self) -> None:
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "labels": {
                sha: {"label": e.label, "path": e.path} for sha, e in sorted(self._entries.items())
            },
        }
        _atomic_write_text(self.path, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        self._disk_sig = self._signature()

    def _apply(self, step: _Step, after: bool) -> None:
        """Apply one step forwards (after=True) or backwards, persist; roll back on failure."""
        saved = dict(self._entries)
        for sha, (before_e, after_e) in step.items():
            e = after_e if after else before_e
            if e is None:
                self._entries.pop(sha, None)
            else:
                self._entries[sha] = e
        try:
            self._save()
        except BaseException:
            self._entries = saved
            raise

    # ------------------------------------------------------------------ public API
    def get(self, sha: str) -> str | None:
        """Manual label of one item, or None."""
        with self._lock:
            e = self._entries.get(sha)
            return e.label if e else None

    def path_of(self, sha: str) -> Path | None:
        """Last-known path of a labelled item, or None."""
        with self._lock:
            e = self._entries.get(sha)
            return Path(e.path) if e and e.path else None

    def all(self) -> dict[str, str]:
        """All manual labels, sha256 → label (a copy)."""
        with self._lock:
            return {sha: e.label for sha, e in self._entries.items()}

    def counts(self) -> dict[str, int]:
        """Number of items per label."""
        with self._lock:
            return dict(Counter(e.label for e in self._entries.values()))

    def shas_with(self, label: str) -> list[str]:
        """Content hashes of the items carrying ``label``."""
        with self._lock:
            return [sha for sha, e in self._entries.items() if e.label == label]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, sha: object) -> bool:
        with self._lock:
            return sha in self._entries

    def set(
        self,
        shas: Sequence[str] | str,
        label: str | None,
        paths: Sequence[str | os.PathLike[str] | None]
        | Mapping[str, str | os.PathLike[str]]
        | None = None,
    ) -> bool:
        """Label (or, with ``label=None``, unlabel) items; persist at once; one undo step.

        Parameters
        ----------
        shas : sequence of str
            Content hashes of the items (a single str is accepted too).
        label : str or None
            The label; None clears it.
        paths : sequence or mapping, optional
            Current paths of the items (parallel to ``shas``, or sha → path), remembered as
            their last-known location. Without it, previously known paths are kept.

        Returns
        -------
        bool
            True if anything changed (and an undo step was recorded).

        Raises
        ------
        ValueError
            If ``label`` is empty / blank or ``paths`` does not match ``shas``.
        OSError
            If the file cannot be written; nothing changes then.
        """
        if isinstance(shas, str):
            shas = [shas]
        shas = list(dict.fromkeys(shas))  # de-duplicate, keep order
        if label is not None:
            if not isinstance(label, str) or not label.strip():
                raise ValueError("a label must be a non-empty string (use None to clear)")
        if paths is None:
            path_map: dict[str, str | None] = {}
        elif isinstance(paths, Mapping):
            path_map = {k: os.fspath(v) if v is not None else None for k, v in paths.items()}
        else:
            plist = list(paths)
            if len(plist) != len(shas):
                raise ValueError(f"{len(shas)} items but {len(plist)} paths")
            path_map = {
                s: os.fspath(p) if p is not None else None for s, p in zip(shas, plist, strict=True)
            }
        with self._lock:
            self._refresh()
            step: _Step = {}
            moved: _Step = {}  # same label, new last-known path: saved, but not an undo step
            for sha in shas:
                before = self._entries.get(sha)
                if label is None:
                    after = None
                else:
                    known = path_map.get(sha) or (before.path if before else None)
                    after = _Entry(label, known)
                if before == after:
                    continue
                if before is not None and after is not None and before.label == after.label:
                    moved[sha] = (before, after)
                else:
                    step[sha] = (before, after)
            if not step:
                if moved:
                    self._apply(moved, after=True)
                return False
            step.update(moved)
            self._apply(step, after=True)
            self._undo.append(step)
            self._redo.clear()
            log.debug("labelled %d item(s) as %r", len(step), label)
            return True

    @property
    def can_undo(self) -> bool:
        """True if :meth:`undo` would do something."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """True if :meth:`redo` would do something."""
        return bool(self._redo)

    def undo(self) -> bool:
        """Revert the last :meth:`set` (all its items); persist. False if nothing to undo."""
        with self._lock:
            if not self._undo:
                return False
            self._refresh()
            step = self._undo[-1]
            self._apply(step, after=False)
            self._undo.pop()
            self._redo.append(step)
            return True

    def redo(self) -> bool:
        """Re-apply the last undone :meth:`set`; persist. False if nothing to redo."""
        with self._lock:
            if not self._redo:
                return False
            self._refresh()
            step = self._redo[-1]
            self._apply(step, after=True)
            self._redo.pop()
            self._undo.append(step)
            return True


def default_labels_path(
    root_dir: str | os.PathLike[str], cache_dir: str | os.PathLike[str]
) -> Path:
    """Where the labels of the catalogue rooted at ``root_dir`` live by default.

    ``<cache_dir>/labels/<folder name>-<hash of the absolute folder path>.json``: one file
    per catalogue folder, readable names, no clashes between folders of the same name.
    """
    root = Path(root_dir).expanduser().resolve()
    digest = hashlib.sha256(os.fsencode(str(root))).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", root.name).strip("._") or "root"
    return Path(cache_dir) / "labels" / f"{name[:40]}-{digest}.json"
