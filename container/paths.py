"""Where the container's files are: ``/opt/ml``, or ``SAGEMAKER_BASE_DIR`` when run without Docker."""

from __future__ import annotations

import os
from pathlib import Path


def base() -> Path:
    return Path(os.environ.get("SAGEMAKER_BASE_DIR") or "/opt/ml")


def config_file(name: str) -> Path:
    return base() / "input" / "config" / name


def channel(name: str) -> Path:
    return base() / "input" / "data" / name


def model_dir() -> Path:
    return base() / "model"


def failure_file() -> Path:
    return base() / "output" / "failure"
