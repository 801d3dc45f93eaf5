"""Expressions and conditions are pure functions: table tests."""

from __future__ import annotations

import pytest

from pipelines.errors import ExpressionError
from pipelines.local.conditions import evaluate, evaluate_all
from pipelines.local.csv_jsonpath import select
from pipelines.local.expressions import Context, resolve
from pipelines.errors import DefinitionError

CTX = Context(
    parameters={"Threshold": 0.75, "Count": 3, "Name": "leads", "Flag": True},
    execution={"PipelineExecutionId": "abc123"},
    steps={"Prep": {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "train", "S3Output": {"S3Uri": "s3://bkt/train"}},
        {"OutputName": "test", "S3Output": {"S3Uri": "s3://bkt/test"}}]}},
        "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://bkt/model.tar.gz"},
                  "FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.8}]},
        "Eval": {}},
    property_file=lambda step, name: {"metrics": {"auc": {"value": 0.81}}, "list": [1, 2]}
    if (step, name) == ("Eval", "Report") else None,
)
JSONGET = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "metrics.auc.value"}}


@pytest.mark.parametrize("expression, expected", [
    ({"Get": "Parameters.Threshold"}, 0.75),
    ({"Get": "Execution.PipelineExecutionId"}, "abc123"),
    ({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"}, "s3://bkt/test"),
    ({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"}, "s3://bkt/train"),
    ({"Get": "Steps.Train.FinalMetricDataList['validation:auc'].Value"}, 0.8),
    ({"Std:Join": {"On": "/", "Values": ["s3://bkt", {"Get": "Execution.PipelineExecutionId"}, "x"]}}, "s3://bkt/abc123/x"),
    ({"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Count"}]}}, "3"),
    ({"Std:Join": {"On": " ", "Values": ["AUC", JSONGET, "<", {"Get": "Parameters.Threshold"}]}}, "AUC 0.81 < 0.75"),
    (JSONGET, 0.81),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "list[1]"}}, 2),
    ({"a": [{"Get": "Parameters.Name"}, 1]}, {"a": ["leads", 1]}),
])
def test_resolve(expression, expected):
    assert resolve(expression, CTX) == expected


@pytest.mark.parametrize("expression, message", [
    ({"Get": "Parameters.Missing"}, "no parameter named 'Missing'"),
    ({"Get": "Steps.Nope.Anything"}, "step 'Nope' has not run"),
    ({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['validation'].S3Output.S3Uri"}, "no item named 'validation'"),
    ({"Get": "Steps.Train.ModelArtifacts.Missing"}, "nothing at ModelArtifacts.Missing"),
    ({"Get": "Execution.Bogus"}, "unknown execution variable"),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "metrics.f1.value"}},
     "nothing at metrics.f1"),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Other"}, "Path": "a"}}, "no property file 'Other'"),
])
def test_unresolvable_references_raise(expression, message):
    with pytest.raises(ExpressionError, match=message):
        resolve(expression, CTX)


def cmp(kind, left, right):
    return {"Type": kind, "LeftValue": left, "RightValue": right}


@pytest.mark.parametrize("condition, expected", [
    (cmp("GreaterThanOrEqualTo", JSONGET, {"Get": "Parameters.Threshold"}), True),
    (cmp("GreaterThan", 0.75, {"Get": "Parameters.Threshold"}), False),
    (cmp("LessThan", 1, 2), True),
    (cmp("LessThanOrEqualTo", 2, 2), True),
    (cmp("Equals", {"Get": "Parameters.Name"}, "leads"), True),
    (cmp("Equals", {"Get": "Parameters.Count"}, 3.0), True),
    (cmp("Equals", {"Get": "Parameters.Flag"}, True), True),
    ({"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["a", "leads"]}, True),
    ({"Type": "In", "QueryValue": 5, "Values": [1, 2]}, False),
    ({"Type": "Not", "Expression": cmp("LessThan", 1, 2)}, False),
    ({"Type": "Or", "Conditions": [cmp("LessThan", 2, 1), cmp("Equals", 1, 1)]}, True),
    ({"Type": "Or", "Conditions": [cmp("LessThan", 2, 1)]}, False),
])
def test_conditions(condition, expected):
    assert evaluate(condition, CTX) is expected


def test_conditions_are_and_ed_and_errors_are_not_false():
    assert evaluate_all([cmp("LessThan", 1, 2), cmp("Equals", 1, 2)], CTX) is False
    with pytest.raises(ExpressionError, match="cannot compare 'leads' with 1"):
        evaluate(cmp("GreaterThan", {"Get": "Parameters.Name"}, 1), CTX)
    with pytest.raises(ExpressionError, match="unsupported condition type 'Xor'"):
        evaluate({"Type": "Xor"}, CTX)
    with pytest.raises(ExpressionError, match="no parameter"):
        evaluate(cmp("LessThan", {"Get": "Parameters.Nope"}, 1), CTX)


@pytest.mark.parametrize("expression, expected", [
    ("$", ["a", "b", "c", "d"]), ("$[1:]", ["b", "c", "d"]), ("$[0]", ["a"]), ("$[1:3]", ["b", "c"]),
    ("$[:2]", ["a", "b"]), ("$[0,-1]", ["a", "d"]), ("$[0, 2]", ["a", "c"]),
])
def test_csv_jsonpath(expression, expected):
    assert select(["a", "b", "c", "d"], expression) == expected


def test_csv_jsonpath_errors():
    with pytest.raises(DefinitionError, match="not supported for CSV"):
        select(["a"], "$.features")
    with pytest.raises(DefinitionError, match="index 5 is outside"):
        select(["a"], "$[5]")
