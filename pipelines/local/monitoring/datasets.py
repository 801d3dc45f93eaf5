"""A dataset as Model Monitor's analyzer reads it: ``dataset_format`` (``{"csv": {"header": bool,
"output_columns_position": "START"|"END"}}`` or ``{"json": {"lines": true}}``) over every file below
``dataset_source``, read in chunks so a large input never has to fit in memory. Columns of a CSV without a
header are named ``_c0``, ``_c1``, ... as the analyzer (Spark) names them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

CHUNK_ROWS = 200_000


class DatasetError(Exception):
    """The dataset or its format cannot be read as given; says what to fix."""


def parse_format(text: str | None) -> dict[str, Any]:
    """The ``dataset_format`` variable as a dict (CSV without a header when absent)."""
    if not text:
        return {"csv": {"header": False}}
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise DatasetError(f"dataset_format is not JSON ({exc}): {text[:80]!r}") from None
    if not isinstance(parsed, dict) or not ({"csv", "json"} & set(parsed)):
        raise DatasetError(f"dataset_format {text[:80]!r}: the local analyzer reads csv and json (lines) datasets")
    return parsed


def files(source: Path) -> list[Path]:
    """The data files below ``source`` (a file or a folder), in name order; DatasetError if there are none."""
    found = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file()
                                                     and not p.name.startswith("."))
    if not found:
        raise DatasetError(f"dataset_source {source}: no data files")
    return found


def chunks(source: Path, dataset_format: dict[str, Any]) -> Iterator[pd.DataFrame]:
    """The dataset's rows, a chunk at a time, every value as text (None where missing)."""
    if "json" in dataset_format:
        for path in files(source):
            for chunk in pd.read_json(path, lines=True, dtype=False, chunksize=CHUNK_ROWS):
                yield chunk.astype(object).where(chunk.notna(), None).map(lambda v: v if v is None else str(v))
        return
    header = bool(dataset_format["csv"].get("header"))
    names: list[str] | None = None
    for path in files(source):
        if path.stat().st_size == 0:
            continue
        reader = pd.read_csv(path, header=0 if header else None, dtype=str, keep_default_na=False, na_values=[""],
                             chunksize=CHUNK_ROWS, skipinitialspace=True)
        for chunk in reader:
            if names is None:
                names = [str(c) for c in chunk.columns] if header else [f"_c{i}" for i in range(chunk.shape[1])]
            if chunk.shape[1] != len(names):
                raise DatasetError(f"{path.name}: rows of {chunk.shape[1]} columns, where the first file has "
                                   f"{len(names)}")
            chunk.columns = names
            yield chunk.astype(object).where(chunk.notna(), None)
