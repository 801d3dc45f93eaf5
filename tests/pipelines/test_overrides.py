"""--parameter overrides are checked against the declared parameter types."""

from __future__ import annotations

import pytest

from pipelines.errors import ParameterError
from pipelines.overrides import as_strings, resolve

DEFINITION = {"Parameters": [
    {"Name": "NumRound", "Type": "Integer", "DefaultValue": 10},
    {"Name": "Eta", "Type": "Float", "DefaultValue": 0.1},
    {"Name": "Flag", "Type": "Boolean", "DefaultValue": False},
    {"Name": "Url", "Type": "String", "DefaultValue": "s3://b/k"},
    {"Name": "Status", "Type": "String", "DefaultValue": "PendingManualApproval",
     "EnumValues": ["PendingManualApproval", "Approved"]},
]}


@pytest.mark.parametrize("assignment, expected", [
    ("NumRound=50", {"NumRound": 50}),
    ("Eta=0.3", {"Eta": 0.3}),
    ("Eta=1", {"Eta": 1.0}),
    ("Flag=true", {"Flag": True}),
    ("Url=s3://x/y=z", {"Url": "s3://x/y=z"}),
    ("Status=Approved", {"Status": "Approved"}),
])
def test_valid_overrides(assignment, expected):
    assert resolve(DEFINITION, [assignment]) == expected


@pytest.mark.parametrize("assignment, message", [
    ("NumRound=50.0", "NumRound is Integer; '50.0' is not a valid integer"),
    ("Eta=fast", "Eta is Float"),
    ("Eta=nan", "Eta is Float"),
    ("Flag=yes", "Flag is Boolean"),
    ("Status=Maybe", "must be one of PendingManualApproval, Approved"),
    ("Nope=1", "unknown parameter 'Nope'; this pipeline's parameters are: Eta, Flag, NumRound, Status, Url"),
    ("NoEquals", "must be Name=Value"),
])
def test_invalid_overrides(assignment, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve(DEFINITION, [assignment])


def test_as_strings_for_start_pipeline_execution():
    assert as_strings({"NumRound": 5, "Flag": True, "Eta": 0.5}) == [
        {"Name": "NumRound", "Value": "5"}, {"Name": "Flag", "Value": "true"}, {"Name": "Eta", "Value": "0.5"}]
