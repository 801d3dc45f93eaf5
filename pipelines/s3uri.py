"""The one place ``s3://bucket/key`` URIs are taken apart and put together."""

from __future__ import annotations

from pipelines.errors import DefinitionError


def split_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` URI."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise DefinitionError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise DefinitionError(f"{uri!r} has no bucket")
    return bucket, key


def join_uri(*parts: str) -> str:
    """Join URI parts with single slashes."""
    return "/".join(p.strip("/") for p in parts if p)
