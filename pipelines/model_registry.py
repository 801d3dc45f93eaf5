"""The model registry on either target, behind one interface: the local SQLite registry or SageMaker's.

Both return versions in DescribeModelPackage's shape, so the CLIs (``pipelines.registry``,
``pipelines.deploy``) never ask which target they talk to. ``summary`` reads a version's
``evaluation.json`` (its ``ModelMetrics.ModelQuality.Statistics``) for the test AUC and the
top-decile lift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.aws import aws_call
from pipelines.errors import ModelPackageError
from pipelines.local.registry import APPROVAL_STATUSES, Registry
from pipelines.local.store import Store
from pipelines.results import REPORT_FILE
from pipelines.s3uri import split_uri

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig

REPORT_FILES = (REPORT_FILE, "roc.png", "precision_recall.png", "lift.png")


class ModelRegistry(Protocol):
    """What the CLIs need of a registry."""

    def list(self, group: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Versions (of one group, with one status, or all), oldest first within a group."""

    def describe(self, group: str, version: int) -> dict[str, Any]:
        """One version; ModelPackageError if it is not registered."""

    def describe_arn(self, arn: str) -> dict[str, Any]:
        """One version by ARN; ModelPackageError if no version has it."""

    def set_approval(self, group: str, version: int, status: str, description: str) -> dict[str, Any]:
        """UpdateModelPackage with ApprovalDescription; ModelPackageError if unknown or already in ``status``."""

    def history(self, group: str, version: int) -> list[dict[str, Any]]:
        """Approval changes of one version, oldest first (where the target keeps them)."""

    def groups(self) -> list[str]:
        """The names of the model package groups, sorted."""

    def mlflow_run(self, package: dict[str, Any]) -> dict[str, str] | None:
        """The MLflow run of the execution that registered a version (run_id, experiment, tracking_uri), if known."""

    def read_text(self, uri: str) -> str | None:
        """An S3 object's text, or None if it cannot be read."""


class LocalModelRegistry:
    """The local store's registry (``<store>/registry.sqlite``)."""

    def __init__(self, store: Store, region: str = "local"):
        self.store = store
        self.registry = Registry(store.root / "registry.sqlite", region)

    def list(self, group: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return self.registry.list(group, status)

    def describe(self, group: str, version: int) -> dict[str, Any]:
        try:
            return self.registry.describe(group, version)
        except KeyError as exc:
            raise ModelPackageError(_unknown(group, version, self.registry.groups())) from exc

    def describe_arn(self, arn: str) -> dict[str, Any]:
        try:
            return self.registry.describe_arn(arn)
        except KeyError as exc:
            raise ModelPackageError(f"ModelPackage {arn} does not exist in the local registry") from exc

    def set_approval(self, group: str, version: int, status: str, description: str) -> dict[str, Any]:
        self.describe(group, version)
        try:
            return self.registry.set_approval(group, version, status, description)
        except (KeyError, ValueError) as exc:
            raise ModelPackageError(str(exc).strip("'\"")) from None

    def history(self, group: str, version: int) -> list[dict[str, Any]]:
        return self.registry.history(group, version)

    def groups(self) -> list[str]:
        return self.registry.groups()

    def mlflow_run(self, package: dict[str, Any]) -> dict[str, str] | None:
        from pipelines.errors import ExecutionError
        from pipelines.local import executions

        execution = registered_by(package)
        try:
            return executions.load(self.store.root, execution).mlflow_run if execution else None
        except ExecutionError:  # an execution removed from the store, or a version registered by other means
            return None

    def read_text(self, uri: str) -> str | None:
        try:
            return self.store.path(uri).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError):
            return None


class SageMakerModelRegistry:
    """SageMaker's Model Registry through boto3 (ListModelPackages, DescribeModelPackage, UpdateModelPackage)."""

    def __init__(self, session: Any):
        self.sagemaker = session.client("sagemaker")
        self.s3 = session.client("s3")

    def groups(self) -> list[str]:
        with aws_call("ListModelPackageGroups"):
            pages = self.sagemaker.get_paginator("list_model_package_groups").paginate()
            return sorted(g["ModelPackageGroupName"] for page in pages for g in page["ModelPackageGroupSummaryList"])

    def _summaries(self, group: str, status: str | None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"ModelPackageGroupName": group, "ModelPackageType": "Versioned"}
        if status:
            query["ModelApprovalStatus"] = status
        with aws_call("ListModelPackages"):
            pages = self.sagemaker.get_paginator("list_model_packages").paginate(**query)
            summaries = [s for page in pages for s in page["ModelPackageSummaryList"]]
        return sorted(summaries, key=lambda s: s.get("ModelPackageVersion", 0))

    def list(self, group: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        groups = [group] if group else self.groups()
        return [self.describe_arn(s["ModelPackageArn"]) for g in groups for s in self._summaries(g, status)]

    def mlflow_run(self, package: dict[str, Any]) -> dict[str, str] | None:
        return None  # SageMaker's managed MLflow links runs itself (the pipeline's MlflowConfig)

    def describe(self, group: str, version: int) -> dict[str, Any]:
        for summary in self._summaries(group, None):
            if summary.get("ModelPackageVersion") == version:
                return self.describe_arn(summary["ModelPackageArn"])
        raise ModelPackageError(_unknown(group, version, None))

    def describe_arn(self, arn: str) -> dict[str, Any]:
        with aws_call("DescribeModelPackage"):
            package = self.sagemaker.describe_model_package(ModelPackageName=arn)
        package.pop("ResponseMetadata", None)
        return package

    def set_approval(self, group: str, version: int, status: str, description: str) -> dict[str, Any]:
        package = self.describe(group, version)
        if package.get("ModelApprovalStatus") == status:
            raise ModelPackageError(f"{group} version {version} is already {status}; nothing to change")
        with aws_call("UpdateModelPackage"):
            self.sagemaker.update_model_package(ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus=status,
                                                ApprovalDescription=description)
        return self.describe_arn(package["ModelPackageArn"])

    def history(self, group: str, version: int) -> list[dict[str, Any]]:
        return []  # SageMaker keeps only the latest change (LastModifiedBy/Time); CloudTrail has the rest

    def read_text(self, uri: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_uri(uri)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except (BotoCoreError, ClientError, UnicodeDecodeError):
            return None


def check_status(status: str) -> str:
    """``status`` if it is a ModelApprovalStatus; ModelPackageError otherwise."""
    if status not in APPROVAL_STATUSES:
        raise ModelPackageError(f"ModelApprovalStatus must be one of {', '.join(APPROVAL_STATUSES)}; got {status!r}")
    return status


def decide(registry: ModelRegistry, group: str, version: int, status: str, description: str,
           field: str = "description") -> dict[str, Any]:
    """Approve or reject a version with the reviewer's reason (kept in the audit trail and the event line); the
    same checks wherever the decision is taken. ``field`` names where the reason was typed, for the errors."""
    from pipelines.credentials import refuse_credentials
    from pipelines.errors import ConfigError

    refuse_credentials({"description": description}, field, check_names=False)
    if not description.strip():
        raise ConfigError(f"{field} must say why (it is kept in the audit trail); it is empty")
    return registry.set_approval(group, version, check_status(status), description)


def registered_by(package: dict[str, Any]) -> str | None:
    """The id of the pipeline execution that registered a version (its RegisterModel step records it in the
    version's metadata), if known."""
    return package.get("CustomerMetadataProperties", {}).get("PipelineExecutionId")


def report_uri(package: dict[str, Any]) -> str | None:
    """Where the version's evaluation.json is (ModelMetrics.ModelQuality.Statistics.S3Uri), if it has one."""
    return package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")


def summary(registry: ModelRegistry, package: dict[str, Any]) -> dict[str, Any]:
    """The metrics a reviewer decides on, read from the version's evaluation.json, and where the report is."""
    uri = report_uri(package)
    result: dict[str, Any] = {"report": uri, "test_auc": None, "top_decile_lift": None}
    if uri:
        text = registry.read_text(uri)
        try:
            report = json.loads(text) if text else {}
            result["test_auc"] = report["binary_classification_metrics"]["auc"]["value"]
            # our Evaluate step's report has charts beside it; a Model Monitor statistics.json (a foreign
            # pipeline's model-quality check) has the AUC only
            lead_scoring = report.get("lead_scoring_metrics")
            if lead_scoring is not None:
                result["top_decile_lift"] = lead_scoring["top_decile"]["lift"]
                result["test_rows"] = lead_scoring["test_rows"]
                result["charts"] = [f"{uri.rsplit('/', 1)[0]}/{name}" for name in REPORT_FILES]
        except (ValueError, KeyError, TypeError, AttributeError):
            result["unreadable"] = "the evaluation report is missing or not in the expected shape"
    return result


def latest_approved(registry: ModelRegistry, group: str) -> dict[str, Any]:
    """The newest Approved version of ``group``; ModelPackageError if there is none."""
    approved = registry.list(group, "Approved")
    if not approved and group not in (groups := registry.groups()):
        raise ModelPackageError(f"there is no model package group {group} (groups: {', '.join(groups) or 'none'}); "
                                "pass --group, or run the pipeline that registers it first")
    if not approved:
        raise ModelPackageError(f"model package group {group} has no Approved version; approve one with "
                                f"`python -m pipelines.registry approve {group} VERSION --description ...`")
    return approved[-1]


def _unknown(group: str, version: int, groups: list[str] | None) -> str:
    message = f"{group} version {version} is not registered"
    if groups is not None and group not in groups:
        message += f" (no model package group {group}; groups: {', '.join(groups) or 'none'})"
    return message


def open_registry(target: str, store: Path, config: PipelineConfig) -> ModelRegistry:
    """The registry of ``target``: SageMaker's in the configured region, or the local store's, which must exist
    (a mistyped store must not create a new, empty registry)."""
    if target == "sagemaker":
        from pipelines.aws import aws_session

        return SageMakerModelRegistry(aws_session(config))
    local = Store(Path(store).resolve())
    if not (local.root / "registry.sqlite").is_file():
        raise ModelPackageError(f"there is no local registry in {local.root} (registry.sqlite): run the pipeline "
                                "first, or pass the --store it ran with")
    return LocalModelRegistry(local, config.region)
