r"""Text that any output can hold, for paths and names made of any bytes.

A POSIX file name is any bytes but ``/`` and NUL. Python hands names that are not valid
UTF-8 over as str with surrogate escapes (``os.fsdecode``), which a UTF-8 file or a strict
terminal cannot encode. :func:`utf8_text` writes each such byte as ``\xNN`` (Python's own
notation); :func:`terminal_text` also escapes control characters (ESC, line breaks, bidi
overrides, ...) so a file name cannot move the cursor, recolour or rewrite a terminal.
"""

from __future__ import annotations

import os
import re

__all__ = ["terminal_text", "utf8_text"]

# C0 and C1 controls, DEL, line / paragraph separators, bidirectional formatting characters
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def utf8_text(value: object) -> str:
    r"""Valid Unicode text for a str, bytes or path; undecodable bytes become ``\xNN``.

    Parameters
    ----------
    value : str, bytes, path or object
        A path or name (anything else is ``str()``-ed).

    Returns
    -------
    str
        Equal to the input whenever it is valid UTF-8 text.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that are not escaped bytes
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def terminal_text(value: object) -> str:
    r"""A path, name or message made safe to print: :func:`utf8_text`, controls escaped.

    ``"a\x1b[31mb"`` becomes ``"a\\x1b[31mb"``; a newline in a file name becomes ``\n``
    shown as ``\x0a``, so one message stays one line.
    """
    return _CONTROL.sub(_escape, utf8_text(value))
