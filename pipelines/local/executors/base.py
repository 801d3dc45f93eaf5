"""What an executor receives and returns."""

from __future__ import annotations

import contextlib
import hashlib
import re
import string
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from pipelines.errors import EnvironmentBuildError
from pipelines.local import job_runtime
from pipelines.local import image_libraries
from pipelines.local.environments import Environment, Environments
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
    runtime: job_runtime.Runtime = field(default_factory=job_runtime.automatic)  # how job programs are started
    environments: Environments = field(default_factory=Environments)  # where job requirements are installed
    # says what the step does not enforce as soon as the executor knows it (kept when the step fails)
    report: Callable[[str], None] = lambda line: None
    lambdas: Mapping[str, str] = field(default_factory=dict)  # Lambda function ARN or name -> MODULE:FUNCTION
    callback_timeout: float | None = None  # how long a Callback step waits for its token (None: no limit)
    stopping: threading.Event = field(default_factory=threading.Event)  # set when the engine stops (Ctrl-C)
    given_job_name: str | None = None  # a job's name chosen by its step (a tuning job's training jobs)

    @property
    def max_runtime_seconds(self) -> float | None:
        """The job's ``StoppingCondition.MaxRuntimeInSeconds``, if set."""
        value = self.arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        return float(value) if value is not None else None

    @property
    def job_name(self) -> str:
        """The job's name as SageMaker shapes it: ``pipelines-<execution id>-<step name>-<10 characters>``,
        63 at most, letters, digits and '-' only (the step name is shortened and loses '_'); the suffix is
        derived from the execution and step, so it is the same on every attempt. A name the step chose
        (``given_job_name``) instead, if it has one."""
        return self.given_job_name or job_name(self.execution_id, self.name)

    def job_arn(self, kind: str) -> str:
        """The ARN of this step's job of ``kind`` (training-job, processing-job, transform-job)."""
        return job_arn(kind, self.job_name)


def job_name(execution_id: str, step_name: str) -> str:
    """The name of the job step ``step_name`` of execution ``execution_id`` runs (see ``StepRun.job_name``)."""
    digest = int.from_bytes(hashlib.sha256(f"{execution_id}/{step_name}".encode()).digest()[:8], "big")
    suffix = ""
    for _ in range(10):
        digest, index = divmod(digest, len(_JOB_NAME_ALPHABET))
        suffix += _JOB_NAME_ALPHABET[index]
    prefix = f"pipelines-{execution_id}-"
    stem = re.sub(r"[^A-Za-z0-9-]", "", step_name)[:63 - len(prefix) - len(suffix) - 1]
    return f"{prefix}{stem}-{suffix}"


def job_arn(kind: str, name: str) -> str:
    """The ARN of a local job of ``kind`` (training-job, processing-job, transform-job) named ``name``."""
    return f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:{kind}/{name.lower()}"


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


def platform_environment(run: StepRun) -> dict[str, str]:
    """What every job program gets besides its definition's Environment (which cannot override it): the run's
    S3 endpoint, region and placeholder credentials."""
    return dict(run.job_environment)


@contextlib.contextmanager
def client_errors(prefix: str = "") -> Iterator[None]:
    """An environment that cannot be built fails the step as a client error (``prefix`` + its reason)."""
    try:
        yield
    except EnvironmentBuildError as exc:
        raise StepFailed(f"ClientError: {prefix}{exc}") from None


def requirements_environment(run: StepRun, requirements: Path, log: Callable[[str], None], source: str = "",
                             base: Environment | None = None) -> Environment:
    """``base`` (the job's image environment; None: this interpreter's libraries) with ``requirements``
    pip-installed (built once, cached); StepFailed, a client error prefixed with ``source``, if pip cannot
    install them."""
    with client_errors(source):
        return run.environments.with_requirements(requirements, log, base)


def commands_environment(run: StepRun, script: Path, log: Callable[[str], None],
                         base: Environment | None = None) -> Environment:
    """``base`` after a function step's pre-execution ``script`` ran in it (once, cached); StepFailed, a client
    error, if the commands fail."""
    with client_errors():
        return run.environments.with_commands(script, run.runtime, log, base)


def image_environment(run: StepRun, image_uri: str, field_name: str) -> Environment | None:
    """The environment a job of ``image_uri`` runs with (None: this interpreter's libraries), reporting how it
    differs from the image (``field_name = image_uri: ...``); StepFailed if it cannot be built."""
    with client_errors(f"{field_name}: "):
        environment = run.environments.for_image(image_uri, run.log)
    image = image_libraries.libraries_of(image_uri)
    if environment is not None and image is not None:
        said = image_libraries.environment_differences(image, environment.manifest)
    else:
        said = image_libraries.engine_differences(image_uri) or (
            "the image's programs and libraries: the job runs with this machine's and this interpreter's")
    run.report(f"{field_name} = {image_uri}: {said}")
    return environment


def run_program(run: StepRun, spec: job_runtime.JobSpec, job_kind: str, stopped_detail: str = "",
                log: Callable[[str], None] | None = None) -> job_runtime.JobRun:
    """Run one job host's program in the run's job runtime with its log streamed; returns how it ended.

    A program still running at ``StoppingCondition.MaxRuntimeInSeconds`` is stopped and the step fails
    as SageMaker fails it.
    """
    # OpenMP threads that spin while waiting steal the cores other jobs on this machine need
    environment = {"OMP_WAIT_POLICY": "PASSIVE", **{str(k): str(v) for k, v in spec.environment.items()},
                   **platform_environment(run)}
    limit = run.max_runtime_seconds
    job = job_runtime.run(run.runtime, replace(spec, environment=environment), log or run.log, limit)
    if job.timed_out:
        raise StepFailed(f"MaxRuntimeExceeded: {job_kind} job {run.job_name} ran longer than "
                         f"StoppingCondition.MaxRuntimeInSeconds ({limit:g}) and was stopped{stopped_detail}")
    return job
