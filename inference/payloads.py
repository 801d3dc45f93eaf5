"""Rows in, requests out: stream CSV rows from files or S3 and pack whole rows into payloads up to a byte limit.

Reading is streaming (plain or gzip, detected by content), so memory does not grow with the input.
Each row keeps its leading id columns apart from the features the model is sent, so a score can be
joined back to its lead.
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

GZIP_MAGIC = b"\x1f\x8b"


class PayloadError(Exception):
    """A row that cannot be sent: too few columns for the ids, or larger than a whole request."""


@dataclass(frozen=True)
class Source:
    """One input object: a name for messages, its size, and how to open it as bytes."""

    name: str
    size: int
    open: Callable[[], IO[bytes]]
    path: Path | None = None  # the file, where the source is one on this machine


@dataclass
class Request:
    """Whole rows packed into one payload: the features sent, the ids kept back."""

    first_row: str  # "FILE line N", for messages
    body: bytes
    ids: list[bytes] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.ids)


def local_sources(path: Path) -> list[Source]:
    """A file, or every file below a folder (sorted; dotfiles skipped)."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(path).parts))
    else:
        raise PayloadError(f"{path}: no such file or folder")
    if not files:
        raise PayloadError(f"{path}: no input files")
    return [Source(str(p), p.stat().st_size, lambda p=p: open(p, "rb"), p) for p in files]


def rows(sources: Iterable[Source]) -> Iterator[tuple[str, bytes]]:
    """(\"FILE line N\", row bytes without the line end) of every non-blank line."""
    for source in sources:
        with source.open() as raw:
            stream = _maybe_gzip(raw, source.name)
            try:
                for number, line in enumerate(stream, start=1):
                    line = line.rstrip(b"\r\n")
                    if not line.strip():
                        continue
                    yield f"{source.name} line {number}", line
            except (OSError, EOFError, zlib.error) as exc:
                raise PayloadError(f"{source.name}: not a readable gzip file ({exc})") from None


def _maybe_gzip(raw: IO[bytes], name: str) -> IO[bytes]:
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
    return gzip.GzipFile(fileobj=buffered, mode="rb") if buffered.peek(2)[:2] == GZIP_MAGIC else buffered


def split_ids(where: str, row: bytes, id_columns: int) -> tuple[bytes, bytes]:
    """(ids, features) of a row: the first ``id_columns`` comma-separated fields, and the rest."""
    if id_columns == 0:
        return b"", row
    parts = row.split(b",", id_columns)
    if len(parts) <= id_columns:
        raise PayloadError(f"{where}: {len(parts)} column(s), but --id-columns {id_columns} leaves no feature to send")
    return b",".join(parts[:id_columns]), parts[id_columns]


def pack(source_rows: Iterable[tuple[str, bytes]], id_columns: int, max_bytes: int) -> Iterator[Request]:
    """Requests of whole rows, each body (rows joined by newlines, newline-terminated) at most ``max_bytes``."""
    request: Request | None = None
    parts: list[bytes] = []
    size = 0
    for where, row in source_rows:
        ids, features = split_ids(where, row, id_columns)
        row_size = len(features) + 1
        if row_size > max_bytes:
            raise PayloadError(f"{where}: one row of {row_size} bytes is larger than a whole request "
                               f"(--max-payload-bytes {max_bytes})")
        if request is not None and size + row_size > max_bytes:
            request.body = b"\n".join(parts) + b"\n"
            yield request
            request, parts, size = None, [], 0
        if request is None:
            request = Request(first_row=where, body=b"")
        request.ids.append(ids)
        parts.append(features)
        size += row_size
    if request is not None:
        request.body = b"\n".join(parts) + b"\n"
        yield request
