"""What the command-line modules share: the user-facing error, exit statuses and checks.

:mod:`galaxy_explorer.cli` and its sub-command modules (``cli_cache``, ``cli_catalogue``,
``cli_samp``) import these from here, so no sub-command module imports the main one back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from galaxy_explorer.core._text import terminal_text as _term

__all__ = [
    "EXIT_NOTHING",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "check_cache_arg",
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
