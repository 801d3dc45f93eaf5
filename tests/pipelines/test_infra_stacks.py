"""Waiting on CloudFormation: a line per new stack event, the first failed resource named when an action fails,
no changes not an error, and the states a stack cannot be deployed over. A scripted CloudFormation stands in for
the service, whose failures moto does not play."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipelines.errors import StackError, StackNotFoundError
from pipelines.infra.stacks import Stacks

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/secure/1"


def event(number: int, logical: str, status: str, kind: str = "AWS::KMS::Key", reason: str | None = None) -> dict:
    found = {"EventId": f"e{number}", "LogicalResourceId": logical, "ResourceType": kind, "ResourceStatus": status,
             "Timestamp": datetime(2026, 1, 1, 12, 0, number, tzinfo=timezone.utc)}
    return {**found, "ResourceStatusReason": reason} if reason else found


class ScriptedCloudFormation:
    """Statuses given in turn by DescribeStacks, events appearing in turn; the calls made are kept."""

    def __init__(self, statuses: list[str], events: list[list[dict]], exists: bool = True,
                 update_error: str | None = None):
        self.statuses, self.events, self.exists, self.update_error = statuses, events, exists, update_error
        self.shown: list[dict] = []
        self.made: list[str] = []

    def describe_stacks(self, StackName: str) -> dict:
        if not self.exists:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}},
                              "DescribeStacks")
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"Stacks": [{"StackName": "secure", "StackId": STACK_ID, "StackStatus": status}]}

    def describe_stack_events(self, StackName: str) -> dict:
        return {"StackEvents": list(reversed(self.shown))}

    def get_paginator(self, name: str) -> Any:
        scripted = self

        class Pages:
            def paginate(self, StackName: str) -> list[dict]:
                if scripted.events:
                    scripted.shown += scripted.events.pop(0)
                return [{"StackEvents": list(reversed(scripted.shown))}]

        return Pages()

    def create_stack(self, **kwargs: Any) -> dict:
        self.made.append("CreateStack")
        self.exists = True
        return {"StackId": STACK_ID}

    def update_stack(self, **kwargs: Any) -> dict:
        self.made.append(f"UpdateStack {kwargs['Parameters']}")
        if self.update_error:
            raise ClientError({"Error": {"Code": "ValidationError", "Message": self.update_error}}, "UpdateStack")
        return {"StackId": STACK_ID}

    def delete_stack(self, StackName: str) -> None:
        self.made.append("DeleteStack")


class Session:
    region_name = "us-east-1"

    def __init__(self, cloudformation: ScriptedCloudFormation):
        self.cloudformation = cloudformation

    def client(self, name: str) -> ScriptedCloudFormation:
        return self.cloudformation


def stacks_over(cloudformation: ScriptedCloudFormation, lines: list[str], **options: Any) -> Stacks:
    return Stacks(Session(cloudformation), poll_seconds=0, say=lines.append, sleep=lambda s: None, **options)


def test_a_creation_shows_each_event_once_in_order_and_ends_with_the_status():
    cloudformation = ScriptedCloudFormation(
        ["CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"],
        [[event(1, "secure", "CREATE_IN_PROGRESS", "AWS::CloudFormation::Stack", "User Initiated")],
         [event(2, "DataKey", "CREATE_IN_PROGRESS"), event(3, "DataKey", "CREATE_COMPLETE")],
         [event(4, "secure", "CREATE_COMPLETE", "AWS::CloudFormation::Stack")]], exists=False)
    lines: list[str] = []
    assert stacks_over(cloudformation, lines).deploy("secure", "{}", {"AdminPrincipalArn": "a"}) == "created"
    assert [line.split()[1:] for line in lines[:-1]] == [
        ["CREATE_IN_PROGRESS", "AWS::CloudFormation::Stack", "secure", "User", "Initiated"],
        ["CREATE_IN_PROGRESS", "AWS::KMS::Key", "DataKey"], ["CREATE_COMPLETE", "AWS::KMS::Key", "DataKey"],
        ["CREATE_COMPLETE", "AWS::CloudFormation::Stack", "secure"]]
    assert lines[-1] == "Stack secure: CREATE_COMPLETE" and cloudformation.made == ["CreateStack"]


def test_a_failed_creation_names_the_first_resource_that_failed_and_why():
    cloudformation = ScriptedCloudFormation(
        ["CREATE_IN_PROGRESS", "ROLLBACK_COMPLETE"],
        [[event(1, "DataKey", "CREATE_FAILED", reason="The new key policy will not allow you to update the key "
                                                     "policy in the future."),
          event(2, "DataBucket", "CREATE_FAILED", "AWS::S3::Bucket", "Resource creation cancelled"),
          event(3, "secure", "ROLLBACK_COMPLETE", "AWS::CloudFormation::Stack")]], exists=False)
    with pytest.raises(StackError) as failed:
        stacks_over(cloudformation, []).deploy("secure", "{}", {})
    assert str(failed.value) == ("stack secure: the create ended ROLLBACK_COMPLETE; DataKey (AWS::KMS::Key): The new "
                                 "key policy will not allow you to update the key policy in the future.")
    assert failed.value.exit_code == 1


def test_no_changes_is_not_an_error_and_an_update_keeps_the_parameters_not_given():
    cloudformation = ScriptedCloudFormation(["UPDATE_COMPLETE"], [],
                                            update_error="No updates are to be performed.")
    lines: list[str] = []
    assert stacks_over(cloudformation, lines).deploy("secure", "{}", {"EnableVpc": "true"},
                                                     keep_previous=("AdminPrincipalArn",)) == "unchanged"
    assert lines == ["Stack secure: no changes (the template and parameters are those it has)"]
    assert cloudformation.made == ["UpdateStack [{'ParameterKey': 'EnableVpc', 'ParameterValue': 'true'}, "
                                   "{'ParameterKey': 'AdminPrincipalArn', 'UsePreviousValue': True}]"]


@pytest.mark.parametrize("status, says", [
    ("ROLLBACK_COMPLETE", "failed to create earlier (ROLLBACK_COMPLETE) and cannot be updated: `python -m "
                          "pipelines.run infra delete --stack-name secure`, then deploy again"),
    ("UPDATE_IN_PROGRESS", "stack secure is UPDATE_IN_PROGRESS: wait for it to end"),
])
def test_a_stack_that_cannot_be_updated_now_says_what_to_do(status, says):
    cloudformation = ScriptedCloudFormation([status], [])
    with pytest.raises(StackError, match=says.replace("(", r"\(").replace(")", r"\)")):
        stacks_over(cloudformation, []).deploy("secure", "{}", {})
    assert cloudformation.made == []


def test_waiting_stops_at_the_timeout_and_says_cloudformation_goes_on():
    cloudformation = ScriptedCloudFormation(["DELETE_IN_PROGRESS"], [])
    ticks = iter(range(100))
    with pytest.raises(StackError, match=r"stack secure is still DELETE_IN_PROGRESS after 3 s; CloudFormation goes on"):
        stacks_over(cloudformation, [], timeout_seconds=3, clock=lambda: next(ticks)).delete("secure")


def test_an_unknown_stack_is_not_found_exit_2():
    with pytest.raises(StackNotFoundError, match="there is no stack secure in us-east-1: deploy it with") as missing:
        stacks_over(ScriptedCloudFormation(["x"], [], exists=False), []).describe("secure")
    assert missing.value.exit_code == 2


def test_a_template_too_big_for_an_inline_body_is_refused_before_any_call():
    cloudformation = ScriptedCloudFormation(["CREATE_COMPLETE"], [], exists=False)
    with pytest.raises(StackError, match="over the 51200 CloudFormation takes inline"):
        stacks_over(cloudformation, []).deploy("secure", "x" * 51_201, {})
    assert cloudformation.made == []
