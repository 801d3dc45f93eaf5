"""The SageMaker Python SDK's image configuration (sagemaker-core's ``sagemaker/core/image_uri_config/*.json``):
which image each framework version and built-in algorithm is, as ``image_uris.retrieve`` reads it. The one
reader of those files for the local engine."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTION = "sagemaker-core"
FOLDER = "sagemaker/core/image_uri_config"


def version() -> str | None:
    """The installed sagemaker-core's version, or None if it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def config(name: str) -> dict[str, Any]:
    """The configuration ``name`` (``pytorch``, ``kmeans``, ...); empty if the SDK's files cannot be read."""
    try:
        path = metadata.distribution(DISTRIBUTION).locate_file(f"{FOLDER}/{name}.json")
        found = json.loads(Path(str(path)).read_text(encoding="utf-8"))
    except (metadata.PackageNotFoundError, OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def names() -> list[str]:
    """Every configuration the installed SDK has, by name, sorted."""
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        return []
    return sorted(str(f).rsplit("/", 1)[1][:-5] for f in files
                  if str(f).startswith(f"{FOLDER}/") and str(f).endswith(".json"))
