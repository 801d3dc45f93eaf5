"""The JSONPath forms batch transform's DataProcessing filters accept for CSV records.

``$`` (the whole record), ``$[i]``, ``$[i:j]``, ``$[i:]``, ``$[:j]`` and ``$[a,b,-1]``,
indices zero-based and negative from the end.
"""

from __future__ import annotations

import re

from pipelines.errors import DefinitionError

_SLICE = re.compile(r"^\$\[(-?\d*):(-?\d*)\]$")
_INDEXES = re.compile(r"^\$\[(-?\d+(?:\s*,\s*-?\d+)*)\]$")


def select(fields: list[str], expression: str) -> list[str]:
    """The fields of a CSV record that ``expression`` selects."""
    expression = expression.strip()
    if expression == "$":
        return list(fields)
    sliced = _SLICE.fullmatch(expression)
    if sliced:
        start, stop = (int(x) if x else None for x in sliced.groups())
        return fields[start:stop]
    listed = _INDEXES.fullmatch(expression)
    if listed:
        picked = []
        for text in listed.group(1).split(","):
            index = int(text)
            if not -len(fields) <= index < len(fields):
                raise DefinitionError(f"JSONPath {expression}: index {index} is outside a record of {len(fields)} fields")
            picked.append(fields[index])
        return picked
    raise DefinitionError(f"JSONPath {expression!r} is not supported for CSV; use $, $[i], $[i:j] or $[a,b,-1]")
