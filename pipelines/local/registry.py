"""The local model registry (SQLite in the store), mirroring SageMaker's model packages.

Versions are numbered 1..n per group inside one IMMEDIATE transaction, so concurrent
writers get distinct versions and a version is never half-written.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_package_groups (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_packages (
    group_name TEXT NOT NULL REFERENCES model_package_groups(name),
    version INTEGER NOT NULL,
    arn TEXT NOT NULL,
    approval_status TEXT NOT NULL,
    description TEXT,
    inference_specification TEXT NOT NULL,
    model_metrics TEXT NOT NULL,
    customer_metadata TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (group_name, version)
);
"""
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
LOCAL_ACCOUNT = "000000000000"


class Registry:
    """Model package groups and their versions, persisted in ``<store>/registry.sqlite``."""

    def __init__(self, path: Path, region: str = "local"):
        self.path = path
        self.region = region
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def register(self, group: str, approval_status: str, inference_specification: dict[str, Any],
                 model_metrics: dict[str, Any] | None = None, customer_metadata: dict[str, str] | None = None,
                 description: str | None = None) -> dict[str, Any]:
        """Create the next version in ``group`` (creating the group if needed); returns it."""
        if approval_status not in APPROVAL_STATUSES:
            raise ValueError(f"ModelApprovalStatus must be one of {', '.join(APPROVAL_STATUSES)}; got {approval_status!r}")
        now = datetime.now(timezone.utc).isoformat()
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR IGNORE INTO model_package_groups (name, created) VALUES (?, ?)", (group, now))
            version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_packages WHERE group_name = ?",
                                 (group,)).fetchone()[0]
            arn = f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:model-package/{group.lower()}/{version}"
            db.execute(
                "INSERT INTO model_packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (group, version, arn, approval_status, description, json.dumps(inference_specification),
                 json.dumps(model_metrics or {}), json.dumps(customer_metadata or {}), now),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        return self.describe(group, version)

    def describe(self, group: str, version: int) -> dict[str, Any]:
        """One version, in DescribeModelPackage's shape."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM model_packages WHERE group_name = ? AND version = ?", (group, version)).fetchone()
        if row is None:
            raise KeyError(f"{group} version {version} is not registered")
        return _describe(row)

    def list(self, group: str) -> list[dict[str, Any]]:
        """Every version of a group, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM model_packages WHERE group_name = ? ORDER BY version", (group,)).fetchall()
        return [_describe(r) for r in rows]

    def set_approval(self, group: str, version: int, status: str) -> dict[str, Any]:
        """Change a version's approval status (the approval workflow)."""
        if status not in APPROVAL_STATUSES:
            raise ValueError(f"ModelApprovalStatus must be one of {', '.join(APPROVAL_STATUSES)}; got {status!r}")
        with self._connect() as db:
            changed = db.execute("UPDATE model_packages SET approval_status = ? WHERE group_name = ? AND version = ?",
                                 (status, group, version)).rowcount
        if not changed:
            raise KeyError(f"{group} version {version} is not registered")
        return self.describe(group, version)


def _describe(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": row["group_name"],
        "ModelPackageVersion": row["version"],
        "ModelPackageArn": row["arn"],
        "ModelApprovalStatus": row["approval_status"],
        "ModelPackageDescription": row["description"],
        "InferenceSpecification": json.loads(row["inference_specification"]),
        "ModelMetrics": json.loads(row["model_metrics"]),
        "CustomerMetadataProperties": json.loads(row["customer_metadata"]),
        "CreationTime": row["created"],
        "ModelPackageStatus": "Completed",
    }
