"""Retry policies (StepRetryPolicy, SageMakerJobStepRetryPolicy) and which local failures they match.

Local failures map onto SageMaker's exception types like this:

- an infrastructure fault of a job step (Processing, Training, Transform): an I/O error while
  staging inputs or publishing outputs, the engine unable to start the job program, an
  unexpected error inside the engine -> ``SageMaker.JOB_INTERNAL_ERROR``;
- the same inside a non-job step (Model, RegisterModel, ...) -> ``Step.SERVICE_FAULT``;
- the local registry busy beyond its lock timeout -> ``Step.THROTTLING``;
- the job's own program failing (non-zero exit), bad arguments or data (input that is not UTF-8 text
  included), a step over its
  MaxRuntimeInSeconds, an expression that cannot be resolved -> a client error: never retried,
  as on SageMaker.

``SageMaker.CAPACITY_ERROR`` and ``SageMaker.RESOURCE_LIMIT`` never occur locally except when
injected (``--inject-fault``), which is how tests exercise a policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.errors import ConfigError, DefinitionError, RegistryBusyError

JOB_STEP_TYPES = ("Processing", "Training", "Transform")
EXCEPTION_TYPES = ("Step.SERVICE_FAULT", "Step.THROTTLING", "SageMaker.JOB_INTERNAL_ERROR",
                   "SageMaker.CAPACITY_ERROR", "SageMaker.RESOURCE_LIMIT")
_REASON_CODES = {"Step.SERVICE_FAULT": "InternalServerError", "Step.THROTTLING": "ThrottlingException",
                 "SageMaker.JOB_INTERNAL_ERROR": "InternalServerError",
                 "SageMaker.CAPACITY_ERROR": "InsufficientCapacityError",
                 "SageMaker.RESOURCE_LIMIT": "ResourceLimitExceeded"}


class TransientStepError(Exception):
    """A failure a retry policy may match; ``exception_type`` is SageMaker's name for it."""

    def __init__(self, exception_type: str, message: str):
        super().__init__(f"{_REASON_CODES[exception_type]}: {message}")
        self.exception_type = exception_type


def classify(step_type: str, exc: BaseException) -> TransientStepError:
    """The exception type of an unexpected error raised while a step ran (see the module docstring)."""
    if isinstance(exc, TransientStepError):
        return exc
    if isinstance(exc, RegistryBusyError):
        return TransientStepError("Step.THROTTLING", str(exc))
    kind = "SageMaker.JOB_INTERNAL_ERROR" if step_type in JOB_STEP_TYPES else "Step.SERVICE_FAULT"
    detail = f"{type(exc).__name__}: {exc}"
    return TransientStepError(kind, f"the local engine failed while running the step ({detail})")


@dataclass(frozen=True)
class RetryPolicy:
    """One entry of a step's ``RetryPolicies``."""

    exception_types: tuple[str, ...]
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_attempts: int | None = None
    expire_after_minutes: float | None = None

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before the ``retry_number``-th retry (1-based)."""
        return self.interval_seconds * self.backoff_rate ** (retry_number - 1)


def policies(step: dict[str, Any]) -> list[RetryPolicy]:
    """The step's retry policies; DefinitionError for an unknown exception type."""
    found = []
    for index, raw in enumerate(step.get("RetryPolicies", [])):
        types = tuple(raw.get("ExceptionType", [])) + tuple(raw.get("FailureReasonType", []))
        unknown = [t for t in types if t not in EXCEPTION_TYPES]
        if unknown:
            raise DefinitionError(f"unknown exception type(s) {', '.join(unknown)}; known: {', '.join(EXCEPTION_TYPES)}",
                                  step=step.get("Name"), field=f"RetryPolicies[{index}].ExceptionType")
        found.append(RetryPolicy(types, float(raw.get("IntervalSeconds", 1)), float(raw.get("BackoffRate", 2.0)),
                                 raw.get("MaxAttempts"), raw.get("ExpireAfterMin")))
    return found


def retry_delay(step_policies: list[RetryPolicy], exception_type: str, retries_so_far: int,
                elapsed_seconds: float) -> float | None:
    """Seconds to wait before retrying, or None when no policy allows another attempt.

    ``MaxAttempts`` counts retries after the first attempt; ``ExpireAfterMin`` bounds the time
    from the first attempt to the start of a retry.
    """
    for policy in step_policies:
        if exception_type not in policy.exception_types:
            continue
        if policy.max_attempts is not None and retries_so_far >= policy.max_attempts:
            return None
        delay = policy.delay(retries_so_far + 1)
        if policy.expire_after_minutes is not None and elapsed_seconds + delay > policy.expire_after_minutes * 60:
            return None
        return delay
    return None


def parse_faults(specs: list[str]) -> dict[str, tuple[str, int]]:
    """``--inject-fault STEP=EXCEPTION_TYPE[:TIMES]`` -> {step: (exception type, how many attempts fail)}."""
    faults = {}
    for spec in specs:
        step, _, rest = spec.partition("=")
        kind, _, times = rest.partition(":")
        if not step or kind not in EXCEPTION_TYPES or (times and not times.isdigit()):
            raise ConfigError(f"--inject-fault {spec!r}: expected STEP=TYPE[:TIMES] with TYPE one of "
                              f"{', '.join(EXCEPTION_TYPES)}")
        faults[step] = (kind, int(times or 1))
    return faults
