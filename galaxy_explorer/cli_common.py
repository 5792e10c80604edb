"""What the command-line modules share: the user-facing error, exit statuses and checks.

:mod:`galaxy_explorer.cli` and its sub-command modules (``cli_cache``, ``cli_catalogue``,
``cli_samp``) import these from here, so no sub-command module imports the main one back.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from galaxy_explorer.core._text import terminal_text as _term

if TYPE_CHECKING:
    from galaxy_explorer.core.session import Session

__all__ = [
    "EXIT_NOTHING",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "check_cache_arg",
    "check_out_not_input",
    "check_session_args",
]

EXIT_OK, EXIT_NOTHING, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_NOTHING) -> None:
        super().__init__(message)
        self.code = code


def check_cache_arg(cache: Path | None) -> None:
    """Refuse a ``--cache`` that names a file.

    Raises
    ------
    CliError
        ``cache`` exists and is not a folder (exit status 2).
    """
    if cache is not None and cache.exists() and not cache.is_dir():
        raise CliError(f"--cache {_term(cache)}: is a file, not a folder", EXIT_USAGE)


def check_session_args(args: argparse.Namespace) -> None:
    """Check ``args.dir``, ``args.cache`` and ``args.labels_file`` before opening a session.

    Raises
    ------
    CliError
        The folder does not exist, ``--cache`` is a file or ``--labels-file`` is a folder
        (exit status 2).
    """
    if not args.dir.exists():
        raise CliError(f"{_term(args.dir)}: no such file or directory", EXIT_USAGE)
    check_cache_arg(args.cache)
    if args.labels_file is not None and args.labels_file.is_dir():
        raise CliError(
            f"--labels-file {_term(args.labels_file)}: is a folder, not a labels file", EXIT_USAGE
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except (OSError, ValueError):
        return False


def check_out_not_input(out: Path | None, session: Session, inputs: Sequence[Any] = ()) -> None:
    """Refuse an output file that is one of the command's inputs: writing would destroy it.

    Parameters
    ----------
    out : Path, optional
        The output file (``None`` or ``-``: nothing to check).
    session : Session
        Its scanned images and cache folder are inputs.
    inputs : sequence of (str, Path or None)
        Other inputs, e.g. ``("the catalogue", path)``.

    Raises
    ------
    CliError
        With exit status 2, before anything is written.
    """
    if out is None or str(out) == "-":
        return
    try:
        st = out.stat()
    except (OSError, ValueError):
        return  # not there yet (or unreachable: the writer reports that)
    import stat

    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        # the writer renames a finished file into place: a device node (as root, e.g.
        # /dev/full) or a FIFO would be replaced by a plain file
        raise CliError(
            f"{_term(out)}: not a regular file (a device, pipe or socket); give a file "
            "name, or '-' for standard output",
            EXIT_USAGE,
        )
    for what, path in inputs:
        if path is not None and _same_file(out, Path(path)):
            raise CliError(
                f"{_term(out)}: is {what}; writing the output there would destroy it "
                "(choose another file)",
                EXIT_USAGE,
            )
    for it in session.items:
        if it.size == st.st_size and _same_file(out, it.path):
            raise CliError(
                f"{_term(out)}: is one of the input images; writing the output there would "
                "destroy it (choose another file)",
                EXIT_USAGE,
            )
    try:
        in_cache = out.resolve().is_relative_to(session.cache_dir.resolve())
    except (OSError, ValueError):
        in_cache = False
    if in_cache:
        raise CliError(
            f"{_term(out)}: is inside the embedding cache; choose another file", EXIT_USAGE
        )
