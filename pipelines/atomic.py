"""Files written whole or not at all: under a temporary name beside the final path, renamed when complete.

A reader (or a run resumed after a crash) never sees half a file; a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

TMP_PREFIX = ".tmp-"  # the store's own names (temporary files, folder markers); refused as keys
TMP_NAME_BYTES = len(TMP_PREFIX) + 13  # what ``replacing`` puts before a name: the prefix, 12 hex digits, '-'


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write; it replaces ``path`` when the block completes and is removed if it fails."""
    tmp = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{path.name}")
    try:
        with open(tmp, "xb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically."""
    with replacing(path) as handle:
        handle.write(text.encode("utf-8"))


def write_output(text: str, destination: str) -> None:
    """Write ``text`` and a newline to a file (atomically), or to stdout for '-'."""
    if destination == "-":
        sys.stdout.write(text + "\n")
        return
    write_text(Path(destination), text + "\n")
