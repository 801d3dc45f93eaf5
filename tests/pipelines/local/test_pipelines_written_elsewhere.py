"""Pipelines other teams wrote, run unchanged on the local engine: the SageMaker project template's kind
(hand-written in the shape SDK v2 produces) and an SDK v3 ModelTrainer with SourceCode (built by the SDK)."""

from __future__ import annotations

import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

SCRIPTS = Path(__file__).parent / "foreign"
BUCKET = "sagemaker-us-east-1-111122223333"
XGBOOST_1_0 = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.23-1-cpu-py3"
ROLE = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole"


def abalone_rows(count: int = 900, seed: int = 3) -> str:
    """Abalone-shaped CSV (sex, seven measurements, rings), rings depending on the shell weight."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        sex = rng.choice(["M", "F", "I"])
        measures = rng.uniform(0.05, 0.8, 7)
        rings = int(round(4 + 14 * measures[6] + 3 * measures[0] + rng.normal(0, 0.8)))
        lines.append(",".join([sex, *(f"{m:.4f}" for m in measures), str(rings)]))
    return "\n".join(lines) + "\n"


def joined(*values: object) -> dict:
    return {"Std:Join": {"On": "/", "Values": list(values)}}


def output(name: str, step: str) -> dict:
    return {"OutputName": name, "AppManaged": False, "S3Output": {
        "S3Uri": joined(f"s3://{BUCKET}", {"Get": "Execution.PipelineExecutionId"}, step, name),
        "LocalPath": f"/opt/ml/processing/{name}", "S3UploadMode": "EndOfJob"}}


def s3_input(name: str, uri: object, local_path: str) -> dict:
    return {"InputName": name, "AppManaged": False, "S3Input": {
        "S3Uri": uri, "LocalPath": local_path, "S3DataType": "S3Prefix", "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated", "S3CompressionType": "None"}}


def processing(name: str, image: str, script: str, inputs: list, outputs: list, arguments: list | None = None) -> dict:
    app = {"ImageUri": image, "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"]}
    if arguments:
        app["ContainerArguments"] = arguments
    return {"Name": name, "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": {"Get": "Parameters.ProcessingInstanceType"},
                                                  "InstanceCount": {"Get": "Parameters.ProcessingInstanceCount"},
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": app, "RoleArn": ROLE,
        "ProcessingInputs": inputs + [s3_input("code", f"s3://{BUCKET}/code/{script}", "/opt/ml/processing/input/code")],
        "ProcessingOutputConfig": {"Outputs": outputs}}}


def template_definition() -> dict:
    """The SageMaker project template's abalone pipeline, in the JSON shape SDK v2 writes."""
    train_uri = "Steps.PreprocessAbaloneData.ProcessingOutputConfig.Outputs['{}'].S3Output.S3Uri"
    channel = lambda name: {"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {  # noqa: E731
        "S3DataType": "S3Prefix", "S3Uri": {"Get": train_uri.format(name)}, "S3DataDistributionType": "FullyReplicated"}}}
    model_data = {"Get": "Steps.TrainAbaloneModel.ModelArtifacts.S3ModelArtifacts"}
    evaluate = processing("EvaluateAbaloneModel", XGBOOST_1_0, "evaluate.py",
                          [s3_input("input-1", model_data, "/opt/ml/processing/model"),
                           s3_input("input-2", {"Get": train_uri.format("test")}, "/opt/ml/processing/test")],
                          [output("evaluation", "EvaluateAbaloneModel")])
    evaluate["PropertyFiles"] = [{"PropertyFileName": "AbaloneEvaluationReport", "OutputName": "evaluation",
                                  "FilePath": "evaluation.json"}]
    register = {"Name": "RegisterAbaloneModel-RegisterModel", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": "AbaloneModelPackageGroupName",
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": joined(
            {"Get": "Steps.EvaluateAbaloneModel.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
            "evaluation.json")}}},
        "InferenceSpecification": {"Containers": [{"Image": XGBOOST_1_0, "ModelDataUrl": model_data}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
                                   "SupportedRealtimeInferenceInstanceTypes": ["ml.t2.medium", "ml.m5.large"],
                                   "SupportedTransformInstanceTypes": ["ml.m5.large"]},
        "ModelApprovalStatus": {"Get": "Parameters.ModelApprovalStatus"}}}
    fail = {"Name": "AbaloneMSEFail", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": [
        "Execution failed due to MSE >", {"Get": "Parameters.MseThreshold"}]}}}}
    return {
        "Version": "2020-12-01", "Metadata": {},
        "Parameters": [
            {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
            {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 1},
            {"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
            {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
            {"Name": "InputDataUrl", "Type": "String", "DefaultValue": f"s3://{BUCKET}/abalone/abalone-dataset.csv"},
            {"Name": "MseThreshold", "Type": "Float", "DefaultValue": 6.0}],
        "PipelineExperimentConfig": {"ExperimentName": {"Get": "Execution.PipelineName"},
                                     "TrialName": {"Get": "Execution.PipelineExecutionId"}},
        "Steps": [
            processing("PreprocessAbaloneData", SKLEARN, "preprocess.py", [],
                       [output(n, "PreprocessAbaloneData") for n in ("train", "validation", "test")],
                       ["--input-data", {"Get": "Parameters.InputDataUrl"}]),
            {"Name": "TrainAbaloneModel", "Type": "Training", "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": XGBOOST_1_0, "TrainingInputMode": "File"},
                "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/AbaloneTrain"},
                "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
                "ResourceConfig": {"VolumeSizeInGB": 30, "InstanceCount": 1,
                                   "InstanceType": {"Get": "Parameters.TrainingInstanceType"}},
                "RoleArn": ROLE,
                "InputDataConfig": [channel("train"), channel("validation")],
                "HyperParameters": {"objective": "reg:linear", "num_round": "50", "max_depth": "5", "eta": "0.2",
                                    "gamma": "4", "min_child_weight": "6", "subsample": "0.7", "silent": "0"}}},
            evaluate,
            {"Name": "CheckMSEAbaloneEvaluation", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "LessThanOrEqualTo", "LeftValue": {"Std:JsonGet": {
                    "PropertyFile": {"Get": "Steps.EvaluateAbaloneModel.PropertyFiles.AbaloneEvaluationReport"},
                    "Path": "regression_metrics.mse.value"}}, "RightValue": {"Get": "Parameters.MseThreshold"}}],
                "IfSteps": [register], "ElseSteps": [fail]}}]}


def local_engine(store: Store, lines: list[str]) -> LocalEngine:
    return LocalEngine(store, Registry(store.root / "registry.sqlite"), lambda step, line: lines.append(f"{step}: {line}"),
                       lambda record: None, RunOptions())


def test_the_project_templates_pipeline_runs_unchanged(tmp_path) -> None:
    store = Store(tmp_path / "store")
    store.put_bytes(abalone_rows().encode(), f"s3://{BUCKET}/abalone/abalone-dataset.csv")
    for script in ("preprocess.py", "evaluate.py"):
        store.put_file(SCRIPTS / script, f"s3://{BUCKET}/code/{script}")
    lines: list[str] = []
    record = local_engine(store, lines).run(template_definition(), "AbalonePipeline", {})
    assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
    assert [s.name for s in record.steps] == ["PreprocessAbaloneData", "TrainAbaloneModel", "EvaluateAbaloneModel",
                                               "CheckMSEAbaloneEvaluation", "RegisterAbaloneModel-RegisterModel"]
    report = record.step("EvaluateAbaloneModel").property_files["AbaloneEvaluationReport"]
    assert 0 < report["regression_metrics"]["mse"]["value"] <= 6.0
    assert record.step("CheckMSEAbaloneEvaluation").properties["Outcome"] == "True"
    package = record.step("RegisterAbaloneModel-RegisterModel").properties
    assert (package["ModelPackageGroupName"], package["ModelPackageVersion"], package["ModelApprovalStatus"]) == (
        "AbaloneModelPackageGroupName", 1, "PendingManualApproval")
    # trained by the image's own XGBoost (1.0, which knows `silent`): evaluate.py's pickle.load reads its model
    [trained_on] = [line for line in record.step("TrainAbaloneModel").unenforced
                    if line.startswith("AlgorithmSpecification.TrainingImage = ")]
    assert ": the job runs on the sagemaker-xgboost:1.0-1 image's libraries (" in trained_on
    assert ", xgboost 1.0" in trained_on and not any("silent: accepted by image version" in line for line in lines)

    failing = local_engine(store, lines).run(template_definition(), "AbalonePipeline", {"MseThreshold": 0.0})
    assert failing.step("AbaloneMSEFail").failure_reason == "Execution failed due to MSE > 0.0"
    assert failing.failure_reason == "Step failure: One or multiple steps failed."


def build_with_sdk_v3(store: Store, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Build a ModelTrainer + SourceCode pipeline with the real SDK (its uploads go to moto), then copy what it
    uploaded into the store, as if the team's bucket had been synced."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    with mock_aws():
        import boto3
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import TrainingStep
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.train import ModelTrainer
        from sagemaker.train.configs import Compute, InputData, SourceCode

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        session = PipelineSession(default_bucket=BUCKET)
        trainer = ModelTrainer(
            training_image=SKLEARN.replace("0.23-1", "1.2-1"), role=ROLE, sagemaker_session=session,
            source_code=SourceCode(source_dir=str(SCRIPTS / "trainer"), entry_script="train.py",
                                   requirements="requirements.txt"),
            compute=Compute(instance_type="ml.m5.large", instance_count=1), hyperparameters={"alpha": 0.5},
            base_job_name="ridge")
        step = TrainingStep(name="TrainRidge", step_args=trainer.train(input_data_config=[
            InputData(channel_name="train", data_source=f"s3://{BUCKET}/ridge/train")]))
        definition = json.loads(Pipeline(name="ridge", steps=[step], sagemaker_session=session).definition())
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                store.put_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read(),
                                f"s3://{BUCKET}/{item['Key']}")
    for name in [n for n in os.environ if n.startswith("AWS_") and n != "AWS_DEFAULT_REGION"]:
        monkeypatch.delenv(name)
    return definition


def test_an_sdk_v3_model_trainer_with_source_code_runs_on_a_framework_image(tmp_path, monkeypatch) -> None:
    store = Store(tmp_path / "store")
    definition = build_with_sdk_v3(store, monkeypatch)
    spec = definition["Steps"][0]["Arguments"]["AlgorithmSpecification"]
    assert spec["ContainerEntrypoint"] == ["/bin/bash"]  # the SDK's sm_train.sh drives the job
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 3.0
    store.put_bytes("\n".join(",".join(f"{v:.6f}" for v in [t, *x]) for t, x in zip(y, X)).encode(),
                    f"s3://{BUCKET}/ridge/train/part-0.csv")
    lines: list[str] = []
    record = local_engine(store, lines).run(definition, "ridge", {})
    assert record.status == "Succeeded", (record.failure_reason, lines[-15:])
    artifact = store.path(record.step("TrainRidge").properties["ModelArtifacts"]["S3ModelArtifacts"])
    with tarfile.open(artifact) as tar:
        model = pickle.load(tar.extractfile("ridge.pkl"))
    assert model["alpha"] == 0.5
    assert np.allclose(model["weights"], [2.0, -1.0, 0.5, 3.0], atol=0.05)
    assert any("requirements.txt: installing into a new environment" in line for line in lines)
    # the image (SKLearn 1.2-1) has numpy 1.24.1: pip installs a newer one over it, as in the job on SageMaker
    assert any("Successfully installed numpy-" in line for line in lines)
    assert any("installed by the local engine into this job's environment" in line for line in lines)
    assert any("Training Container Execution Completed" in line for line in lines)
