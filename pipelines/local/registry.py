"""The local model registry (SQLite in the store), mirroring SageMaker's model packages.

Versions are numbered 1..n per group inside one IMMEDIATE transaction, so concurrent
writers get distinct versions and a version is never half-written. A version registered by
a pipeline step remembers (execution id, step name), so a step retried after a crash finds
the version it already registered instead of adding another. Every approval change is kept
in ``approval_history`` (who, when, from which status) and, like every new version, appended
as an EventBridge-shaped "SageMaker Model Package State Change" event to ``events_path``.
"""

from __future__ import annotations

import getpass
import json
import re
import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from pipelines.errors import ModelPackageError, RegistryBusyError, RegistryError
from pipelines.local import safe_files

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
CREATE TABLE IF NOT EXISTS approval_history (
    group_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    description TEXT,
    who TEXT NOT NULL,
    at TEXT NOT NULL
);
"""
# columns added after the first release; an older registry file gets them on open
ADDED_COLUMNS = {"source_execution": "TEXT", "source_step": "TEXT", "approval_description": "TEXT",
                 "last_modified": "TEXT", "drift_check_baselines": "TEXT"}
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
LOCAL_ACCOUNT = "000000000000"
# SageMaker's ModelPackageGroupName (botocore's ArnOrName): a name, or the group's ARN ending in it
GROUP_NAME = re.compile(r"(arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*/)?"
                        r"([a-zA-Z0-9][a-zA-Z0-9-]{0,62})(?<!-)")
MAX_VERSION = 2 ** 63 - 1  # SQLite's largest integer
EVENT_DETAIL_TYPE = "SageMaker Model Package State Change"


def group_name(group: Any) -> str:
    """The model package group's name, from its name or ARN; ModelPackageError for anything SageMaker refuses."""
    found = GROUP_NAME.fullmatch(group) if isinstance(group, str) else None
    if found is None:
        raise ModelPackageError(f"model package group {group!r} is not a valid ModelPackageGroupName (letters, digits "
                                "and hyphens, 63 at most, not ending in a hyphen; or the group's ARN)")
    return found.group(2)


def check_version(version: Any) -> int:
    """``version`` if it can be a model package version number; ModelPackageError otherwise."""
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise ModelPackageError(f"model package version {version!r} must be a whole number from 1 to {MAX_VERSION}")
    return version


class Registry:
    """Model package groups and their versions, persisted in ``<store>/registry.sqlite``."""

    def __init__(self, path: Path, region: str = "local", timeout: float = 60.0):
        self.path = path
        self.region = region
        self.timeout = timeout
        self.events_path = path.parent / "events" / "model-package-state-change.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if safe_files.kind(path.parent, path) not in (None, "file"):
            raise RegistryError(f"the local registry {path} is a symbolic link or a special file, not a database; "
                                "it is never opened through one (move it away: a new registry is made in its place)")
        db = self._connect()
        try:
            with _mapped_errors(self.path):
                db.executescript(SCHEMA)
                present = {row["name"] for row in db.execute("PRAGMA table_info(model_packages)")}
                for column, kind in ADDED_COLUMNS.items():
                    if column not in present:
                        db.execute(f"ALTER TABLE model_packages ADD COLUMN {column} {kind}")
                db.execute("CREATE UNIQUE INDEX IF NOT EXISTS by_source ON model_packages(source_execution, "
                           "source_step) WHERE source_execution IS NOT NULL")
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def _read(self, query: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        db = self._connect()
        try:
            with _mapped_errors(self.path):
                return db.execute(query, args).fetchall()
        finally:
            db.close()

    def register(self, group: str, approval_status: str, inference_specification: dict[str, Any],
                 model_metrics: dict[str, Any] | None = None, customer_metadata: dict[str, str] | None = None,
                 description: str | None = None, source: tuple[str, str] | None = None,
                 drift_check_baselines: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create the next version in ``group`` (creating the group if needed); returns it.

        ``source`` is (execution id, step name): if that step already registered a version, that
        version is returned and nothing is added ("Reused": "step"). Nor is anything added for a step when the
        group's latest version is the same model package: the same inference specification, metrics, description and
        metadata, but for the ids of the execution that registers it ("Reused": "identical"); an unchanged
        re-run whose steps were cache hits registers no copy of its model.
        """
        if approval_status not in APPROVAL_STATUSES:
            raise ValueError(f"ModelApprovalStatus must be one of {', '.join(APPROVAL_STATUSES)}; got {approval_status!r}")
        group, description = group_name(group), _text(description, "description")
        problem = _specification_problem(inference_specification)
        if problem:
            raise ValueError(f"InferenceSpecification {problem}")
        now = _now()
        self._events().close()
        db = self._connect()
        try:
            with _mapped_errors(self.path), _transaction(db):
                if source is not None:
                    row = db.execute("SELECT group_name, version FROM model_packages WHERE source_execution = ? "
                                     "AND source_step = ?", source).fetchone()
                    if row is not None:
                        return {**self.describe(row["group_name"], row["version"]), "Reused": "step"}
                    latest = db.execute("SELECT * FROM model_packages WHERE group_name = ? ORDER BY version DESC "
                                        "LIMIT 1", (group,)).fetchone()
                    if latest is not None and _same_package(latest, inference_specification, model_metrics or {},
                                                            customer_metadata or {}, description, source[0]) \
                            and json.loads(latest["drift_check_baselines"] or "{}") == (drift_check_baselines or {}):
                        return {**self.describe(group, latest["version"]), "Reused": "identical"}
                db.execute("INSERT OR IGNORE INTO model_package_groups (name, created) VALUES (?, ?)", (group, now))
                version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM model_packages WHERE group_name = ?",
                                     (group,)).fetchone()[0]
                arn = f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:model-package/{group.lower()}/{version}"
                db.execute(
                    "INSERT INTO model_packages (group_name, version, arn, approval_status, description, "
                    "inference_specification, model_metrics, customer_metadata, created, source_execution, "
                    "source_step, last_modified, drift_check_baselines) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (group, version, arn, approval_status, description, json.dumps(inference_specification),
                     json.dumps(model_metrics or {}), json.dumps(customer_metadata or {}), now,
                     *(source or (None, None)), now, json.dumps(drift_check_baselines or {})),
                )
        finally:
            db.close()
        package = self.describe(group, version)
        self._emit(package)
        return package

    def describe(self, group: str, version: int) -> dict[str, Any]:
        """One version, in DescribeModelPackage's shape; KeyError if it is not registered."""
        rows = self._read("SELECT * FROM model_packages WHERE group_name = ? AND version = ?",
                          (group_name(group), check_version(version)))
        if not rows:
            raise KeyError(f"{group} version {version} is not registered")
        return self._describe(rows[0])

    def describe_arn(self, arn: str) -> dict[str, Any]:
        """One version by its ARN; KeyError if no version has it."""
        rows = self._read("SELECT * FROM model_packages WHERE arn = ?", (_text(arn, "model package ARN"),))
        if not rows:
            raise KeyError(f"no model package version has the ARN {arn}")
        return self._describe(rows[0])

    def list(self, group: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Versions (of one group, with one status, or all), by group then version."""
        name = group_name(group) if group is not None else None
        rows = self._read("SELECT * FROM model_packages WHERE (? IS NULL OR group_name = ?) AND "
                          "(? IS NULL OR approval_status = ?) ORDER BY group_name, version",
                          (name, name, status, status))
        return [self._describe(r) for r in rows]

    def groups(self) -> list[str]:
        """Every model package group, by name."""
        return [r["name"] for r in self._read("SELECT name FROM model_package_groups ORDER BY name", ())]

    def group_times(self) -> dict[str, str]:
        """Every model package group, by name, with when it was created."""
        return {r["name"]: r["created"] for r in self._read("SELECT name, created FROM model_package_groups "
                                                            "ORDER BY name", ())}

    def history(self, group: str, version: int) -> list[dict[str, Any]]:
        """The approval changes of one version, oldest first."""
        rows = self._read("SELECT from_status, to_status, description, who, at FROM approval_history WHERE "
                          "group_name = ? AND version = ? ORDER BY rowid", (group_name(group), check_version(version)))
        return [dict(r) for r in rows]

    def set_approval(self, group: str, version: int, status: str, description: str | None = None,
                     who: str | None = None) -> dict[str, Any]:
        """Change a version's approval status (UpdateModelPackage): recorded in the audit trail and as an event.

        ValueError for an unknown status or a change to the status the version already has;
        KeyError for a version that is not registered.
        """
        if status not in APPROVAL_STATUSES:
            raise ValueError(f"ModelApprovalStatus must be one of {', '.join(APPROVAL_STATUSES)}; got {status!r}")
        group, version = group_name(group), check_version(version)
        description, who = _text(description, "description"), _text(who, "approver")
        now = _now()
        self._events().close()
        db = self._connect()
        try:
            with _mapped_errors(self.path), _transaction(db):
                row = db.execute("SELECT approval_status FROM model_packages WHERE group_name = ? AND version = ?",
                                 (group, version)).fetchone()
                if row is None:
                    raise KeyError(f"{group} version {version} is not registered")
                if row["approval_status"] == status:
                    raise ValueError(f"{group} version {version} is already {status}; nothing to change")
                db.execute("UPDATE model_packages SET approval_status = ?, approval_description = ?, last_modified = ? "
                           "WHERE group_name = ? AND version = ?", (status, description, now, group, version))
                db.execute("INSERT INTO approval_history VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (group, version, row["approval_status"], status, description, who or _user(), now))
        finally:
            db.close()
        package = self.describe(group, version)
        self._emit(package)
        return package

    def _describe(self, row: sqlite3.Row) -> dict[str, Any]:
        """A row in DescribeModelPackage's shape; RegistryError if its stored JSON was edited into nonsense."""
        where = f"the local registry {self.path}: {row['group_name']} version {row['version']}"
        package = {
            "ModelPackageGroupName": row["group_name"],
            "ModelPackageVersion": row["version"],
            "ModelPackageArn": row["arn"],
            "ModelApprovalStatus": row["approval_status"],
            "ModelPackageDescription": row["description"],
            "InferenceSpecification": _column(row, "inference_specification", where, _specification_problem),
            "ModelMetrics": _column(row, "model_metrics", where, _object_problem),
            "CustomerMetadataProperties": _column(row, "customer_metadata", where, _metadata_problem),
            "CreationTime": row["created"],
            "LastModifiedTime": row["last_modified"] or row["created"],
            "ModelPackageStatus": "Completed",
        }
        if row["approval_description"]:
            package["ApprovalDescription"] = row["approval_description"]
        baselines = _column(row, "drift_check_baselines", where, _object_problem) if row["drift_check_baselines"] else {}
        if baselines:
            package["DriftCheckBaselines"] = baselines
        return package

    def _events(self) -> BinaryIO:
        """The events file, open for appending; opened once before anything changes, so that a link or a special
        file planted there refuses the change (UnsafePathError) rather than leaving a change without its event."""
        return safe_files.open_append(self.path.parent, self.events_path)

    def _emit(self, package: dict[str, Any]) -> None:
        """Append the version's state as an EventBridge "SageMaker Model Package State Change" event."""
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": EVENT_DETAIL_TYPE, "source": "aws.sagemaker",
            "account": LOCAL_ACCOUNT, "time": package.get("LastModifiedTime") or package["CreationTime"],
            "region": self.region, "resources": [package["ModelPackageArn"]],
            "detail": package,
        }
        with self._events() as sink:  # one write per line: appends do not interleave
            sink.write((json.dumps(event, sort_keys=True) + "\n").encode("utf-8"))


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (only if it began)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:
            self.db.execute("ROLLBACK")


class _mapped_errors:
    """sqlite3's errors as RegistryError / RegistryBusyError naming the registry file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _: Any) -> None:
        if exc is None or not isinstance(exc, sqlite3.Error):
            return
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise RegistryBusyError(f"the local registry {self.path} stayed locked by another writer ({exc})") from None
        raise RegistryError(f"the local registry {self.path} cannot be read: {exc} "
                            "(move the file away to start a new registry)") from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _text(value: Any, what: str) -> Any:
    """``value`` if SQLite can store it as text (None passes); ModelPackageError otherwise (e.g. a command-line
    argument that was not UTF-8, which Python keeps as lone surrogates)."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except (AttributeError, UnicodeEncodeError):
        raise ModelPackageError(f"the {what} {value!r} is not valid UTF-8 text") from None
    return value


def _column(row: sqlite3.Row, column: str, where: str, check: Any) -> Any:
    """A JSON column of a row, checked; RegistryError naming the version and column if it was edited into nonsense."""
    try:
        value = json.loads(row[column])
    except (TypeError, ValueError):
        raise RegistryError(f"{where}: the {column} column is not JSON (was the row edited by hand?)") from None
    problem = check(value)
    if problem:
        raise RegistryError(f"{where}: the {column} column {problem} (was the row edited by hand?)")
    return value


def _specification_problem(value: Any) -> str | None:
    containers = value.get("Containers") if isinstance(value, dict) else None
    if not isinstance(containers, list) or not containers:
        return "has no Containers"
    for container in containers:
        if not isinstance(container, dict) or not all(isinstance(container.get(k), str) for k in ("Image",
                                                                                                   "ModelDataUrl")):
            return "has a container without an Image and a ModelDataUrl"
    return None


def _object_problem(value: Any) -> str | None:
    return None if isinstance(value, dict) else "is not a JSON object"


def _metadata_problem(value: Any) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return "is not an object of text values"
    return None


def _same_package(row: Any, specification: dict[str, Any], metrics: dict[str, Any], metadata: dict[str, str],
                  description: str | None, execution_id: str) -> bool:
    """Whether a registered version is the package being registered, but for the values that name the
    execution registering it (its id in the metadata)."""
    def without_ids(values: dict[str, str], ids: set[str | None]) -> dict[str, str]:
        return {key: value for key, value in values.items() if value not in ids}

    return (json.loads(row["inference_specification"]) == specification and json.loads(row["model_metrics"]) == metrics
            and row["description"] == description
            and without_ids(json.loads(row["customer_metadata"]), {row["source_execution"]})
            == without_ids(metadata, {execution_id}))
