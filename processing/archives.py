"""The one archive extractor: model, code and source archives (tar, plain or compressed) unpacked safely.

Used by Evaluate, the built-in serving path (endpoints, Transform, deploy), a custom image's local
``serve`` and script mode. Archives are untrusted, so every member is checked before anything is written:

- its name stays inside the target folder (no absolute name, no ``..``), and nothing is written through
  a link met on the way (a file is opened with ``O_NOFOLLOW`` below a parent checked with realpath);
- a symbolic link must point inside the target folder, a hard link at a file extracted before it;
- devices, FIFOs and other special members are refused;
- the member count and the total size of the files are capped (an archive bomb stops at the cap).

Refusals raise ``ArchiveError`` naming the archive and the member. This module uses the standard
library only and runs on any Python 3 (it does not rely on tarfile's extraction filters, which the
Python of older SageMaker images lacks), because Evaluate ships it into its job beside its script.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zlib

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 10 * 1024 ** 3  # 10 GiB of files: far above a tabular model, below a full disk
_CHUNK = 1 << 20


class ArchiveError(Exception):
    """An archive that is unreadable or has a member that may not be extracted; names both."""


def extract(archive, target, max_members=MAX_MEMBERS, max_total_bytes=MAX_TOTAL_BYTES):
    """Unpack ``archive`` into ``target`` (created if needed); returns the relative names of the files written."""
    name = os.path.basename(str(archive))
    os.makedirs(str(target), exist_ok=True)
    root = os.path.realpath(str(target))
    written, total = [], 0
    try:
        with tarfile.open(str(archive), "r:*") as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise ArchiveError("%s: more than %d members; the limit is %d" % (name, max_members, max_members))
                relative = _relative_name(name, member.name)
                if relative is None:  # the archive's own root folder ("." or "./")
                    continue
                path = os.path.join(root, relative)
                _check_parent(name, member.name, root, path)
                if member.isdir():
                    os.makedirs(path, exist_ok=True)
                elif member.isfile():
                    total += member.size
                    if total > max_total_bytes:
                        raise ArchiveError("%s: member %r takes the files past %d bytes, the limit"
                                           % (name, member.name, max_total_bytes))
                    _write_file(tar.extractfile(member), path, member.mode)
                    written.append(relative)
                elif member.issym():
                    _link(name, member, root, path)
                elif member.islnk():
                    try:
                        source = _relative_name(name, member.linkname)
                    except ArchiveError:
                        source = None
                    if source is None or source not in written:
                        raise ArchiveError("%s: member %r is a hard link to %r, which is not a file extracted "
                                           "before it" % (name, member.name, member.linkname))
                    _write_file(open(os.path.join(root, source), "rb"), path, member.mode)
                    written.append(relative)
                else:
                    raise ArchiveError("%s: member %r is a device, FIFO or other special file; only files, "
                                       "folders and links inside the archive are extracted" % (name, member.name))
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if reason.startswith("file could not be opened successfully"):  # tarfile lists each method it tried
            reason = "neither a plain tar file nor one compressed with gzip, bzip2 or xz"
        raise ArchiveError("%s is not a readable tar archive: %s" % (name, reason)) from None
    return written


def _relative_name(archive, member_name):
    """The member's name as a relative path inside the target, None for the root; ArchiveError if it leaves."""
    if member_name.startswith("/") or "\\" in member_name or "\x00" in member_name:
        raise ArchiveError("%s: member %r has an absolute or non-POSIX name; members must stay inside the "
                           "folder the archive is unpacked into" % (archive, member_name))
    parts = [part for part in member_name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError("%s: member %r has a '..' segment; members must stay inside the folder the archive "
                           "is unpacked into" % (archive, member_name))
    return "/".join(parts) if parts else None


def _check_parent(archive, member_name, root, path):
    """ArchiveError if the member's folder, links resolved, is not inside ``root``; creates the folder."""
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    real = os.path.realpath(parent)
    if real != root and not real.startswith(root + os.sep):
        raise ArchiveError("%s: member %r would be written through a link to outside the folder the archive is "
                           "unpacked into" % (archive, member_name))


def _write_file(source, path, mode):
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with source, os.fdopen(os.open(path, flags, 0o600), "wb") as handle:
        shutil.copyfileobj(source, handle, _CHUNK)
    os.chmod(path, 0o755 if mode & 0o111 else 0o644)  # no setuid, setgid or sticky bits, no world write


def _link(archive, member, root, path):
    target = os.path.normpath(os.path.join(os.path.dirname(path), member.linkname))
    if member.linkname.startswith("/") or (target != root and not target.startswith(root + os.sep)):
        raise ArchiveError("%s: member %r is a link to %r, outside the folder the archive is unpacked into"
                           % (archive, member.name, member.linkname))
    os.symlink(member.linkname, path)
    real = os.path.realpath(path)  # through links extracted before it, it may still lead out
    if real != root and not real.startswith(root + os.sep):
        os.unlink(path)
        raise ArchiveError("%s: member %r is a link to %r, which leads outside the folder the archive is unpacked "
                           "into" % (archive, member.name, member.linkname))
