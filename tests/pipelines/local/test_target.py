"""What the local target shows of an ended execution's steps that never ran."""

from __future__ import annotations

from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.target import never_ran


def test_a_branch_not_taken_is_not_taken_and_steps_after_a_failure_are_not_run():
    definition = {"Steps": [
        {"Name": "Train", "Type": "Training", "Arguments": {}},
        {"Name": "Gate", "Type": "Condition", "Arguments": {
            "IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {}}],
            "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {}}]}},
        {"Name": "Gate2", "Type": "Condition", "Arguments": {
            "IfSteps": [{"Name": "Deploy", "Type": "Model", "Arguments": {}}], "ElseSteps": []}},
    ]}
    record = ExecutionRecord("e1", "p", "Failed", {}, "2026-12-01T00:00:00+00:00", steps=[
        StepRecord("Train", "Training", "Succeeded"),
        StepRecord("Gate", "Condition", "Succeeded", properties={"Outcome": "True"}),
        StepRecord("Register", "RegisterModel", "Failed")])
    shown = {step.name: step.status for step in never_ran(definition, record)}
    assert shown == {"Stop": "Not taken", "Gate2": "Not run", "Deploy": "Not run"}
