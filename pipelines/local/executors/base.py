"""What an executor receives and returns."""

from __future__ import annotations

import hashlib
import os
import re
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from pipelines.local import sandbox
from pipelines.local.expressions import Context
from pipelines.local.registry import LOCAL_ACCOUNT, Registry
from pipelines.local.store import Store


_JOB_NAME_ALPHABET = string.ascii_letters + string.digits


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
    job_environment: Mapping[str, str] = field(default_factory=dict)  # the run's S3 endpoint, region, credentials

    @property
    def max_runtime_seconds(self) -> float | None:
        """The job's ``StoppingCondition.MaxRuntimeInSeconds``, if set."""
        value = self.arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        return float(value) if value is not None else None

    @property
    def job_name(self) -> str:
        """The job's name as SageMaker shapes it: ``pipelines-<execution id>-<step name>-<10 characters>``,
        63 at most, letters, digits and '-' only (the step name is shortened and loses '_'); the suffix is
        derived from the execution and step, so it is the same on every attempt."""
        digest = int.from_bytes(hashlib.sha256(f"{self.execution_id}/{self.name}".encode()).digest()[:8], "big")
        suffix = ""
        for _ in range(10):
            digest, index = divmod(digest, len(_JOB_NAME_ALPHABET))
            suffix += _JOB_NAME_ALPHABET[index]
        prefix = f"pipelines-{self.execution_id}-"
        stem = re.sub(r"[^A-Za-z0-9-]", "", self.name)[:63 - len(prefix) - len(suffix) - 1]
        return f"{prefix}{stem}-{suffix}"

    def job_arn(self, kind: str) -> str:
        """The ARN of this step's job of ``kind`` (training-job, processing-job, transform-job)."""
        return f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:{kind}/{self.job_name.lower()}"


@dataclass
class StepOutcome:
    """The result of a step: its properties (as the Describe* API would return them)."""

    properties: dict[str, Any]
    property_files: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    branch: bool | None = None  # for Condition steps: which branch runs
    unenforced: list[str] = field(default_factory=list)  # what the executor found it could not honour

    @property
    def status(self) -> str:
        return "Failed" if self.failure_reason else "Succeeded"


def platform_environment(run: StepRun) -> dict[str, str]:
    """What every job program gets besides its definition's Environment (which cannot override it): the run's
    S3 endpoint, region and placeholder credentials, and this interpreter first on PATH (so a script's
    ``python3`` and ``pip`` are the ones this package runs with)."""
    return {
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
        **run.job_environment,
    }


def run_program(run: StepRun, command: list[str], job_kind: str, environment: Mapping[str, Any] | None = None,
                container_root: Path | None = None, stopped_detail: str = "", *, work_dir: Path | None = None,
                log: Callable[[str], None] | None = None, etc_hosts: Path | None = None,
                container_workdir: str | None = None) -> sandbox.JobRun:
    """Run the job's program in its job directory (or ``work_dir``, for one host of several) with its log
    streamed; returns how it ended.

    With ``container_root``, the command is a container entrypoint whose ``/opt/ml`` paths are mapped
    there, started in ``container_workdir``, with ``etc_hosts`` as its /etc/hosts. A program still
    running at ``StoppingCondition.MaxRuntimeInSeconds`` is stopped and the step fails as SageMaker fails it.
    """
    work_dir = work_dir or run.job_dir
    log = log or run.log
    if container_root is not None:
        command, notice = sandbox.command_line(command, container_root, etc_hosts, container_workdir)
        if notice:
            log(notice)
    # OpenMP threads that spin while waiting steal the cores other jobs on this machine need
    env = {"OMP_WAIT_POLICY": "PASSIVE", **{str(k): str(v) for k, v in (environment or {}).items()},
           **platform_environment(run)}
    limit = run.max_runtime_seconds
    job = sandbox.run_logged(command, env, work_dir, log, work_dir / "job.log", limit)
    if job.timed_out:
        raise StepFailed(f"MaxRuntimeExceeded: {job_kind} job {run.job_name} ran longer than "
                         f"StoppingCondition.MaxRuntimeInSeconds ({limit:g}) and was stopped{stopped_detail}")
    return job
