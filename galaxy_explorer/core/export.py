r"""The one CSV writer for every command and the GUI's export.

Columns, in this order::

    path,name,sha256,ra,dec,score,predicted_label,p_<label>...,label[,extra...]

``p_<label>`` columns appear only when label names are given. Extra columns (a user's
catalogue columns, see :mod:`galaxy_explorer.core.catalogue`) come last, from each row's
``extra`` mapping. Missing values (None, NaN)
are empty cells. A leading block of ``#`` comment lines records provenance (model and
revision, render settings, labels / prompts, query, date, tool version), so the file reads
back with astropy::

    Table.read(path, format="ascii.csv", comment="#")

and with the ``csv`` module after skipping lines that start with ``#`` (see :func:`read_csv`).
Writes to a path are atomic (temp file in the same folder, flush, fsync, ``os.replace``).

Cells keep the exact value, for scientific readers:

- The file is UTF-8. A path or name that is not valid UTF-8 (any bytes a POSIX file system
  allows) has each undecodable byte written as ``\xNN`` (Python's notation, see
  :func:`text_for_csv`); the ``sha256`` column identifies such a file exactly, and
  ``export --paths-from`` accepts the escaped form back.
- A cell holding a delimiter, quote, ``#``, leading / trailing space or any line break
  (``\n``, ``\r``, and those that ``str.splitlines`` splits at: ``\x0b \x0c \x1c-\x1e
  \x85 U+2028 U+2029``) is quoted, so every reader sees one row per item. pandas and the
  ``csv`` module read such values back exactly; astropy's reader reads the right rows and
  columns but turns a line break inside a cell into ``\n``.
- Cells that a spreadsheet would execute as a formula (starting with ``= + - @``, tab or
  carriage return) are written as they are by default: prefixing an apostrophe, as
  spreadsheet hardening guides suggest, would change the value a science reader gets back.
  ``excel_safe=True`` (the CLI's ``--excel-safe``) prefixes ``'`` to such text cells (paths,
  names, labels; never numbers) for files meant to be opened in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from galaxy_explorer import __version__
from galaxy_explorer.core._atomic import atomic_open, remove_stale_temps
from galaxy_explorer.core._text import utf8_text

log = logging.getLogger(__name__)

__all__ = [
    "ExportRow",
    "Provenance",
    "columns",
    "extra_columns_of",
    "read_csv",
    "text_for_csv",
    "write_csv",
]

BASE_COLUMNS = ("path", "name", "sha256", "ra", "dec", "score", "predicted_label")


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Provenance:
    """Where an exported table came from; written as the CSV's ``#`` comment block.

    Parameters
    ----------
    model : str
        Model id or folder.
    model_name : str
        What the model is, in words (``galaxy_explorer.core.hub.display_name``).
    model_revision : str
        Hub revision / commit, or a folder hash.
    render : str
        Render settings key (FITS HDU / bands / stretch).
    labels : list of str, optional
        Zero-shot label names, in ``p_<label>`` column order.
    prompts : list of str, optional
        Prompt templates used for the labels.
    query : str, optional
        Text query or description of the example-image query.
    tool_version : str
        ``galaxy_explorer.__version__`` by default.
    date : str
        ISO-8601 UTC timestamp, now by default.
    extra : dict of str to str
        Any other facts worth recording (command, top-k, threshold, ...).
    """

    model: str
    model_revision: str = ""
    model_name: str = ""
    render: str = ""
    labels: list[str] | None = None
    prompts: list[str] | None = None
    query: str | None = None
    tool_version: str = __version__
    date: str = field(default_factory=_now_iso)
    extra: dict[str, str] = field(default_factory=dict)

    def comment_lines(self) -> list[str]:
        """The provenance as ``# key: value`` lines (no newline characters inside)."""
        lines = ["# galaxy-explorer export"]
        items: list[tuple[str, Any]] = [
            ("tool_version", self.tool_version),
            ("date", self.date),
            ("model", self.model),
            ("model_name", self.model_name or None),
            ("model_revision", self.model_revision),
            ("render", self.render),
            ("labels", self.labels),
            ("prompts", self.prompts),
            ("query", self.query),
        ]
        items += sorted(self.extra.items())
        for key, value in items:
            if value is None:
                continue
            if isinstance(value, (list, tuple, dict)):
                text = json.dumps(value, ensure_ascii=False)
            else:
                text = str(value)
                if any(c in text for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
                    text = json.dumps(text, ensure_ascii=False)
            lines.append(f"# {key}: {text}")
        return lines


@dataclass
class ExportRow:
    """One output row. ``None`` (or NaN) becomes an empty cell.

    Parameters
    ----------
    path : str or Path
        File path (absolute, as scanned).
    name : str
        File name.
    sha256 : str
        Content hash.
    ra, dec : float, optional
        Sky position of the image centre in degrees.
    score : float, optional
        Query / similarity score.
    predicted_label : str, optional
        Zero-shot or few-shot prediction.
    probs : dict of str to float, optional
        Probability per label name (for the ``p_<label>`` columns).
    label : str, optional
        Manual label.
    extra : dict of str to object, optional
        More columns after the standard ones (e.g. a catalogue's columns); a missing key,
        None or NaN is an empty cell.
    """

    path: str | os.PathLike[str]
    name: str
    sha256: str
    ra: float | None = None
    dec: float | None = None
    score: float | None = None
    predicted_label: str | None = None
    probs: dict[str, float] | None = None
    label: str | None = None
    extra: dict[str, Any] | None = None


def columns(
    label_names: Sequence[str] | None = None, extra_columns: Sequence[str] | None = None
) -> list[str]:
    """Column names for the given zero-shot label names and extra columns.

    Raises
    ------
    ValueError
        If label names repeat, or an extra column repeats or clashes with another column.
    """
    names = list(label_names or [])
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate label names: {names}")
    cols = [*BASE_COLUMNS, *(f"p_{n}" for n in names), "label"]
    extra = list(extra_columns or [])
    clash = [e for e in extra if e in cols]
    if clash or len(set(extra)) != len(extra):
        raise ValueError(f"extra columns clash with others or repeat: {clash or extra}")
    return cols + extra


def extra_columns_of(rows: Sequence[ExportRow]) -> list[str]:
    """The extra column names the rows carry, in first-seen order."""
    seen: dict[str, None] = {}
    for r in rows:
        if r.extra:
            for k in r.extra:
                seen.setdefault(k, None)
    return list(seen)


def _extra_cell(v: object, excel_safe: bool) -> str:
    """An extra column's value as text: numbers exactly (shortest round-trip form)."""
    import numpy as np

    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (np.floating, float)):
        return str(v) if math.isfinite(float(v)) else ""
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    return _sheet(_text(v), excel_safe)


def _num(x: float | None, fmt: str) -> str:
    if x is None:
        return ""
    x = float(x)
    if not math.isfinite(x):
        return ""
    return format(x, fmt)


def text_for_csv(value: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """Text that UTF-8 can hold for any path or string: undecodable bytes become ``\\xNN``.

    A path that is valid UTF-8 (or any ordinary str) is returned unchanged. A name with
    bytes that are not valid UTF-8 arrives as a str with surrogate escapes (``os.fsdecode``,
    ``os.listdir``) or as bytes; each such byte is written as the four characters ``\\xNN``.

    Parameters
    ----------
    value : str, bytes or path
        The text or path.

    Returns
    -------
    str
        Valid Unicode text, equal to ``value`` whenever ``value`` is valid UTF-8.
    """
    return utf8_text(value)


def _text(x: object | None) -> str:
    if x is None:
        return ""
    return text_for_csv(x if isinstance(x, (str, bytes, os.PathLike)) else str(x))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _sheet(text: str, excel_safe: bool) -> str:
    """With ``excel_safe``, a leading apostrophe on text a spreadsheet would execute."""
    return "'" + text if excel_safe and text.startswith(_FORMULA_START) else text


def _cells(
    row: ExportRow,
    label_names: Sequence[str],
    excel_safe: bool = False,
    extra_names: Sequence[str] = (),
) -> list[str]:
    probs = row.probs or {}
    extra = row.extra or {}
    return [
        _sheet(_text(row.path), excel_safe),
        _sheet(_text(row.name), excel_safe),
        _text(row.sha256),
        _num(row.ra, ".12g"),
        _num(row.dec, ".12g"),
        _num(row.score, ".7g"),
        _sheet(_text(row.predicted_label), excel_safe),
        *(_num(probs.get(n), ".7g") for n in label_names),
        _sheet(_text(row.label), excel_safe),
        *(_extra_cell(extra.get(k), excel_safe) for k in extra_names),
    ]


def _write(
    fh: IO[str],
    rows: Iterable[ExportRow],
    provenance: Provenance,
    label_names: list[str],
    excel_safe: bool = False,
    extra_names: Sequence[str] = (),
) -> int:
    for line in provenance.comment_lines():
        fh.write(text_for_csv(line) + "\n")
    if excel_safe:
        fh.write("# excel_safe: text cells starting with = + - @ have a leading '\n")
    buf = io.StringIO()
    buf.write(
        _format_row(
            [_sheet(text_for_csv(c), excel_safe) for c in columns(label_names, extra_names)]
        )
    )
    n = 0
    for row in rows:
        buf.write(_format_row(_cells(row, label_names, excel_safe, extra_names)))
        n += 1
        if buf.tell() > 1 << 16:
            fh.write(buf.getvalue())
            buf.seek(0)
            buf.truncate()
    fh.write(buf.getvalue())
    return n


# a delimiter, a quote, ``#``, and every character str.splitlines() breaks a line at
_NEEDS_QUOTES = (
    ",",
    '"',
    "#",
    "\n",
    "\r",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
)


def _format_row(cells: list[str]) -> str:
    """One CSV line. A cell is quoted when it holds a delimiter, quote, line break or ``#``.

    Line breaks include those ``str.splitlines`` knows beyond ``\\n`` and ``\\r`` (U+2028,
    U+0085, ...): unquoted, they split the row for readers that cut lines that way (astropy).

    Quoting ``#`` keeps readers that treat ``#`` as a comment character (astropy's
    ``comment="#"`` at the start of a line, pandas' ``comment="#"`` anywhere outside quotes)
    from cutting a row that holds a path or label such as ``field#3``.
    """
    out = []
    for c in cells:
        if any(ch in c for ch in _NEEDS_QUOTES) or c != c.strip():
            out.append('"' + c.replace('"', '""') + '"')
        else:
            out.append(c)
    return ",".join(out) + "\n"


def write_csv(
    out: str | os.PathLike[str] | IO[str],
    rows: Iterable[ExportRow],
    provenance: Provenance,
    label_names: Sequence[str] | None = None,
    *,
    excel_safe: bool = False,
    extra_columns: Sequence[str] | None = None,
) -> int:
    """Write rows as CSV with a provenance comment block.

    Parameters
    ----------
    out : path or text stream
        A file path (written atomically; parent folders are created) or an open text stream
        such as ``sys.stdout`` (written as is, not closed).
    rows : iterable of ExportRow
        The rows, in output order.
    provenance : Provenance
        Written as ``#`` comment lines before the header.
    label_names : sequence of str, optional
        Zero-shot label names; adds one ``p_<label>`` column each, in this order. If None,
        ``provenance.labels`` is *not* used implicitly: no ``p_`` columns are written.
    excel_safe : bool
        Prefix ``'`` to text cells starting with ``= + - @`` (tab, carriage return) so a
        spreadsheet shows them as text instead of running them; changes those values, so
        off by default (see the module notes).
    extra_columns : sequence of str, optional
        Names of extra columns (from each row's ``extra``), written after the standard
        ones. By default every key any row's ``extra`` holds, in first-seen order.

    Returns
    -------
    int
        Number of data rows written.

    Raises
    ------
    ValueError
        If label names repeat.
    OSError
        If the file cannot be written; an existing file at ``out`` is then left untouched.
    """
    names = list(label_names or [])
    if extra_columns is None:
        rows = rows if isinstance(rows, list) else list(rows)
        extra_columns = extra_columns_of(rows)
    extra = list(extra_columns)
    columns(names, extra)  # validate before touching anything
    if hasattr(out, "write"):
        return _write(out, rows, provenance, names, excel_safe, extra)  # type: ignore[arg-type]

    path = Path(os.fspath(out))  # type: ignore[arg-type]
    remove_stale_temps(path.parent, targets=[path.name])  # left by a killed earlier export
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        n = _write(fh, rows, provenance, names, excel_safe, extra)
    log.info("wrote %d rows to %s", n, path)
    return n


def read_csv(path: str | os.PathLike[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Read a file written by :func:`write_csv` with the ``csv`` module.

    Returns
    -------
    provenance : dict of str to str
        The ``# key: value`` comment lines (values as written; lists are JSON).
    rows : list of dict
        One dict per data row, column name → cell text (empty string for missing).
    """
    meta: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        first = ""
        for line in fh:
            if not line.startswith("#"):
                first = line
                break
            key, sep, value = line[1:].strip().partition(":")
            if sep:
                meta[key.strip()] = value.strip()
        rows = list(csv.DictReader(itertools.chain([first] if first else [], fh)))
    return meta, rows
