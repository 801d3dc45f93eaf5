"""``python -m pipelines.run infra`` as a user runs it: a subprocess against moto_server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.moto import ADMIN, AWS_ENV, moto_server, parameters

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    with moto_server() as url:
        yield url


def infra(url: str, *args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    environment.update(AWS_ENV, AWS_ENDPOINT_URL=url)
    return subprocess.run([sys.executable, "-m", "pipelines.run", "infra", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=120)


def test_deploy_describe_update_and_delete(server):
    created = infra(server, "deploy", "--stack-name", "cli-stack", *parameters(), "--poll-seconds", "0")
    assert created.returncode == 0, created.stdout + created.stderr
    lines = created.stdout.splitlines()
    assert lines[0] == f"Stack cli-stack in us-east-1: creating from {REPO / 'infra' / 'secure-environment.yaml'}"
    assert "CREATE_COMPLETE      AWS::CloudFormation::Stack   cli-stack" in created.stdout
    assert "Stack cli-stack: CREATE_COMPLETE" in lines
    role = next(line.split()[1] for line in lines if line.split()[:1] == ["PipelineRoleArn"])
    assert f"  PipelineRoleArn        {role}  (--role-arn)" in lines
    assert lines[-1] == "Next: python -m pipelines.run --target sagemaker --stack-name cli-stack"

    # an update needs no parameter again: those set keep their values (moto updates even when nothing changed; a
    # real "No updates are to be performed" is tests/pipelines/test_infra_stacks.py's)
    changed = infra(server, "deploy", "--stack-name", "cli-stack", "--parameter", "ScratchExpirationDays=3",
                    "--poll-seconds", "0")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "updating from" in changed.stdout and "Stack cli-stack: UPDATE_COMPLETE" in changed.stdout

    described = infra(server, "describe", "--stack-name", "cli-stack", "--json")
    data = json.loads(described.stdout)
    assert data["StackStatus"] == "UPDATE_COMPLETE" and data["Outputs"]["PipelineRoleArn"] == role
    assert data["Parameters"]["ScratchExpirationDays"] == "3" and data["Parameters"]["AdminPrincipalArn"] == ADMIN

    deleted = infra(server, "delete", "--stack-name", "cli-stack", "--poll-seconds", "0")
    assert deleted.returncode == 0, deleted.stderr
    assert "Stack cli-stack: DELETE_COMPLETE" in deleted.stdout
    assert deleted.stdout.splitlines()[-1].startswith(
        f"Stack cli-stack: deleted; kept, as their DeletionPolicy says: the bucket {data['Outputs']['DataBucketName']} ")
    gone = infra(server, "describe", "--stack-name", "cli-stack")
    assert gone.returncode == 2 and gone.stderr.startswith("error: there is no stack cli-stack in us-east-1")


@pytest.mark.parametrize("args, code, message", [
    (["describe", "--stack-name", "nowhere"], 2, "error: there is no stack nowhere in us-east-1: deploy it with "
                                                 "`python -m pipelines.run infra deploy --stack-name nowhere`"),
    (["deploy", "--stack-name", "fresh"], 2, "error: the template needs --parameter AdminPrincipalArn=..., "
                                             "--parameter OperatorPrincipalArns=..., --parameter ApproverPrincipalArns"),
    (["deploy", "--stack-name", "fresh", "--parameter", "EnableVPC=true"], 2,
     "error: the template has no parameter EnableVPC; its parameters: AdminPrincipalArn"),
    (["deploy", "--stack-name", "fresh", "--parameter", "AdminPrincipalArn"], 2,
     "error: --parameter 'AdminPrincipalArn': expected KEY=VALUE"),
    (["deploy", "--stack-name", "fresh", *parameters("SubnetACidr=300.1.1.1/20", "EnableVpc=true"),
      "--poll-seconds", "0"], 1, "error: cloudformation:CreateStack fresh failed: InvalidParameterValue"),
    (["delete"], 2, "error: infra delete needs --stack-name NAME"),
])
def test_errors_are_one_line_with_their_exit_code(server, args, code, message):
    result = infra(server, *args)
    assert result.returncode == code and result.stderr.startswith(message), result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_run_given_a_stack_that_is_not_there_stops_at_the_door(server):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    environment.update(AWS_ENV, AWS_ENDPOINT_URL=server)
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "--target", "sagemaker", "--stack-name", "nowhere"],
                            cwd=REPO, env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: there is no stack nowhere in us-east-1") and result.stderr.count("\n") == 1


def test_every_infra_flag_and_argument_has_help():
    from pipelines.cli.commands.infra import parser
    from tests.pipelines.cli.test_help import undocumented

    assert undocumented(parser(), "infra") == []
