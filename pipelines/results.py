"""What a run reports, whichever target ran it: per-step status and the execution's outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

TERMINAL_STEP_STATUSES = ("Succeeded", "Failed", "Stopped")
TERMINAL_EXECUTION_STATUSES = ("Succeeded", "Failed", "Stopped")


@dataclass
class StepStatus:
    """One step of an execution, with SageMaker's status names (Executing, Succeeded, Failed, ...)."""

    name: str
    status: str
    start_time: datetime | None = None
    end_time: datetime | None = None
    failure_reason: str | None = None
    attempts: int = 1
    cache_hit_from: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reused_from: str | None = None  # selective execution: the reference execution whose result this is

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end (or to now while running)."""
        if self.start_time is None:
            return None
        end = self.end_time or datetime.now(self.start_time.tzinfo)
        return (end - self.start_time).total_seconds()


def model_quality_metrics(document: Any) -> dict[str, Any]:
    """The ``value`` of each metric of a model-quality report (``binary_classification_metrics``)."""
    metrics = document.get("binary_classification_metrics", {}) if isinstance(document, dict) else {}
    return {k: v["value"] for k, v in metrics.items() if isinstance(v, dict) and "value" in v}


REPORT_FILE = "report.html"  # what an evaluation step writes beside its property file, for people


@dataclass(frozen=True)
class Location:
    """Where an output is: its S3 URI and, for a local run, the file or folder in the store."""

    s3_uri: str
    local_path: str | None = None

    def __str__(self) -> str:
        return f"{self.s3_uri} ({self.local_path})" if self.local_path else self.s3_uri


@dataclass
class RunResult:
    """The outcome of one pipeline execution."""

    target: str
    pipeline_name: str
    execution_id: str
    execution_arn: str | None
    status: str
    steps: list[StepStatus] = field(default_factory=list)
    failure_reason: str | None = None
    failed_step: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    registered_model: dict[str, Any] | None = None
    transform_output: Location | None = None
    report: Location | None = None  # the evaluation report (report.html)
    evaluation: Location | None = None  # the property file the quality gate read (evaluation.json)
    parameters: dict[str, Any] = field(default_factory=dict)  # the values the execution ran with (local) or was given
    notes: list[str] = field(default_factory=list)
    unenforced: dict[str, list[str]] = field(default_factory=dict)  # local runs: settings accepted, not honoured

    @property
    def exit_code(self) -> int:
        """0 when the execution succeeded (or was left running with --no-wait), else 1."""
        return 0 if self.status in ("Succeeded", "Executing") else 1

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary (the --summary-json document)."""
        data = asdict(self)
        for step, raw in zip(self.steps, data["steps"]):
            raw["start_time"] = step.start_time.isoformat() if step.start_time else None
            raw["end_time"] = step.end_time.isoformat() if step.end_time else None
            raw["duration_seconds"] = round(step.duration_seconds, 3) if step.duration_seconds is not None else None
        return data
