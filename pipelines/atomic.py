"""Files written whole or not at all: under a temporary name beside the final path, renamed when complete.

A reader (or a run resumed after a crash) never sees half a file; a failed write leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator

TMP_PREFIX = ".tmp-"  # listings of the local store skip names starting with this


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
