"""The secure environment's stack on CloudFormation: deployed (created, or updated in place), described and
deleted, each waited for with a line per stack event; and its outputs, which ``--stack-name`` turns into settings."""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping

from pipelines.aws import aws_call, aws_session, error_code
from pipelines.config import PipelineConfig
from pipelines.errors import AwsError, StackError, StackNotFoundError

TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation takes as TemplateBody; more must go through S3
_USABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")
_SUCCEEDED = {"create": ("CREATE_COMPLETE",), "update": ("UPDATE_COMPLETE",), "delete": ("DELETE_COMPLETE",)}


def stack_outputs(stack_name: str, region: str) -> dict[str, str]:
    """The outputs of a stack in a state to be used (created or updated, or an update rolled back to the last good
    state), read with the standard credentials: what ``--stack-name`` fills settings from."""
    stacks = Stacks(aws_session(PipelineConfig(region=region)))
    stack = stacks.describe(stack_name)
    if stack["StackStatus"] not in _USABLE:
        raise StackError(f"stack {stack_name} is {stack['StackStatus']}, so its outputs cannot be used yet: "
                         f"`python -m pipelines.run infra describe --stack-name {stack_name}` says what happened")
    return outputs_of(stack)


def outputs_of(stack: Mapping[str, Any]) -> dict[str, str]:
    """A DescribeStacks stack's outputs as ``{OutputKey: OutputValue}``."""
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs") or []}


@dataclass
class Stacks:
    """CloudFormation stacks in the region of a boto3 session; ``say`` gets each progress line."""

    session: Any
    poll_seconds: float = 5.0
    timeout_seconds: float | None = None
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.cloudformation = self.session.client("cloudformation")

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeStacks of one stack (by name, or by id for a deleted one); StackNotFoundError if there is none."""
        try:
            with _call(f"cloudformation:DescribeStacks {name}"):
                return self.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        except AwsError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
                raise StackNotFoundError(f"there is no stack {name} in {self.session.region_name}: deploy it with "
                                         f"`python -m pipelines.run infra deploy --stack-name {name}`, or pass the "
                                         "--region it is in") from None
            raise

    def exists(self, name: str) -> dict[str, Any] | None:
        """The stack, or None when there is none of that name."""
        try:
            return self.describe(name)
        except StackNotFoundError:
            return None

    def deploy(self, name: str, body: str, parameters: Mapping[str, str], keep_previous: tuple[str, ...] = ()
               ) -> str:
        """Create the stack, or update it in place, and wait for it; returns "created", "updated" or "unchanged".
        ``keep_previous``: parameters an update leaves at the stack's current values."""
        if len(body.encode()) > TEMPLATE_BODY_LIMIT:
            raise StackError(f"the template is {len(body.encode())} bytes, over the {TEMPLATE_BODY_LIMIT} "
                             "CloudFormation takes inline: keep it smaller")
        stack = self.exists(name)
        listed = [{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()]
        listed += [{"ParameterKey": key, "UsePreviousValue": True} for key in keep_previous]
        common = {"StackName": name, "TemplateBody": body, "Parameters": listed, "Capabilities": ["CAPABILITY_IAM"]}
        if stack is None:
            with _call(f"cloudformation:CreateStack {name}"):
                stack_id = self.cloudformation.create_stack(**common, OnFailure="ROLLBACK")["StackId"]
            self.wait(name, stack_id, "create", set())
            return "created"
        status = stack["StackStatus"]
        if status == "ROLLBACK_COMPLETE":
            raise StackError(f"stack {name} failed to create earlier (ROLLBACK_COMPLETE) and cannot be updated: "
                             f"`python -m pipelines.run infra delete --stack-name {name}`, then deploy again")
        if status.endswith("_IN_PROGRESS"):
            raise StackError(f"stack {name} is {status}: wait for it to end (`python -m pipelines.run infra describe "
                             f"--stack-name {name}`), then deploy again")
        before = self._event_ids(stack["StackId"])
        try:
            with _call(f"cloudformation:UpdateStack {name}"):
                self.cloudformation.update_stack(**common)
        except AwsError as exc:
            if error_code(exc) == "ValidationError" and "No updates are to be performed" in str(exc):
                self.say(f"Stack {name}: no changes (the template and parameters are those it has)")
                return "unchanged"
            raise
        self.wait(name, stack["StackId"], "update", before)
        return "updated"

    def delete(self, name: str) -> dict[str, Any]:
        """Delete the stack and wait until it is gone; returns the stack as it was (its outputs name what it kept)."""
        stack = self.describe(name)
        before = self._event_ids(stack["StackId"])
        with _call(f"cloudformation:DeleteStack {name}"):
            self.cloudformation.delete_stack(StackName=stack["StackId"])
        self.wait(name, stack["StackId"], "delete", before)
        return stack

    def wait(self, name: str, stack_id: str, action: str, seen: set[str]) -> None:
        """Print each stack event not ``seen`` before, until the stack's status ends the action; StackError naming
        the first failed resource when it ended otherwise, or when ``timeout_seconds`` passed first."""
        failures: list[dict[str, Any]] = []
        begun = self.clock()
        while True:
            for event in self._new_events(stack_id, seen):
                self.say(_event_line(event))
                if event["ResourceStatus"].endswith("_FAILED"):
                    failures.append(event)
            status = self.describe(stack_id)["StackStatus"]
            if not status.endswith("_IN_PROGRESS"):
                break
            if self.timeout_seconds is not None and self.clock() - begun >= self.timeout_seconds:
                raise StackError(f"stack {name} is still {status} after {self.timeout_seconds:g} s; CloudFormation "
                                 f"goes on: follow it with `python -m pipelines.run infra describe --stack-name {name}`")
            self.sleep(self.poll_seconds)
        if status not in _SUCCEEDED[action]:
            cause = next((f"; {e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
                          for e in failures if e["LogicalResourceId"] != name), "")
            raise StackError(f"stack {name}: the {action} ended {status}{cause}")
        self.say(f"Stack {name}: {status}")

    def _event_ids(self, stack_id: str) -> set[str]:
        """The ids of the stack's latest events (one page): what an action's wait does not show again."""
        with _call("cloudformation:DescribeStackEvents"):
            return {e["EventId"] for e in self.cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"]}

    def _new_events(self, stack_id: str, seen: set[str]) -> list[dict[str, Any]]:
        """The stack's events not ``seen`` yet (now they are), oldest first; pages are read back to a seen one."""
        fresh: list[dict[str, Any]] = []
        with _call("cloudformation:DescribeStackEvents"):
            for page in self.cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack_id):
                events = page["StackEvents"]  # newest first
                fresh += [e for e in events if e["EventId"] not in seen]
                if any(e["EventId"] in seen for e in events):
                    break
        seen.update(e["EventId"] for e in fresh)
        return fresh[::-1]


@contextlib.contextmanager
def _call(operation: str) -> Iterator[None]:
    """``aws_call``, and an answer botocore cannot parse (an HTML error page where CloudFormation's XML was due: a
    proxy's, or an emulator failing) as one line too."""
    from botocore.parsers import ResponseParserError

    try:
        with aws_call(operation):
            yield
    except ResponseParserError as exc:
        title = re.search(r"<title>(.*?)</title>", str(exc), re.IGNORECASE | re.DOTALL)
        raise StackError(f"{operation} failed: the endpoint answered with "
                         f"{title.group(1).strip() if title else 'something'} instead of an AWS response") from None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.astimezone()


def _event_line(event: Mapping[str, Any]) -> str:
    reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    return (f"  {_aware(event['Timestamp']).strftime('%H:%M:%S')}  {event['ResourceStatus']:<20} "
            f"{event['ResourceType']:<28} {event['LogicalResourceId']}{reason}")
