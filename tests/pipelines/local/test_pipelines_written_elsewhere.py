"""Pipelines other teams wrote, run unchanged on the local engine: the SageMaker project template's kind,
hand-written in the shape SDK v2 produces and written with SDK v3 as its seed code would be (built by the real
SDK), and an SDK v3 ModelTrainer with SourceCode (built by the real SDK)."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.staging import stage
from pipelines.local.store import Store
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

SCRIPTS = Path(__file__).parent / "foreign"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "abalone"  # its definition, scripts and data
BUCKET = "sagemaker-us-east-1-111122223333"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.23-1-cpu-py3"
ROLE = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole"


def template_definition() -> dict:
    """The SageMaker project template's abalone pipeline, in the JSON shape SDK v2 writes (the ready example)."""
    return json.loads((EXAMPLE / "definition.json").read_text())


def local_engine(store: Store, lines: list[str]) -> LocalEngine:
    return LocalEngine(store, Registry(store.root / "registry.sqlite"), lambda step, line: lines.append(f"{step}: {line}"),
                       lambda record: None, RunOptions())


def test_the_project_templates_pipeline_runs_unchanged(tmp_path) -> None:
    store = Store(tmp_path / "store")
    for name, uri in (("abalone-dataset.csv", "abalone/abalone-dataset.csv"), ("preprocess.py", "code/preprocess.py"),
                      ("evaluate.py", "code/evaluate.py")):
        store.put_file(EXAMPLE / name, f"s3://{BUCKET}/{uri}")
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


@contextlib.contextmanager
def sdk_on_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real SDK building definitions against moto (its uploads land in a mocked bucket): yields an S3
    client of that bucket; the AWS variables it needed are gone afterwards."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3
    for name in [n for n in os.environ if n.startswith("AWS_") and n != "AWS_DEFAULT_REGION"]:
        monkeypatch.delenv(name)


def build_with_sdk_v3(store: Store, monkeypatch: pytest.MonkeyPatch, source: Path) -> dict:
    """Build a ModelTrainer + SourceCode pipeline of ``source`` (a copy of foreign/trainer) with the real SDK,
    then copy what it uploaded into the store, as if the team's bucket had been synced."""
    with sdk_on_moto(monkeypatch) as s3:
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import TrainingStep
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.train import ModelTrainer
        from sagemaker.train.configs import Compute, InputData, SourceCode

        session = PipelineSession(default_bucket=BUCKET)
        trainer = ModelTrainer(
            training_image=SKLEARN.replace("0.23-1", "1.2-1"), role=ROLE, sagemaker_session=session,
            source_code=SourceCode(source_dir=str(source), entry_script="train.py",
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
    return definition


def test_the_seed_codes_pipeline_written_with_sdk_v3_runs_unchanged(tmp_path, monkeypatch) -> None:
    """examples/abalone/pipeline.py, built by the real SDK v3 (its preprocessing script imports requests and
    downloads its input with boto3), staged from its folder as a user would, then run as SageMaker would."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    with sdk_on_moto(monkeypatch):
        import pipeline as seed_code  # examples/abalone/pipeline.py

        definition = json.loads(seed_code.get_pipeline("us-east-1", ROLE, BUCKET).definition())
    store = Store(tmp_path / "store")
    staged = stage(definition, EXAMPLE, store)
    assert sorted(source.name for _, source in staged.copied) == ["abalone-dataset.csv", "evaluate.py", "preprocess.py"]
    lines: list[str] = []
    record = local_engine(store, lines).run(definition, "AbalonePipeline", {})
    assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
    assert [s.name for s in record.steps] == ["PreprocessAbaloneData", "TrainAbaloneModel", "EvaluateAbaloneModel",
                                               "CheckMSEAbaloneEvaluation", "RegisterAbaloneModel"]
    assert any(line.startswith("PreprocessAbaloneData: requests 2.") for line in lines)  # the image's requests
    mse = record.step("EvaluateAbaloneModel").property_files["AbaloneEvaluationReport"]["regression_metrics"]["mse"]
    assert 0 < mse["value"] <= 6.0
    package = record.step("RegisterAbaloneModel").properties
    assert (package["ModelPackageGroupName"], package["ModelPackageVersion"], package["ModelApprovalStatus"]) == (
        "AbalonePackageGroup", 1, "PendingManualApproval")
    registered = Registry(store.root / "registry.sqlite").describe("AbalonePackageGroup", 1)
    [container] = registered["InferenceSpecification"]["Containers"]
    assert container["Image"].endswith("/sagemaker-xgboost:1.0-1-cpu-py3")
    assert registered["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation/evaluation.json")


def test_an_sdk_v3_model_trainer_with_source_code_runs_on_a_framework_image(tmp_path, monkeypatch) -> None:
    store = Store(tmp_path / "store")
    source = shutil.copytree(SCRIPTS / "trainer", tmp_path / "trainer")
    with open(source / "requirements.txt", "a") as requirements:  # a new environment in each run of the suite
        requirements.write(f"# {uuid.uuid4()}\n")
    definition = build_with_sdk_v3(store, monkeypatch, source)
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
