"""``executions``, ``describe``, ``logs`` and ``retry`` with ``--target sagemaker``: the CLI in-process against
moto (pipelines, jobs, S3, CloudWatch Logs), with the two APIs moto lacks answered in botocore's shapes."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from pipelines.cli.commands.executions import main
from pipelines.lead_scoring import build
from tests.conftest import full_config
from tests.pipelines.targets.missing_apis import MissingSageMakerApis, epoch

ROLE = full_config().role_arn
REGION = ["--region", "us-east-1"]
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(scope="module")
def definition():
    return build(full_config()).definition


@pytest.fixture
def account(aws_credentials, monkeypatch, definition):
    """A pipeline with two executions in moto; the second one failed in Train after PrepareData ran."""
    apis = MissingSageMakerApis()
    apis.install(monkeypatch)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sm = boto3.client("sagemaker", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lead-bucket")
        sm.create_pipeline(PipelineName="LeadScoringPipeline", PipelineDefinition=definition,
                           RoleArn=ROLE)
        first = sm.start_pipeline_execution(PipelineName="LeadScoringPipeline")["PipelineExecutionArn"]
        time.sleep(0.01)  # distinct creation times: the listing is newest first
        second = sm.start_pipeline_execution(PipelineName="LeadScoringPipeline", PipelineParameters=[
            {"Name": "NumRound", "Value": "7"}])["PipelineExecutionArn"]
        yield apis, sm, s3, first, second


def _processing_job(sm, name: str, output: str) -> str:
    return sm.create_processing_job(
        ProcessingJobName=name, RoleArn=ROLE, AppSpecification={"ImageUri": XGBOOST},
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        ProcessingOutputConfig={"Outputs": [{"OutputName": output.rsplit("/", 1)[-1], "S3Output": {
            "S3Uri": output, "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]},
    )["ProcessingJobArn"]


def _training_job(sm, name: str) -> str:
    return sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://lead-bucket/run/Train"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})["TrainingJobArn"]


def _step(name: str, status: str, metadata: dict, attempts: int = 1, reason: str | None = None) -> dict:
    step = {"StepName": name, "StepStatus": status, "StartTime": epoch("2026-11-26T10:00:00"),
            "EndTime": epoch("2026-11-26T10:01:30"), "Metadata": metadata, "AttemptCount": attempts}
    return {**step, **({"FailureReason": reason} if reason else {})}


def _succeeded_steps(sm, s3) -> list[dict]:
    s3.put_object(Bucket="lead-bucket", Key="run/Evaluate/evaluation/evaluation.json", Body=json.dumps(
        {"binary_classification_metrics": {"auc": {"value": 0.8123, "standard_deviation": 0.01}}}))
    return [
        _step("PrepareData", "Succeeded", {"ProcessingJob": {"Arn": _processing_job(sm, "job-PrepareData", "s3://lead-bucket/run/PrepareData/train")}}),
        _step("Train", "Succeeded", {"TrainingJob": {"Arn": _training_job(sm, "job-Train")}}, attempts=2),
        _step("Evaluate", "Succeeded", {"ProcessingJob": {"Arn": _processing_job(sm, "job-Evaluate", "s3://lead-bucket/run/Evaluate/evaluation")}}),
        _step("CheckQuality", "Succeeded", {"Condition": {"Outcome": "True"}}),
    ]


def test_executions_lists_the_pipelines_executions_newest_first(account, capsys):
    apis, sm, s3, first, second = account
    assert main(["executions", "--target", "sagemaker", *REGION, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["execution_arn"] for row in rows] == [second, first]
    assert rows[0]["status"] == "Succeeded" and rows[0]["retries"] is None  # the listing does not say
    assert main(["executions", "--target", "sagemaker", *REGION, "--limit", "1"]) == 0
    table = capsys.readouterr().out
    assert second.rsplit("/", 1)[-1] in table and first.rsplit("/", 1)[-1] not in table


def test_describe_shows_steps_attempts_outputs_and_property_files(account, capsys):
    apis, sm, s3, first, second = account
    apis.steps[second] = _succeeded_steps(sm, s3)
    execution_id = second.rsplit("/", 1)[-1]
    assert main(["describe", execution_id, "--target", "sagemaker", *REGION]) == 0
    out = capsys.readouterr().out
    assert f"Execution {execution_id} of LeadScoringPipeline: Succeeded" in out
    assert "retries -; step retries 1" in out and '"NumRound": "7"' in out
    assert "Train (Training): Succeeded in 90.0s [attempt 2]" in out
    assert "  model: s3://lead-bucket/run/Train/job-Train/output/model.tar.gz" in out
    assert "  output train: s3://lead-bucket/run/PrepareData/train" in out
    assert '  property file EvaluationReport:\n    {\n      "binary_classification_metrics": {\n        "auc": {\n' \
           '          "value": 0.8123' in out
    assert 'CheckQuality (Condition): Succeeded' in out and 'Condition: {"Outcome": "True"}' in out
    assert main(["describe", second, "--target", "sagemaker", *REGION, "--json"]) == 0  # by ARN too
    document = json.loads(capsys.readouterr().out)
    assert document["step_retries"] == 1 and [s["name"] for s in document["steps"]][:2] == ["PrepareData", "Train"]


def test_logs_prints_every_stream_of_the_steps_job_from_cloudwatch(account, capsys):
    apis, sm, s3, first, second = account
    apis.steps[second] = _succeeded_steps(sm, s3)
    logs = boto3.client("logs", region_name="us-east-1")
    group = "/aws/sagemaker/TrainingJobs"
    logs.create_log_group(logGroupName=group)
    now = int(time.time() * 1000)
    for stream, count in (("job-Train/algo-1-1764150000", 10_050), ("job-Train/algo-2-1764150000", 2),
                          ("job-Train-other/algo-1-1764150000", 1)):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        for start in range(0, count, 10_000):  # more than one page of GetLogEvents
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
                {"timestamp": now + i, "message": f"{stream.split('/')[1][:6]} line {i}"}
                for i in range(start, min(count, start + 10_000))])
    assert main(["logs", second.rsplit("/", 1)[-1], "Train", "--target", "sagemaker", *REGION]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"==> {group} job-Train/algo-1-1764150000 <=="
    assert lines[1:10_051] == [f"algo-1 line {i}" for i in range(10_050)]
    assert lines[10_051:] == [f"==> {group} job-Train/algo-2-1764150000 <==", "algo-2 line 0", "algo-2 line 1"]
    assert main(["logs", second.rsplit("/", 1)[-1], "Evaluate", "--target", "sagemaker", *REGION]) == 0
    assert "Evaluate: no log streams job-Evaluate/... in /aws/sagemaker/ProcessingJobs" in capsys.readouterr().err
    assert main(["logs", second.rsplit("/", 1)[-1], "CheckQuality", "--target", "sagemaker", *REGION]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "CheckQuality has no job log (a Condition step succeeded)" in captured.err


def test_retry_retries_the_failed_execution_and_watches_it_to_the_end(account, capsys):
    apis, sm, s3, first, second = account
    succeeded = _succeeded_steps(sm, s3)
    apis.status[second] = ("Failed", "Step failure: One or multiple steps failed.")
    apis.steps[second] = [succeeded[0], _step("Train", "Failed", {}, reason="InternalServerError: capacity")]
    apis.after_retry[second] = ("Succeeded", succeeded)
    summary_path = f"/tmp/summary-{second.rsplit('/', 1)[-1]}.json"
    code = main(["retry", second.rsplit("/", 1)[-1], "--target", "sagemaker", *REGION, "--poll-seconds", "0",
                 "--max-parallel-steps", "2", "--summary-json", summary_path])
    out = capsys.readouterr().out
    assert code == 0, out
    assert apis.retried == [{"PipelineExecutionArn": second, "ClientRequestToken": apis.retried[0]["ClientRequestToken"],
                             "ParallelismConfiguration": {"MaxParallelExecutionSteps": 2}}]
    assert "Train: Succeeded in 90.0s (attempt 2)" in out and f"Execution {second.rsplit('/', 1)[-1]}: Succeeded" in out
    assert "Model test AUC: 0.8123" in out
    with open(summary_path) as handle:
        summary = json.load(handle)
    assert summary["target"] == "sagemaker" and summary["metrics"]["auc"] == 0.8123 and summary["failure_reason"] is None


def test_retry_of_an_execution_that_ended_in_a_fail_step_says_it_ends_the_same_way(account, capsys):
    apis, sm, s3, first, second = account
    apis.status[first] = ("Failed", "Step failure: One or multiple steps failed.")
    apis.steps[first] = [_step("CheckQuality", "Succeeded", {"Condition": {"Outcome": "False"}}),
                         _step("QualityGateFailed", "Failed", {"Fail": {"ErrorMessage": "AUC too low"}})]
    apis.after_retry[first] = ("Failed", apis.steps[first])
    assert main(["retry", first, "--target", "sagemaker", *REGION, "--poll-seconds", "0"]) == 1
    captured = capsys.readouterr()
    assert "ended in the Fail step QualityGateFailed; a retry runs with the same parameters" in captured.err


@pytest.mark.parametrize("argv, message", [
    (["describe", "nosuchid"], "pipeline LeadScoringPipeline has no execution 'nosuchid' in us-east-1"),
    (["executions", "--pipeline-name", "Other"], "there is no pipeline Other in us-east-1"),
    (["describe", "arn:aws:sagemaker:us-east-1:1:pipeline/x"], "is not a pipeline execution ARN"),
    (["retry", "x", "--inject-fault", "Train=Step.SERVICE_FAULT"], "--inject-fault applies to local executions only"),
])
def test_mistakes_are_one_line_and_exit_2(account, capsys, argv, message):
    assert main([*argv, "--target", "sagemaker", *REGION]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_step_that_did_not_run_is_named_with_the_steps_that_did(account, capsys):
    apis, sm, s3, first, second = account
    apis.steps[second] = _succeeded_steps(sm, s3)
    assert main(["logs", second, "BatchTransform", "--target", "sagemaker", *REGION]) == 2
    assert "has no step 'BatchTransform' that ran; its steps: PrepareData, Train, Evaluate, CheckQuality" in \
        capsys.readouterr().err
