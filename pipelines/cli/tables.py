"""Every listing the commands print: one kind of table at the terminal's width (80 columns when piped, or
COLUMNS), or the same rows as JSON with ``--json``."""

from __future__ import annotations

import json
from typing import Any, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_rows(rows: Sequence[dict[str, Any]]) -> None:
    """The rows as a JSON list, for scripts."""
    print(json.dumps(list(rows), indent=2, default=str))


def print_table(title: str | None, columns: Sequence[str], cells: Sequence[Sequence[str]], wide: str | None = None,
                empty: str = "nothing to list") -> None:
    """A table of ``cells`` under ``columns``; the ``wide`` column takes the room left and folds, the others
    keep their cells on one line. ``empty`` is printed instead of a table with no rows."""
    if not cells:
        print(empty)
        return
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in columns:
        if column == wide:
            table.add_column(column, overflow="fold", ratio=1)
        else:
            table.add_column(column, no_wrap=True, overflow="ellipsis")
    for row in cells:
        table.add_row(*(Text(str(cell)) for cell in row))  # as written: brackets in a reason are not markup
    Console(highlight=False).print(table)
