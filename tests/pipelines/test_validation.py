"""Definition validation: one mutation of our definition per rule, each with its message; clean definitions stay clean."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from pipelines import batch_scoring
from pipelines.lead_scoring import build
from pipelines.local.graph import walk_steps
from pipelines.config import local_config
from pipelines.validation import SecurityRules, validate
from tests.conftest import full_config
from tests.pipelines.local.helpers import definition, script_step, stamp
from tests.pipelines.local.test_definition_file import definition as hand_written
from tests.pipelines.local.test_fault_safety import register_step

REPO = Path(__file__).resolve().parents[2]
CONFIG = full_config()
RULES = SecurityRules.for_config(CONFIG)


@pytest.fixture(scope="module")
def ours() -> dict:
    return build(CONFIG).definition_dict


def step(document: dict, name: str) -> dict:
    return next(s for s, _ in walk_steps(document["Steps"]) if s["Name"] == name)


def args(document: dict, name: str) -> dict:
    return step(document, name)["Arguments"]


def parameter(document: dict, name: str) -> dict:
    return next(p for p in document["Parameters"] if p["Name"] == name)


def condition(document: dict) -> dict:
    return args(document, "CheckQuality")["Conditions"][0]


Mutation = Callable[[dict], Any]
MUTATIONS: list[tuple[str, Mutation, str]] = [
    # request shapes (botocore's CreateProcessingJob / CreateTrainingJob / CreateTransformJob / CreateModel /
    # CreateModelPackage)
    ("instance count", lambda d: args(d, "Train")["ResourceConfig"].update(InstanceCount=0),
     "Step 'Train': Arguments.ResourceConfig.InstanceCount: must be >= 1 (got 0)"),
    ("hyperparameter type", lambda d: args(d, "Train")["HyperParameters"].update(eta=0.3),
     "Step 'Train': Arguments.HyperParameters.eta: must be a string (got 0.3)"),
    ("instance type enum", lambda d: args(d, "PrepareData")["ProcessingResources"]["ClusterConfig"].update(
        InstanceType="m5.large"),
     "Step 'PrepareData': Arguments.ProcessingResources.ClusterConfig.InstanceType: must be one of the "),
    ("unknown field", lambda d: args(d, "Evaluate").update(Bogus=1),
     "Step 'Evaluate': Arguments.Bogus: is not a field of CreateProcessingJobRequest"),
    ("required member", lambda d: args(d, "Train").pop("OutputDataConfig"),
     "Step 'Train': Arguments.OutputDataConfig: is required"),
    ("range", lambda d: args(d, "PrepareData")["StoppingCondition"].update(MaxRuntimeInSeconds=0),
     "Step 'PrepareData': Arguments.StoppingCondition.MaxRuntimeInSeconds: must be >= 1 (got 0)"),
    ("integer type", lambda d: args(d, "Train")["ResourceConfig"].update(VolumeSizeInGB="30"),
     "Step 'Train': Arguments.ResourceConfig.VolumeSizeInGB: must be a whole number (got '30')"),
    ("boolean type", lambda d: args(d, "Train").update(EnableNetworkIsolation="yes"),
     "Step 'Train': Arguments.EnableNetworkIsolation: must be true or false (got 'yes')"),
    ("list type", lambda d: args(d, "Evaluate").update(ProcessingInputs={}),
     "Step 'Evaluate': Arguments.ProcessingInputs: must be a list (got {})"),
    ("small enum", lambda d: args(d, "BatchTransform")["TransformInput"].update(SplitType="Row"),
     "Step 'BatchTransform': Arguments.TransformInput.SplitType: must be one of None, Line, RecordIO, TFRecord "
     "(got 'Row')"),
    ("pattern", lambda d: args(d, "Train").update(RoleArn="arn:aws:iam::role/no-account"),
     "Step 'Train': Arguments.RoleArn: must match "),
    ("string length", lambda d: args(d, "PrepareData")["AppSpecification"].update(ContainerArguments=["x" * 300]),
     "Step 'PrepareData': Arguments.AppSpecification.ContainerArguments[0]: must have at most 256 characters (got 300)"),
    ("map size", lambda d: args(d, "Train")["HyperParameters"].update({f"h{i}": "1" for i in range(100)}),
     "Step 'Train': Arguments.HyperParameters: must have at most 100 entries (got 110)"),
    ("expression type", lambda d: args(d, "Train")["ResourceConfig"].update(
        VolumeSizeInGB={"Get": "Parameters.TrainingInstanceType"}),
     "Step 'Train': Arguments.ResourceConfig.VolumeSizeInGB: expects an integer, but the expression gives a string"),
    ("parameter default where used", lambda d: parameter(d, "TrainingInstanceType").update(DefaultValue="ml.m5.huge"),
     "Step 'Train': Arguments.ResourceConfig.InstanceType (default of Parameters.TrainingInstanceType): must be one "
     "of the "),
    ("model package status", lambda d: args(d, "RegisterModel").update(ModelApprovalStatus="Maybe"),
     "Step 'RegisterModel': Arguments.ModelApprovalStatus: must be one of "),
    # the graph
    ("DependsOn target", lambda d: step(d, "Train").update(DependsOn=["Ghost"]),
     "Step 'Train': DependsOn: no step named 'Ghost'"),
    ("Get of a missing step", lambda d: args(d, "RegisterModel")["InferenceSpecification"]["Containers"][0].update(
        ModelDataUrl={"Get": "Steps.Ghost.ModelArtifacts.S3ModelArtifacts"}),
     "Step 'RegisterModel': Arguments.InferenceSpecification.Containers[0].ModelDataUrl: Get "
     "Steps.Ghost.ModelArtifacts.S3ModelArtifacts: no step named 'Ghost'"),
    ("property of a Training step", lambda d: args(d, "RegisterModel")["InferenceSpecification"]["Containers"][0].update(
        ModelDataUrl={"Get": "Steps.Train.ModelArtifacts.S3Uri"}),
     "Get Steps.Train.ModelArtifacts.S3Uri: 'S3Uri' is not a property of a Training step"),
    ("property of a Model step", lambda d: args(d, "BatchTransform").update(
        ModelName={"Get": "Steps.CreateModel.ModelNam"}),
     "Step 'BatchTransform': Arguments.ModelName: Get Steps.CreateModel.ModelNam: 'ModelNam' is not a property of a "
     "Model step"),
    ("index into a structure", lambda d: args(d, "BatchTransform").update(
        ModelName={"Get": "Steps.CreateModel.PrimaryContainer['x']"}),
     "[x] indexes something that is not a list or a map"),
    ("property file", lambda d: condition(d)["LeftValue"]["Std:JsonGet"]["PropertyFile"].update(
        Get="Steps.Evaluate.PropertyFiles.Nope"),
     "Step 'CheckQuality': Arguments.Conditions[0].LeftValue: Get Steps.Evaluate.PropertyFiles.Nope: step 'Evaluate' "
     "declares no property file 'Nope' (declared: EvaluationReport)"),
    ("Std:JsonGet of both kinds", lambda d: condition(d)["LeftValue"]["Std:JsonGet"].update(S3Uri="s3://b/r.json"),
     "Step 'CheckQuality': Arguments.Conditions[0].LeftValue: Std:JsonGet needs {\"PropertyFile\""),
    ("Std:JsonGet S3Uri reference", lambda d: condition(d).update(LeftValue={"Std:JsonGet": {
        "S3Uri": {"Get": "Steps.Ghost.OutputDataConfig.S3OutputPath"}, "Path": "Result"}}),
     "Step 'CheckQuality': Arguments.Conditions[0].LeftValue: Get Steps.Ghost.OutputDataConfig.S3OutputPath: no step"),
    ("undeclared parameter", lambda d: condition(d).update(RightValue={"Get": "Parameters.Nope"}),
     "Step 'CheckQuality': Arguments.Conditions[0].RightValue: Get Parameters.Nope: no parameter 'Nope' is declared"),
    ("execution variable", lambda d: args(d, "Train")["OutputDataConfig"].update(
        S3OutputPath={"Std:Join": {"On": "/", "Values": ["s3://lead-bucket/m", {"Get": "Execution.RunId"}]}}),
     "Step 'Train': Arguments.OutputDataConfig.S3OutputPath: Get Execution.RunId: no execution variable 'RunId'"),
    ("malformed Std:Join", lambda d: args(d, "Train")["OutputDataConfig"].update(S3OutputPath={"Std:Join": {"Values": []}}),
     "Step 'Train': Arguments.OutputDataConfig.S3OutputPath: Std:Join needs"),
    ("cycle", lambda d: step(d, "PrepareData").update(DependsOn=["Train"]),
     "DependsOn: the steps' dependencies form a cycle"),
    ("duplicate name in a branch", lambda d: step(d, "QualityGateFailed").update(Name="CreateModel"),
     "Step 'CreateModel': Name: the step name is used twice"),
    ("condition type", lambda d: condition(d).update(Type="Bigger"),
     "Step 'CheckQuality': Arguments.Conditions[0].Type: must be one of Equals, GreaterThan"),
    ("parameter default type", lambda d: parameter(d, "InputDataUrl").update(DefaultValue=5),
     "Parameters[0].DefaultValue: parameter InputDataUrl is String; its default 5 is not"),
    ("parameter type", lambda d: parameter(d, "NumRound").update(Type="Number"),
     ".Type: must be one of String, Integer, Float, Boolean (got 'Number')"),
    ("parameter enum", lambda d: parameter(d, "ModelApprovalStatus").update(DefaultValue="Later"),
     ".DefaultValue: 'Later' is not one of its EnumValues"),
    # service limits
    ("step name length", lambda d: step(d, "QualityGateFailed").update(Name="x" * 65),
     ".Name: step name 'xxxxxxxx"),
    ("step name with a trailing newline", lambda d: step(d, "QualityGateFailed").update(Name="Failed\n"),
     ".Name: step name 'Failed\\n' must match"),
    ("parameter name", lambda d: parameter(d, "NumRound").update(Name="Num Round"),
     ".Name: parameter name 'Num Round' must match [A-Za-z0-9\\-_]*, 1 to 256 characters"),
    ("definition size", lambda d: d["Metadata"].update(Notes="x" * 1_048_576),
     "the definition is 1,06"),
    ("transform payload budget", lambda d: args(d, "BatchTransform").update(MaxPayloadInMB=20, MaxConcurrentTransforms=8),
     "Step 'BatchTransform': Arguments.MaxPayloadInMB: MaxPayloadInMB x MaxConcurrentTransforms must be <= 100 "
     "(got 20 x 8)"),
    ("parallel steps", lambda d: d.update(ParallelismConfiguration={"MaxParallelExecutionSteps": 60}),
     "ParallelismConfiguration.MaxParallelExecutionSteps: must be between 1 and 50 (got 60)"),
    # security rules
    ("volume KMS key", lambda d: args(d, "Train")["ResourceConfig"].pop("VolumeKmsKeyId"),
     "Step 'Train': Arguments.ResourceConfig.VolumeKmsKeyId: no KMS key: the job's storage volume is not encrypted"),
    ("output KMS key", lambda d: args(d, "BatchTransform")["TransformOutput"].pop("KmsKeyId"),
     "Step 'BatchTransform': Arguments.TransformOutput.KmsKeyId: no KMS key: the job's output is written without"),
    ("processing output KMS key", lambda d: args(d, "PrepareData")["ProcessingOutputConfig"].pop("KmsKeyId"),
     "Step 'PrepareData': Arguments.ProcessingOutputConfig.KmsKeyId: no KMS key"),
    ("inter-container encryption", lambda d: args(d, "PrepareData")["NetworkConfig"].update(
        EnableInterContainerTrafficEncryption=False),
     "Step 'PrepareData': Arguments.NetworkConfig.EnableInterContainerTrafficEncryption: must be true"),
    ("network isolation", lambda d: args(d, "CreateModel").update(EnableNetworkIsolation=False),
     "Step 'CreateModel': Arguments.EnableNetworkIsolation: must be true: the model container can reach the network"),
    ("VPC", lambda d: args(d, "Train").pop("VpcConfig"),
     "Step 'Train': Arguments.VpcConfig: missing: the configuration puts jobs in a VPC"),
    ("credential", lambda d: args(d, "Evaluate")["Environment"].update(TOKEN="AKIAIOSFODNN7EXAMPLE"),
     "Steps[2].Arguments.Environment.TOKEN: holds what looks like an AWS access key id"),
]


@pytest.mark.parametrize("mutate, message", [pytest.param(m, e, id=i) for i, m, e in MUTATIONS])
def test_each_rule_names_the_step_and_the_field(ours, mutate, message):
    document = copy.deepcopy(ours)
    mutate(document)
    problems = [str(p) for p in validate(document, RULES)]
    assert any(message in p for p in problems), problems


def test_buckets_outside_the_allowed_ones_are_named(ours):
    problems = [str(p) for p in validate(ours, SecurityRules(allowed_buckets=("other-bucket",)))]
    assert "Step 'Train': Arguments.OutputDataConfig.S3OutputPath: bucket 'lead-bucket' is not one of the allowed " \
           "buckets (other-bucket)" in problems
    assert validate(ours, SecurityRules(allowed_buckets=("lead-bucket",))) == []


def test_all_problems_are_reported_at_once(ours):
    document = copy.deepcopy(ours)
    for _, mutate, _ in MUTATIONS[:10]:
        mutate(document)
    assert len(validate(document, RULES)) >= 10


def _crash_definition() -> dict:
    sys.path.insert(0, str(REPO))
    from bench.reliability import crash_definition

    return crash_definition("s3://sagemaker-local/models/model.tar.gz")


LOCAL = local_config(full_config(kms_key_arn=None, subnets=(), security_group_ids=()))


@pytest.mark.parametrize("document, rules", [
    pytest.param(lambda: build(CONFIG).definition_dict, RULES, id="lead-scoring, every security option"),
    pytest.param(lambda: build(LOCAL).definition_dict, SecurityRules.for_config(LOCAL), id="lead-scoring, local"),
    pytest.param(lambda: batch_scoring.build(CONFIG).definition_dict, RULES, id="batch-scoring"),
    pytest.param(lambda: definition(script_step("A", stamp("A") * 3, cache=True),
                                    script_step("B", "print(1)", depends_on=("A",))), None, id="test helpers"),
    pytest.param(lambda: definition(register_step(), script_step("After", "print(1)", depends_on=("Register",))),
                 None, id="fault-safety registration"),
    pytest.param(lambda: hand_written("s3://mine/code/split.py"), None, id="hand-written"),
    pytest.param(_crash_definition, None, id="bench crash points"),
])
def test_definitions_of_this_package_and_its_tests_are_clean(document, rules):
    assert [str(p) for p in validate(document(), rules)] == []


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_validate_command_lists_every_problem_and_runs_nothing(tmp_path, ours):
    document = copy.deepcopy(ours)
    args(document, "Train")["ResourceConfig"].update(InstanceCount=0)
    step(document, "Train").update(DependsOn=["Ghost"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    checked = cli("validate", "--definition", str(path), "--json")
    assert checked.returncode == 2
    assert {(p["step"], p["field"], p["rule"]) for p in json.loads(checked.stdout)} == {
        ("Train", "Arguments.ResourceConfig.InstanceCount", "shape"), ("Train", "DependsOn", "graph")}
    run = cli("--definition", str(path), "--store", str(tmp_path / "store"))
    assert run.returncode == 2 and "the definition has 2 problems (nothing was uploaded or run" in run.stderr
    assert "  Step 'Train': DependsOn: no step named 'Ghost'" in run.stderr and not (tmp_path / "store").exists()
    clean = cli("validate")
    assert clean.returncode == 0 and clean.stdout.startswith("the lead-scoring pipeline: valid (")


MALFORMED = [
    {"Steps": "x"},
    {"Steps": [7]},
    {"Steps": [{"Name": "A", "Type": "Processing", "Arguments": 5}]},
    {"Steps": [{"Name": "C", "Type": "Condition", "Arguments": {"Conditions": [], "IfSteps": "x"}}]},
    {"Steps": [{"Name": "A", "Type": "Fail", "Arguments": {}, "DependsOn": 5}]},
    {"Steps": [], "Parameters": "p"},
    {"Steps": [], "Parameters": [{"Type": "String"}]},
]


@pytest.mark.parametrize("document", MALFORMED)
def test_malformed_documents_are_problems_not_crashes(tmp_path, document):
    from pipelines.errors import DefinitionError
    from tests.pipelines.local.helpers import engine

    assert validate(document, SecurityRules())
    run, _ = engine(tmp_path / "store")
    with pytest.raises(DefinitionError):  # the engine alone (--no-validate) refuses it too, with one line
        run.run(document, "malformed", {})
