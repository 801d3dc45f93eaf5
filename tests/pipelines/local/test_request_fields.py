"""Every field of every request the local engine runs has a rule (honoured, or reported as not enforced), read
from the installed botocore's shapes, so a field SageMaker adds is never silently ignored."""

from __future__ import annotations

from typing import Any, Iterator

import botocore.session
import pytest

from pipelines.local import request_fields, unenforced


def fields(shape: Any, path: str = "", seen: tuple[str, ...] = ()) -> Iterator[str]:
    """Every field path of a botocore shape (list items and map values are their field's own path)."""
    if shape.type_name == "structure":
        if shape.name in seen:
            return
        for name, member in shape.members.items():
            yield from fields(member, f"{path}.{name}" if path else name, seen + (shape.name,))
    elif shape.type_name == "list":
        yield from fields(shape.member, path, seen)
    else:
        yield path  # a scalar, or a map whose keys are the user's


@pytest.mark.parametrize("step_type, operation", sorted(request_fields.OPERATIONS.items()))
def test_every_field_of_the_request_has_a_rule(step_type, operation):
    model = botocore.session.get_session().get_service_model("sagemaker")
    unruled = [path for path in fields(model.operation_model(operation).input_shape)
               if not request_fields.rule_for(step_type, path)[0]]
    assert unruled == []


def test_every_rule_names_a_field_the_request_has():
    model = botocore.session.get_session().get_service_model("sagemaker")
    for step_type, operation in request_fields.OPERATIONS.items():
        known = set(fields(model.operation_model(operation).input_shape))
        prefixes = {".".join(path.split(".")[:end]) for path in known for end in range(len(path.split(".")) + 1)}
        stale = [rule for rule in request_fields.RULES[step_type] if rule not in prefixes]
        assert stale == [], f"{step_type}: rules for fields {operation} does not have"


def test_the_settings_the_issue_names_are_reported():
    training = unenforced.settings({
        "ProfilerRuleConfigurations": [{"RuleConfigurationName": "r", "RuleEvaluatorImage": "i"}],
        "RetryStrategy": {"MaximumRetryAttempts": 2},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "KeepAlivePeriodInSeconds": 600},
        "EnableManagedSpotTraining": True,
        "InputDataConfig": [{"ChannelName": "train", "InputMode": "File"}, {"ChannelName": "v", "InputMode": "Pipe"}],
        "HyperParameters": {"max_depth": "3"},
    }, "Training")
    said = [line.split(": ", 1)[0] for line in training]
    assert said == ["S3 permissions", "ProfilerRuleConfigurations = set", "RetryStrategy = set",
                    "ResourceConfig.InstanceType = ml.m5.xlarge", "ResourceConfig.KeepAlivePeriodInSeconds = 600",
                    "EnableManagedSpotTraining = True", "InputDataConfig[1].InputMode = Pipe"]
    assert unenforced.pipeline_settings({"PipelineExperimentConfig": {"ExperimentName": "x"}}) == [
        "PipelineExperimentConfig = set: SageMaker Experiments tracking of the pipeline's executions"]


def test_a_field_no_rule_knows_is_reported_as_not_read():
    lines = unenforced.settings({"RoleArn": "arn:aws:iam::111122223333:role/r", "BrandNewField": {"On": True}},
                                "Processing")
    assert "BrandNewField = set: not read by the local engine (a field it does not know)" in lines


def test_the_end_of_a_run_groups_each_setting_with_its_steps():
    report = {"Train": ["RoleArn = r: IAM role", "x: y"], "Evaluate": ["RoleArn = r: IAM role"], "Score": ["z"]}
    assert unenforced.grouped(report) == [(["Train", "Evaluate"], "RoleArn = r: IAM role"), (["Train"], "x: y"),
                                          (["Score"], "z")]
