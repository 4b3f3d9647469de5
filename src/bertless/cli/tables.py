"""Tables that stay whole wherever they are printed: a terminal, a pipe, a CI log.

Printed to a pipe, rich assumes 80 columns and cuts what does not fit with "…", so a figure can
come out as "0.…". Here no cell is ever cut: a table is drawn at least `MIN_WIDTH` columns wide
when the output is not a terminal, and a cell too wide for its column wraps (`overflow="fold"`)
instead of being shortened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

MIN_WIDTH = 160


def console(stderr: bool = False) -> Console:
    """A rich Console; when the output is not a terminal, MIN_WIDTH columns instead of 80."""
    from rich.console import Console

    found = Console(stderr=stderr)
    if not found.is_terminal:
        found = Console(stderr=stderr, width=max(found.width, MIN_WIDTH))
    return found


def table(title: str, columns: Sequence[str], right: Sequence[str] = ()) -> Table:
    """A table whose cells wrap rather than being cut; `right` names right-aligned columns."""
    from rich.table import Table

    made = Table(title=title)
    for column in columns:
        made.add_column(column, justify="right" if column in right else "left", overflow="fold")
    return made


def print_table(title: str, rows: Sequence[tuple[str, str]], out: Console | None = None) -> None:
    """Two columns, figure and value, printed whole."""
    shown = table(title, ("figure", "value"), right=("value",))
    for row in rows:
        shown.add_row(*row)
    (out or console()).print(shown)
