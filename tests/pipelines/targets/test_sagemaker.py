"""The SageMaker target against moto: upload, upsert (create then update), start, watch."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from moto import mock_aws

from pipelines.errors import ConfigError, MissingCredentialsError
from pipelines.lead_scoring import build
from pipelines.progress import Progress
from pipelines.targets.sagemaker import SageMakerTarget
from tests.conftest import full_config


@pytest.fixture(scope="module")
def built():
    return build(full_config())


@pytest.fixture
def moto(aws_credentials):
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="lead-bucket")
        yield


def quiet_progress() -> Progress:
    return Progress("test", stream=io.StringIO(), live=False)


def test_upsert_creates_then_updates(moto, built):
    target = SageMakerTarget(full_config())
    arn = target.upsert(built)
    sm = boto3.client("sagemaker", region_name="us-east-1")
    first = sm.describe_pipeline(PipelineName="LeadScoringPipeline")
    assert json.loads(first["PipelineDefinition"]) == built.definition_dict
    assert first["RoleArn"] == full_config().role_arn
    changed = build(full_config(source_revision="def456"))
    assert target.upsert(changed) == arn
    second = sm.describe_pipeline(PipelineName="LeadScoringPipeline")
    assert "def456" in second["PipelineDefinition"]
    assert len(sm.list_pipelines()["PipelineSummaries"]) == 1


def test_the_upserted_definition_carries_the_configured_mlflow_tracking_server(moto):
    server = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/lead-scoring"
    config = full_config(mlflow_resource_arn=server, mlflow_experiment_name="lead-scoring-q4")
    SageMakerTarget(config).upsert(build(config))
    stored = boto3.client("sagemaker", region_name="us-east-1").describe_pipeline(PipelineName="LeadScoringPipeline")
    assert json.loads(stored["PipelineDefinition"])["MlflowConfig"] == {"MlflowResourceArn": server,
                                                                        "MlflowExperimentName": "lead-scoring-q4"}


def test_run_uploads_code_starts_with_overrides_and_watches(moto, built):
    stream = io.StringIO()
    target = SageMakerTarget(full_config(), poll_seconds=0, sleep=lambda s: None)
    with Progress("test", stream=stream, live=False) as progress:
        result = target.run(built, {"NumRound": 7, "AucThreshold": 0.8}, progress)
    assert result.status == "Succeeded" and result.exit_code == 0
    s3 = boto3.client("s3", region_name="us-east-1")
    for upload in built.uploads:
        key = upload.s3_uri.removeprefix("s3://lead-bucket/")
        obj = s3.get_object(Bucket="lead-bucket", Key=key)
        assert obj["Body"].read() == upload.local_path.read_bytes()
        assert obj["ServerSideEncryption"] == "aws:kms"
    sm = boto3.client("sagemaker", region_name="us-east-1")
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=result.execution_arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in params} == {"NumRound": "7", "AucThreshold": "0.8"}
    assert result.to_json()["parameters"] == {"NumRound": 7, "AucThreshold": 0.8} and result.failure_reason is None
    # moto has no ListPipelineExecutionSteps: the watch degrades to the execution status
    assert any("per-step status unavailable" in note for note in result.notes)
    assert "Succeeded" not in stream.getvalue()  # the run's closing line says it, once


def test_no_wait_returns_after_start(moto, built):
    result = SageMakerTarget(full_config(), wait=False).run(built, {}, quiet_progress())
    assert result.status == "Executing" and result.exit_code == 0 and result.notes == []


def test_max_parallel_steps_is_sent_as_the_executions_parallelism_configuration(moto, built):
    result = SageMakerTarget(full_config(), wait=False, max_parallel_steps=3).run(built, {}, quiet_progress())
    sm = boto3.client("sagemaker", region_name="us-east-1")
    execution = sm.describe_pipeline_execution(PipelineExecutionArn=result.execution_arn)
    assert execution["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 3}


def test_failed_execution_reports_step_and_reason(moto, built, monkeypatch):
    target = SageMakerTarget(full_config(), poll_seconds=0, sleep=lambda s: None)
    monkeypatch.setattr(target.sagemaker, "describe_pipeline_execution",
                        lambda **kw: {"PipelineExecutionStatus": "Failed", "FailureReason": "Step failure"})
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    steps = [{"StepName": "Train", "StepStatus": "Failed", "StartTime": now, "EndTime": now,
              "FailureReason": "ClientError: AlgorithmError: bad data", "AttemptCount": 2}]

    class Pages:
        def paginate(self, **kw):
            return [{"PipelineExecutionSteps": steps}]

    monkeypatch.setattr(target.sagemaker, "get_paginator", lambda name: Pages())
    result = target.run(built, {}, quiet_progress())
    assert result.exit_code == 1
    assert result.failed_step == "Train" and "AlgorithmError" in result.failure_reason
    assert result.steps[0].attempts == 2


def test_role_and_credentials_are_required(monkeypatch):
    with pytest.raises(ConfigError, match="needs --role-arn"):
        SageMakerTarget(full_config(role_arn=None))
    with pytest.raises(MissingCredentialsError, match="no AWS credentials found"):
        SageMakerTarget(full_config())


def _evaluation_job(sm, s3) -> str:
    """A processing job in moto whose 'evaluation' output holds an evaluation.json."""
    output = "s3://lead-bucket/run/Evaluate/evaluation"
    s3.put_object(Bucket="lead-bucket", Key="run/Evaluate/evaluation/evaluation.json", Body=json.dumps(
        {"binary_classification_metrics": {"auc": {"value": 0.81, "standard_deviation": 0.01},
                                           "f1": {"value": 0.44, "standard_deviation": 0.02}}}))
    return sm.create_processing_job(
        ProcessingJobName="pipelines-abc-Evaluate", RoleArn=full_config().role_arn,
        AppSpecification={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": output, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
    )["ProcessingJobArn"]


def test_metrics_are_read_from_the_evaluate_steps_property_file(moto, built):
    from pipelines.results import RunResult, StepStatus

    sm = boto3.client("sagemaker", region_name="us-east-1")
    job_arn = _evaluation_job(sm, boto3.client("s3", region_name="us-east-1"))
    result = RunResult("sagemaker", "LeadScoringPipeline", "abc", None, "Succeeded",
                       steps=[StepStatus("Evaluate", "Succeeded", metadata={"ProcessingJob": {"Arn": job_arn}})])
    SageMakerTarget(full_config()).collect_metrics(result, built.definition_dict)
    assert result.metrics == {"auc": 0.81, "f1": 0.44}
    assert result.to_json()["metrics"]["auc"] == 0.81
    assert result.report.s3_uri == "s3://lead-bucket/run/Evaluate/evaluation/report.html"
    assert result.to_json()["evaluation"] == {"s3_uri": "s3://lead-bucket/run/Evaluate/evaluation/evaluation.json",
                                               "local_path": None}


def test_unreadable_metrics_are_a_note_not_a_failure(moto, built):
    from pipelines.results import RunResult, StepStatus

    arn = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/does-not-exist"
    result = RunResult("sagemaker", "LeadScoringPipeline", "abc", None, "Succeeded",
                       steps=[StepStatus("Evaluate", "Succeeded", metadata={"ProcessingJob": {"Arn": arn}})])
    SageMakerTarget(full_config()).collect_metrics(result, built.definition_dict)
    assert result.metrics == {} and result.exit_code == 0
    assert result.notes and "metrics of step Evaluate unavailable" in result.notes[0]


def test_a_watched_successful_run_reports_the_evaluation_metrics(moto, built, monkeypatch):
    sm = boto3.client("sagemaker", region_name="us-east-1")
    job_arn = _evaluation_job(sm, boto3.client("s3", region_name="us-east-1"))
    target = SageMakerTarget(full_config(), poll_seconds=0, sleep=lambda s: None)
    steps = [{"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job_arn}}}]

    class Pages:
        def paginate(self, **kw):
            return [{"PipelineExecutionSteps": steps}]

    monkeypatch.setattr(target.sagemaker, "get_paginator", lambda name: Pages())
    result = target.run(built, {}, quiet_progress())
    assert result.status == "Succeeded" and result.metrics["auc"] == 0.81


def test_without_a_bucket_the_sdks_default_bucket_is_used_and_created_when_missing(aws_credentials, capsys):
    with mock_aws():
        target = SageMakerTarget(full_config(bucket=None))
        assert target.config.bucket == "sagemaker-us-east-1-123456789012"  # moto's account
        s3 = boto3.client("s3", region_name="us-east-1")
        assert "sagemaker-us-east-1-123456789012" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert "created and using the SDK's default bucket" in capsys.readouterr().err
        again = SageMakerTarget(full_config(bucket=None))  # exists now: used as it is
        assert again.config.bucket == target.config.bucket
        assert capsys.readouterr().err == ""


def test_a_missing_explicit_bucket_is_one_clear_line(aws_credentials):
    with mock_aws():
        with pytest.raises(ConfigError) as missing:
            SageMakerTarget(full_config(bucket="no-such-bucket-here"))
    assert str(missing.value).startswith("bucket no-such-bucket-here does not exist: create it, or leave out --bucket")


def test_definition_only_takes_the_default_buckets_account_from_the_role(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    out = tmp_path / "definition.json"
    done = subprocess.run([sys.executable, "-m", "pipelines.run", "--definition-only", str(out), "--region", "eu-west-1",
                           "--role-arn", "arn:aws:iam::111122223333:role/Pipelines"], cwd=repo, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "s3://sagemaker-eu-west-1-111122223333/lead-scoring/" in out.read_text()


def test_selective_steps_are_sent_as_the_executions_selective_execution_config(moto, built):
    from pipelines.selection import Selection

    first = SageMakerTarget(full_config(), wait=False).run(built, {}, quiet_progress())
    target = SageMakerTarget(full_config(), wait=False, selection=Selection(("Train", "Evaluate"), first.execution_id))
    sent: list[dict] = []
    target.sagemaker.meta.events.register("provide-client-params.sagemaker.StartPipelineExecution",
                                          lambda params, **kwargs: sent.append(dict(params)))
    target.run(built, {}, quiet_progress())
    assert sent[0]["SelectiveExecutionConfig"] == {
        "SelectedSteps": [{"StepName": "Train"}, {"StepName": "Evaluate"}],
        "SourcePipelineExecutionArn": first.execution_arn}
