"""The secure environment stood up on moto's CloudFormation (one moto_server on loopback for the module), the
pipeline upserted and started against it with --stack-name, and every call the commands, the pipeline and its jobs
make held to the template's policies.

Two stacks: ``plain`` (defaults) and ``private`` (EnableVpc, a Redshift source). The commands run in this process
with every botocore operation recorded as it reached the server (a call refused by the server counts: it was
made), the registry and deploy commands as the deploy role, the others as the operator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from pipelines.definition_cache import default_folder
from pipelines.infra import template
from tests.infra.calls import Call, Place, values_of, definition_requests, endpoint_requests, recorded_requests
from tests.infra.moto import ACCOUNT, APPROVER, AWS_ENV, OPERATOR, REDSHIFT, moto_server, parameters
from tests.infra.policy import Account, Request, refused

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
GROUP = "lead-scoring-models"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
STACKS = {"plain": [], "private": ["EnableVpc=true", "PipelineName=lead-scoring-private", *REDSHIFT]}


class Recorder:
    """Every botocore operation a command run by ``run`` made, under the (principal, stack) it ran as and with."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], list[Call]] = {}
        self.label: tuple[str, str] | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = BaseClient._make_api_call
        recorder = self

        def recording(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            call = Call(client.meta.service_model.service_name, operation, dict(params))
            try:
                answer = original(client, operation, params)
            except ClientError:
                recorder._keep(call)  # the server answered: the call was made, and needs its permission
                raise
            recorder._keep(call)
            return answer

        monkeypatch.setattr(BaseClient, "_make_api_call", recording)

    def _keep(self, call: Call) -> None:
        if self.label:
            self.calls.setdefault(self.label, []).append(call)

    def run(self, principal: str, stack: str, module: str, *argv: str) -> None:
        """Run a command's ``main`` in this process as ``principal`` with ``stack``; it must succeed."""
        import importlib

        self.label = (principal, stack)
        try:
            code = importlib.import_module(module).main(list(argv))
        finally:
            self.label = None
        assert code == 0, f"{module} {' '.join(argv)} exited {code}"


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    environment.update(AWS_ENV, AWS_ENDPOINT_URL=url)
    return subprocess.run([sys.executable, "-m", "pipelines.run", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Both stacks stood up with the CLI, then the commands run and recorded against them."""
    store = tmp_path_factory.mktemp("store")
    with moto_server() as url, pytest.MonkeyPatch.context() as patch:
        for name, extra in STACKS.items():
            deployed = cli(url, "infra", "deploy", "--stack-name", name, *parameters(*extra), "--poll-seconds", "0")
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        for key in list(os.environ):
            if key.startswith(("AWS_", "PIPELINE_")):
                patch.delenv(key)
        for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": url}.items():
            patch.setenv(key, value)
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        stacks = {name: cloudformation.describe_stacks(StackName=name)["Stacks"][0] for name in STACKS}
        outputs = {name: {o["OutputKey"]: o["OutputValue"] for o in s["Outputs"]} for name, s in stacks.items()}
        recorder = Recorder()
        recorder.install(patch)
        run = ["--target", "sagemaker", "--poll-seconds", "0", "--store", str(store), "--source-revision", "abc123"]
        recorder.run(OPERATOR, "plain", "pipelines.cli.main", *run, "--stack-name", "plain")
        recorder.run(OPERATOR, "private", "pipelines.cli.main", *run, "--stack-name", "private", "--data-source", "redshift",
                     "--redshift-query", "SELECT converted, page_views FROM leads")
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        package = register_version(sagemaker, outputs["plain"])
        recorder.run(OPERATOR, "plain", "pipelines.cli.main", "executions", "--target", "sagemaker", "--stack-name", "plain")
        recorder.run(APPROVER, "plain", "pipelines.cli.commands.registry", "approve", GROUP, "1", "--description", "reviewed",
                     "--target", "sagemaker")
        recorder.run(OPERATOR, "plain", "pipelines.cli.main", *run, "--stack-name", "plain", "--pipeline",
                     "batch-scoring")
        recorder.run(APPROVER, "plain", "pipelines.cli.commands.deploy", "deploy", "--target", "sagemaker", "--stack-name",
                     "plain", "--group", GROUP, "--version", "1", "--endpoint-name", "lead-scoring", "--no-wait",
                     "--data-capture-percent", "10")
        definitions = {(name, pipeline): json.loads(sagemaker.describe_pipeline(PipelineName=pipeline)[
            "PipelineDefinition"]) for name, pipeline in (("plain", "lead-scoring"), ("private", "lead-scoring-private"),
                                                         ("plain", "lead-scoring-batch-scoring"))
            if _exists(sagemaker, pipeline)}
        resources = {name: {r.get("LogicalResourceId"): r["PhysicalResourceId"] for r in cloudformation.describe_stack_resources(
            StackName=name)["StackResources"] if r.get("PhysicalResourceId")} for name in STACKS}  # moto lists unknowns
        yield {"url": url, "store": store, "stacks": stacks, "outputs": outputs, "calls": recorder.calls,
               "definitions": definitions, "package": package, "resources": resources}


def _exists(sagemaker: Any, pipeline: str) -> bool:
    try:
        sagemaker.describe_pipeline(PipelineName=pipeline)
        return True
    except ClientError:
        return False


def register_version(sagemaker: Any, outputs: dict[str, str]) -> dict[str, str]:
    """A model version awaiting approval in the stack's group, as the pipeline's RegisterModel step makes one."""
    data = f"s3://{outputs['DataBucketName']}/{outputs['BasePrefix']}/models/pipelines-x-Train-y/output/model.tar.gz"
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={"Containers": [{"Image": XGBOOST, "ModelDataUrl": data}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )["ModelPackageArn"]
    return {"ModelPackageArn": arn, "Image": XGBOOST, "ModelDataUrl": data}


def account_of(world: Any, name: str, drop: tuple[str, str] | None = None) -> Account:
    """The template's policies rendered for stack ``name`` with its real resources, the operator policy held by the
    operator as the docs say to attach it. ``drop``: (policy, Sid) left out, to show the check can fail."""
    stack = world["stacks"][name]
    declared = template.load()
    rendering = template.Rendering(declared, template.parameter_values(declared, given(name)), stack_name=name,
                                   account=ACCOUNT, region=REGION, physical=world["resources"][name],
                                   stack_id=stack["StackId"])
    resources = rendering.resources()
    documents = template.policies(resources)
    if drop:
        policy, sid = drop
        documents[policy] = {**documents[policy], "Statement": [
            s for s in documents[policy]["Statement"] if s.get("Sid") != sid]}
    identity: dict[str, list[dict[str, Any]]] = {}
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Policy":
            for role in resource["Properties"]["Roles"]:
                identity.setdefault(f"arn:aws:iam::{ACCOUNT}:role/{role}", []).append(documents[logical])
    identity[OPERATOR] = [documents["OperatorPolicy"]]
    outputs = world["outputs"][name]
    return Account(identity, documents["DataBucketPolicy"], f"arn:aws:s3:::{outputs['DataBucketName']}",
                   documents["DataKey"], outputs["KmsKeyArn"])


def given(name: str) -> dict[str, str]:
    """The parameters stack ``name`` was deployed with (moto echoes a list parameter back as a Python list)."""
    return dict(assignment.split("=", 1) for assignment in parameters(*STACKS[name])[1::2])


def place_of(world: Any, name: str) -> Place:
    return Place(ACCOUNT, REGION, world["outputs"][name]["KmsKeyArn"])


def stack_arns(world: Any) -> dict[str, str]:
    return {name: stack["StackId"] for name, stack in world["stacks"].items()}


def test_the_rendered_outputs_are_the_stacks_outputs(world):
    for name, stack in world["stacks"].items():
        declared = template.load()
        rendering = template.Rendering(declared, template.parameter_values(declared, given(name)), stack_name=name,
                                       account=ACCOUNT, region=REGION, physical=world["resources"][name],
                                   stack_id=stack["StackId"])
        assert rendering.outputs() == world["outputs"][name]


@pytest.mark.parametrize("name", STACKS)
def test_the_operator_may_make_every_call_the_commands_made(world, name):
    calls = world["calls"][(OPERATOR, name)]
    made = {f"{c.service}:{c.operation}" for c in calls}
    assert {"cloudformation:DescribeStacks", "s3:HeadBucket", "s3:PutObject", "sagemaker:CreatePipeline",
            "sagemaker:StartPipelineExecution"} <= made, made
    requests = recorded_requests(calls, OPERATOR, place_of(world, name), stack_arns(world))
    assert refused(account_of(world, name), requests) == []


@pytest.mark.parametrize("name, pipeline", [("plain", "lead-scoring"), ("private", "lead-scoring-private"),
                                            ("plain", "lead-scoring-batch-scoring")])
def test_the_pipeline_role_allows_what_the_pipeline_and_its_jobs_do(world, name, pipeline):
    definition = world["definitions"].get((name, pipeline))
    assert definition is not None, f"pipeline {pipeline} was not upserted"
    role = world["outputs"][name]["PipelineRoleArn"]
    requests = definition_requests(definition, role, place_of(world, name), world["package"])
    actions = {r.action for r in requests}
    assert {"sagemaker:CreateModel", "iam:PassRole", "kms:CreateGrant", "ecr:BatchGetImage"} <= actions
    if name == "private" and pipeline == "lead-scoring-private":
        assert {"ec2:CreateNetworkInterface", "redshift:GetClusterCredentials"} <= actions
        unload = world["outputs"][name]["RedshiftUnloadRoleArn"]
        assert any(r.principal == unload and r.action == "s3:PutObject" for r in requests)
    assert refused(account_of(world, name), requests) == []


def test_the_deploy_role_allows_the_approval_and_the_deployment_and_the_endpoint_its_model(world):
    calls = world["calls"][(APPROVER, "plain")]
    made = {f"{c.service}:{c.operation}" for c in calls}
    assert {"sagemaker:UpdateModelPackage", "sagemaker:CreateModel", "sagemaker:CreateEndpointConfig",
            "sagemaker:CreateEndpoint"} <= made, made
    deploy_role = world["outputs"]["plain"]["DeployRoleArn"]
    place = place_of(world, "plain")
    requests = recorded_requests(calls, deploy_role, place, stack_arns(world))
    requests += endpoint_requests(calls, place, world["package"])
    assert refused(account_of(world, "plain"), requests) == []


def test_a_statement_taken_away_fails_the_check(world):
    """The check can fail: without the image pulls, the pipeline's jobs are refused, each named."""
    name, pipeline = "plain", "lead-scoring"
    role = world["outputs"][name]["PipelineRoleArn"]
    requests = definition_requests(world["definitions"][(name, pipeline)], role, place_of(world, name),
                                   world["package"])
    lines = refused(account_of(world, name, drop=("PipelinePolicy", "PullImages")), requests)
    assert lines and all("ecr:" in line for line in lines)
    assert any("not allowed: " in line and "sagemaker-xgboost" in line and "step Train" in line for line in lines)


def test_the_bucket_refuses_other_keys_plain_http_and_the_aws_managed_key(world):
    account, outputs = account_of(world, "plain"), world["outputs"]["plain"]
    role = outputs["PipelineRoleArn"]
    obj = f"arn:aws:s3:::{outputs['DataBucketName']}/{outputs['BasePrefix']}/x"
    put = lambda **context: account.decide(Request(role, "s3:PutObject", obj, {"aws:SecureTransport": True,  # noqa: E731
                                                                               **context}))
    other_key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    assert put() == "allowed"  # no encryption header: the bucket's default, our key
    assert put(**{"s3:x-amz-server-side-encryption": "aws:kms",
                  "s3:x-amz-server-side-encryption-aws-kms-key-id": outputs["KmsKeyArn"]}) == "allowed"
    assert put(**{"s3:x-amz-server-side-encryption": "AES256"}) == "denied explicitly"
    assert put(**{"s3:x-amz-server-side-encryption": "aws:kms",
                  "s3:x-amz-server-side-encryption-aws-kms-key-id": other_key}) == "denied explicitly"
    assert put(**{"s3:x-amz-server-side-encryption": "aws:kms"}) == "denied explicitly"  # aws/s3
    assert account.decide(Request(role, "s3:GetObject", obj, {"aws:SecureTransport": False})) == "denied explicitly"
    elsewhere = f"arn:aws:s3:::{outputs['DataBucketName']}/other-team/x"
    assert account.decide(Request(role, "s3:GetObject", elsewhere, {"aws:SecureTransport": True})) == "not allowed"


def test_the_key_is_used_only_by_the_stacks_roles_and_by_operators_through_s3(world):
    account, outputs = account_of(world, "plain"), world["outputs"]["plain"]
    key = outputs["KmsKeyArn"]
    decrypt = lambda who, **context: account.decide(Request(who, "kms:Decrypt", key, context))  # noqa: E731
    assert decrypt(outputs["PipelineRoleArn"]) == "allowed"
    assert decrypt(OPERATOR) == "not allowed"  # directly: no
    assert decrypt(OPERATOR, **{"kms:ViaService": f"s3.{REGION}.amazonaws.com"}) == "allowed"
    assert decrypt(f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin") == "not allowed"  # administers, cannot read
    assert decrypt(f"arn:aws:iam::{ACCOUNT}:role/SomeoneElse") == "not allowed"
    assert account.decide(Request(f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin", "kms:ScheduleKeyDeletion", key)) == "allowed"


def test_the_pipeline_upserted_with_the_stack_runs_as_its_role_with_its_key_and_vpc(world):
    for name, pipeline in (("plain", "lead-scoring"), ("private", "lead-scoring-private")):
        definition, outputs = world["definitions"][(name, pipeline)], world["outputs"][name]
        steps = list(_steps(definition["Steps"]))
        jobs = [s["Arguments"] for s in steps if s["Type"] in ("Processing", "Training", "Transform", "Model")]
        roles = {a.get("RoleArn") or a.get("ExecutionRoleArn") for a in jobs} - {None}
        assert roles == {outputs["PipelineRoleArn"]}, name
        keys = set(values_of(definition, ("KmsKeyId", "VolumeKmsKeyId")))
        assert keys == {outputs["KmsKeyArn"]}, name
        for step in steps:
            arguments = step["Arguments"]
            if step["Type"] == "Processing":
                assert arguments["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
                assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == outputs["KmsKeyArn"]
            if step["Type"] == "Training":
                assert arguments["EnableInterContainerTrafficEncryption"] is True
            if step["Type"] == "Model":
                assert arguments["EnableNetworkIsolation"] is True
        vpcs = list(values_of(definition, ("VpcConfig",)))
        if name == "private":
            expected = {"Subnets": sorted(outputs["SubnetIds"].split(",")), "SecurityGroupIds": [outputs["SecurityGroupId"]]}
            placed = [s for s in steps if s["Type"] in ("Processing", "Training", "Model")]
            assert len(vpcs) == len(placed) == 4
            assert all({k: sorted(v) for k, v in vpc.items()} == expected for vpc in vpcs)
            prepare = next(s for s in steps if s["Name"] == "PrepareData")["Arguments"]
            dataset = prepare["ProcessingInputs"][0]["DatasetDefinition"]["RedshiftDatasetDefinition"]
            assert dataset["ClusterRoleArn"] == outputs["RedshiftUnloadRoleArn"] and dataset["ClusterId"] == "leads-dw"
            assert dataset["KmsKeyId"] == outputs["KmsKeyArn"]
        else:
            assert vpcs == []


def _steps(steps: list[dict[str, Any]]) -> Any:
    for step in steps:
        yield step
        for branch in ("IfSteps", "ElseSteps"):
            yield from _steps(step.get("Arguments", {}).get(branch, []))


def test_the_run_as_a_user_types_it_and_a_flag_that_overrides_an_output_is_said(world):
    result = cli(world["url"], "--target", "sagemaker", "--stack-name", "plain", "--poll-seconds", "0", "--store",
                 str(world["store"]), "--source-revision", "abc123")
    assert result.returncode == 0, result.stdout + result.stderr
    kept = sorted(path.name for path in default_folder().glob("*.json"))
    # the same config as recorded: the definition built then is reused
    assert "Definition unchanged: reusing the one built before" in result.stdout, (kept, result.stdout[:600])
    assert "Execution " in result.stdout and ": Succeeded" in result.stdout
    other = f"arn:aws:iam::{ACCOUNT}:role/SomeOtherRole"
    built = cli(world["url"], "--definition-only", "-", "--stack-name", "plain", "--role-arn", other,
                "--source-revision", "abc123")
    assert built.returncode == 0, built.stderr
    role = world["outputs"]["plain"]["PipelineRoleArn"]
    assert built.stderr.splitlines() == [f"note: --role-arn {other} overrides output PipelineRoleArn ({role}) of "
                                         "stack plain"]
    assert {s["Arguments"]["RoleArn"] for s in json.loads(built.stdout)["Steps"] if "RoleArn" in s["Arguments"]} == {other}
