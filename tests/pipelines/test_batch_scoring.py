"""The batch-scoring pipeline: its definition, a local run scoring new leads, and the SageMaker target (moto)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from inference.hosting import XGBoostPredictor
from pipelines import batch_scoring, sample_data
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from pipelines.progress import Progress
from pipelines.catalog import latest_approved_arn
from pipelines.targets.sagemaker import SageMakerTarget
from tests.conftest import KMS, ROLE, full_config
from tests.inference.test_xgboost_csv import model_archive

REPO = Path(__file__).resolve().parents[2]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
GROUP = "LeadScoringModels"


@pytest.fixture(scope="module")
def definition() -> dict:
    return batch_scoring.build(full_config(scoring_id_columns=2)).definition_dict


def test_definition_creates_the_model_from_the_package_and_scores_with_ids(definition):
    model, transform = definition["Steps"]
    assert [p["Name"] for p in definition["Parameters"]] == [
        "InputDataUrl", "ModelPackageArn", "TransformInstanceType", "TransformInstanceCount"]
    assert model["Name"] == "CreateScoringModel" and model["Type"] == "Model"
    assert model["Arguments"]["PrimaryContainer"] == {"ModelPackageName": {"Get": "Parameters.ModelPackageArn"}}
    assert model["Arguments"]["ExecutionRoleArn"] == ROLE and model["Arguments"]["EnableNetworkIsolation"] is True
    assert model["Arguments"]["VpcConfig"]["Subnets"] == ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    args = transform["Arguments"]
    assert transform["Name"] == "ScoreLeads" and args["ModelName"] == {"Get": "Steps.CreateScoringModel.ModelName"}
    assert args["DataProcessing"] == {"InputFilter": "$[2:]", "JoinSource": "Input", "OutputFilter": "$[0,1,-1]"}
    assert args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {"Get": "Parameters.InputDataUrl"}
    assert args["TransformResources"]["InstanceCount"] == {"Get": "Parameters.TransformInstanceCount"}
    assert args["TransformResources"]["InstanceType"] == {"Get": "Parameters.TransformInstanceType"}
    assert args["TransformResources"]["VolumeKmsKeyId"] == KMS and args["TransformOutput"]["KmsKeyId"] == KMS
    assert {"Get": "Execution.PipelineExecutionId"} in args["TransformOutput"]["S3OutputPath"]["Std:Join"]["Values"]


def test_id_columns_are_checked():
    with pytest.raises(Exception, match="scoring_id_columns must be between 1 and 20"):
        full_config(scoring_id_columns=0)


def run_pipeline(store: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", "--pipeline", "batch-scoring", "--store", str(store),
                           "--sample-rows", "3000", *argv], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def scoring_store(tmp_path_factory):
    """A store whose registry holds version 1 Approved and version 2 pending, both real models."""
    root = tmp_path_factory.mktemp("scoring")
    store = root / "store"
    archive = model_archive(root, features=len(sample_data.FEATURES))
    Store(store).put_file(archive, "s3://sagemaker-local/models/v1/model.tar.gz")
    registry = Registry(store / "registry.sqlite", "us-east-1")
    for status in ("Approved", "PendingManualApproval"):
        registry.register(GROUP, status, {"Containers": [
            {"Image": IMAGE, "ModelDataUrl": "s3://sagemaker-local/models/v1/model.tar.gz"}]})
    return store, XGBoostPredictor(archive)


def test_local_run_scores_sample_leads_with_the_latest_approved_version(scoring_store):
    store, predictor = scoring_store
    result = run_pipeline(store)
    assert result.returncode == 0, result.stdout + result.stderr
    arn = Registry(store / "registry.sqlite").describe(GROUP, 1)["ModelPackageArn"]
    assert f"ModelPackageArn not given: scoring with {GROUP} version 1, the latest Approved ({arn})" in result.stdout
    execution = next(line for line in result.stdout.splitlines() if line.startswith("Execution ")).split()[1][:-1]
    outputs = Store(store).objects(f"s3://sagemaker-local/lead-scoring/{execution}/ScoreLeads/scores/")
    inputs = Store(store).objects("s3://sagemaker-local/lead-scoring/scoring/input-sample-3000-rows/")  # its own
    assert [key.rsplit("/", 1)[1] for key, _ in outputs] == [key.rsplit("/", 1)[1] + ".out" for key, _ in inputs]
    scored = [line.split(",") for _, path in outputs for line in path.read_text().splitlines()]
    leads = [line.split(",", 1) for _, path in inputs for line in path.read_text().splitlines()]
    assert len(scored) == 3000 and [s[0] for s in scored] == [lead[0] for lead in leads]
    assert all(len(s) == 2 for s in scored)
    expected = predictor.invoke("".join(lead[1] + "\n" for lead in leads).encode()).decode().splitlines()
    assert [s[1] for s in scored] == expected


def test_a_version_that_is_not_approved_is_refused_by_the_model_step(scoring_store):
    store, _ = scoring_store
    pending = Registry(store / "registry.sqlite").describe(GROUP, 2)["ModelPackageArn"]
    result = run_pipeline(store, "--parameter", f"ModelPackageArn={pending}")
    assert result.returncode == 1
    reason = (f"ClientError: model package {pending} is PendingManualApproval; a model is created only from an "
              "Approved version")
    assert re.search(rf"^CreateScoringModel: Failed in \d+\.\ds - {re.escape(reason)}$", result.stdout, re.MULTILINE)
    assert result.stdout.count(reason) == 1
    assert "Failed step: CreateScoringModel (its reason is above)" in result.stdout


def test_no_approved_version_is_one_line(tmp_path):
    Registry(tmp_path / "store" / "registry.sqlite").register(GROUP, "PendingManualApproval", {"Containers": [
        {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "ModelDataUrl": "s3://b/m"}]})
    result = run_pipeline(tmp_path / "store")
    assert result.returncode == 2 and result.stderr.strip() == (
        f"error: model package group {GROUP} has no Approved version; approve one with "
        f"`python -m pipelines.registry approve {GROUP} VERSION --description ...`")


def test_sagemaker_target_upserts_the_scoring_pipeline_with_the_latest_approved_arn(aws_credentials):
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="lead-bucket")
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        spec = {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://lead-bucket/m/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
        approved = sm.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved",
                                           InferenceSpecification=spec)["ModelPackageArn"]
        sm.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval",
                                InferenceSpecification=spec)
        target = SageMakerTarget(full_config(), wait=False, builder=batch_scoring.build)
        built = target.prepare()
        arn = latest_approved_arn(target.registry(), GROUP)
        assert arn == approved
        result = target.run(built, {"ModelPackageArn": arn}, Progress("t", stream=io.StringIO(), live=False))
        described = sm.describe_pipeline(PipelineName="LeadScoringPipeline-batch-scoring")
        assert json.loads(described["PipelineDefinition"]) == built.definition_dict
        params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=result.execution_arn)
        assert params["PipelineParameters"] == [{"Name": "ModelPackageArn", "Value": approved}]
