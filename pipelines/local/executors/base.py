"""What an executor receives and returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pipelines.local import sandbox
from pipelines.local.expressions import Context
from pipelines.local.registry import Registry
from pipelines.local.store import Store


class StepFailed(Exception):
    """The step ran and failed; the message is its FailureReason."""


@dataclass
class StepRun:
    """One step to execute: its definition, resolved arguments and where it may write."""

    name: str
    definition: dict[str, Any]
    arguments: dict[str, Any]
    context: Context
    execution_id: str
    pipeline_name: str
    store: Store
    job_dir: Path
    registry: Registry
    log: Callable[[str], None]
    image_programs: Mapping[str, str] = field(default_factory=dict)  # image URI -> local command

    @property
    def max_runtime_seconds(self) -> float | None:
        """The job's ``StoppingCondition.MaxRuntimeInSeconds``, if set."""
        value = self.arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        return float(value) if value is not None else None

    @property
    def job_name(self) -> str:
        """A SageMaker-style job name for this step in this execution (63 characters at most)."""
        return f"pipelines-{self.execution_id}-{self.name}"[:63].rstrip("-")


@dataclass
class StepOutcome:
    """The result of a step: its properties (as the Describe* API would return them)."""

    properties: dict[str, Any]
    property_files: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    branch: bool | None = None  # for Condition steps: which branch runs

    @property
    def status(self) -> str:
        return "Failed" if self.failure_reason else "Succeeded"


def run_program(run: StepRun, command: list[str], job_kind: str, environment: Mapping[str, Any] | None = None,
                container_root: Path | None = None, stopped_detail: str = "") -> sandbox.JobRun:
    """Run the job's program in its job directory with its log streamed; returns how it ended.

    With ``container_root``, the command is a container entrypoint whose ``/opt/ml`` paths are mapped
    there. A program still running at ``StoppingCondition.MaxRuntimeInSeconds`` is stopped and the
    step fails as SageMaker fails it.
    """
    if container_root is not None:
        command, notice = sandbox.command_line(command, container_root)
        if notice:
            run.log(notice)
    # OpenMP threads that spin while waiting steal the cores other jobs on this machine need
    env = {"OMP_WAIT_POLICY": "PASSIVE", **{str(k): str(v) for k, v in (environment or {}).items()}}
    limit = run.max_runtime_seconds
    job = sandbox.run_logged(command, env, run.job_dir, run.log, run.job_dir / "job.log", limit)
    if job.timed_out:
        raise StepFailed(f"MaxRuntimeExceeded: {job_kind} job {run.job_name} ran longer than "
                         f"StoppingCondition.MaxRuntimeInSeconds ({limit:g}) and was stopped{stopped_detail}")
    return job
