"""The registry, jobs and executions of a store through the local SageMaker API, with boto3 as the client."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.executors.base import job_name
from tests.pipelines.test_deploy import GROUP

EXECUTION = "q1w2e3r4t5y6"
EXECUTION_ARN = f"arn:aws:sagemaker:local:000000000000:pipeline/leadscoring/execution/{EXECUTION}"


def error(call, **request) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**request)
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def test_groups_and_versions_are_listed_filtered_and_paged(world):
    _, _, approved, _, sagemaker, _ = world
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert [(g["ModelPackageGroupName"], g["ModelPackageGroupStatus"]) for g in groups] == [(GROUP, "Completed")]
    assert sagemaker.list_model_package_groups(NameContains="other")["ModelPackageGroupSummaryList"] == []
    first = sagemaker.list_model_packages(ModelPackageGroupName=GROUP, SortOrder="Ascending", MaxResults=1)
    assert [p["ModelPackageVersion"] for p in first["ModelPackageSummaryList"]] == [1]
    second = sagemaker.list_model_packages(ModelPackageGroupName=GROUP, SortOrder="Ascending", MaxResults=1,
                                           NextToken=first["NextToken"])
    assert [p["ModelPackageVersion"] for p in second["ModelPackageSummaryList"]] == [2] and "NextToken" not in second
    approved_only = sagemaker.list_model_packages(ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved")
    assert [p["ModelPackageArn"] for p in approved_only["ModelPackageSummaryList"]] == [approved["ModelPackageArn"]]
    assert error(sagemaker.list_model_packages, ModelPackageGroupName="Nope") == (
        "ValidationException", "Model Package Group Nope does not exist.")
    described = sagemaker.describe_model_package(ModelPackageName=approved["ModelPackageArn"])
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == "s3://bkt/models/model.tar.gz"
    assert described["ModelPackageName"] == GROUP and described["ModelPackageStatus"] == "Completed"
    assert error(sagemaker.describe_model_package, ModelPackageName=approved["ModelPackageArn"][:-1] + "9")[0] == (
        "ValidationException")


def test_an_approval_through_the_api_has_the_audit_trail_and_event_of_any_other(world):
    store, registry, _, _, sagemaker, _ = world
    arn = registry.describe(GROUP, 2)["ModelPackageArn"]
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                                   ApprovalDescription="AUC 0.91 on the test split")
    assert registry.describe(GROUP, 2)["ModelApprovalStatus"] == "Approved"
    [change] = registry.history(GROUP, 2)
    assert (change["from_status"], change["to_status"], change["description"]) == (
        "PendingManualApproval", "Approved", "AUC 0.91 on the test split")
    assert change["who"] == "execution aaaabbbbcccc (local SageMaker API)"
    events = [json.loads(line) for line in (store.root / "events" / "model-package-state-change.jsonl").read_text()
              .splitlines()]
    assert events[-1]["detail"]["ModelApprovalStatus"] == "Approved" and events[-1]["resources"] == [arn]
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")  # unchanged: no new entry
    assert len(registry.history(GROUP, 2)) == 1
    code, message = error(sagemaker.update_model_package, ModelPackageArn=arn,
                          CustomerMetadataProperties={"k": "v"})
    assert code == "ValidationException" and message.startswith("CustomerMetadataProperties: no local form")
    code, message = error(sagemaker.update_model_package, ModelPackageArn=arn, ModelApprovalStatus="Rejected",
                          ApprovalDescription="key AKIAABCDEFGHIJKLMNOP leaked")
    assert code == "ValidationException" and "credential" in message
    assert registry.describe(GROUP, 2)["ModelApprovalStatus"] == "Approved"


@pytest.fixture(scope="module")
def execution(world):
    store = world[0]
    train_properties = {"AlgorithmSpecification": {"TrainingImage": "xgb", "TrainingInputMode": "File"},
                        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5},
                        "StoppingCondition": {"MaxRuntimeInSeconds": 600}, "RoleArn": "arn:aws:iam::1:role/r",
                        "ModelArtifacts": {"S3ModelArtifacts": "s3://bkt/train/model.tar.gz"},
                        "TrainingJobName": job_name(EXECUTION, "Train"),
                        "FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.9}]}
    steps = [StepRecord("Prepare", "Processing", "Succeeded", "2026-12-07T10:00:00+00:00", "2026-12-07T10:00:05+00:00",
                        properties={"ProcessingJobName": job_name(EXECUTION, "Prepare"),
                                    "AppSpecification": {"ImageUri": "sklearn"}}),
             StepRecord("Train", "Training", "Succeeded", "2026-12-07T10:00:06+00:00", "2026-12-07T10:00:20+00:00",
                        properties=train_properties),
             StepRecord("Score", "Transform", "Failed", "2026-12-07T10:00:21+00:00", "2026-12-07T10:00:25+00:00",
                        failure_reason="ClientError: row 1: expected 3 features, got 2"),
             StepRecord("Gate", "Condition", "Succeeded", "2026-12-07T10:00:21+00:00", "2026-12-07T10:00:21+00:00",
                        properties={"Outcome": "True"})]
    ExecutionRecord(EXECUTION, "LeadScoring", "Failed", {}, "2026-12-07T10:00:00+00:00", "2026-12-07T10:00:25+00:00",
                    steps=steps).save(store.root)
    return world[4]


def test_jobs_are_described_from_their_execution_records(execution):
    sagemaker = execution
    trained = sagemaker.describe_training_job(TrainingJobName=job_name(EXECUTION, "Train"))
    assert (trained["TrainingJobStatus"], trained["ModelArtifacts"]["S3ModelArtifacts"]) == (
        "Completed", "s3://bkt/train/model.tar.gz")
    assert trained["TrainingJobArn"].endswith(job_name(EXECUTION, "Train").lower())
    assert trained["FinalMetricDataList"][0]["Value"] == 0.9 and trained["TrainingEndTime"].minute == 0
    prepared = sagemaker.describe_processing_job(ProcessingJobName=job_name(EXECUTION, "Prepare"))
    assert prepared["ProcessingJobStatus"] == "Completed"
    by_arn_name = trained["TrainingJobArn"].rsplit("/", 1)[1]  # lower case, as ARNs carry job names
    assert sagemaker.describe_training_job(TrainingJobName=by_arn_name)["TrainingJobName"] == job_name(EXECUTION,
                                                                                                      "Train")
    scored = sagemaker.describe_transform_job(TransformJobName=job_name(EXECUTION, "Score"))
    assert (scored["TransformJobStatus"], scored["FailureReason"]) == (
        "Failed", "ClientError: row 1: expected 3 features, got 2")
    code, message = error(sagemaker.describe_training_job, TrainingJobName=job_name(EXECUTION, "Prepare"))
    assert code == "ResourceNotFound" and "Requested resource not found" in message
    assert error(sagemaker.describe_training_job, TrainingJobName="someone-elses-job")[0] == "ResourceNotFound"


def test_an_execution_and_its_steps_are_described_as_sagemaker_lists_them(execution):
    sagemaker = execution
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=EXECUTION_ARN)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "Score: ClientError: row 1: expected 3 features, got 2"
    steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=EXECUTION_ARN,
                                                    SortOrder="Ascending")["PipelineExecutionSteps"]
    assert [s["StepName"] for s in steps] == ["Prepare", "Train", "Score", "Gate"]
    assert steps[1]["Metadata"]["TrainingJob"]["Arn"].endswith(job_name(EXECUTION, "Train").lower())
    assert steps[3]["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert steps[2]["StepStatus"] == "Failed"
    assert error(sagemaker.describe_pipeline_execution, PipelineExecutionArn=EXECUTION_ARN[:-1] + "0")[0] == (
        "ResourceNotFound")
    assert error(sagemaker.list_pipeline_execution_steps,
                 PipelineExecutionArn="arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/../../x"
                 )[0] == "ValidationException"
