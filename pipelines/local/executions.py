"""Persisted execution records: ``<store>/executions/<id>/execution.json``, rewritten atomically."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def new_execution_id() -> str:
    """A SageMaker-like execution id (12 lower-case alphanumerics)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class StepRecord:
    """What the execution record keeps of one step."""

    name: str
    type: str
    status: str
    start_time: str | None = None
    end_time: str | None = None
    failure_reason: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    property_files: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExecutionRecord:
    """One execution: parameters, status and its steps."""

    execution_id: str
    pipeline_name: str
    status: str
    parameters: dict[str, Any]
    start_time: str
    end_time: str | None = None
    failure_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)

    def save(self, store_root: Path) -> Path:
        """Write the record atomically; returns its path."""
        directory = store_root / "executions" / self.execution_id
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "execution.json"
        tmp = directory / ".execution.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2, default=str))
        tmp.replace(path)
        return path
