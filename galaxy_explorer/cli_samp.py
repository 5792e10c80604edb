"""``galaxy-explorer export --samp [CLIENT]``: send the exported rows to SAMP clients."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from galaxy_explorer.core._text import terminal_text as term

__all__ = ["send_rows"]


def send_rows(
    rows: Sequence[Any],
    provenance: Any,
    labels: Sequence[str] | None,
    client: str,
    *,
    timeout: float = 20,
) -> int:
    """Send rows as a VOTable (``table.load.votable``) and wait for each client's reply.

    Parameters
    ----------
    rows : sequence of ExportRow
        The rows to send (what the export selected).
    provenance : Provenance
        Travels in the VOTable's ``INFO`` elements.
    labels : sequence of str, optional
        Zero-shot label names (``p_<label>`` columns).
    client : str
        ``"all"`` or a client's name (``TOPCAT``) or id.
    timeout : float
        Seconds to wait for each client to load the table.

    Returns
    -------
    int
        0 when at least one client loaded the table, else 1.

    Raises
    ------
    CliError
        No hub, no client accepting tables, or no client of that name (one line).
    """
    from galaxy_explorer.cli_common import CliError
    from galaxy_explorer.core.samp import SampError, SampLink
    from galaxy_explorer.core.tables import votable_bytes

    link = SampLink()
    try:
        link.connect()
        data = votable_bytes(rows, provenance, labels)
        name = "galaxy-explorer"
        if provenance is not None and getattr(provenance, "query", None):
            name = f"galaxy-explorer: {provenance.query}"[:80]
        sent, results = link.send_table(
            data,
            name=name,
            keys=list(range(len(rows))),
            client=None if client == "all" else client,
            wait=timeout,
        )
    except SampError as exc:
        raise CliError(f"SAMP: {exc}") from None
    finally:
        link.close()
    ok = 0
    for who, result in sorted(results.items()):
        if result == "ok":
            ok += 1
            print(f"sent {len(rows)} rows to {term(who)} (SAMP)", file=sys.stderr)
        else:
            print(f"error: SAMP client {term(who)}: {term(result)}", file=sys.stderr)
    return 0 if ok else 1
