"""Store objects as the studio shows them: a folder's listing, a CSV's first rows, JSON indented, an image,
an archive's members, text; always through the store's one door (``Store.path`` names the file, ``safe_files``
opens it), never a path of the browser's: a link or a special file where an object should be is refused."""

from __future__ import annotations

import csv
import io
import itertools
import json
import mimetypes
import os
import tarfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from pipelines.errors import NotFoundError
from pipelines.local import safe_files
from pipelines.local.store import Store
from pipelines.s3uri import split_uri

CSV_ROWS = 20
TEXT_BYTES = 64 * 1024
JSON_BYTES = 8 * 1024 * 1024  # larger JSON is shown as text: indenting it would hold the page
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg")


def preview(store: Store, uri: str) -> dict[str, Any]:
    """What the object page shows of ``uri``: its kind and content, or the objects below a prefix."""
    split_uri(uri)  # an S3 URI, or DefinitionError naming what is wrong with it
    path = store.object_path(uri)
    if safe_files.kind(store.root, path) not in ("file", "other"):  # "other": refused by name below
        below = store.objects(uri.rstrip("/") + "/")
        if not below:
            raise NotFoundError(f"the local store holds nothing at {uri}")
        bucket = split_uri(uri)[0]
        return {"kind": "listing", "uri": uri,
                "objects": [(f"s3://{bucket}/{key}", p.stat().st_size) for key, p in below[:500]],
                "more": max(0, len(below) - 500)}
    with safe_files.open_read(store.root, path) as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(TEXT_BYTES)
    name = path.name.lower()
    shown: dict[str, Any] = {"uri": uri, "size": size, "file": str(path)}
    if name.endswith(IMAGES):
        return {**shown, "kind": "image"}
    if name.endswith((".html", ".htm")):
        return {**shown, "kind": "html"}
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return {**shown, "kind": "archive", "members": _members(store, path)}
    if name.endswith(".json") and size <= JSON_BYTES:
        try:
            document = json.loads(safe_files.read_bytes(store.root, path))
            return {**shown, "kind": "json", "text": json.dumps(document, indent=2)}
        except (ValueError, RecursionError):
            pass
    text = head.decode("utf-8", errors="replace")
    text = text if len(head) < TEXT_BYTES else text.rsplit("\n", 1)[0]
    if name.endswith(".csv") or name.endswith(".csv.out"):
        rows = list(csv.reader(io.StringIO(text)))[:CSV_ROWS]
        return {**shown, "kind": "csv", "rows": rows, "more": size > len(text.encode()) or len(rows) == CSV_ROWS}
    return {**shown, "kind": "text", "text": text, "cut": size > TEXT_BYTES}


def raw(store: Store, uri: str) -> tuple[BinaryIO, int, str]:
    """(open file, size, content type) of one object, for the browser to show as it is; the caller closes it."""
    split_uri(uri)
    path = store.object_path(uri)
    try:
        handle = safe_files.open_read(store.root, path)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"the local store holds no object at {uri}") from None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return handle, os.fstat(handle.fileno()).st_size, kind


def _members(store: Store, path: Path) -> list[tuple[str, int]] | str:
    try:
        with safe_files.open_read(store.root, path) as handle, tarfile.open(fileobj=handle) as archive:
            return [(m.name, m.size) for m in itertools.islice(archive, 200)]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        return f"not a readable archive: {exc}"
