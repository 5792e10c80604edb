"""Help text shared by every ``galaxy-explorer`` command: the formatter and the epilog."""

from __future__ import annotations

import argparse

#: The environment variables the program reads, for the epilog of ``galaxy-explorer --help``.
ENVIRONMENT_HELP = """\
environment variables:
  GALAXY_EXPLORER_CACHE      embedding cache folder (default: the user cache folder)
  GALAXY_EXPLORER_DATA       user data folder: manual labels (default: the user data folder)
  GALAXY_EXPLORER_LOG        the desktop app's log file (default: in the user log folder)
  GALAXY_EXPLORER_RESOURCES  folder with the bundled model/ and sample/ (default: shipped)
  HF_HOME, HF_HUB_CACHE      where Hugging Face hub models are cached (--model HUB_ID)
  HF_HUB_OFFLINE=1           never download: use only models already in the hub cache
  HF_ENDPOINT                the Hugging Face hub server to download models from
  QT_QPA_PLATFORM            Qt platform plugin, e.g. offscreen to run the app headless
"""


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, except where there is nothing to show.

    Unlike :class:`argparse.ArgumentDefaultsHelpFormatter` it adds no "(default: None)",
    nothing to flags (``--resume``, ``--no-lupton``, ``-v``), and leaves help that already
    names its default alone. A description or epilog with line breaks (the list of
    environment variables) is printed as written; one without is wrapped.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default == []
            or default is argparse.SUPPRESS
            or action.nargs == 0  # flags: store_true / store_false / count / version
            or "%(default)" in text
            or "default" in text.lower()
        ):
            return text
        optional_positional = action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)
        if not action.option_strings and not optional_positional:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def use_formatter(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and all its subcommands' parsers :class:`HelpFormatter`."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                use_formatter(sub)
