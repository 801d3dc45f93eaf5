"""The local store that stands in for S3: ``s3://BUCKET/KEY`` is ``<root>/s3/BUCKET/KEY``.

URIs are parsed and checked by ``pipelines.s3uri``; this is the only module mapping them, step
names and execution ids to paths, and nothing it maps can lead outside the store: keys with
empty, ``.`` or ``..`` segments are refused, names must be plain, and a symbolic link met on
the way to or below an object is refused with its key (never followed). Objects are written
under a temporary name and renamed when complete, so a partially written object is never
visible under its key.

Keys map to files, so a key ending in ``/`` (a folder marker, as the S3 console and Hadoop write them) is
kept as a file named ``FOLDER_MARKER`` inside its folder, and the store cannot hold both ``a`` and
``a/b`` (``a`` would be a file and a folder): writing the second is refused with ``KeyConflictError``
naming both. Names starting with ``.tmp-`` are the store's own and never keys.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from pipelines.atomic import TMP_PREFIX
from pipelines.errors import KeyConflictError, UnsafePathError
from pipelines.local import safe_files
from pipelines.s3uri import join_uri, key_segments, split_uri

# step names (SageMaker: ^[A-Za-z0-9\-_]{1,64}$), execution ids and model names used as folder names
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
FOLDER_MARKER = f"{TMP_PREFIX}folder-marker"  # the content of a key ending in '/', inside that folder


def plain_name(name: str, what: str) -> str:
    """``name`` if it is safe as one folder name (letters, digits, '-' and '_'); UnsafePathError otherwise."""
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise UnsafePathError(f"{what} {name!r} may hold only letters, digits, '-' and '_' (128 at most)")
    return name


@dataclass(frozen=True)
class Store:
    """A directory tree holding S3 objects, executions, jobs and the model registry."""

    root: Path

    @property
    def s3_root(self) -> Path:
        return self.root / "s3"

    def path(self, uri: str) -> Path:
        """Local path of an S3 URI (object or prefix); UnsafePathError if it could lead outside the store."""
        bucket, segments = key_segments(uri)
        path = self.s3_root.joinpath(bucket, *segments)
        self._refuse_links(path)
        return path

    def object_path(self, uri: str) -> Path:
        """The file holding the object at ``uri``: the key's path, or the folder marker of a key ending in '/'."""
        path = self.path(uri)
        return path / FOLDER_MARKER if uri.endswith("/") and split_uri(uri)[1] else path

    def _writable(self, uri: str) -> Path:
        """The object file for ``uri``, its folder created; KeyConflictError if a file stands where a folder must
        be, or a folder where the file must be (S3 can hold both ``a`` and ``a/b``; files cannot)."""
        target = self.object_path(uri)
        bucket_dir = self.s3_root / split_uri(uri)[0]
        for folder in reversed(target.parents):
            if folder.is_relative_to(bucket_dir) and folder != bucket_dir and folder.is_file():
                raise KeyConflictError(f"{uri!r}: the local store holds {self._key(folder)!r} as an object, so it "
                                       "cannot also hold keys below it (delete that object or rename the key)")
        if target.is_dir():
            raise KeyConflictError(f"{uri!r}: the local store holds keys below {uri + '/'!r}, so it cannot also hold "
                                   "this key as an object (delete those or rename the key)")
        try:
            safe_files.make_folders(self.root, target.parent)
        except UnsafePathError:  # a writer raced us to a file on the way
            raise KeyConflictError(f"{uri!r}: an object stands where the key's folder must be") from None
        return target

    def execution_dir(self, execution_id: str) -> Path:
        """Where an execution's record, definition and lock live."""
        return self.root / "executions" / plain_name(execution_id, "execution id")

    def job_dir(self, execution_id: str, step_name: str) -> Path:
        """The job directory of one step of one execution."""
        return self.root / "jobs" / plain_name(execution_id, "execution id") / plain_name(step_name, "step name")

    def model_path(self, model_name: str) -> Path:
        """The record a Model step keeps of a model."""
        return self.root / "models" / f"{plain_name(model_name, 'model name')}.json"

    def endpoint_config_path(self, config_name: str) -> Path:
        """The record of an endpoint configuration (created through the local SageMaker API)."""
        return self.root / "endpoint-configs" / f"{plain_name(config_name, 'endpoint config name')}.json"

    def endpoint_dir(self, endpoint_name: str) -> Path:
        """Where a local endpoint keeps its record, model files, server pid and log."""
        return self.root / "endpoints" / plain_name(endpoint_name, "endpoint name")

    def _refuse_links(self, path: Path) -> None:
        """UnsafePathError if any existing component of ``path`` below the S3 root is a symbolic link."""
        current = self.s3_root
        for part in path.relative_to(self.s3_root).parts:
            current = current / part
            if current.is_symlink():
                raise UnsafePathError(f"{self._key(current)} is a symbolic link in the local store; links are "
                                      "never followed (copy the data into the store instead)")
            if not current.exists():
                return

    def _key(self, path: Path) -> str:
        return "s3://" + path.relative_to(self.s3_root).as_posix()

    def objects(self, prefix_uri: str) -> list[tuple[str, Path]]:
        """(key, path) of every object whose key starts with the prefix, sorted by key."""
        bucket, prefix = split_uri(prefix_uri)
        self.path(prefix_uri)
        bucket_dir = self.s3_root / bucket
        start = bucket_dir / prefix.rsplit("/", 1)[0] if "/" in prefix else bucket_dir
        if start.is_file():
            start = start.parent
        found = []
        for path in _walk_files(start, self._key, markers=True):
            key = path.relative_to(bucket_dir).as_posix()
            if path.name == FOLDER_MARKER:
                key = key[:-len(FOLDER_MARKER)]
            if key.startswith(prefix):
                found.append((key, path))
        return sorted(found)

    def put_file(self, source: Path, uri: str) -> None:
        """Copy a local file to an S3 URI, atomically."""
        with open(source, "rb") as data:
            self.put_stream(data, uri)

    def put_bytes(self, data: bytes, uri: str) -> None:
        """Write bytes to an S3 URI, atomically."""
        with safe_files.replacing(self.root, self._writable(uri)) as handle:
            handle.write(data)

    def put_stream(self, reader: BinaryIO, uri: str) -> int:
        """Write what ``reader`` yields to an S3 URI, atomically; returns the byte count."""
        target = self._writable(uri)
        with safe_files.replacing(self.root, target) as handle:
            shutil.copyfileobj(reader, handle)
            return handle.tell()

    def delete(self, uri: str) -> bool:
        """Remove one object and the folders it leaves empty; False if there was none."""
        bucket, _ = split_uri(uri)
        target = self.object_path(uri)
        if not target.is_file():
            return False
        target.unlink()
        bucket_dir = self.s3_root / bucket
        for folder in target.parents:
            if folder == bucket_dir or not folder.is_relative_to(bucket_dir):
                break
            try:
                folder.rmdir()
            except OSError:
                break
        return True

    def buckets(self) -> list[str]:
        """The buckets the store holds."""
        return sorted(p.name for p in self.s3_root.iterdir() if p.is_dir()) if self.s3_root.is_dir() else []

    def sample_data_dir(self, key: str) -> Path:
        """Where generated sample data is kept for reuse, by its key."""
        return self.root / "cache" / "sample-data" / plain_name(key, "sample data key")

    def callback_path(self, token: str) -> Path:
        """The record of one Callback step's token: what it waits for, and how it was answered."""
        return self.root / "callbacks" / f"{plain_name(token, 'callback token')}.json"

    def queue_dir(self, queue_name: str) -> Path:
        """Where the messages sent to a local SQS queue are kept, one file each, oldest first by name."""
        return self.root / "queues" / plain_name(queue_name.removesuffix(".fifo"), "queue name")

    def upload_dir(self, upload_id: str) -> Path:
        """Where the parts of one multipart upload wait for completion (outside the objects)."""
        return self.root / "s3-uploads" / plain_name(upload_id, "upload id")

    def put_tree(self, source_dir: Path, prefix_uri: str) -> int:
        """Upload every file under ``source_dir`` below ``prefix_uri``; returns the count. Everything is checked
        before the first object is written: a link or a special file (a FIFO, a socket, a device) anywhere in
        the folder is UnsafePathError naming it, and nothing of the folder is published."""
        files = publishable_files(source_dir)
        for path in files:
            with safe_files.open_read(source_dir, path) as data:  # never through a link swapped in meanwhile
                self.put_stream(data, join_uri(prefix_uri, path.relative_to(source_dir).as_posix()))
        return len(files)

    def download_to_hosts(self, prefix_uri: str, destinations: list[Path], sharded: bool) -> int:
        """Stage an input for the instances of a job, one destination each: every object to each
        (FullyReplicated), or every n-th object from the i-th to the i-th (ShardedByS3Key); returns the count."""
        return sum(self.download_prefix(prefix_uri, destination, shard=(index, len(destinations)) if sharded else None)
                   for index, destination in enumerate(destinations))

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
            if key.endswith("/"):  # a folder marker is a folder in the job (the prefix's own: the destination)
                (destination / key[len(prefix):].lstrip("/")).mkdir(parents=True, exist_ok=True)
                continue
            relative = Path(key).name if key == prefix else key[len(prefix):].lstrip("/")
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with safe_files.open_read(self.root, path) as source, open(target, "wb") as copy:
                shutil.copyfileobj(source, copy)
            count += 1
        return count


def publishable_files(folder: Path) -> list[Path]:
    """Every file below ``folder`` (a job's output or model folder), the store's temporary names included;
    UnsafePathError naming the first link or special file (a FIFO, socket or device), which cannot be published:
    reading a FIFO would wait for ever, and a link could lead out of the folder."""
    return list(_walk_files(folder, str, temporary=True))


def _walk_files(top: Path, name_of: Callable[[Path], str], markers: bool = False,
                temporary: bool = False) -> Iterator[Path]:
    """Files below ``top``, with folder markers if ``markers``, and without the store's own temporary files
    unless ``temporary`` (a job's output folder has none: every file in it is published, or refused by name);
    UnsafePathError naming (``name_of``) the first symbolic link met, file or folder, since following it could
    leave the tree, or the first special file (a FIFO, socket or device), since reading it could block for ever."""
    if top.is_symlink():
        raise UnsafePathError(f"{name_of(top)} is a symbolic link; links are never followed (copy the data instead)")
    if not top.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in dirnames + filenames:
            try:
                mode = os.lstat(os.path.join(dirpath, name)).st_mode
            except FileNotFoundError:  # removed while we looked
                continue
            if stat.S_ISLNK(mode):
                raise UnsafePathError(f"{name_of(Path(dirpath) / name)} is a symbolic link; links are never "
                                      "followed (copy the data instead)")
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafePathError(f"{name_of(Path(dirpath) / name)} is a FIFO, socket or device, not a regular "
                                      "file; only files and folders can be stored (write a file instead)")
        for name in sorted(filenames):
            if temporary or not name.startswith(TMP_PREFIX) or (markers and name == FOLDER_MARKER):
                yield Path(dirpath) / name
