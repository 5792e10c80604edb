"""Catalogues on the command line: ``--catalogue FILE`` and ``galaxy-explorer label``.

``--catalogue FILE`` (on ``query``, ``classify`` and ``export``) matches a table's rows to
the cutouts (:mod:`galaxy_explorer.core.catalogue`) and adds its columns to the CSV.
``label DIR --import FILE`` brings labels in from a table (matched by path, sha256 or
RA/Dec) through the labels store, so it is safe beside other writers; ``label DIR
--export FILE`` writes them out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galaxy_explorer.core._text import terminal_text as _term

if TYPE_CHECKING:  # pragma: no cover
    from galaxy_explorer.core.catalogue import Catalogue, Match
    from galaxy_explorer.core.session import Session

#: How many rows without a cutout are listed on stderr (the count is always given).
LIST_UNMATCHED = 20


def _tolerance(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected arcseconds, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"the tolerance must be positive, got {text!r}")
    return v


def add_match_args(g: Any) -> None:
    """The options that say how catalogue rows find their cutouts."""
    g.add_argument(
        "--match",
        default="auto",
        choices=["auto", "path", "sha256", "radec"],
        dest="match_by",
        help="how rows find their cutouts: auto (a sha256 column, else a path or file-name "
        "column, else RA/Dec; default), path, sha256 or radec",
    )
    g.add_argument(
        "--match-column",
        default=None,
        metavar="COL",
        dest="match_column",
        help="the column holding paths, file names, IDs equal to the file's stem, or sha256",
    )
    g.add_argument(
        "--ra-column",
        default=None,
        metavar="COL",
        dest="ra_column",
        help="RA column (default: ra, ra_deg, raj2000, … in degrees, hours with a unit, or "
        "sexagesimal text)",
    )
    g.add_argument(
        "--dec-column",
        default=None,
        metavar="COL",
        dest="dec_column",
        help="Dec column (default: dec, dec_deg, dej2000, …)",
    )
    g.add_argument(
        "--tolerance",
        type=_tolerance,
        default=2.0,
        metavar="ARCSEC",
        help="largest RA/Dec match distance in arcseconds (default 2)",
    )


def add_catalogue_args(p: argparse.ArgumentParser) -> None:
    """``--catalogue FILE`` and the match options, for query / classify / export."""
    g = p.add_argument_group("catalogue (your own table of the galaxies)")
    g.add_argument(
        "--catalogue",
        type=Path,
        default=None,
        metavar="FILE",
        help="a table (.fits .csv .ecsv .vot .xml) whose columns are added to the CSV output, "
        "rows matched to cutouts by path, sha256 or RA/Dec",
    )
    add_match_args(g)


def _options(args: argparse.Namespace) -> Any:
    from galaxy_explorer.core.catalogue import MatchOptions

    return MatchOptions(
        by=args.match_by,
        column=args.match_column,
        ra_column=args.ra_column,
        dec_column=args.dec_column,
        tolerance_arcsec=args.tolerance,
    )


def match_session(
    session: Session, args: argparse.Namespace, path: Path
) -> tuple[Catalogue, Match]:
    """Open ``path`` and match it to the session's scanned items; report on stderr."""
    from galaxy_explorer.cli_common import EXIT_USAGE, CliError
    from galaxy_explorer.core.catalogue import (
        CatalogueError,
        match_catalogue,
        open_catalogue,
        unmatched_lines,
    )

    try:
        cat = open_catalogue(path)
        match = match_catalogue(
            cat, session.items, lambda: session.sky_positions(session.items), _options(args)
        )
    except CatalogueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    for note in match.notes:
        print(f"note: {_term(note)}", file=sys.stderr)
    print(f"catalogue {_term(cat.name)}: {match.summary()}", file=sys.stderr)
    for line in unmatched_lines(cat, match, LIST_UNMATCHED):
        print(f"  {_term(line)}", file=sys.stderr)
    return cat, match


def load_for_session(session: Session, args: argparse.Namespace) -> None:
    """With ``--catalogue``: match it now (before any model loads), keep it on the session."""
    path = getattr(args, "catalogue", None)
    if path is None:
        return
    if getattr(args, "csv", None) is None:
        print("note: --catalogue columns are written to the --csv output", file=sys.stderr)
    session.catalogue = match_session(session, args, path)


def add_catalogue_columns(session: Session, rows: list[Any]) -> None:
    """Give export rows the catalogue's columns (``ExportRow.extra``) when one is open."""
    link = getattr(session, "catalogue", None)
    if link is None or not rows:
        return
    from galaxy_explorer.core.catalogue import export_values

    cat, match = link
    index = {str(it.path): i for i, it in enumerate(session.items)}
    which = [index.get(str(r.path), -1) for r in rows]
    _, values = export_values(cat, match, which)
    for r, v in zip(rows, values, strict=True):
        r.extra = {**(r.extra or {}), **v}


# ----------------------------------------------------------------------------- label
def add_label_command(sub: Any) -> None:
    """Register ``label DIR --import FILE | --export FILE``."""
    p = sub.add_parser(
        "label",
        help="bring manual labels in from a table (e.g. Galaxy Zoo), or write them out",
        description="Import manual labels from a catalogue table (rows matched to the cutouts "
        "of DIR by path, sha256 or RA/Dec), or export the labels of DIR as CSV. Labels go "
        "through the same store as the app's, safe beside other windows and scripts.",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="less output"
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output"
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="folder of cutouts (or one file)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--import",
        dest="import_file",
        type=Path,
        metavar="FILE",
        help="table to read labels from (.fits .csv .ecsv .vot .xml)",
    )
    what.add_argument(
        "--export",
        dest="export_file",
        type=Path,
        metavar="FILE",
        help="write path, name, sha256, ra, dec and label of every labelled image "
        "as CSV ('-' = stdout)",
    )
    p.add_argument(
        "--label-column",
        default=None,
        metavar="COL",
        dest="label_column",
        help="with --import: the column holding the labels (default: the first of "
        "label, manual_label, class, classification, gz2class, morphology, type)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --import: replace labels the images already have (default: keep them)",
    )
    add_match_args(p.add_argument_group("matching rows to cutouts (--import)"))
    p.add_argument(
        "--cache", type=Path, default=None, help="cache folder (remembers file hashes and WCS)"
    )
    p.add_argument(
        "--labels-file",
        type=Path,
        default=None,
        dest="labels_file",
        help="manual labels file (default: one per folder in the user data folder)",
    )
    p.set_defaults(func=cmd_label)


def _label_session(args: argparse.Namespace) -> Session:
    from galaxy_explorer.cli_common import EXIT_NOTHING, CliError, check_session_args
    from galaxy_explorer.core.session import Session

    check_session_args(args)
    session = Session(args.dir, cache_dir=args.cache, labels_path=args.labels_file)
    result = session.scan()
    for path, reason in result.errors:
        print(f"warning: {_term(path)}: {_term(reason)}", file=sys.stderr)
    if not result.items and args.import_file is not None:
        raise CliError(f"{_term(args.dir)}: no image files found", EXIT_NOTHING)
    return session


def cmd_label(args: argparse.Namespace) -> int:
    from galaxy_explorer.cli_common import EXIT_NOTHING, EXIT_USAGE, CliError
    from galaxy_explorer.core.labels import LabelsFileError

    session = _label_session(args)
    try:
        try:
            store = session.labels
        except LabelsFileError as exc:
            raise CliError(str(exc), EXIT_NOTHING) from None
        for w in getattr(store, "warnings", None) or []:
            print(f"warning: {_term(w)}", file=sys.stderr)
        if args.import_file is not None:
            return _import_labels(session, store, args)
        if args.label_column or args.overwrite:
            raise CliError("--label-column and --overwrite go with --import", EXIT_USAGE)
        return _export_labels(session, store, args)
    finally:
        session.close()


def _import_labels(session: Session, store: Any, args: argparse.Namespace) -> int:
    from galaxy_explorer.cli_common import EXIT_NOTHING, EXIT_OK, EXIT_USAGE, CliError
    from galaxy_explorer.core.catalogue import LABEL_COLUMNS, CatalogueError

    cat, match = match_session(session, args, args.import_file)
    try:
        col = (
            cat.resolve_column(args.label_column)
            if args.label_column
            else cat.find_column(LABEL_COLUMNS)
        )
    except CatalogueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if col is None:
        raise CliError(
            f"{_term(cat.name)}: no label column ({', '.join(LABEL_COLUMNS)}); name one with "
            f"--label-column (columns: {', '.join(cat.columns[:12])})",
            EXIT_USAGE,
        )
    texts = cat.text_values(col)
    existing = store.all()
    by_label: dict[str, list[int]] = {}
    empty = unchanged = kept = 0
    for r, i in enumerate(match.item_of_row.tolist()):
        if i < 0:
            continue
        label = texts[r].strip()
        if not label or label.lower() in ("nan", "--", "none", "null"):
            empty += 1
            continue
        sha = session.items[i].sha256
        old = existing.get(sha)
        if old == label:
            unchanged += 1
        elif old is not None and not args.overwrite:
            kept += 1
        else:
            by_label.setdefault(label, []).append(i)
    written = 0
    for label, idx in by_label.items():
        shas = [session.items[i].sha256 for i in idx]
        paths = [session.items[i].path for i in idx]
        try:
            store.set(shas, label, paths=paths)  # one transaction per label
        except ValueError as exc:
            print(f"warning: label {_term(label)!r} skipped: {_term(exc)}", file=sys.stderr)
            continue
        except OSError as exc:
            raise CliError(
                f"cannot save labels ({written} saved so far): {exc.strerror or exc}"
            ) from None
        written += len(shas)
    parts = [f"imported {written} labels ({len(by_label)} classes) from column {col!r}"]
    if unchanged:
        parts.append(f"{unchanged} already had that label")
    if kept:
        parts.append(f"{kept} kept a different existing label (--overwrite replaces them)")
    if empty:
        parts.append(f"{empty} matched rows had an empty label")
    missing = len(match.unmatched)
    if missing:
        parts.append(f"{missing} rows had no cutout (listed above)")
    print(_term("; ".join(parts)), file=sys.stderr)
    if not getattr(args, "quiet", False):
        counts = store.counts()
        for label, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"{n:8d}  {_term(label)}")
    return EXIT_OK if (written or unchanged or kept) else EXIT_NOTHING


def _export_labels(session: Session, store: Any, args: argparse.Namespace) -> int:
    import os

    from galaxy_explorer.cli_common import EXIT_OK, EXIT_USAGE, CliError
    from galaxy_explorer.core.export import ExportRow, Provenance
    from galaxy_explorer.core.tables import TableError, format_for, write_table

    out = args.export_file
    try:  # CSV, ECSV, VOTable, FITS or Parquet by the extension (unknown ones: CSV)
        kind = format_for(None if str(out) == "-" else out, None)
    except TableError as exc:
        raise CliError(f"{_term(out)}: {exc}", EXIT_USAGE) from None
    from galaxy_explorer.cli_common import check_out_not_input

    check_out_not_input(
        None if str(out) == "-" else out,
        session,
        [("the labels file", args.labels_file), ("the labels file", getattr(store, "path", None))],
    )
    labels = store.all()
    scanned = [it for it in session.items if it.sha256 in labels]
    positions = session.sky_positions(scanned)
    rows = [
        ExportRow(
            path=str(it.path),
            name=it.name,
            sha256=it.sha256,
            ra=ra,
            dec=dec,
            label=labels[it.sha256],
        )
        for it, (ra, dec) in zip(scanned, positions, strict=True)
    ]
    seen = {it.sha256 for it in scanned}
    gone = 0
    for sha, label in sorted(labels.items()):  # labelled files no longer in DIR: kept too
        if sha in seen:
            continue
        p = store.path_of(sha)
        rows.append(
            ExportRow(
                path=os.fspath(p) if p else "", name=p.name if p else "", sha256=sha, label=label
            )
        )
        gone += 1
    prov = Provenance(
        model="",
        extra={"command": "label --export", "labels_file": str(store.path)}
        if hasattr(store, "path")
        else {"command": "label --export"},
    )
    try:
        n = write_table(sys.stdout if str(out) == "-" else out, rows, prov, fmt=kind)
    except TableError as exc:
        raise CliError(f"{_term(out)}: {exc}", EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"{_term(out)}: cannot write {kind}: {exc.strerror or exc}") from None
    msg = f"wrote {n} labels" + ("" if str(out) == "-" else f" to {_term(out)}")
    if gone:
        msg += f" ({gone} of them for files no longer in {_term(args.dir)}, at their last path)"
    print(msg, file=sys.stderr)
    return EXIT_OK
