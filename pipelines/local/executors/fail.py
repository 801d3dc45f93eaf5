"""Fail: end the execution as failed, with the rendered error message."""

from __future__ import annotations

from pipelines.local.executors.base import StepOutcome, StepRun


def execute(run: StepRun) -> StepOutcome:
    """The step fails with ErrorMessage as its reason."""
    message = str(run.arguments.get("ErrorMessage", "")) or "Fail step reached"
    return StepOutcome(properties={"ErrorMessage": message}, failure_reason=message)
