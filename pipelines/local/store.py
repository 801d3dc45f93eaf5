"""The local store that stands in for S3: ``s3://BUCKET/KEY`` is ``<root>/s3/BUCKET/KEY``.

URIs are parsed by ``pipelines.s3uri``; this is the only module mapping them to paths. Objects are written under a
temporary name and renamed when complete, so a partially written object is never
visible under its key.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipelines.atomic import TMP_PREFIX, replacing
from pipelines.errors import DefinitionError
from pipelines.s3uri import join_uri, split_uri


@dataclass(frozen=True)
class Store:
    """A directory tree holding S3 objects, executions, jobs and the model registry."""

    root: Path

    @property
    def s3_root(self) -> Path:
        return self.root / "s3"

    def path(self, uri: str) -> Path:
        """Local path of an S3 URI (object or prefix)."""
        bucket, key = split_uri(uri)
        if ".." in Path(key).parts:
            raise DefinitionError(f"{uri!r}: '..' is not allowed in a key")
        return self.s3_root / bucket / key

    def uri(self, path: Path) -> str:
        """S3 URI of a local path inside the store."""
        relative = path.resolve().relative_to(self.s3_root.resolve())
        return "s3://" + relative.as_posix()

    def objects(self, prefix_uri: str) -> list[tuple[str, Path]]:
        """(key, path) of every object whose key starts with the prefix, sorted by key."""
        bucket, prefix = split_uri(prefix_uri)
        bucket_dir = self.s3_root / bucket
        start = bucket_dir / prefix.rsplit("/", 1)[0] if "/" in prefix else bucket_dir
        if start.is_file():
            start = start.parent
        found = []
        for path in _walk_files(start):
            key = path.relative_to(bucket_dir).as_posix()
            if key.startswith(prefix):
                found.append((key, path))
        return sorted(found)

    def put_file(self, source: Path, uri: str) -> None:
        """Copy a local file to an S3 URI, atomically."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as handle, open(source, "rb") as data:
            shutil.copyfileobj(data, handle)

    def put_bytes(self, data: bytes, uri: str) -> None:
        """Write bytes to an S3 URI, atomically."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as handle:
            handle.write(data)

    def put_tree(self, source_dir: Path, prefix_uri: str) -> int:
        """Upload every file under ``source_dir`` below ``prefix_uri``; returns the count."""
        count = 0
        for path in _walk_files(source_dir):
            self.put_file(path, join_uri(prefix_uri, path.relative_to(source_dir).as_posix()))
            count += 1
        return count

    def download_prefix(self, prefix_uri: str, destination: Path, shard: tuple[int, int] | None = None) -> int:
        """Copy objects under a prefix into ``destination`` as S3Prefix inputs are staged; returns the count.

        ``shard=(index, count)`` takes every count-th object from the index-th, as ShardedByS3Key does.
        """
        _, prefix = split_uri(prefix_uri)
        objects = self.objects(prefix_uri)
        if shard is not None:
            objects = objects[shard[0]::shard[1]]
        count = 0
        for key, path in objects:
            relative = Path(key).name if key == prefix else key[len(prefix):].lstrip("/")
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            count += 1
        return count


def _walk_files(top: Path) -> Iterator[Path]:
    """Files below ``top``, skipping the store's own temporary files."""
    if not top.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.startswith(TMP_PREFIX):
                yield Path(dirpath) / name
