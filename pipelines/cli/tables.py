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
                empty: str = "nothing to list", key: str | None = None) -> None:
    """A table of ``cells`` under ``columns`` at the terminal's width: the ``wide`` column folds, the others keep
    their cells on one line; the ``key`` column (what other commands take) is never cut, the wide column gives
    way first, then the widest others. ``empty`` is printed instead of a table with no rows."""
    if not cells:
        print(empty)
        return
    console = Console(highlight=False)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    # the box's two edges and two characters between columns
    widths = _widths(columns, cells, console.width - 2 * len(columns), wide, key)
    for column, width in zip(columns, widths):
        table.add_column(column, width=width, no_wrap=column != wide,
                         overflow="fold" if column == wide else "ellipsis")
    for row in cells:
        table.add_row(*(Text(str(cell)) for cell in row))  # as written: brackets in a reason are not markup
    console.print(table)


WIDE_AT_LEAST = 12  # the folding column keeps this much before the others are cut


def _widths(columns: Sequence[str], cells: Sequence[Sequence[str]], room: int, wide: str | None,
            key: str | None) -> list[int]:
    """Each column's width: its widest cell, cut to fit ``room`` from the wide column down to WIDE_AT_LEAST, then
    one character at a time from the widest other column, then the wide one; the key column keeps its width."""
    widths = [max(len(name), *(len(str(row[i])) for row in cells)) for i, name in enumerate(columns)]
    excess = sum(widths) - room
    if excess > 0 and wide in columns:
        index = columns.index(wide)
        cut = min(excess, max(0, widths[index] - WIDE_AT_LEAST))
        widths[index] -= cut
        excess -= cut
    others = [i for i, name in enumerate(columns) if name not in (key, wide)]
    folding = [columns.index(wide)] if wide in columns else []
    for cuttable in (others, folding):
        while excess > 0 and cuttable and max(widths[i] for i in cuttable) > 1:
            widths[max(cuttable, key=widths.__getitem__)] -= 1
            excess -= 1
    return widths
