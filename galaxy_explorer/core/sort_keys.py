"""Sort keys for the gallery's label and catalogue-column orders, vectorised and worker-safe.

Two keys feed :func:`galaxy_explorer.core.state.display_order`:

- :func:`manual_codes` turns each row's manual label (a Python string or None) into the
  label's place in an order of label names (``-1``: unlabelled), by dict look-ups over
  chunks of rows, so the window stays responsive while a worker does this for a million
  rows.
- :func:`catalogue_sort_key` turns a column of the user's catalogue into one ``float64``
  key per catalogue row, NaN where the value is missing: numbers as they are (whatever their
  unit), text that is all ``number unit`` (``"12.5 kpc"``) by its number converted to one
  unit, other text by its case-insensitive rank, booleans as 0 / 1. The key of a column is
  kept in the catalogue's own cache, so a re-sort (rows streaming in, a new page size)
  costs one gather. :func:`item_sort_key` reads it per cutout through a match.

Text is ranked with numpy's sort of fixed-width strings, which releases the GIL; the
strings are converted to it in chunks for the same reason (one ``np.array`` over a million
strings held the GIL ~0.4 s, a Python ``sorted`` ~5 s, measured on the 2-core machine).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["catalogue_sort_key", "item_sort_key", "manual_codes", "text_ranks"]

#: Rows per step when Python objects (labels, strings) are turned into arrays.
CHUNK = 32_768
#: ``number`` then an optional unit, e.g. ``12.5 kpc``, ``-3e2``, ``0.7 deg``.
_NUMBER_UNIT = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s.+\-].*?)?\s*$"
)
#: Non-empty values looked at before a text column is tried as ``number unit`` in full.
_PROBE = 1000


def manual_codes(
    manual: Sequence[str | None], names: Sequence[str], chunk: int = CHUNK
) -> np.ndarray:
    """Per row, the index of its manual label in ``names`` (-1: none, or not in ``names``).

    One dict look-up per row, a chunk of rows per list (the GIL is given up between
    bytecodes; 0.1 s for 1M rows whatever the number of labels, where comparing the rows
    with each label in numpy took 0.2-1.8 s and held the GIL up to 0.25 s on the loaded
    2-core machine).

    Parameters
    ----------
    manual : sequence of str or None
        Each row's label (a private copy: this may run on a worker).
    names : sequence of str
        The labels in the order wanted.
    chunk : int
        Rows per list built at once.

    Returns
    -------
    ndarray
        int64 codes, one per row.
    """
    n = len(manual)
    out = np.full(n, -1, dtype=np.int64)
    if not n or not len(names):
        return out
    index: dict[str | None, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    get = index.get
    for s in range(0, n, chunk):
        out[s : s + chunk] = [get(m, -1) for m in manual[s : s + chunk]]
    return out


def text_ranks(values: Sequence[str], chunk: int = CHUNK) -> np.ndarray:
    """Dense case-insensitive rank of each string (``float64``); ``''`` gives NaN.

    Equal strings (ignoring case) get equal ranks, so a stable sort by the rank keeps
    their earlier order.
    """
    n = len(values)
    out = np.full(n, np.nan, dtype=np.float64)
    if not n:
        return out
    width = 1
    for s in range(0, n, chunk):
        width = max(width, max((len(v) for v in values[s : s + chunk]), default=1))
    folded = np.empty(n, dtype=f"<U{width}")
    for s in range(0, n, chunk):  # casefold in Python (a list, GIL-friendly), copy in numpy
        folded[s : s + chunk] = [v.casefold() for v in values[s : s + chunk]]
    has = folded != ""
    idx = np.flatnonzero(has)
    if not len(idx):
        return out
    order = np.argsort(folded[idx], kind="stable")  # releases the GIL
    srt = folded[idx][order]
    new = np.empty(len(srt), dtype=bool)
    new[0] = True
    np.not_equal(srt[1:], srt[:-1], out=new[1:])
    rank = np.empty(len(srt), dtype=np.float64)
    rank[order] = np.cumsum(new) - 1
    out[idx] = rank
    return out


def _number_unit(values: Sequence[str]) -> np.ndarray | None:
    """Numbers of a text column whose every value is ``number [unit]``, in one unit.

    Returns None if some value is not of that form or the units cannot be converted to one
    another (astropy units; one conversion per distinct unit, not per row).
    """
    present = [v for v in values[: _PROBE * 4] if v.strip()][:_PROBE]
    if not present or not all(_NUMBER_UNIT.match(v) for v in present):
        return None
    nums = np.full(len(values), np.nan, dtype=np.float64)
    unit_of = np.full(len(values), -1, dtype=np.int64)
    units: dict[str, int] = {}
    for i, v in enumerate(values):
        if not v.strip():
            continue
        m = _NUMBER_UNIT.match(v)
        if m is None:
            return None
        nums[i] = float(m.group(1))
        unit = (m.group(2) or "").strip()
        unit_of[i] = units.setdefault(unit, len(units))
    if len(units) > 1:
        factors = _unit_factors(list(units))
        if factors is None:
            return None
        has = unit_of >= 0
        nums[has] *= factors[unit_of[has]]
    return nums


def _unit_factors(units: list[str]) -> np.ndarray | None:
    """Factors that convert each unit to the first one (None if any cannot be)."""
    import astropy.units as u

    try:
        base = u.Unit(units[0])
        return np.array([u.Unit(x).to(base) for x in units], dtype=np.float64)
    except (ValueError, TypeError, u.UnitsError):
        return None


def _missing_mask(cat: Any, column: str) -> np.ndarray:
    col = cat.table[column]
    mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), dtype=bool)
    return mask if mask.ndim == 1 and len(mask) == len(col) else np.zeros(len(col), bool)


def catalogue_sort_key(cat: Any, column: str) -> np.ndarray:
    """One ``float64`` sort key per catalogue row (NaN: no value), kept in the cache.

    Parameters
    ----------
    cat : Catalogue
        The user's catalogue (:class:`galaxy_explorer.core.catalogue.Catalogue`).
    column : str
        One of its columns (``cat.resolve_column`` names).

    Returns
    -------
    ndarray
        Numbers as they are (a unit does not change their order); text of the form
        ``number unit`` as numbers in one unit; other text as case-insensitive ranks;
        booleans as 0 / 1.
    """
    key = f"\x00sortkey:{column}"
    cached = cat._cache.get(key)
    if cached is not None:
        return cached
    kind = cat.kind(column)
    if kind == "number":
        out = np.asarray(cat.values(column), dtype=np.float64)
    elif kind == "bool":
        out = np.asarray(cat.values(column), dtype=np.float64).copy()
        missing = _missing_mask(cat, column)
        if cat.table[column].dtype.kind != "b":  # True / False as text: '' is missing
            missing |= _blank(cat, column)
        out[missing] = np.nan
    else:
        text = cat.values(column)  # str objects, '' where missing
        # in chunks: one tolist() of a million objects held the GIL ~0.1 s
        strs = [str(v) for s in range(0, len(text), CHUNK) for v in text[s : s + CHUNK].tolist()]
        out = _number_unit(strs)
        if out is None:
            out = text_ranks([s.strip() for s in strs])
    cat._cache[key] = out
    return out


def _blank(cat: Any, column: str) -> np.ndarray:
    """Cells of a text column that are empty (after stripping)."""
    col = cat.table[column]
    data = np.asarray(getattr(col, "data", col))
    return np.array(
        [
            not (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()
            for v in data.tolist()
        ],
        dtype=bool,
    )


def item_sort_key(
    cat: Any, column: str, row_of_item: np.ndarray, *, descending: bool = False
) -> np.ndarray:
    """The column's sort key per cutout (NaN where it has no catalogue row or value).

    ``descending`` negates the key (missing values stay NaN, so they still sort last).
    """
    per_row = catalogue_sort_key(cat, column)
    rows = np.asarray(row_of_item, dtype=np.int64)
    out = np.full(len(rows), np.nan, dtype=np.float64)
    has = (rows >= 0) & (rows < len(per_row))
    out[has] = per_row[rows[has]]
    if descending:
        np.negative(out, out=out)
    return out
