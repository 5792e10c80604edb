"""The ``galaxy-explorer`` command line.

``galaxy-explorer`` with no arguments opens the desktop app on the bundled sample
catalogue. The headless commands (``embed``, ``query``, ``similar``, ``classify``,
``export``) do the same jobs on a folder, e.g. embedding on a GPU node and browsing on a
laptop from the same cache.

Results go to stdout, messages and progress to stderr. Exit status: 0 on success, 1 when
nothing could be processed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galaxy_explorer import __version__
from galaxy_explorer.cli_common import EXIT_NOTHING as EXIT_NOTHING
from galaxy_explorer.cli_common import EXIT_OK as EXIT_OK
from galaxy_explorer.cli_common import EXIT_USAGE as EXIT_USAGE
from galaxy_explorer.cli_common import CliError as CliError
from galaxy_explorer.cli_common import check_cache_arg as _check_cache_arg
from galaxy_explorer.cli_common import check_out_not_input as check_out_not_input
from galaxy_explorer.cli_common import check_session_args
from galaxy_explorer.core._text import terminal_text as _term

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from galaxy_explorer.core.catalog import Item
    from galaxy_explorer.core.session import Session

log = logging.getLogger("galaxy_explorer")


# --------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _percentile(text: str) -> float:
    v = _number(text)
    if not 50 < v <= 100:
        raise argparse.ArgumentTypeError(f"percentile must be in (50, 100], got {v:g}")
    return v


def _probability(text: str) -> float:
    v = _number(text)
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return v


def _bands(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0:
        raise argparse.ArgumentTypeError(
            f"--bands takes three plane indices like 2,1,0, got {text!r}"
        )
    return parts  # type: ignore[return-value]


def _hdu(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def _add_common(p: argparse.ArgumentParser, *, need_dir: bool = True) -> None:
    p.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar"
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output"
    )
    if need_dir:
        p.add_argument(
            "dir",
            metavar="DIR",
            type=Path,
            help="folder of cutouts (scanned recursively) or one file",
        )
    g = p.add_argument_group("model and cache")
    g.add_argument(
        "--model",
        default="auto",
        help="hub id or model folder; 'auto' = the seed model juppy44/galaxy-clip-finetuned "
        "if already in the local Hugging Face cache, else the bundled model (default)",
    )
    g.add_argument(
        "--revision",
        default=None,
        metavar="R",
        help="with a hub id in --model: the branch, tag or commit to use (default main)",
    )
    g.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache folder (default: the user cache folder)",
    )
    g.add_argument(
        "--labels-file",
        type=Path,
        default=None,
        dest="labels_file",
        help="manual labels file (default: one per folder in the user data folder)",
    )
    g.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="compute device (default: auto = cuda > mps > cpu)",
    )
    g.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16"],
        help="auto = fp16 on a GPU; on the CPU bf16 autocast where the processor has "
        "native bf16 (AVX512-BF16 or AMX; about 2x faster, same rankings), "
        "else fp32 (default)",
    )
    g.add_argument(
        "--batch-size",
        type=_positive_int,
        default=32,
        dest="batch_size",
        help="images per model batch",
    )
    g.add_argument("--workers", type=_positive_int, default=2, help="image decoding threads")
    g.add_argument(
        "--retry-failed",
        action="store_true",
        help="retry files that failed before (they are otherwise retried only when changed)",
    )
    r = p.add_argument_group("FITS rendering (part of the cache key)")
    r.add_argument(
        "--stretch",
        default="asinh",
        choices=["linear", "log", "sqrt", "asinh", "histeq"],
        help="intensity stretch of FITS data",
    )
    r.add_argument(
        "--limits",
        default="percentile",
        choices=["minmax", "percentile", "zscale"],
        help="how the stretch's black and white levels are chosen",
    )
    r.add_argument(
        "--percentile",
        type=_percentile,
        default=99.5,
        help="with --limits percentile: the white level's percentile",
    )
    r.add_argument(
        "--hdu", type=_hdu, default=None, help="HDU index or EXTNAME (default: first image HDU)"
    )
    r.add_argument("--bands", type=_bands, default=None, help="cube planes for R,G,B, e.g. 2,1,0")
    r.add_argument(
        "--no-lupton",
        dest="lupton",
        action="store_false",
        help="stretch each band separately instead of Lupton asinh colour",
    )


def _add_output(p: argparse.ArgumentParser, top: bool = True) -> None:
    if top:
        p.add_argument(
            "--top", type=_positive_int, default=20, help="how many results (default 20)"
        )
    p.add_argument(
        "--csv",
        type=Path,
        default=None,
        metavar="OUT",
        help="also write the results as a table ('-' = stdout): CSV, or by extension "
        ".ecsv .vot .fits .parquet",
    )
    _add_table_format(p)
    _add_excel_safe(p)


def _add_table_format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        dest="table_format",
        default=None,
        choices=["csv", "ecsv", "votable", "fits", "parquet"],
        help="table format (default from the file extension, else csv); ecsv, votable, "
        "fits and parquet carry units (deg for RA/Dec) and provenance as metadata",
    )


def _add_excel_safe(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--excel-safe",
        action="store_true",
        dest="excel_safe",
        help="prefix ' to CSV text cells starting with = + - @ so spreadsheets do not run "
        "them as formulas (changes those values; off by default)",
    )


def _add_label_args(p: argparse.ArgumentParser, required: bool, *, defaults: bool = False) -> None:
    p.add_argument(
        "--labels",
        required=required,
        default=None,
        help='comma-separated zero-shot labels, e.g. "spiral galaxy,elliptical galaxy"'
        + (" (default: the desktop app's classes and prompts)" if defaults else ""),
    )
    p.add_argument(
        "--templates",
        default=None,
        help='"|"-separated prompt templates with {} for the label (default: the desktop '
        "app's, from default_labels.json)",
    )
    p.add_argument(
        "--threshold",
        type=_probability,
        default=0.0,
        help="below this probability the prediction is 'uncertain' (default 0)",
    )


def build_parser() -> argparse.ArgumentParser:
    from galaxy_explorer._help import ENVIRONMENT_HELP, use_formatter
    from galaxy_explorer.cli_catalogue import add_catalogue_args, add_label_command

    parser = argparse.ArgumentParser(
        prog="galaxy-explorer",
        description="Explore folders of galaxy cutouts (FITS, JPEG, PNG, TIFF) with a CLIP-style model. "
        "Without a command, opens the desktop app on the bundled sample catalogue.",
        epilog=ENVIRONMENT_HELP,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    desk = parser.add_mutually_exclusive_group()
    desk.add_argument(
        "--install-desktop",
        action="store_true",
        dest="install_desktop",
        help="add Galaxy Explorer to the application menu (Linux: the user's "
        "$XDG_DATA_HOME/applications and icons) and exit",
    )
    desk.add_argument(
        "--uninstall-desktop",
        action="store_true",
        dest="uninstall_desktop",
        help="remove that menu entry and its icons and exit",
    )

    p = sub.add_parser(
        "gui",
        aliases=["open"],
        help="open the desktop app (on DIR, or the sample catalogue)",
        description="Open the desktop app on folders or files of cutouts; with none, "
        "on the bundled sample catalogue.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="DIR",
        help="folders or files to open (default: the sample catalogue); a table "
        "(.fits table, .csv, .ecsv, .vot, .xml) opens as a catalogue beside the images",
    )
    p.add_argument(
        "--images",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help="with a catalogue table: the folder of its cutouts (default: the folder its "
        "path column points into)",
    )
    p.add_argument(
        "--model",
        default="auto",
        help="hub id or model folder; 'auto' = the model chosen last time in the app, "
        "else the seed model if already in the local Hugging Face cache, else the "
        "bundled model (default)",
    )
    p.add_argument(
        "--revision", default=None, metavar="R", help="with a hub id in --model: its revision"
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="embedding cache folder (default: the user cache folder)",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda", "mps"],
        help="compute device (default: auto = cuda > mps > cpu)",
    )
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser(
        "models", help="list the models on this machine (name, size, where, default)"
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "download",
        help="download a CLIP-style model from the Hugging Face hub "
        "(only the files it needs; Ctrl+C stops, a re-run resumes)",
    )
    p.add_argument("repo_id", metavar="REPO_ID", help="hub id, e.g. juppy44/galaxy-clip-finetuned")
    p.add_argument(
        "--revision", default=None, metavar="R", help="branch, tag or commit (default main)"
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar"
    )
    p.set_defaults(func=cmd_download)

    p = sub.add_parser(
        "embed", help="embed every cutout in DIR into the cache (only what it lacks)"
    )
    _add_common(p)
    e = p.add_argument_group("engine")
    e.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="local (default) or ray: a Ray Data actor pool on a Ray cluster "
        "(pip install 'galaxy-explorer[ray]')",
    )
    e.add_argument(
        "--address",
        default=None,
        help="with --engine ray: the cluster (auto, HOST:6379, ray://HOST:10001); "
        "default or 'local': a new local Ray instance",
    )
    e.add_argument(
        "--actors",
        type=_positive_int,
        default=None,
        help="with --engine ray: most model actors (default: one per GPU, else by CPUs)",
    )
    e.add_argument(
        "--staging",
        type=Path,
        default=None,
        help="with --engine ray: folder every node shares, where workers write shards "
        "(default: inside the cache folder)",
    )
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("query", help="rank cutouts by a free-text description")
    _add_common(p)
    p.add_argument("text", help='e.g. "spiral galaxy with prominent arms"')
    _add_output(p)
    add_catalogue_args(p)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("similar", help="rank cutouts by similarity to example image(s)")
    _add_common(p)
    p.add_argument(
        "examples", nargs="+", type=Path, metavar="IMAGE", help="one or more example cutouts"
    )
    p.add_argument(
        "--not",
        dest="negatives",
        nargs="+",
        type=Path,
        default=[],
        metavar="IMAGE",
        help="negative examples: rank images like these lower",
    )
    p.add_argument("--text", default=None, help="optional text to combine with the examples")
    p.add_argument(
        "--include-self", action="store_true", help="keep the example images in the results"
    )
    _add_output(p)
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("classify", help="zero-shot classification into the given labels")
    _add_common(p)
    _add_label_args(p, required=False, defaults=True)
    _add_output(p, top=False)
    add_catalogue_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "export",
        help="write a subset (or everything) as a table with provenance "
        "(CSV, ECSV, VOTable, FITS, Parquet), or send it to SAMP clients",
    )
    _add_common(p)
    p.add_argument(
        "--csv",
        "--out",
        "-o",
        dest="csv",
        type=Path,
        default=None,
        metavar="OUT",
        help="output table ('-' = stdout); the format follows the extension "
        "(.csv .ecsv .vot .fits .parquet) or --format",
    )
    _add_table_format(p)
    p.add_argument(
        "--samp",
        nargs="?",
        const="all",
        default=None,
        metavar="CLIENT",
        help="send the table to SAMP clients (TOPCAT, Aladin...) on the running hub as a "
        "VOTable: all that accept tables, or the one named CLIENT; with or without --out",
    )
    p.add_argument(
        "--samp-timeout",
        type=_positive_int,
        default=20,
        metavar="S",
        help="with --samp: seconds to wait for each client to load the table (default 20)",
    )
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--query", default=None, help="select the --top K best matches of this text")
    sel.add_argument("--label", default=None, help="select items with this manual label")
    sel.add_argument(
        "--predicted", default=None, help="select items whose zero-shot prediction is this label"
    )
    sel.add_argument(
        "--paths-from",
        type=Path,
        default=None,
        dest="paths_from",
        help="select the paths listed in this file (one per line, or a CSV with a 'path' column)",
    )
    p.add_argument(
        "--top", type=_positive_int, default=100, help="with --query: how many (default 100)"
    )
    _add_excel_safe(p)
    _add_label_args(p, required=False)
    add_catalogue_args(p)
    p.set_defaults(func=cmd_export)

    from galaxy_explorer.cli_cache import add_cache_command

    add_cache_command(sub)
    add_label_command(sub)

    for module, fn in (
        ("galaxy_explorer.train.synth", "add_synth_command"),
        ("galaxy_explorer.train.train", "add_train_command"),
    ):
        if importlib.util.find_spec(module) is not None:
            getattr(importlib.import_module(module), fn)(sub)
    use_formatter(parser)
    return parser


# -------------------------------------------------------------------------- helpers
def _render(args: argparse.Namespace) -> Any:
    from galaxy_explorer.core.imaging import RenderSettings

    return RenderSettings(
        stretch=args.stretch,
        limits=args.limits,
        percentile=args.percentile,
        hdu=args.hdu,
        bands=args.bands,
        lupton=args.lupton,
    )


# sessions a command opened: main() closes them (the cache index and labels store) before it
# returns, so a command run in-process (tests, scripts) leaves no database connection behind
# for the garbage collector to close at some later moment
_OPEN_SESSIONS: list[Session] = []


def _close_sessions() -> None:
    while _OPEN_SESSIONS:
        session = _OPEN_SESSIONS.pop()
        try:
            session.close()
        except Exception:  # noqa: BLE001 - closing must not hide the command's result
            log.debug("closing a session failed", exc_info=True)


def _open_session(args: argparse.Namespace) -> Session:
    from galaxy_explorer.core.model import ModelLoadError
    from galaxy_explorer.core.session import Session

    check_session_args(args)
    args.model = _model_spec(args)
    session = Session(
        args.dir,
        model=args.model,
        cache_dir=args.cache,
        device=args.device,
        precision=args.precision,
        render=_render(args),
        labels_path=args.labels_file,
        text_first=True,  # the image tower is read only if an image must be embedded
    )
    _OPEN_SESSIONS.append(session)
    result = session.scan()
    for path, reason in result.errors:
        print(f"warning: {_term(path)}: {_term(reason)}", file=sys.stderr)
    if not result.items:
        from galaxy_explorer.core.imaging import IMAGE_EXTENSIONS

        raise CliError(
            f"{args.dir}: no image files found (looked for {' '.join(IMAGE_EXTENSIONS)})"
        )
    check_out_not_input(  # before any work: --csv / --out must not overwrite an input
        getattr(args, "csv", None),
        session,
        [
            ("the catalogue", getattr(args, "catalogue", None)),
            ("the --paths-from file", getattr(args, "paths_from", None)),
            ("the labels file", args.labels_file),
            *(("an example image", p) for p in getattr(args, "examples", None) or []),
            *(("an example image", p) for p in getattr(args, "negatives", None) or []),
        ],
    )
    from galaxy_explorer.cli_catalogue import load_for_session

    load_for_session(session, args)  # --catalogue: read and matched before the model loads
    try:
        adapter = session.adapter
    except ModelLoadError as exc:
        raise CliError(f"model: {exc}") from None
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if not args.quiet:
        from galaxy_explorer.core.hub import display_name

        print(
            f"model {_term(display_name(adapter.spec))} on {adapter.device} ({adapter.precision}), "
            f"{len(result.items)} images, cache {_term(session.cache_dir)}",
            file=sys.stderr,
        )
    return session


def _run_embedding(session: Session, args: argparse.Namespace) -> tuple[list[Item], np.ndarray]:
    """Embed what the cache lacks with a progress bar; return the items that have vectors."""
    from tqdm import tqdm

    if getattr(args, "engine", "local") == "ray":
        job = _ray_job(session, args)
    else:
        job = session.embed(
            batch_size=args.batch_size, workers=args.workers, retry_failed=args.retry_failed
        )
    bar = None
    last = None
    try:
        for prog in job:
            if bar is None:
                bar = tqdm(
                    total=prog.total,
                    initial=prog.done,
                    unit="img",
                    file=sys.stderr,
                    disable=args.quiet or prog.finished,
                    dynamic_ncols=True,
                    desc="embedding",
                )
            else:
                bar.update(prog.done - bar.n)
            for path, reason in prog.errors:
                (bar.write if bar else print)(
                    f"skipped {_term(path)}: {_term(reason)}", file=sys.stderr
                )
            last = prog
    except KeyboardInterrupt:
        job.close()
        raise CliError("interrupted: batches already embedded are kept in the cache", 130) from None
    finally:
        if bar is not None:
            bar.close()
    assert last is not None
    print(
        f"{last.embedded} embedded, {last.cached} cached, {last.failed} failed "
        f"({last.total} unique images)",
        file=sys.stderr,
    )
    if last.not_cached:
        print(
            f"note: the cache {session.cache_dir} is read-only; {last.not_cached} image(s) it "
            "lacks were not embedded and are left out",
            file=sys.stderr,
        )
    items, vecs = session.embeddings()
    if not items:
        raise CliError("no image could be embedded; see the messages above")
    return items, vecs


def _label_defs(text: str | None) -> list[Any]:
    """``--labels`` as label definitions; without it, the app's default classes and prompts."""
    from galaxy_explorer.core.defaults import LabelDef, load_default_labels

    if text is None:
        return load_default_labels()[0]
    return [LabelDef(n) for n in _label_list(text)]


def _label_list(text: str | None) -> list[str]:
    labels = [s.strip() for s in (text or "").split(",") if s.strip()]
    if text is not None and len(labels) < 2:
        raise CliError("--labels needs at least two comma-separated labels", EXIT_USAGE)
    if len(set(labels)) != len(labels):
        raise CliError("--labels has a label twice", EXIT_USAGE)
    return labels


def _templates(args: argparse.Namespace) -> list[str] | None:
    if not getattr(args, "templates", None):
        return None
    temps = [t.strip() for t in args.templates.split("|") if t.strip()]
    bad = [t for t in temps if "{}" not in t]
    if bad:
        raise CliError(
            f"prompt template {bad[0]!r} has no {{}} placeholder for the label", EXIT_USAGE
        )
    return temps


def _provenance(
    session: Session,
    args: argparse.Namespace,
    *,
    labels: Sequence[Any] | None = None,
    query: str | None = None,
    extra: dict[str, str] | None = None,
) -> Any:
    from galaxy_explorer.core import workflows

    return workflows.provenance(
        session.adapter,
        session.render.key(),
        command=args.command,
        labels=labels,
        templates=_templates(args),
        query=query,
        extra=extra,
    )


def _rows(
    session: Session,
    items: Sequence[Item],
    *,
    scores: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    threshold: float = 0.0,
) -> list[Any]:
    from galaxy_explorer.core import workflows
    from galaxy_explorer.core.labels import LabelsFileError

    try:
        manual = session.labels.all()
    except LabelsFileError as exc:
        raise CliError(str(exc)) from None
    rows = workflows.export_rows(
        items,
        positions=session.sky_positions(items),  # from the cache: files are not opened again
        manual=manual,
        scores=scores,
        probs=probs,
        label_names=labels,
        threshold=threshold,
    )
    from galaxy_explorer.cli_catalogue import add_catalogue_columns

    add_catalogue_columns(session, rows)  # --catalogue: its columns after the standard ones
    return rows


def _check_table_out(out: Path | None, fmt: str | None) -> None:
    """Fail fast (before any work) on an output the table writers would refuse."""
    if out is None:
        return
    from galaxy_explorer.core.tables import format_for

    kind = format_for(out, fmt)
    if str(out) == "-" and kind not in ("csv", "ecsv"):
        raise CliError(f"--format {kind} is binary: give a file name, not '-'", EXIT_USAGE)
    if kind == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise CliError("Parquet needs pyarrow: pip install pyarrow", EXIT_USAGE)


def _write_csv(
    out: Path,
    rows: list[Any],
    prov: Any,
    labels: list[str] | None,
    excel_safe: bool = False,
    fmt: str | None = None,
) -> None:
    """Write a table: CSV (the one CSV writer) or, by ``fmt`` / extension, through astropy."""
    from galaxy_explorer.core.tables import TableError, format_for, write_table

    kind = format_for(None if str(out) == "-" else out, fmt)
    try:
        if str(out) == "-":
            write_table(sys.stdout, rows, prov, labels, fmt=kind, excel_safe=excel_safe)
        else:
            n = write_table(out, rows, prov, labels, fmt=kind, excel_safe=excel_safe)
            print(f"wrote {n} rows to {_term(out)} ({kind})", file=sys.stderr)
    except TableError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(
            f"{_term(out)}: cannot write {kind.upper()}: {exc.strerror or exc}"
        ) from None


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    rows = [[_term(c) for c in r] for r in rows]  # names and paths: any bytes, no controls
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    fmt = "  ".join(f"{{:{'>' if i == 0 else '<'}{w}}}" for i, w in enumerate(widths[:-1])) + "  {}"
    print(fmt.format(*header))
    for r in rows:
        print(fmt.format(*r))


def _ranked_output(
    session: Session, args: argparse.Namespace, items: list[Item], scores: np.ndarray, prov: Any
) -> int:
    from galaxy_explorer.core.search import top_k

    idx = top_k(scores, args.top)
    chosen = [items[i] for i in idx]
    if str(args.csv) != "-":
        _print_table(
            ["rank", "score", "name", "path"],
            [
                [str(r + 1), f"{scores[i]:.4f}", items[i].name, str(items[i].path)]
                for r, i in enumerate(idx)
            ],
        )
    if args.csv is not None:
        _write_csv(
            args.csv,
            _rows(session, chosen, scores=scores[idx]),
            prov,
            None,
            args.excel_safe,
            args.table_format,
        )
    return EXIT_OK


def _ray_job(session: Session, args: argparse.Namespace) -> Any:
    """The Ray engine's embedding job, with its errors turned into one-line CLI errors."""
    from galaxy_explorer.core import ray_engine

    job = ray_engine.ray_embed_job(
        session.items,
        session.adapter,
        session.store,
        session.render,
        address=args.address,
        actors=args.actors,
        use_gpu=None if args.ray_device == "auto" else args.ray_device == "cuda",
        precision=args.precision,
        batch_size=args.batch_size,
        workers=args.workers,
        staging=args.staging,
        retry_failed=args.retry_failed,
        announce=None if args.quiet else lambda msg: print(msg, file=sys.stderr),
    )
    try:
        yield from job
    except (ray_engine.RayEngineError, ray_engine.RayUnavailableError) as exc:
        raise CliError(str(exc)) from None
    finally:
        job.close()


# ------------------------------------------------------------------------- commands
def cmd_embed(args: argparse.Namespace) -> int:
    ray_only = [f"--{n}" for n in ("address", "actors", "staging") if getattr(args, n) is not None]
    if args.engine != "ray" and ray_only:
        raise CliError(f"{', '.join(ray_only)} only go with --engine ray", EXIT_USAGE)
    if args.engine == "ray":
        from galaxy_explorer.core.ray_engine import (
            RayEngineError,
            RayUnavailableError,
            check_reachable,
            require_ray,
        )

        try:
            require_ray()
        except RayUnavailableError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        try:
            check_reachable(args.address)
        except RayEngineError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        # the driver's model only names the weights (model key, dim): the actors get --device
        args.ray_device, args.device = args.device, "cpu"
    session = _open_session(args)
    items, _ = _run_embedding(session, args)
    print(f"{len(items)} images have embeddings in {session.cache_dir}", file=sys.stderr)
    return EXIT_OK


def _ann_index(session: Session, items: list[Item], vecs: np.ndarray) -> Any:
    """The approximate index for ``query`` / ``similar`` at a million rows and more, or None."""
    from galaxy_explorer.core import workflows

    return workflows.ann_index(
        vecs, [it.sha256 for it in items], workflows.session_space(session), session.cache_dir
    )


def cmd_query(args: argparse.Namespace) -> int:
    if not args.text.strip():
        raise CliError("the query text is empty", EXIT_USAGE)
    from galaxy_explorer.core import workflows

    session = _open_session(args)
    items, vecs = _run_embedding(session, args)
    index = _ann_index(session, items, vecs)
    scores = workflows.rank(vecs, session.adapter, text=args.text, top=args.top, index=index).scores
    return _ranked_output(
        session,
        args,
        items,
        scores,
        _provenance(session, args, query=args.text, extra={"top": str(args.top)}),
    )


def cmd_similar(args: argparse.Namespace) -> int:
    from galaxy_explorer.core import workflows
    from galaxy_explorer.core.catalog import scan
    from galaxy_explorer.core.imaging import ImageLoadError

    for p in [*args.examples, *args.negatives]:
        if not p.exists():
            raise CliError(f"{p}: no such file", EXIT_USAGE)
    session = _open_session(args)
    items, vecs = _run_embedding(session, args)
    try:
        pos = [workflows.example_vector(session, p) for p in args.examples]
        neg = [workflows.example_vector(session, p) for p in args.negatives]
    except ImageLoadError as exc:
        raise CliError(f"example image: {exc}") from None
    index = _ann_index(session, items, vecs)
    top = args.top + len(pos) + len(neg)  # the examples themselves may be left out below
    scores = workflows.rank(
        vecs,
        session.adapter,
        text=args.text or "",
        positive=pos,
        negative=neg,
        top=top,
        index=index,
    ).scores
    if not args.include_self:
        own = {it.sha256 for it in scan([*args.examples, *args.negatives]).items}
        keep = [i for i, it in enumerate(items) if it.sha256 not in own]
        items, scores = [items[i] for i in keep], scores[keep]
    desc = "similar to " + ", ".join(str(p) for p in args.examples)
    if args.negatives:
        desc += "; not like " + ", ".join(str(p) for p in args.negatives)
    if args.text:
        desc += f"; text: {args.text}"
    return _ranked_output(
        session,
        args,
        items,
        scores,
        _provenance(session, args, query=desc, extra={"top": str(args.top)}),
    )


def cmd_classify(args: argparse.Namespace) -> int:
    from galaxy_explorer.core import workflows

    defs = _label_defs(args.labels)
    labels = [d.name for d in defs]
    templates = _templates(args)
    session = _open_session(args)
    items, vecs = _run_embedding(session, args)
    probs = workflows.zero_shot_probs(
        session.adapter, vecs, workflows.label_vectors(session.adapter, defs, templates)
    )
    rows = _rows(session, items, probs=probs, labels=labels, threshold=args.threshold)
    if str(args.csv) != "-":
        _print_table(
            ["#", "predicted", "p", "name", "path"],
            [
                [str(i + 1), r.predicted_label, f"{probs[i].max():.3f}", r.name, str(r.path)]
                for i, r in enumerate(rows)
            ],
        )
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.predicted_label] = counts.get(r.predicted_label, 0) + 1
        print(
            "counts: "
            + _term(
                ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
            ),
            file=sys.stderr,
        )
    if args.csv is not None:
        _write_csv(
            args.csv,
            rows,
            _provenance(session, args, labels=defs, extra={"threshold": str(args.threshold)}),
            labels,
            args.excel_safe,
            args.table_format,
        )
    return EXIT_OK


def _paths_from(file: Path) -> list[Path]:
    import csv

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CliError(f"{_term(file)}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from None
    if b"\x00" in data:
        raise CliError(
            f"{_term(file)}: a binary file, not a list of paths (one per line, or a CSV "
            "with a 'path' column)",
            EXIT_USAGE,
        )
    text = data.decode("utf-8", "surrogateescape")  # names in any bytes are kept exactly
    lines = [ln for ln in text.split("\n") if ln.strip() and not ln.startswith("#")]
    try:
        if lines and "path" in next(csv.reader([lines[0]])):
            return [Path(r["path"]) for r in csv.DictReader(lines) if r.get("path")]
    except csv.Error as exc:
        raise CliError(f"{_term(file)}: not a readable CSV: {exc}", EXIT_USAGE) from None
    return [Path(ln.strip()) for ln in lines]


def cmd_export(args: argparse.Namespace) -> int:
    from galaxy_explorer.core import workflows

    labels = _label_list(args.labels) if args.labels else None
    if args.predicted and not labels:
        raise CliError("--predicted needs --labels to classify with", EXIT_USAGE)
    if args.predicted and args.predicted not in labels and args.predicted != "uncertain":
        raise CliError(f"--predicted {args.predicted!r} is not one of --labels", EXIT_USAGE)
    if args.csv is None and args.samp is None:
        raise CliError("export needs --out FILE, --samp [CLIENT], or both", EXIT_USAGE)
    _check_table_out(args.csv, args.table_format)
    listed = _paths_from(args.paths_from) if args.paths_from is not None else None  # fail fast
    session = _open_session(args)
    items, vecs = _run_embedding(session, args)
    scores = probs = None
    query = None
    sel = list(range(len(items)))
    if args.query is not None:
        from galaxy_explorer.core.search import top_k

        scores = workflows.rank(vecs, session.adapter, text=args.query).scores
        sel = [int(i) for i in top_k(scores, args.top)]
        query = args.query
    if labels:
        probs = workflows.zero_shot_probs(
            session.adapter,
            vecs,
            workflows.label_vectors(session.adapter, labels, _templates(args)),
        )
    rows = _rows(
        session, items, scores=scores, probs=probs, labels=labels, threshold=args.threshold
    )
    if args.label is not None:
        sel = [i for i in sel if rows[i].label == args.label]
        query = f"manual label = {args.label}"
    elif args.predicted is not None:
        sel = [i for i in sel if rows[i].predicted_label == args.predicted]
        query = f"predicted label = {args.predicted}"
    elif args.paths_from is not None:
        from galaxy_explorer.core.export import text_for_csv

        # keyed by the exported text form, so a path exported as gal\xff.png selects the file
        wanted = [text_for_csv(p.expanduser().resolve()) for p in listed or []]
        index = {text_for_csv(it.path.resolve()): i for i, it in enumerate(items)}
        missing = [p for p in wanted if p not in index]
        for p in missing:
            print(f"warning: {_term(p)}: not in the catalogue or has no embedding", file=sys.stderr)
        sel = [index[p] for p in wanted if p in index]
        query = f"paths from {args.paths_from}"
    chosen = [rows[i] for i in sel]
    prov = _provenance(session, args, labels=labels, query=query)
    if args.csv is not None:
        _write_csv(args.csv, chosen, prov, labels, args.excel_safe, args.table_format)
        if not sel:
            print("warning: the selection is empty; wrote the header only", file=sys.stderr)
    if args.samp is not None:
        from galaxy_explorer.cli_samp import send_rows

        return send_rows(chosen, prov, labels, args.samp, timeout=args.samp_timeout)
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    _check_cache_arg(args.cache)
    try:
        from galaxy_explorer.gui.app import run_app
    except ImportError as exc:
        raise CliError(f"the desktop app cannot start: {exc}") from None
    model = _model_spec(args, fetch=False)  # the app downloads it (off the GUI thread) itself
    from galaxy_explorer.core.catalogue import looks_like_table

    tables = [p for p in args.paths if looks_like_table(p)]
    images = [p for p in args.paths if p not in tables] + list(args.images or [])
    if len(tables) > 1:
        raise CliError("open one catalogue table at a time", EXIT_USAGE)
    if args.images and not tables:
        raise CliError("--images goes with a catalogue table", EXIT_USAGE)
    for p in [*tables, *images] if tables else []:
        if not p.exists():
            raise CliError(f"{_term(p)}: no such file or directory", EXIT_USAGE)
    paths = images if tables else list(args.paths) or None
    return int(
        run_app(
            paths,
            model=model,
            cache_dir=args.cache,
            device=args.device,
            catalogue=tables[0] if tables else None,
        )
    )


# --------------------------------------------------------------------------- models
def _model_spec(args: argparse.Namespace, fetch: bool = True) -> str:
    """``--model`` with ``--revision`` folded in (``org/name@R``); fetch a hub id not yet here.

    A hub id typed on the command line is consent to download it: with ``fetch`` it is
    downloaded now, with a progress bar, unless it is in the local cache already.
    """
    from galaxy_explorer.core import hub

    model, revision = str(args.model), getattr(args, "revision", None)
    if revision:
        if not hub.is_hub_id(model) or "@" in model:
            raise CliError(f"--revision needs a hub id in --model (got {model!r})", EXIT_USAGE)
        model = hub.join_spec(model, revision)
    if fetch and hub.is_hub_id(model):
        repo_id, rev = hub.split_spec(model)
        if hub.local_snapshot(repo_id, rev) is None and not hub.offline():
            _download(repo_id, rev, quiet=bool(getattr(args, "quiet", False)))
    return model


def _download(repo_id: str, revision: str | None, quiet: bool) -> Any:
    """Run a download with a progress bar on stderr; Ctrl+C stops it (a re-run resumes)."""
    from tqdm import tqdm

    from galaxy_explorer.core import hub

    try:
        plan = hub.plan_download(repo_id, revision)
    except hub.HubError as exc:
        raise CliError(str(exc)) from None
    if not quiet:
        print(f"downloading {plan.describe()} from {plan.endpoint}", file=sys.stderr)
    job = hub.download_job(plan)
    bar = None
    last = None
    try:
        for last in job:
            if bar is None:
                bar = tqdm(
                    total=last.total,
                    initial=last.done,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1000,
                    file=sys.stderr,
                    disable=quiet,
                    dynamic_ncols=True,
                    desc=repo_id.split("/")[-1],
                )
            else:
                bar.update(last.done - bar.n)
    except KeyboardInterrupt:
        job.close()  # leaves the partial file; the next run resumes it
        if bar is not None:
            bar.close()
        raise CliError(
            f"interrupted: {hub.format_bytes(plan.present_bytes())} of "
            f"{hub.format_bytes(plan.total_bytes)} kept; run the same command again "
            "to resume",
            130,
        ) from None
    except hub.HubError as exc:
        if bar is not None:
            bar.close()
        raise CliError(str(exc)) from None
    if bar is not None:
        bar.close()
    if last is None or last.snapshot is None:
        raise CliError(f"{repo_id}: download did not finish; run again to resume")
    return last.snapshot


def cmd_models(args: argparse.Namespace) -> int:
    from galaxy_explorer.core import hub
    from galaxy_explorer.core.model import hub_cache_dir

    models = hub.list_local_models()
    _print_table(
        ["default", "name", "size", "--model", "where"],
        [
            ["*" if m.default else "", m.name, hub.format_bytes(m.size), m.spec, str(m.path)]
            for m in models
        ],
    )
    print(
        f"{len(models)} models (Hugging Face cache: {hub_cache_dir()}); * = what --model auto uses",
        file=sys.stderr,
    )
    if not any(m.spec == hub.SEED_MODEL for m in models):
        print(f"for real survey images: galaxy-explorer download {hub.SEED_MODEL}", file=sys.stderr)
    return EXIT_OK


def cmd_download(args: argparse.Namespace) -> int:
    from galaxy_explorer.core import hub

    repo_id, revision = hub.split_spec(args.repo_id)
    revision = args.revision or revision
    snapshot = hub.local_snapshot(repo_id, revision) if hub.offline() else None
    if snapshot is not None:  # offline, but already here: nothing to do
        print(
            f"{repo_id}: already in the local cache (offline: not checked for updates)",
            file=sys.stderr,
        )
    else:
        snapshot = _download(repo_id, revision, quiet=bool(getattr(args, "quiet", False)))
    print(snapshot)
    print(f"use it with --model {hub.join_spec(repo_id, revision)}", file=sys.stderr)
    return EXIT_OK


# ----------------------------------------------------------------------------- main
class _TermFormatter(logging.Formatter):
    """One line per message, control characters (from file names) escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        return _term(super().formatMessage(record))


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    for h in list(root.handlers):  # main() may run more than once in a process (tests, scripts)
        if getattr(h, "_galaxy_explorer_cli", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    # file names in messages: no raw control characters on the terminal
    handler.setFormatter(_TermFormatter("%(levelname)s %(name)s: %(message)s"))
    handler._galaxy_explorer_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    if verbose == 0:
        # the image loader reports bad files itself, one line each; astropy's own warnings
        # about the same files would only repeat it
        import warnings

        warnings.filterwarnings("ignore", module=r"astropy(\..*)?$")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if args.install_desktop or args.uninstall_desktop:
        return _desktop_command(install=args.install_desktop)
    if args.command is None:
        args = parser.parse_args(["gui"])
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"error: {_term(exc)}", file=sys.stderr)
        return exc.code
    except FileNotFoundError as exc:
        print(f"error: {_term(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        from galaxy_explorer.core.cache import CacheError

        if not isinstance(exc, CacheError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOTHING
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        _close_sessions()


def _desktop_command(*, install: bool) -> int:
    """``--install-desktop`` / ``--uninstall-desktop``: the menu entry in the XDG folders."""
    if sys.platform in ("win32", "darwin"):
        print(
            "error: --install-desktop is for Linux desktops; on macOS and Windows the app "
            "bundle is the installer (see packaging/README.md)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from galaxy_explorer._desktop import DesktopError, install_desktop, uninstall_desktop

    try:
        files = install_desktop() if install else uninstall_desktop()
    except DesktopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOTHING
    if install:
        print(
            f"added Galaxy Explorer to the application menu ({files[0]}) "
            f"and {len(files) - 1} icon files",
            file=sys.stderr,
        )
    elif files:
        print(f"removed the menu entry and icons ({len(files)} files)", file=sys.stderr)
    else:
        print("no menu entry was installed; nothing to remove", file=sys.stderr)
    return EXIT_OK


def gui_main() -> int:
    """Entry point of the ``galaxy-explorer-gui`` GUI script."""
    return main(["gui", *sys.argv[1:]])


if __name__ == "__main__":  # python -m galaxy_explorer.cli ... (same as python -m galaxy_explorer)
    raise SystemExit(main())
