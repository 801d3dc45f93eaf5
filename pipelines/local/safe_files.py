"""Files below a root, never through a symbolic link and never anything but a regular file: the store's door.

Every folder from the root down to a file is opened relative to its parent with ``O_NOFOLLOW`` (``openat``), so
a link planted anywhere on the way, or swapped in while we walk, is refused instead of followed, and nothing
outside the root is read or written. The file itself is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked to
be a regular file before a byte moves, so a FIFO, socket or device where a record should be is refused at
once instead of blocking. Writes go to a temporary name in the same folder and are renamed over the target
(a link standing at the target is replaced, never written through).

A refusal is ``UnsafePathError`` naming the path; a file that is simply missing stays ``FileNotFoundError``,
which callers handle as they always did. The root itself is the user's choice and may be reached through a
link (``/tmp`` on some systems is one): it is resolved once, and only what lies below it is checked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

from pipelines.atomic import TMP_PREFIX
from pipelines.errors import UnsafePathError

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_NOT_FOLLOWED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)  # what O_NOFOLLOW gives for a link, by platform


def parts_below(root: Path, path: Path) -> tuple[str, ...]:
    """The names from ``root`` down to ``path``; UnsafePathError if ``path`` is not below ``root`` or holds '..'."""
    absolute_root, absolute = Path(os.path.abspath(root)), Path(os.path.abspath(path))
    try:
        parts = Path(os.path.relpath(absolute, absolute_root)).parts if absolute != absolute_root else ()
    except ValueError:
        parts = ("..",)
    raw = Path(path).parts
    if ".." in raw or (parts and parts[0] == ".."):
        raise UnsafePathError(f"{path} is not inside the local store {root}")
    return parts


def _refused(root: Path, parts: tuple[str, ...], what: str) -> UnsafePathError:
    shown = Path(root).joinpath(*parts)
    return UnsafePathError(f"{shown} is {what} in the local store; links and special files are never followed "
                           "(remove it, and copy real data into the store instead)")


@contextlib.contextmanager
def folder(root: Path, path: Path, create: bool = False) -> Iterator[int]:
    """A descriptor of the folder ``path`` below ``root`` (created with its parents if ``create``), every step
    opened without following links; FileNotFoundError if it is missing and not created."""
    parts = parts_below(root, path)
    if create:
        os.makedirs(root, exist_ok=True)  # the store's root itself is the user's to choose
    elif not os.path.isdir(root):
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path))
    fd = os.open(os.path.realpath(root), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, name in enumerate(parts):
            parent, fd = fd, -1  # _step_into closes the parent, whatever happens
            fd = _step_into(parent, name, create, root, parts[:depth + 1])
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)


def _step_into(parent: int, name: str, create: bool, root: Path, walked: tuple[str, ...]) -> int:
    """The descriptor of folder ``name`` in ``parent`` (which it closes), never through a link."""
    try:
        while True:
            try:
                return os.open(name, _FOLDER_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, "no such folder", str(Path(root).joinpath(*walked))) from None
                with contextlib.suppress(FileExistsError):  # another writer made it first: open theirs
                    os.mkdir(name, 0o755, dir_fd=parent)
            except OSError as exc:
                if exc.errno in _NOT_FOLLOWED:
                    kind = "a symbolic link" if _is_link(parent, name) else "not a folder"
                    raise _refused(root, walked, kind) from None
                raise
    finally:
        os.close(parent)


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_file(root: Path, path: Path, flags: int, mode: int = 0o644, create_folders: bool = False) -> int:
    """A descriptor of the regular file ``path``; UnsafePathError for a link or a special file on the way."""
    path = Path(path)
    parts = parts_below(root, path)
    if not parts:
        raise _refused(root, parts, "the store's root, not a file")
    with folder(root, path.parent, create=create_folders) as parent:
        try:
            fd = os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK, mode, dir_fd=parent)
        except OSError as exc:
            if exc.errno in _NOT_FOLLOWED:
                raise _refused(root, parts, "a symbolic link") from None
            if exc.errno in (errno.ENXIO, errno.EISDIR, errno.EWOULDBLOCK):  # a FIFO with no reader, a folder
                raise _refused(root, parts, "not a regular file") from None
            raise
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        raise _refused(root, parts, "a FIFO, socket or device, not a regular file" if not stat.S_ISDIR(kind)
                       else "a folder, not a file")
    os.set_blocking(fd, True)
    return fd


def open_read(root: Path, path: Path) -> BinaryIO:
    """``path`` below ``root``, open for reading as a binary file."""
    return os.fdopen(_open_file(root, path, os.O_RDONLY), "rb")


def read_bytes(root: Path, path: Path) -> bytes:
    """The bytes of ``path`` below ``root``."""
    with open_read(root, path) as handle:
        return handle.read()


def read_text(root: Path, path: Path) -> str:
    """The text of ``path`` below ``root`` (UTF-8, undecodable bytes replaced)."""
    return read_bytes(root, path).decode("utf-8", errors="replace")


def optional_text(root: Path, path: Path) -> str | None:
    """The text of ``path`` below ``root`` as ``read_text`` gives it, or None if there is no such file."""
    try:
        return read_text(root, path)
    except FileNotFoundError:
        return None


def open_append(root: Path, path: Path) -> BinaryIO:
    """``path`` below ``root`` open for appending (created with its folders), as a binary file."""
    return os.fdopen(_open_file(root, path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, create_folders=True), "ab")


def open_lock(root: Path, path: Path) -> int:
    """A descriptor of the lock file ``path`` below ``root`` (created with its folders), for ``flock``."""
    return _open_file(root, path, os.O_RDWR | os.O_CREAT, create_folders=True)


@contextlib.contextmanager
def replacing(root: Path, path: Path) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` below ``root`` when the block completes (its folders created);
    removed if the block fails. A link at ``path`` is replaced, never written through."""
    path = Path(path)
    parts = parts_below(root, path)
    if not parts:
        raise _refused(root, parts, "the store's root, not a file")
    with folder(root, path.parent, create=True) as parent:
        temporary = f"{TMP_PREFIX}{secrets.token_hex(6)}-{parts[-1]}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
            os.replace(temporary, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            raise


def write_bytes(root: Path, path: Path, data: bytes) -> None:
    """Replace ``path`` below ``root`` with ``data``, atomically."""
    with replacing(root, path) as handle:
        handle.write(data)


def write_text(root: Path, path: Path, text: str) -> None:
    """Replace ``path`` below ``root`` with ``text`` (UTF-8), atomically."""
    write_bytes(root, path, text.encode("utf-8"))


def make_folders(root: Path, path: Path) -> None:
    """Create the folder ``path`` below ``root`` with its parents, never through a link."""
    with folder(root, path, create=True):
        pass


def _kind(parent: int, name: str) -> str | None:
    """``file``, ``folder`` or ``other`` (a link or a special file) for ``name`` in the folder ``parent``;
    None if it is gone."""
    try:
        mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def entries(root: Path, path: Path) -> list[tuple[str, str]]:
    """(name, kind) of what the folder ``path`` below ``root`` holds, sorted by name: kind is ``file``,
    ``folder`` or ``other`` (links and special files, which readers skip); empty if the folder is missing."""
    try:
        with folder(root, path) as fd:
            return [(name, kind) for name in sorted(os.listdir(fd)) if (kind := _kind(fd, name)) is not None]
    except FileNotFoundError:
        return []


def kind(root: Path, path: Path) -> str | None:
    """``file``, ``folder`` or ``other`` for ``path`` below ``root``, reached without a link; None if absent
    (or if a folder on the way is missing)."""
    path = Path(path)
    parts = parts_below(root, path)
    if not parts:
        return "folder"
    try:
        with folder(root, path.parent) as parent:
            return _kind(parent, parts[-1])
    except FileNotFoundError:
        return None


def is_file(root: Path, path: Path) -> bool:
    """True if ``path`` below ``root`` is a regular file reached without a link."""
    return kind(root, path) == "file"


def remove_tree(root: Path, path: Path) -> None:
    """Remove the folder ``path`` below ``root`` and everything in it (a file or link there: just it), never
    following a link on the way to it or inside it; nothing if it is absent."""
    path = Path(path)
    parts = parts_below(root, path)
    if not parts:
        raise _refused(root, parts, "the store's root")
    try:
        with folder(root, path.parent) as parent:
            found = _kind(parent, parts[-1])
            if found == "folder":
                shutil.rmtree(parts[-1], dir_fd=parent)  # the descriptor-based walk: links inside are unlinked
            elif found is not None:
                os.unlink(parts[-1], dir_fd=parent)
    except FileNotFoundError:
        return


def remove(root: Path, path: Path) -> bool:
    """Remove the file (or link) ``path`` below ``root``, never following a link on the way; False if absent."""
    path = Path(path)
    parts = parts_below(root, path)
    try:
        with folder(root, path.parent) as parent:
            os.unlink(parts[-1], dir_fd=parent)
            return True
    except FileNotFoundError:
        return False
