"""Tables that stay whole wherever they are printed: a terminal, a pipe, a CI log.

Printed to a pipe, rich assumes 80 columns and cuts what does not fit with "…", so a figure can
come out as "0.…". Every rich Console reads the COLUMNS variable when it is set, so the CLI sets
it once, before any command runs, when its output is not a terminal (`widen_for_logs`): every
table of every command is then drawn LOG_COLUMNS wide. A user's own COLUMNS wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence
from typing import TextIO

LOG_COLUMNS = 160


def widen_for_logs(
    environ: MutableMapping[str, str] = os.environ, stream: TextIO | None = None
) -> None:
    """COLUMNS=LOG_COLUMNS when `stream` (default: the sys.stdout of the moment) is not a
    terminal and COLUMNS is not set."""
    stream = sys.stdout if stream is None else stream
    if not stream.isatty() and not environ.get("COLUMNS", "").strip():
        environ["COLUMNS"] = str(LOG_COLUMNS)


def print_table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """Two columns, figure and value; a cell too wide for its column wraps, never is cut."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("figure", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
