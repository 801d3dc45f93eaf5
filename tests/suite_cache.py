"""Where the suite keeps what it builds between runs (job environments, uv's and pip's downloads, the modules'
times): ``$PIPELINES_TEST_CACHE``, else ``~/.cache/sagemaker-pipelines-local-tests``, outside the clone, so
that CI's fresh clones reuse it (see docs/development.md)."""

from __future__ import annotations

import os
from pathlib import Path

SUITE_CACHE = "PIPELINES_TEST_CACHE"


def suite_cache() -> Path:
    """The suite's cache folder."""
    configured = os.environ.get(SUITE_CACHE)
    return Path(configured) if configured else Path.home() / ".cache" / "sagemaker-pipelines-local-tests"
