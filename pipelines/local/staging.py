"""Staging a definition written elsewhere: the objects it names (its scripts, its input data) copied into the
store from the folder they came from, so that ``run --definition`` finds them where the definition says.

Every literal ``s3://`` URI of the definition (in step arguments and parameter defaults) whose last segment is
a file name is matched with the file of that name in the folder; a match is copied to the store at that URI.
Only regular files directly in the folder are read (no link, nothing outside it).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pipelines.errors import ConfigError
from pipelines.local.store import Store


@dataclass
class Staged:
    """What staging did: each object copied (URI, file), and the object URIs no file of the folder matched."""

    copied: list[tuple[str, Path]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def object_uris(value: Any) -> Iterator[str]:
    """Every literal ``s3://`` URI in a definition that names an object (its last segment is a file name)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from object_uris(item)
    elif isinstance(value, list):
        for item in value:
            yield from object_uris(item)
    elif isinstance(value, str) and value.startswith("s3://") and not value.endswith("/"):
        name = value.rsplit("/", 1)[-1]
        if value.count("/") >= 3 and "." in name.strip("."):
            yield value


def stage(definition: dict[str, Any], folder: Path, store: Store) -> Staged:
    """Copy the file of ``folder`` that each object URI of ``definition`` names into ``store`` at that URI;
    ConfigError if ``folder`` is not a folder."""
    if not folder.is_dir():
        raise ConfigError(f"--from {folder}: not a folder")
    found = Staged()
    for uri in dict.fromkeys(object_uris(definition)):
        source = folder / uri.rsplit("/", 1)[-1]
        try:
            mode = os.lstat(source).st_mode
        except OSError:
            found.unmatched.append(uri)
            continue
        if not stat.S_ISREG(mode):  # a link or anything else is never followed
            found.unmatched.append(uri)
            continue
        store.put_file(source, uri)
        found.copied.append((uri, source))
    return found
