"""Definition features other teams' pipelines use: JsonGet on an S3 object, Condition outcomes as strings,
a Fail step's reasons, SageMaker-shaped job names, unsupported step types anywhere in the definition."""

from __future__ import annotations

import re

import pytest

from pipelines.errors import UnsupportedStepTypeError
from pipelines.local.engine import FAIL_STEP_EXECUTION_REASON
from pipelines.local.store import Store
from tests.pipelines.local.helpers import definition, engine, script_step

REPORT = ("import json, pathlib; pathlib.Path('/opt/ml/processing/out/evaluation.json')"
          ".write_text(json.dumps({'metrics': {'auc': {'value': 0.91}}}))")


def condition(name: str, left: object, threshold: float, if_steps: list, else_steps: list, depends_on=()) -> dict:
    return {"Name": name, "Type": "Condition", "DependsOn": list(depends_on), "Arguments": {
        "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": left, "RightValue": threshold}],
        "IfSteps": if_steps, "ElseSteps": else_steps}}


def fail(name: str, message: object) -> dict:
    return {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": message}}


def test_jsonget_reads_an_s3_object_and_outcomes_are_strings(tmp_path) -> None:
    evaluate = script_step("Evaluate", REPORT)
    s3_uri = {"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}, "evaluation.json"]}}
    gate = condition("Gate", {"Std:JsonGet": {"S3Uri": s3_uri, "Path": "metrics.auc.value"}}, 0.9,
                     [script_step("Register", "print('ok')")], [fail("TooLow", "AUC too low")], depends_on=["Evaluate"])
    local, _ = engine(tmp_path / "store")
    record = local.run(definition(evaluate, gate), "p", {})
    assert record.status == "Succeeded", record.failure_reason
    assert record.step("Gate").properties["Outcome"] == "True"
    assert record.step("Register").status == "Succeeded"


def test_a_jsonget_on_a_missing_object_fails_its_step_naming_the_uri(tmp_path) -> None:
    gate = condition("Gate", {"Std:JsonGet": {"S3Uri": "s3://bkt/nowhere/evaluation.json", "Path": "auc"}}, 0.5,
                     [], [])
    local, _ = engine(tmp_path / "store")
    record = local.run(definition(gate), "p", {})
    assert "no object at s3://bkt/nowhere/evaluation.json" in record.step("Gate").failure_reason


def test_a_fail_step_keeps_its_message_and_the_execution_reports_as_sagemaker_does(tmp_path) -> None:
    message = {"Std:Join": {"On": " ", "Values": ["AUC", 0.42, "is below the threshold"]}}
    gate = condition("Gate", 0.42, 0.8, [], [fail("TooLow", message)])
    local, _ = engine(tmp_path / "store")
    record = local.run(definition(gate), "p", {})
    assert record.step("Gate").properties["Outcome"] == "False"
    assert record.step("TooLow").failure_reason == "AUC 0.42 is below the threshold"
    assert record.step("TooLow").properties == {"ErrorMessage": "AUC 0.42 is below the threshold"}
    assert record.failure_reason == FAIL_STEP_EXECUTION_REASON == "Step failure: One or multiple steps failed."


def test_job_names_have_sagemakers_shape_and_stay_the_same_across_attempts(tmp_path) -> None:
    long_name = "Prepare_Training_Data_For_The_Lead_Scoring_Model_With_Long_Name"
    local, _ = engine(tmp_path / "store")
    record = local.run(definition(script_step(long_name, "print(1)")), "p", {})
    job = record.step(long_name).properties["ProcessingJobName"]
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", job), job
    assert re.fullmatch(rf"pipelines-{record.execution_id}-PrepareTraining\w*-[A-Za-z0-9]{{10}}", job), job
    again = local.run(definition(script_step(long_name, "print(1)")), "p", {})
    assert again.step(long_name).properties["ProcessingJobName"] != job  # another execution, another name


def test_unsupported_types_are_refused_even_in_a_branch_never_taken_and_all_are_named(tmp_path) -> None:
    gate = condition("Gate", 1, 0, [script_step("Go", "print(1)")],
                     [{"Name": "Notify", "Type": "NotebookJob", "Arguments": {}},
                      {"Name": "Cluster", "Type": "EMR", "Arguments": {}}])
    local, _ = engine(tmp_path / "store")
    with pytest.raises(UnsupportedStepTypeError) as refused:
        local.run(definition(gate), "p", {})
    message = str(refused.value)
    assert ("step 'Notify': Type 'NotebookJob' (in the else branch of Gate) (a notebook job runs on SageMaker only; "
            "run the notebook's code as a Processing step locally)") in message
    assert "step 'Cluster': Type 'EMR' (in the else branch of Gate) (its cluster runs on SageMaker only" in message
    assert "even when such a step sits in a branch that may never be taken" in message
    assert not Store(tmp_path / "store").root.joinpath("jobs").exists()
