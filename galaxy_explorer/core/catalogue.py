"""A user's own catalogue table beside the cutouts: read, match, filter, carry into exports.

A *catalogue* here is a table whose rows are galaxies (redshift, magnitudes, survey flags,
classifications …) in any format astropy reads: FITS binary table, CSV, ECSV, VOTable
(and Parquet where pyarrow is installed). Its rows are matched to the scanned cutouts

- by a **path or file-name column** (absolute paths, paths relative to the catalogue's
  folder or to the images, bare file names, or IDs that equal a file's stem such as
  Galaxy Zoo's ``GalaxyID`` ↔ ``100008.jpg``),
- by a **sha256** column (the content hash every export carries), or
- by **RA/Dec**, cross-matched to the cutouts' WCS centres with
  :func:`astropy.coordinates.match_coordinates_sky` within a tolerance (2″ by default).

Rows without a cutout are kept and listed with the reason (:attr:`Match.reasons`,
:func:`unmatched_lines`); nothing is dropped silently.

The **filter language** (:func:`compile_filter`) is a small, safe subset of Python
expressions, evaluated vectorised over whole columns::

    z < 0.05 and mag_r < 17
    (class == 'spiral' or class == 'barred_spiral') and not has_bar
    0.01 < z < 0.1 and g_r - r_z > 0.3
    class in ('ring', 'merger') and `p(spiral)` >= 0.5

It is parsed with :mod:`ast` and only whitelisted nodes are evaluated (column names,
numbers, quoted text, ``== != < <= > >= in``, ``and or not``, ``+ - * /``, ``abs``,
``log10``, ``sqrt``); nothing is ever passed to ``eval``. Names that are not Python
identifiers are written in backquotes. A missing value (masked cell, NaN) makes a
comparison false.
"""

from __future__ import annotations

import ast
import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from galaxy_explorer.core._text import utf8_text

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table

    from galaxy_explorer.core.catalog import Item

log = logging.getLogger(__name__)

__all__ = [
    "Catalogue",
    "CatalogueError",
    "FilterError",
    "FilterExpr",
    "Match",
    "MatchOptions",
    "TABLE_FORMATS",
    "compile_filter",
    "export_values",
    "is_table_file",
    "match_catalogue",
    "open_catalogue",
    "read_table",
    "unmatched_lines",
]

#: File endings (lower case) → astropy ``format`` name.
TABLE_FORMATS: dict[str, str] = {
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".fits.gz": "fits",
    ".csv": "ascii.csv",
    ".csv.gz": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".ecsv.gz": "ascii.ecsv",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
    ".vot.gz": "votable",
    ".tsv": "ascii.tab",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: Column names tried, in order, when none is given (compared without case).
PATH_COLUMNS = (
    "path",
    "filepath",
    "file_path",
    "filename",
    "file_name",
    "file",
    "fname",
    "image",
    "image_path",
    "imagepath",
    "cutout",
    "cutout_path",
    "url",
)
NAME_COLUMNS = ("name",)  # used only when the values look like image file names
SHA_COLUMNS = ("sha256", "sha", "content_hash")
RA_COLUMNS = ("ra", "ra_deg", "raj2000", "_raj2000", "ra_icrs", "ra_obj", "ra_j2000", "alpha")
DEC_COLUMNS = (
    "dec",
    "dec_deg",
    "dej2000",
    "_dej2000",
    "decj2000",
    "de_icrs",
    "dec_icrs",
    "dec_obj",
    "dec_j2000",
    "delta",
)
LABEL_COLUMNS = (
    "label",
    "manual_label",
    "class",
    "classification",
    "gz2class",
    "gz2_class",
    "morphology",
    "morph",
    "type",
)

DEFAULT_TOLERANCE_ARCSEC = 2.0


class CatalogueError(ValueError):
    """A catalogue cannot be read or matched; the message is one line for the user."""


class FilterError(ValueError):
    """A filter expression is not valid; the message is one line for the user."""


# --------------------------------------------------------------------------- reading
def _suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(TABLE_FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    return path.suffix.lower()


def is_table_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s ending is a catalogue table format (``.fits`` counts: see below).

    A ``.fits`` file can be an image or a table; callers that must tell them apart use
    :func:`looks_like_table` instead.
    """
    return _suffix(Path(path)) in TABLE_FORMATS


def looks_like_table(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a table file: by ending, and for FITS by a table HDU inside.

    Never raises: an unreadable file is not a table.
    """
    p = Path(path)
    ext = _suffix(p)
    if ext not in TABLE_FORMATS:
        return False
    if TABLE_FORMATS[ext] != "fits":
        return True
    try:
        from astropy.io import fits

        with fits.open(p, memmap=False) as hdul:
            return any(isinstance(h, (fits.BinTableHDU, fits.TableHDU)) for h in hdul)
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a table
        return False


def read_table(path: str | os.PathLike[str], format: str | None = None) -> Table:  # noqa: A002
    """Read a table with astropy; any failure becomes a one-line :class:`CatalogueError`.

    Parameters
    ----------
    path : path
        The table file.
    format : str, optional
        An astropy format name (``fits``, ``ascii.csv``, ``ascii.ecsv``, ``votable``,
        ``parquet`` …); by default from the file's ending.

    Returns
    -------
    astropy.table.Table
        Byte-string columns (FITS) are decoded to text.

    Raises
    ------
    CatalogueError
        If the file does not exist, cannot be read in that format, or has no rows.
    """
    import warnings

    from astropy.table import Table

    p = Path(path)
    if not p.exists():
        raise CatalogueError(f"{utf8_text(p)}: no such file")
    if p.is_dir():
        raise CatalogueError(f"{utf8_text(p)}: is a folder, not a catalogue table")
    if not p.is_file():  # a FIFO without a writer would block the reader for ever
        raise CatalogueError(
            f"{utf8_text(p)}: not a regular file (a pipe, socket or device); "
            "a catalogue must be a table file"
        )
    fmt = format or TABLE_FORMATS.get(_suffix(p))
    if fmt is None:
        raise CatalogueError(
            f"{utf8_text(p)}: unknown table format {p.suffix or '(no ending)'!r}; "
            "use .fits, .csv, .ecsv, .vot/.xml (VOTable) or .parquet, or name the format"
        )
    _check_gzip_size(p)
    kwargs: dict[str, Any] = {}
    if fmt.startswith("ascii"):
        kwargs["comment"] = "#"  # our own exports carry provenance as # lines
        n_cols = _text_header_columns(p)
        if n_cols > MAX_TEXT_COLUMNS:
            raise CatalogueError(
                f"{utf8_text(p)}: about {n_cols} columns; a text catalogue may have at most "
                f"{MAX_TEXT_COLUMNS} (keep the columns you need, or write it as FITS or Parquet)"
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "fits":
                kwargs["hdu"] = _first_table_hdu(p)
            table = Table.read(p, format=fmt, **kwargs)
    except CatalogueError:
        raise
    except ImportError as exc:
        raise CatalogueError(f"{utf8_text(p)}: cannot read {fmt} tables here: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for a bad file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise CatalogueError(
            f"{utf8_text(p)}: not a readable {fmt} table: {reason[:300]}"
        ) from None
    if len(table) == 0:
        raise CatalogueError(f"{utf8_text(p)}: the table has no rows")
    first = table.colnames[0] if table.colnames else ""
    if first.startswith("\ufeff") and first[1:] and first[1:] not in table.colnames:
        table.rename_column(first, first[1:])  # a byte-order mark (Excel's "CSV UTF-8")
    if hasattr(table, "convert_bytestring_to_unicode"):
        try:
            table.convert_bytestring_to_unicode()
        except Exception:  # noqa: BLE001 - undecodable bytes stay bytes
            log.debug("could not decode byte columns of %s", p, exc_info=True)
    return table


#: gzip-compressed tables: astropy holds a table in memory several times over, so a small
#: "decompression bomb" (2 MB of gzip, 1 GB of CSV) took over 4 GB of memory. Refused:
#: more than ``MAX_GZIP_TABLE_BYTES`` uncompressed, or more than ``GZIP_BOMB_BYTES`` at a
#: ratio above ``GZIP_BOMB_RATIO`` (real catalogues compress about 2-10 times).
MAX_GZIP_TABLE_BYTES = 4 << 30
GZIP_BOMB_BYTES = 64 << 20
GZIP_BOMB_RATIO = 50


def _check_gzip_size(path: Path) -> None:
    """Refuse a gzip-compressed table that looks like a decompression bomb.

    Counts by streaming (nothing kept); a file that is not gzip is left to the reader.
    """
    import gzip
    import zlib

    try:
        with open(path, "rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                return
        packed = max(1, path.stat().st_size)
        limit = min(MAX_GZIP_TABLE_BYTES, max(GZIP_BOMB_BYTES, GZIP_BOMB_RATIO * packed))
        total = 0
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise CatalogueError(
                        f"{utf8_text(path)}: {packed} bytes that uncompress to more than "
                        f"{limit >> 20} MB; refusing a possible decompression bomb "
                        "(uncompress it yourself if it really is such a table)"
                    )
    except (OSError, EOFError, zlib.error):
        return  # a damaged stream: the reader says what is wrong


#: Widest text table read: astropy's text reader takes about 0.3 ms a column, so a
#: header of 10⁶ columns (a 10 MB file) would run for minutes with nothing to show.
MAX_TEXT_COLUMNS = 20_000


def _text_header_columns(path: Path, limit: int = 8 << 20) -> int:
    """An upper bound on the columns of a text table: its first line that is not a comment.

    Reads at most ``limit`` bytes of that line (gzip-compressed files are read through
    gzip); 0 when it cannot tell (astropy then reports what is wrong).
    """
    import gzip

    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:  # noqa: SIM115
            for _ in range(10_000):  # comment lines: ECSV's header is a few hundred
                line = f.readline(limit)
                if not line:
                    return 0
                text = line.strip()
                if text and not text.startswith(b"#"):
                    return max(text.count(b","), text.count(b"\t"), len(text.split())) + 1
    except (OSError, EOFError, ValueError):
        return 0
    return 0


def _first_table_hdu(path: Path) -> int:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        for i, h in enumerate(hdul):
            if isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
                return i
    raise CatalogueError(
        f"{utf8_text(path)}: a FITS file without a table (an image?); "
        "a catalogue needs a binary table extension"
    )


# ------------------------------------------------------------------------- catalogue
@dataclass
class Catalogue:
    """A table of galaxies, one per row.

    Parameters
    ----------
    table : astropy.table.Table
        The rows.
    source : str
        Where it came from (a path, or a SAMP table name), for messages.
    base_dir : Path, optional
        Folder that relative paths in the table are relative to (the table's folder).
    """

    table: Table
    source: str = ""
    base_dir: Path | None = None
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.table)

    @property
    def name(self) -> str:
        """A short name for titles (the file name)."""
        return Path(self.source).name if self.source else "catalogue"

    @property
    def columns(self) -> list[str]:
        """Names of the columns that hold one value per row (array columns are left out)."""
        return [c for c in self.table.colnames if self.table[c].ndim == 1]

    def find_column(self, candidates: Sequence[str]) -> str | None:
        """The first column whose name equals one of ``candidates`` (any case)."""
        lower = {c.lower(): c for c in reversed(self.columns)}
        for cand in candidates:
            if cand.lower() in lower:
                return lower[cand.lower()]
        return None

    def resolve_column(self, name: str) -> str:
        """The column called ``name`` (exactly, else without case); CatalogueError if none."""
        if name in self.table.colnames:
            if self.table[name].ndim != 1:
                raise CatalogueError(f"column {name!r} holds arrays, not one value per row")
            return name
        found = [c for c in self.columns if c.lower() == name.lower()]
        if len(found) == 1:
            return found[0]
        raise CatalogueError(
            f"{self.name}: no column {name!r}; columns: {_list_names(self.columns)}"
        )

    def kind(self, name: str) -> str:
        """``"number"``, ``"bool"`` or ``"text"`` for a column."""
        dt = self.table[name].dtype
        if dt.kind == "b":
            return "bool"
        if dt.kind in "iuf":
            return "number"
        key = f"\x00kind:{name}"
        if key not in self._cache:  # a text column of True / False (CSV) is a bool column
            words = {str(v).strip().lower() for v in np.asarray(self.table[name]).tolist()}
            words.discard("")
            bools = bool(words) and words <= {"true", "false"}
            self._cache[key] = np.array(bools)
        return "bool" if bool(self._cache[key]) else "text"

    def values(self, name: str) -> np.ndarray:
        """A column as a plain array: numbers as float64 with NaN for missing values, text
        as ``str`` objects ('' for missing), booleans as bool (False for missing)."""
        if name in self._cache:
            return self._cache[name]
        col = self.table[name]
        mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), dtype=bool)
        if mask.ndim != 1:
            mask = np.zeros(len(col), bool)
        data = np.asarray(getattr(col, "data", col))
        if isinstance(data, np.ma.MaskedArray):
            data = data.data
        kind = self.kind(name)
        if kind == "number":
            out = data.astype(np.float64, copy=True)
            out[mask] = np.nan
        elif kind == "bool":
            if data.dtype.kind == "b":
                out = data.astype(bool, copy=True)
            else:
                out = np.array([str(v).strip().lower() == "true" for v in data.tolist()])
            out[mask] = False
        else:
            out = np.array(
                [
                    "" if m else (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
                    for v, m in zip(data.tolist(), mask.tolist(), strict=True)
                ],
                dtype=object,
            )
        self._cache[name] = out
        return out

    def text_values(self, name: str) -> list[str]:
        """A column as text per row (integers without '.0'; '' for missing)."""
        kind = self.kind(name)
        if kind == "text":
            return [str(v).strip() for v in self.values(name)]
        vals = self.values(name)
        if kind == "bool":
            return [str(bool(v)) for v in vals]
        out = []
        for v in vals.tolist():
            if not math.isfinite(v):
                out.append("")
            elif float(v).is_integer() and abs(v) < 2**63:
                out.append(str(int(v)))
            else:
                out.append(repr(float(v)))
        return out

    def radec(
        self, ra_column: str | None = None, dec_column: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, str, str] | None:
        """RA and Dec of each row in degrees (NaN where missing or out of range).

        Columns with units (deg, hourangle, rad) are converted; text columns are parsed as
        sexagesimal (RA in hours, Dec in degrees) or as decimal degrees.

        Returns
        -------
        (ra, dec, ra_column, dec_column) or None
            None if the table has no RA/Dec columns (and none were named).
        """
        ra_name = self.resolve_column(ra_column) if ra_column else self.find_column(RA_COLUMNS)
        dec_name = self.resolve_column(dec_column) if dec_column else self.find_column(DEC_COLUMNS)
        if ra_name is None or dec_name is None:
            if ra_column or dec_column:
                raise CatalogueError("give both --ra-column and --dec-column")
            return None
        key = f"\x00radec:{ra_name}:{dec_name}"
        if key not in self._cache:
            ra, dec = _angles(self, ra_name, dec_name)
            bad = ~(
                np.isfinite(ra)
                & np.isfinite(dec)
                & (np.abs(dec) <= 90)
                & (ra >= -360)
                & (ra <= 720)
            )
            ra = np.where(bad, np.nan, np.mod(ra, 360.0))
            dec = np.where(bad, np.nan, dec)
            self._cache[key] = np.stack([ra, dec])
        both = self._cache[key]
        return both[0], both[1], ra_name, dec_name


def _angles(cat: Catalogue, ra_name: str, dec_name: str) -> tuple[np.ndarray, np.ndarray]:
    import astropy.units as u

    def numeric(name: str, default_unit: Any) -> np.ndarray:
        col = cat.table[name]
        vals = cat.values(name)
        unit = getattr(col, "unit", None)
        if unit is None:
            return vals
        try:
            return (vals * u.Unit(unit)).to_value(u.deg)
        except Exception:  # noqa: BLE001 - a unit that is not an angle: use as degrees
            log.warning("column %s has unit %s, not an angle; read as degrees", name, unit)
            return vals

    if cat.kind(ra_name) == "number" and cat.kind(dec_name) == "number":
        return numeric(ra_name, u.deg), numeric(dec_name, u.deg)
    from astropy.coordinates import Angle

    def parse(name: str, sexa_unit: Any) -> np.ndarray:
        if cat.kind(name) == "number":
            return numeric(name, u.deg)
        out = np.full(cat.n, np.nan)
        for i, text in enumerate(cat.text_values(name)):
            if not text:
                continue
            try:
                if re.search(r"[:hms\s]", text.strip()):
                    out[i] = Angle(text, unit=sexa_unit).deg
                else:
                    out[i] = float(text)
            except Exception:  # noqa: BLE001 - an unparseable cell is a missing position
                continue
        return out

    return parse(ra_name, u.hourangle), parse(dec_name, u.deg)


def _list_names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def open_catalogue(
    source: str | os.PathLike[str] | Table,
    *,
    format: str | None = None,  # noqa: A002
    base_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> Catalogue:
    """Open a catalogue from a file or from a table already in memory (e.g. from SAMP).

    Parameters
    ----------
    source : path or astropy.table.Table
        The table file (format by its ending, or ``format``), or a Table.
    format : str, optional
        astropy format name for a file.
    base_dir : path, optional
        Folder relative paths in the table are relative to; the file's folder by default.
    name : str, optional
        What to call it in messages (defaults to the file path).

    Returns
    -------
    Catalogue

    Raises
    ------
    CatalogueError
        If the file cannot be read as a table, or the table has no rows.
    """
    from astropy.table import Table

    if isinstance(source, Table):
        table = source
        if len(table) == 0:
            raise CatalogueError(f"{name or 'the table'}: the table has no rows")
        src = name or str(table.meta.get("name", "") or "table")
        return Catalogue(table, src, Path(base_dir) if base_dir else None)
    path = Path(os.fspath(source)).expanduser()
    table = read_table(path, format)
    return Catalogue(
        table,
        name or str(path),
        Path(base_dir).expanduser() if base_dir else path.resolve().parent,
    )


# -------------------------------------------------------------------------- matching
@dataclass
class MatchOptions:
    """How catalogue rows find their cutouts.

    Parameters
    ----------
    by : str
        ``auto`` (a sha256 column, else a path / file-name column, else RA/Dec), ``path``,
        ``sha256`` or ``radec``.
    column : str, optional
        The column to match on (a path, file name, ID equal to the file's stem, or sha256).
    ra_column, dec_column : str, optional
        RA/Dec columns (found by name by default: ra, raj2000, ra_deg … / dec, dej2000 …).
    tolerance_arcsec : float
        Largest separation of an RA/Dec match, arcseconds.
    """

    by: str = "auto"
    column: str | None = None
    ra_column: str | None = None
    dec_column: str | None = None
    tolerance_arcsec: float = DEFAULT_TOLERANCE_ARCSEC

    def __post_init__(self) -> None:
        if self.by not in ("auto", "path", "sha256", "radec"):
            raise CatalogueError(f"match by {self.by!r}: expected auto, path, sha256 or radec")
        if not (math.isfinite(self.tolerance_arcsec) and self.tolerance_arcsec > 0):
            raise CatalogueError(
                f"match tolerance must be a positive number of arcseconds, "
                f"got {self.tolerance_arcsec!r}"
            )


@dataclass
class Match:
    """Which cutout each catalogue row belongs to, and why not where none.

    Attributes
    ----------
    method : str
        ``path``, ``sha256`` or ``radec``.
    column : str
        The column matched on (``ra,dec`` for RA/Dec).
    item_of_row : ndarray of int
        Per catalogue row, the index of its cutout in the items, or -1.
    row_of_item : ndarray of int
        Per item, its catalogue row, or -1.
    reasons : dict of int to str
        Per unmatched catalogue row, why it has no cutout.
    separation_arcsec : ndarray of float, optional
        Per row, the distance to the matched cutout's centre (RA/Dec matches only).
    notes : list of str
        Anything worth telling the user (a fallback taken, …).
    """

    method: str
    column: str
    item_of_row: np.ndarray
    row_of_item: np.ndarray
    reasons: dict[int, str]
    separation_arcsec: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_matched(self) -> int:
        return int((self.item_of_row >= 0).sum())

    @property
    def unmatched(self) -> np.ndarray:
        """Catalogue rows without a cutout."""
        return np.flatnonzero(self.item_of_row < 0)

    def summary(self) -> str:
        """One line: how many rows matched, how, and how many did not."""
        n = len(self.item_of_row)
        how = {
            "path": f"by the {self.column!r} column",
            "sha256": f"by content hash ({self.column!r})",
            "radec": f"by RA/Dec ({self.column})",
        }.get(self.method, self.method)
        text = f"{self.n_matched} of {n} catalogue rows matched a cutout {how}"
        missing = n - self.n_matched
        if missing:
            text += f"; {missing} without a cutout"
        return text


_EXT_RE: re.Pattern[str] | None = None


def _image_stem(name: str) -> str:
    """``name`` without its image ending (``.fits.gz`` whole)."""
    global _EXT_RE
    if _EXT_RE is None:
        from galaxy_explorer.core.imaging import IMAGE_EXTENSIONS

        exts = sorted(IMAGE_EXTENSIONS, key=len, reverse=True)
        _EXT_RE = re.compile("(?:" + "|".join(re.escape(e) for e in exts) + ")$", re.IGNORECASE)
    return _EXT_RE.sub("", name, count=1)


def _looks_like_file_names(values: Sequence[str]) -> bool:
    from galaxy_explorer.core.imaging import IMAGE_EXTENSIONS

    sample = [v for v in values[:200] if v]
    if not sample:
        return False
    hits = sum(v.lower().endswith(IMAGE_EXTENSIONS) for v in sample)
    return hits >= 0.8 * len(sample)


_BYTE_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}")


def windows_seps(value: str) -> str:
    """A Windows path (``a\\b.fits``, no ``/``) with ``/`` separators; others unchanged.

    A backslash is a separator only in a value without ``/`` and without ``\\xNN`` escapes
    (how exports write file-name bytes that are not UTF-8).
    """
    if "\\" in value and "/" not in value and not _BYTE_ESCAPE.search(value):
        return value.replace("\\", "/")
    return value


def _split(value: str) -> tuple[str, ...]:
    return tuple(p for p in windows_seps(value).split("/") if p and p != ".")


def _common_tail(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[-1 - k] == b[-1 - k]:
        k += 1
    return k


def _match_paths(
    cat: Catalogue, column: str, items: Sequence[Item]
) -> tuple[np.ndarray, dict[int, str]]:
    values = cat.text_values(column)
    by_name: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_name.setdefault(utf8_text(it.path.name), []).append(i)
    by_stem: dict[str, list[int]] | None = None  # built only if some name is not found

    def parts_of(i: int) -> tuple[str, ...]:
        return _split(utf8_text(str(items[i].path)))

    item_of_row = np.full(cat.n, -1, dtype=np.int64)
    reasons: dict[int, str] = {}
    for r, v in enumerate(values):
        if not v:
            reasons[r] = f"empty {column!r}"
            continue
        v = windows_seps(v)
        name = v.rstrip("/").rsplit("/", 1)[-1]
        if not name or name in (".", ".."):
            reasons[r] = f"{column!r} is not a file name"
            continue
        cands = by_name.get(name)
        if not cands:
            if by_stem is None:
                by_stem = {}
                for nm, idx in by_name.items():
                    by_stem.setdefault(_image_stem(nm), []).extend(idx)
            cands = by_stem.get(name) or by_stem.get(_image_stem(name))
            if not cands:
                reasons[r] = f"no cutout named {name!r}"
                continue
        if len(cands) == 1:
            item_of_row[r] = cands[0]
            continue
        # several files of that name: the one at the path relative to the table's folder,
        # else the one sharing the longest tail of the path
        if cat.base_dir is not None:
            full = utf8_text(os.path.normpath(os.path.join(cat.base_dir, v)))
            exact = [i for i in cands if utf8_text(os.path.normpath(items[i].path)) == full]
            if len(exact) == 1:
                item_of_row[r] = exact[0]
                continue
        parts = _split(v)
        scores = [_common_tail(parts_of(i), parts) for i in cands]
        best = max(scores)
        winners = [i for i, s in zip(cands, scores, strict=True) if s == best]
        if len(winners) == 1:
            item_of_row[r] = winners[0]
        else:
            reasons[r] = f"ambiguous: {len(winners)} cutouts match {v!r}"
    return item_of_row, reasons


def _match_sha(
    cat: Catalogue, column: str, items: Sequence[Item]
) -> tuple[np.ndarray, dict[int, str]]:
    index: dict[str, int] = {}
    for i, it in enumerate(items):
        index.setdefault(it.sha256.lower(), i)
    item_of_row = np.full(cat.n, -1, dtype=np.int64)
    reasons: dict[int, str] = {}
    for r, v in enumerate(cat.text_values(column)):
        i = index.get(v.lower()) if v else None
        if i is None:
            reasons[r] = "no cutout with this content hash" if v else f"empty {column!r}"
        else:
            item_of_row[r] = i
    return item_of_row, reasons


def _match_radec(
    cat: Catalogue,
    ra: np.ndarray,
    dec: np.ndarray,
    positions: Sequence[tuple[float | None, float | None]],
    tolerance: float,
) -> tuple[np.ndarray, dict[int, str], np.ndarray]:
    item_of_row = np.full(cat.n, -1, dtype=np.int64)
    sep_out = np.full(cat.n, np.nan)
    reasons: dict[int, str] = {}
    have = [
        i
        for i, (a, d) in enumerate(positions)
        if a is not None and d is not None and math.isfinite(a) and math.isfinite(d)
    ]
    ok = np.isfinite(ra) & np.isfinite(dec)
    for r in np.flatnonzero(~ok):
        reasons[int(r)] = "no valid RA/Dec"
    if not have:
        for r in np.flatnonzero(ok):
            reasons[int(r)] = "no cutout has a sky position (WCS or RA/DEC keywords)"
        return item_of_row, reasons, sep_out
    rows = np.flatnonzero(ok)
    if not len(rows):
        return item_of_row, reasons, sep_out
    import astropy.units as u
    from astropy.coordinates import SkyCoord, match_coordinates_sky

    icoords = SkyCoord(
        ra=np.array([positions[i][0] for i in have], dtype=float) * u.deg,
        dec=np.array([positions[i][1] for i in have], dtype=float) * u.deg,
    )
    ccoords = SkyCoord(ra=ra[rows] * u.deg, dec=dec[rows] * u.deg)
    if len(have) == 1:  # match_coordinates_sky needs two or more catalogue points
        idx = np.zeros(len(rows), dtype=np.int64)
        sep = ccoords.separation(icoords[0]).arcsec
    else:
        idx, sep2d, _ = match_coordinates_sky(ccoords, icoords)
        sep = sep2d.arcsec
    order = np.argsort(sep, kind="stable")  # closest first: it wins a shared cutout
    taken: dict[int, int] = {}
    for k in order:
        r = int(rows[k])
        s = float(sep[k])
        if s > tolerance:
            reasons[r] = f"nearest cutout is {s:.3g}″ away (tolerance {tolerance:g}″)"
            continue
        i = have[int(idx[k])]
        if i in taken:
            reasons[r] = f"its cutout is nearer to row {taken[i]}"
            continue
        taken[i] = r
        item_of_row[r] = i
        sep_out[r] = s
    return item_of_row, reasons, sep_out


def match_catalogue(
    cat: Catalogue,
    items: Sequence[Item],
    positions: Sequence[tuple[float | None, float | None]]
    | Callable[[], Sequence[tuple[float | None, float | None]]]
    | None = None,
    options: MatchOptions | None = None,
) -> Match:
    """Match catalogue rows to cutouts.

    Parameters
    ----------
    cat : Catalogue
    items : sequence of Item
        The scanned cutouts.
    positions : sequence of (ra, dec), or a function returning one, optional
        Each item's sky position (``Session.sky_positions``); needed for RA/Dec matching.
        A function is called only when the match needs positions (reading them may open
        every FITS file once).
    options : MatchOptions, optional
        How to match; ``auto`` by default.

    Returns
    -------
    Match
        A row that matches an item another row already took is left unmatched (listed
        with the reason); for RA/Dec the nearer row wins.

    Raises
    ------
    CatalogueError
        If the table has nothing to match on, or a named column does not exist.
    """
    opt = options or MatchOptions()
    notes: list[str] = []
    by = opt.by
    column = cat.resolve_column(opt.column) if opt.column else None
    if by == "auto":
        if column is not None:
            by = "sha256" if column.lower() in SHA_COLUMNS else "path"
        elif cat.find_column(SHA_COLUMNS):
            by, column = "sha256", cat.find_column(SHA_COLUMNS)
        elif cat.find_column(PATH_COLUMNS):
            by, column = "path", cat.find_column(PATH_COLUMNS)
        elif cat.find_column(NAME_COLUMNS) and _looks_like_file_names(
            cat.text_values(cat.find_column(NAME_COLUMNS) or "")
        ):
            by, column = "path", cat.find_column(NAME_COLUMNS)
        elif cat.radec(opt.ra_column, opt.dec_column) is not None:
            by = "radec"
        else:
            raise CatalogueError(
                f"{cat.name}: nothing to match cutouts on: no path or file-name column "
                f"({', '.join(PATH_COLUMNS[:6])} …), no sha256 column and no RA/Dec columns "
                f"({', '.join(RA_COLUMNS[:3])} … / {', '.join(DEC_COLUMNS[:3])} …); "
                "name one (--match-column, --ra-column/--dec-column)"
            )
    if by == "path":
        column = column or cat.find_column(PATH_COLUMNS) or cat.find_column(NAME_COLUMNS)
        if column is None:
            raise CatalogueError(
                f"{cat.name}: no path or file-name column ({', '.join(PATH_COLUMNS[:6])} …); "
                "name one with --match-column"
            )
        item_of_row, reasons = _match_paths(cat, column, items)
        if not (item_of_row >= 0).any() and opt.by == "auto" and opt.column is None:
            rd = cat.radec(opt.ra_column, opt.dec_column)
            if rd is not None and positions is not None:
                positions = positions() if callable(positions) else positions
                notes.append(f"no row matched by {column!r}; matched by RA/Dec instead")
                by = "radec"
        if by == "path":
            return _finish("path", column, item_of_row, reasons, len(items), None, notes)
    if by == "sha256":
        column = column or cat.find_column(SHA_COLUMNS)
        if column is None:
            raise CatalogueError(f"{cat.name}: no sha256 column; name one with --match-column")
        item_of_row, reasons = _match_sha(cat, column, items)
        return _finish("sha256", column, item_of_row, reasons, len(items), None, notes)
    rd = cat.radec(opt.ra_column, opt.dec_column)
    if rd is None:
        raise CatalogueError(
            f"{cat.name}: no RA/Dec columns ({', '.join(RA_COLUMNS[:4])} … / "
            f"{', '.join(DEC_COLUMNS[:4])} …); name them with --ra-column and --dec-column"
        )
    if positions is None:
        raise CatalogueError("matching by RA/Dec needs the cutouts' sky positions")
    positions = positions() if callable(positions) else positions
    ra, dec, ra_name, dec_name = rd
    item_of_row, reasons, sep = _match_radec(cat, ra, dec, positions, opt.tolerance_arcsec)
    return _finish("radec", f"{ra_name},{dec_name}", item_of_row, reasons, len(items), sep, notes)


def _finish(
    method: str,
    column: str,
    item_of_row: np.ndarray,
    reasons: dict[int, str],
    n_items: int,
    sep: np.ndarray | None,
    notes: list[str],
) -> Match:
    row_of_item = np.full(n_items, -1, dtype=np.int64)
    for r in np.flatnonzero(item_of_row >= 0):
        i = int(item_of_row[r])
        if row_of_item[i] >= 0:  # a second row for the same cutout
            reasons[int(r)] = f"same cutout as row {int(row_of_item[i])}"
            item_of_row[r] = -1
            continue
        row_of_item[i] = r
    return Match(method, column, item_of_row, row_of_item, reasons, sep, notes)


def unmatched_lines(cat: Catalogue, match: Match, limit: int | None = None) -> list[str]:
    """One line per catalogue row without a cutout: row number, what identifies it, why.

    Parameters
    ----------
    limit : int, optional
        At most this many lines (a last line says how many more there are).
    """
    rows = match.unmatched
    ident_cols = [c for c in match.column.split(",") if c in cat.table.colnames]
    out = []
    for k, r in enumerate(rows):
        if limit is not None and k >= limit:
            out.append(f"… and {len(rows) - limit} more rows without a cutout")
            break
        ident = ", ".join(f"{c}={cat.text_values(c)[r]!s}" for c in ident_cols)
        out.append(f"row {int(r)} ({ident}): {match.reasons.get(int(r), 'no cutout')}")
    return out


# --------------------------------------------------------------------------- exports
#: Names the export already uses; a catalogue column of the same name gets ``cat_`` first.
RESERVED_COLUMNS = ("path", "name", "sha256", "ra", "dec", "score", "predicted_label", "label")


def export_names(cat: Catalogue, reserved: Sequence[str] = RESERVED_COLUMNS) -> list[str]:
    """Output names of the catalogue's columns in exports (clashes get a ``cat_`` prefix)."""
    taken = {r.lower() for r in reserved}
    out = []
    for c in cat.columns:
        name = c
        while name.lower() in taken or name.lower().startswith("p_"):
            name = "cat_" + name
        taken.add(name.lower())
        out.append(name)
    return out


def export_values(
    cat: Catalogue,
    match: Match,
    items: Sequence[int] | np.ndarray,
    reserved: Sequence[str] = RESERVED_COLUMNS,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Catalogue columns for exported items, as the export rows' extra columns.

    Parameters
    ----------
    cat, match : Catalogue, Match
    items : sequence of int
        Indices (into the matched items) of the rows being exported, in output order.
    reserved : sequence of str
        Column names the export uses already.

    Returns
    -------
    names : list of str
        Extra column names, in table order (``cat_sep_arcsec`` last for RA/Dec matches).
    values : list of dict
        Per exported item, column → value (None where the item has no catalogue row or the
        cell is missing).
    """
    cols = cat.columns
    names = export_names(cat, reserved)
    raws, masks = [], []
    for c in cols:
        col = cat.table[c]
        data = getattr(col, "data", col)
        raws.append(
            np.ma.getdata(data) if isinstance(data, np.ma.MaskedArray) else np.asarray(data)
        )
        m = getattr(col, "mask", None)
        masks.append(np.asarray(m, dtype=bool) if m is not None and np.ndim(m) == 1 else None)
    kinds = [cat.kind(c) for c in cols]
    texts = [cat.values(c) if k != "number" else None for c, k in zip(cols, kinds, strict=True)]
    sep = match.separation_arcsec if match.method == "radec" else None
    out: list[dict[str, Any]] = []
    for i in np.asarray(items, dtype=np.int64).tolist():
        r = int(match.row_of_item[i]) if 0 <= i < len(match.row_of_item) else -1
        d: dict[str, Any] = {}
        for name, raw, kind, mask, text in zip(names, raws, kinds, masks, texts, strict=True):
            if r < 0 or (mask is not None and mask[r]):
                d[name] = None
            elif kind == "number":
                v = raw[r]
                d[name] = v if np.isfinite(v) else None
            elif kind == "bool":
                d[name] = bool(text[r])  # type: ignore[index]
            else:
                d[name] = text[r]  # type: ignore[index]
        if sep is not None:
            d["cat_sep_arcsec"] = float(sep[r]) if r >= 0 and np.isfinite(sep[r]) else None
        out.append(d)
    if sep is not None:
        names = [*names, "cat_sep_arcsec"]
    return names, out


# ---------------------------------------------------------------------------- filters
_MAX_FILTER_LEN = 4000
_FUNCS = {"abs": np.abs, "log10": np.log10, "sqrt": np.sqrt}
_CMP = {
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
}
_ARITH = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide}
_HELP = (
    "use column names, numbers, 'quoted text', == != < <= > >= in, and/or/not, "
    "+ - * /, abs() log10() sqrt(), parentheses; backquote `odd names`"
)


@dataclass
class FilterExpr:
    """A parsed, checked filter expression (see the module notes for the language).

    Attributes
    ----------
    text : str
        The expression as written.
    names : list of str
        The column names it uses.
    """

    text: str
    tree: ast.Expression
    names: list[str]
    _alias: dict[str, str]

    def evaluate(self, columns: Mapping[str, np.ndarray], n: int | None = None) -> np.ndarray:
        """True for each row the expression keeps.

        Parameters
        ----------
        columns : mapping of str to ndarray
            Column name → values (float with NaN for missing, bool, or text objects), e.g.
            :meth:`Catalogue.values`. Names are looked up exactly, then without case.
        n : int, optional
            Number of rows (needed only when the expression uses no column).

        Raises
        ------
        FilterError
            For an unknown column, or a comparison of text with a number.
        """
        if n is None:
            n = len(next(iter(columns.values()))) if columns else 0
        ev = _Evaluator(columns, self._alias, n)
        value = ev.visit(self.tree.body)
        kind, arr = value
        if kind != "bool":
            raise FilterError(
                f"the filter {self.text!r} gives {'numbers' if kind == 'number' else 'text'}, "
                "not true/false; compare it with something, e.g. z < 0.05"
            )
        return np.broadcast_to(np.asarray(arr, dtype=bool), (n,)).copy()


_OPERATOR_WORDS = {"and", "or", "not", "in", "True", "False"}


def _alias_keywords(src: str, alias: dict[str, str]) -> str:
    """Python keywords used as column names (``class``, ``type`` is fine) become aliases."""
    import io
    import keyword
    import tokenize

    try:
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return src
    out = []
    changed = False
    for tok in toks:
        if (
            tok.type == tokenize.NAME
            and keyword.iskeyword(tok.string)
            and tok.string not in _OPERATOR_WORDS
        ):
            key = f"_kw{len(alias)}_"
            alias[key] = tok.string
            tok = tok._replace(string=key)
            changed = True
        out.append((tok.type, tok.string))
    return tokenize.untokenize(out) if changed else src


def compile_filter(text: str) -> FilterExpr:
    """Parse and check a filter expression; raises :class:`FilterError` (one line) if bad.

    Parameters
    ----------
    text : str
        E.g. ``"z < 0.05 and mag_r < 17"``.
    """
    if not isinstance(text, str) or not text.strip():
        raise FilterError("the filter is empty")
    if len(text) > _MAX_FILTER_LEN:
        raise FilterError(
            f"the filter is too long ({len(text)} characters; at most {_MAX_FILTER_LEN})"
        )
    alias: dict[str, str] = {}

    def quote(m: re.Match[str]) -> str:
        key = f"_bq{len(alias)}_"
        alias[key] = m.group(1)
        return f" {key} "

    if text.count("`") % 2:
        raise FilterError("a backquote ` is not closed")
    src = re.sub(r"`([^`]*)`", quote, text)
    src = " ".join(src.splitlines())  # a pasted line break is a space
    src = _alias_keywords(src, alias)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as exc:
        hint = ""
        if re.search(r"(?<![=!<>])=(?!=)", src):
            hint = " (compare with ==, not =)"
        elif re.search(r"&&|\|\|", src):
            hint = " (write and / or)"
        raise FilterError(f"cannot read the filter {text!r}: {exc.msg}{hint}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FilterError("the filter is too deeply nested") from None
    try:
        nodes = list(ast.walk(tree))
        for node in nodes:
            _check_node(node)
    except RecursionError:
        raise FilterError("the filter is too deeply nested") from None
    funcs = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    names: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Name) and id(node) not in funcs:
            nm = alias.get(node.id, node.id)
            if nm not in names:
                names.append(nm)
    return FilterExpr(text, tree, names, alias)


_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.BinOp,
    ast.Call,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.BitAnd,
    ast.BitOr,
    ast.Invert,
    *_CMP,
    *_ARITH,
    ast.In,
    ast.NotIn,
)


def _check_node(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED):
        what = type(node).__name__
        friendly = {
            "Attribute": "attribute access (a.b)",
            "Subscript": "indexing (a[b])",
            "Lambda": "lambda",
            "IfExp": "if/else",
            "NamedExpr": ":=",
            "Pow": "**",
            "FloorDiv": "//",
            "Mod": "%",
            "Dict": "{...}",
            "ListComp": "comprehensions",
            "GeneratorExp": "comprehensions",
            "JoinedStr": "f-strings",
            "Starred": "*",
            "Await": "await",
            "Is": "is",
            "IsNot": "is not",
        }.get(what, what)
        raise FilterError(f"{friendly} is not allowed in a filter; {_HELP}")
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool)):
        raise FilterError(f"{node.value!r} is not allowed in a filter; {_HELP}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
            raise FilterError(f"only abs(), log10() and sqrt() can be called in a filter; {_HELP}")
        if len(node.args) != 1 or node.keywords:
            raise FilterError(f"{node.func.id}() takes one argument")
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        for elt in node.elts:
            ok = isinstance(elt, ast.Constant) or (
                isinstance(elt, ast.UnaryOp)
                and isinstance(elt.op, ast.USub)
                and isinstance(elt.operand, ast.Constant)
            )
            if not ok:
                raise FilterError("a list in a filter holds only numbers or 'quoted text'")


class _Evaluator:
    """Evaluates a checked tree to (kind, array); kind is number, bool or text."""

    def __init__(self, columns: Mapping[str, np.ndarray], alias: dict[str, str], n: int) -> None:
        self.columns = columns
        self.alias = alias
        self.n = n
        self._lower: dict[str, list[str]] = {}
        for c in columns:
            self._lower.setdefault(c.lower(), []).append(c)

    def column(self, name: str) -> tuple[str, np.ndarray]:
        if name in self.columns:
            key = name
        else:
            found = self._lower.get(name.lower(), [])
            if len(found) != 1:
                raise FilterError(
                    f"unknown column {name!r} in the filter; columns: "
                    f"{_list_names(list(self.columns))}"
                )
            key = found[0]
        arr = np.asarray(self.columns[key])
        if arr.dtype.kind == "b":
            return "bool", arr
        if arr.dtype.kind in "iuf":
            return "number", arr.astype(np.float64, copy=False)
        return "text", arr.astype(object, copy=False)

    def visit(self, node: ast.AST) -> tuple[str, Any]:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                return "bool", np.bool_(v)
            if isinstance(v, (int, float)):
                return "number", np.float64(v)
            return "text", v
        if isinstance(node, ast.Name):
            return self.column(self.alias.get(node.id, node.id))
        if isinstance(node, ast.BoolOp):
            vals = [self._bool(self.visit(v), "and/or") for v in node.values]
            op = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = vals[0]
            for v in vals[1:]:
                out = op(out, v)
            return "bool", out
        if isinstance(node, ast.UnaryOp):
            kind, v = self.visit(node.operand)
            if isinstance(node.op, (ast.Not, ast.Invert)):
                return "bool", np.logical_not(self._bool((kind, v), "not"))
            if kind != "number":
                raise FilterError("a minus sign needs a number")
            return "number", -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
                a = self._bool(self.visit(node.left), "&")
                b = self._bool(self.visit(node.right), "|")
                return "bool", (a & b) if isinstance(node.op, ast.BitAnd) else (a | b)
            a_kind, a = self.visit(node.left)
            b_kind, b = self.visit(node.right)
            if a_kind != "number" or b_kind != "number":
                raise FilterError("arithmetic (+ - * /) works on numeric columns only")
            with np.errstate(all="ignore"):
                return "number", _ARITH[type(node.op)](a, b)
        if isinstance(node, ast.Call):
            kind, v = self.visit(node.args[0])
            if kind != "number":
                raise FilterError(f"{node.func.id}() needs a number")  # type: ignore[attr-defined]
            with np.errstate(all="ignore"):
                return "number", _FUNCS[node.func.id](v)  # type: ignore[attr-defined]
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            out: Any = np.bool_(True)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)):
                    res = self._member(left, comp)
                    if isinstance(op, ast.NotIn):
                        res = ~res
                    right = left
                else:
                    right = self.visit(comp)
                    res = self._compare(left, right, op)
                out = np.logical_and(out, res)
                left = right
            return "bool", out
        raise FilterError(f"{type(node).__name__} is not allowed in a filter")  # pragma: no cover

    def _bool(self, value: tuple[str, Any], where: str) -> Any:
        kind, v = value
        if kind != "bool":
            raise FilterError(
                f"{where} needs true/false on both sides (a comparison or a true/false "
                f"column), got {'numbers' if kind == 'number' else 'text'}"
            )
        return v

    def _compare(self, a: tuple[str, Any], b: tuple[str, Any], op: ast.cmpop) -> Any:
        (ak, av), (bk, bv) = a, b
        if ak == "bool" and bk == "number":
            ak, av = "number", np.asarray(av, dtype=np.float64)
        if bk == "bool" and ak == "number":
            bk, bv = "number", np.asarray(bv, dtype=np.float64)
        if (ak == "text") != (bk == "text"):
            raise FilterError(
                "text is compared with a number; quote text ('spiral') and compare numeric "
                "columns with numbers"
            )
        fn = _CMP[type(op)]
        if ak == "text":
            av = np.asarray(av, dtype=object) if not isinstance(av, str) else av
            bv = np.asarray(bv, dtype=object) if not isinstance(bv, str) else bv
            if isinstance(av, str) and isinstance(bv, str):
                return np.bool_(bool(fn(av, bv)))
            with np.errstate(all="ignore"):
                return np.asarray(fn(av, bv), dtype=bool)
        with np.errstate(invalid="ignore"):
            return fn(av, bv)  # NaN compares false (!= compares true)

    def _member(self, a: tuple[str, Any], node: ast.AST) -> Any:
        if not isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            raise FilterError("'in' needs a list, e.g. class in ('spiral', 'ring')")
        vals = [
            -e.operand.value if isinstance(e, ast.UnaryOp) else e.value  # type: ignore[attr-defined]
            for e in node.elts
        ]
        kind, v = a
        if kind == "text":
            if not all(isinstance(x, str) for x in vals):
                raise FilterError("a text column is compared with numbers in a list")
            return np.isin(np.asarray(v, dtype=object), np.array(vals, dtype=object))
        if not all(isinstance(x, (int, float)) and not isinstance(x, str) for x in vals):
            raise FilterError("a numeric column is compared with text in a list")
        return np.isin(np.asarray(v, dtype=np.float64), np.array(vals, dtype=np.float64))


def filter_rows(cat: Catalogue, text: str) -> np.ndarray:
    """Boolean mask of the catalogue rows that ``text`` keeps (see :func:`compile_filter`)."""
    expr = compile_filter(text)
    cols = {}
    for name in expr.names:
        try:
            real = cat.resolve_column(name)
        except CatalogueError:
            raise FilterError(
                f"unknown column {name!r} in the filter; columns: {_list_names(cat.columns)}"
            ) from None
        cols[name] = cat.values(real)
    return expr.evaluate(cols, cat.n)
