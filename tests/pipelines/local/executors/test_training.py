"""The training executor for a bring-your-own image: its mapped local program under the /opt/ml contract."""

from __future__ import annotations

import json
import tarfile

import pytest

from pipelines.errors import NotRunnableLocallyError
from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.sandboxing import needs_container_paths

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-trainer:1.0"
PROGRAM = """
import glob, json, pathlib, sys
assert sys.argv[1:] == ["train"], sys.argv
hyper = json.load(open("/opt/ml/input/config/hyperparameters.json"))
channels = json.load(open("/opt/ml/input/config/inputdataconfig.json"))
rows = sum(len(open(p).read().splitlines()) for p in glob.glob("/opt/ml/input/data/train/*.csv"))
if hyper.get("fail") == "yes":
    pathlib.Path("/opt/ml/output/failure").write_text("the label column has 3 classes")
    sys.exit(1)
pathlib.Path("/opt/ml/model/model.json").write_text(json.dumps({"rows": rows, "depth": hyper["depth"],
                                                                "channels": sorted(channels)}))
for epoch, auc in enumerate((0.70, 0.78, 0.81)):
    print(f"epoch {epoch} validation-auc={auc}")
"""


def training_definition(fail: str = "no") -> dict:
    return {"Version": "2020-12-01", "Parameters": [], "Steps": [{"Name": "Fit", "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File", "MetricDefinitions": [
            {"Name": "validation:auc", "Regex": r"validation-auc=([0-9.]+)"}]},
        "HyperParameters": {"depth": "4", "fail": fail},
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bkt/train", "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "RoleArn": "arn:aws:iam::123456789012:role/R", "StoppingCondition": {"MaxRuntimeInSeconds": 120}}}]}


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    store.put_bytes(b"1,2,3\n0,4,5\n", "s3://bkt/train/a.csv")
    store.put_bytes(b"1,6,7\n", "s3://bkt/train/b.csv")
    return store


def run_fit(store: Store, tmp_path, programs: dict, **kwargs):
    engine = LocalEngine(store, Registry(store.root / "registry.sqlite"), lambda s, line: None, lambda r: None,
                         RunOptions(image_programs=programs))
    return engine.run(training_definition(**kwargs), "p", {})



@needs_container_paths
def test_a_mapped_program_trains_under_the_opt_ml_contract(store, tmp_path):
    program = tmp_path / "train.py"
    program.write_text(PROGRAM)
    record = run_fit(store, tmp_path, {IMAGE: f"python3 {program}"})
    step = record.step("Fit")
    assert record.status == "Succeeded", step.failure_reason
    assert step.properties["FinalMetricDataList"] == [{"MetricName": "validation:auc", "Value": 0.81}]
    artifact = store.path(step.properties["ModelArtifacts"]["S3ModelArtifacts"])
    with tarfile.open(artifact) as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model == {"rows": 3, "depth": "4", "channels": ["train"]}


@needs_container_paths
def test_the_programs_failure_file_is_the_failure_reason(store, tmp_path):
    program = tmp_path / "train.py"
    program.write_text(PROGRAM)
    record = run_fit(store, tmp_path, {IMAGE: f"python3 {program}"}, fail="yes")
    assert record.step("Fit").failure_reason == "AlgorithmError: the label column has 3 classes"


def test_an_unmapped_image_is_refused_before_the_run_naming_the_config_that_maps_it(store, tmp_path):
    with pytest.raises(NotRunnableLocallyError) as refused:
        run_fit(store, tmp_path, {})
    assert str(refused.value).startswith("Step 'Fit': Arguments.AlgorithmSpecification.TrainingImage: ")
    assert f"--local-image-program '{IMAGE}=COMMAND' (config local_image_programs)" in str(refused.value)
    assert not (store.root / "executions").exists()
