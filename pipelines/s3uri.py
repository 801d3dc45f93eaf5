"""The one place ``s3://bucket/key`` URIs are taken apart, checked and put together.

Buckets follow S3's naming rules; keys that the local store maps to files may not have empty,
``.`` or ``..`` segments (a trailing ``/`` marks a prefix), so that no URI can name a path
outside the store.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pipelines.atomic import TMP_NAME_BYTES, TMP_PREFIX
from pipelines.errors import UnsafePathError

MAX_KEY_BYTES = 1024  # S3's own limit
MAX_SEGMENT_BYTES = 255 - TMP_NAME_BYTES  # a file name (255 bytes) with room for the store's temporary prefix
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI; UnsafePathError if the bucket breaks S3's naming rules."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise UnsafePathError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    problem = bucket_problem(bucket)
    if problem:
        raise UnsafePathError(f"{uri!r}: {problem}")
    return bucket, key


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid S3 bucket name, or None."""
    if not bucket:
        return "no bucket name"
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or bucket.startswith("xn--") or bucket.endswith("-s3alias"):
        return (f"bucket {bucket!r} is not a valid S3 bucket name (3-63 lower-case letters, digits, '.' and '-', "
                "starting and ending with a letter or digit)")
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        return None
    return f"bucket {bucket!r} is formatted as an IP address, which S3 does not allow"


def key_segments(uri: str) -> tuple[str, list[str]]:
    """(bucket, key segments) of a URI the local store maps to a path; UnsafePathError for a key that
    starts with '/', has an empty, '.' or '..' segment, holds control characters, is longer than S3 allows,
    has a segment longer than a file name can be, or a segment starting with the store's reserved ``.tmp-``."""
    bucket, key = split_uri(uri)
    if not key:
        return bucket, []
    if _CONTROL.search(key):
        raise UnsafePathError(f"{uri!r}: the key holds a control character")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise UnsafePathError(f"{uri[:80]!r}...: the key is longer than S3's {MAX_KEY_BYTES} bytes")
    segments = key[:-1].split("/") if key.endswith("/") else key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            shown = "an empty" if not segment else f"a {segment!r}"
            raise UnsafePathError(f"{uri!r}: the key has {shown} segment; the local store refuses such keys "
                                  "(they would name a path outside the bucket)")
        if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise UnsafePathError(f"{uri[:80]!r}...: a segment of the key (between '/') is longer than "
                                  f"{MAX_SEGMENT_BYTES} bytes, which the local store cannot hold as a file name")
        if segment.startswith(TMP_PREFIX):
            raise UnsafePathError(f"{uri!r}: the local store keeps names starting with {TMP_PREFIX!r} for its own "
                                  "temporary files and folder markers; rename the key")
    return bucket, segments


def check_uris(value: Any, step: str | None = None, path: str = "Arguments") -> None:
    """Check every ``s3://`` string in a nested structure with ``key_segments``; the error names the step
    and the field holding the URI."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_uris(item, step, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_uris(item, step, f"{path}[{index}]")
    elif isinstance(value, str) and value.startswith("s3://"):
        try:
            key_segments(value)
        except UnsafePathError as exc:
            raise UnsafePathError(str(exc), step=step, field=path) from None


def join_uri(*parts: str) -> str:
    """Join URI parts with single slashes."""
    return "/".join(p.strip("/") for p in parts if p)
