"""Condition: evaluate the conditions; the engine runs the chosen branch."""

from __future__ import annotations

from pipelines.local import conditions
from pipelines.local.executors.base import StepOutcome, StepRun


def execute(run: StepRun) -> StepOutcome:
    """All conditions true -> IfSteps; otherwise ElseSteps. ``Outcome`` is "True" or "False", the strings
    SageMaker reports in the step's metadata."""
    outcome = conditions.evaluate_all(run.definition["Arguments"].get("Conditions", []), run.context)
    run.log(f"conditions evaluated to {outcome}")
    return StepOutcome(properties={"Outcome": str(bool(outcome))}, branch=outcome)
