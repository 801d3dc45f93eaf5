"""Store objects as the studio shows them: a folder's listing, a CSV's first rows, JSON indented, an image,
an archive's members, text; always through the store's one door (``Store.path``), never a path of the browser's."""

from __future__ import annotations

import csv
import io
import json
import mimetypes
import tarfile
from pathlib import Path
from typing import Any

from pipelines.errors import NotFoundError
from pipelines.local.store import Store
from pipelines.s3uri import split_uri

CSV_ROWS = 20
TEXT_BYTES = 64 * 1024
IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg")


def preview(store: Store, uri: str) -> dict[str, Any]:
    """What the object page shows of ``uri``: its kind and content, or the objects below a prefix."""
    split_uri(uri)  # an S3 URI, or DefinitionError naming what is wrong with it
    path = store.object_path(uri)
    if not path.is_file():
        below = store.objects(uri.rstrip("/") + "/")
        if not below:
            raise NotFoundError(f"the local store holds nothing at {uri}")
        bucket = split_uri(uri)[0]
        return {"kind": "listing", "uri": uri,
                "objects": [(f"s3://{bucket}/{key}", p.stat().st_size) for key, p in below[:500]],
                "more": max(0, len(below) - 500)}
    size = path.stat().st_size
    name = path.name.lower()
    shown: dict[str, Any] = {"uri": uri, "size": size, "file": str(path)}
    if name.endswith(IMAGES):
        return {**shown, "kind": "image"}
    if name.endswith((".html", ".htm")):
        return {**shown, "kind": "html"}
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return {**shown, "kind": "archive", "members": _members(path)}
    head = _head(path)
    if name.endswith(".json"):
        try:
            return {**shown, "kind": "json", "text": json.dumps(json.loads(path.read_bytes()), indent=2)}
        except (ValueError, UnicodeDecodeError):
            pass
    if name.endswith(".csv") or name.endswith(".csv.out"):
        rows = list(csv.reader(io.StringIO(head)))[:CSV_ROWS]
        return {**shown, "kind": "csv", "rows": rows, "more": size > len(head.encode()) or len(rows) == CSV_ROWS}
    return {**shown, "kind": "text", "text": head, "cut": size > TEXT_BYTES}


def raw(store: Store, uri: str) -> tuple[Path, str]:
    """(file, content type) of one object, for the browser to show as it is."""
    split_uri(uri)
    path = store.object_path(uri)
    if not path.is_file():
        raise NotFoundError(f"the local store holds no object at {uri}")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path, kind


def _head(path: Path) -> str:
    with open(path, "rb") as handle:
        data = handle.read(TEXT_BYTES)
    text = data.decode("utf-8", errors="replace")
    return text if len(data) < TEXT_BYTES else text.rsplit("\n", 1)[0]


def _members(path: Path) -> list[tuple[str, int]] | str:
    try:
        with tarfile.open(path) as archive:
            return [(m.name, m.size) for m in archive.getmembers()[:200]]
    except (tarfile.TarError, OSError) as exc:
        return f"not a readable archive: {exc}"
