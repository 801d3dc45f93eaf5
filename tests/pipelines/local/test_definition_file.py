"""A definition not built by this package: a processing step and a training step, written by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines import sample_data

REPO = Path(__file__).resolve().parents[3]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SCRIPT = """
import glob, os
rows = []
for path in sorted(glob.glob('/opt/ml/processing/input/*.csv')):
    rows += open(path).read().splitlines()
os.makedirs('/opt/ml/processing/train', exist_ok=True)
os.makedirs('/opt/ml/processing/validation', exist_ok=True)
cut = int(len(rows) * 0.8)
open('/opt/ml/processing/train/a.csv', 'w').write('\\n'.join(rows[:cut]) + '\\n')
open('/opt/ml/processing/validation/b.csv', 'w').write('\\n'.join(rows[cut:]) + '\\n')
"""


def definition(code_uri: str) -> dict:
    out = lambda name: {"OutputName": name, "S3Output": {"S3Uri": f"s3://mine/out/{name}",  # noqa: E731
                                                         "LocalPath": f"/opt/ml/processing/{name}", "S3UploadMode": "EndOfJob"}}
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Rounds", "Type": "Integer", "DefaultValue": 20}],
        "Steps": [
            {"Name": "Split", "Type": "Processing", "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}},
                "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/split.py"]},
                "RoleArn": "arn:aws:iam::111122223333:role/Mine",
                "ProcessingInputs": [
                    {"InputName": "data", "S3Input": {"S3Uri": "s3://mine/raw", "LocalPath": "/opt/ml/processing/input",
                                                      "S3DataType": "S3Prefix", "S3InputMode": "File"}},
                    {"InputName": "code", "S3Input": {"S3Uri": code_uri, "LocalPath": "/opt/ml/processing/code",
                                                      "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
                "ProcessingOutputConfig": {"Outputs": [out("train"), out("validation")]}}},
            {"Name": "Fit", "Type": "Training", "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                "HyperParameters": {"num_round": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.Rounds"}]}},
                                    "objective": "binary:logistic", "eval_metric": "auc"},
                "InputDataConfig": [
                    {"ChannelName": ch, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": {"Get": f"Steps.Split.ProcessingOutputConfig.Outputs['{ch}'].S3Output.S3Uri"}}}}
                    for ch in ("train", "validation")],
                "OutputDataConfig": {"S3OutputPath": "s3://mine/models"},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
                "RoleArn": "arn:aws:iam::111122223333:role/Mine",
                "StoppingCondition": {"MaxRuntimeInSeconds": 600}}},
        ],
    }


def test_hand_written_definition_runs(tmp_path):
    store = tmp_path / "store"
    sample_data.write(store / "s3" / "mine" / "raw", rows=3000, files=2)
    (store / "s3" / "mine" / "code").mkdir(parents=True)
    (store / "s3" / "mine" / "code" / "split.py").write_text(SCRIPT)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(definition("s3://mine/code/split.py")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "--store", str(store), "--definition", str(path),
                             "--parameter", "Rounds=15"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Fit: Succeeded" in result.stdout
    models = list((store / "s3" / "mine" / "models").rglob("model.tar.gz"))
    assert len(models) == 1
    assert "[14]\ttrain-auc:" in result.stdout and "[15]" not in result.stdout  # the log's #011 shown as a tab


def test_unsupported_step_type_is_named(tmp_path):
    doc = definition("s3://mine/code/split.py")
    doc["Steps"].append({"Name": "Check", "Type": "EMR", "Arguments": {}})
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "--store", str(tmp_path / "s"), "--definition",
                             str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert ("Step 'Check': Type 'EMR' is not supported by the local engine (its cluster runs on SageMaker only; to run "
            "the work locally, write it as a Processing step (a PySparkProcessor) or run the pipeline with --target "
            "sagemaker); supported types: Callback, ClarifyCheck, Condition, Fail,") in result.stderr


def test_tags_are_reported_as_not_applied_locally(tmp_path):
    import io

    from pipelines.config import build_config
    from pipelines.local.target import LocalTarget
    from pipelines.progress import Progress
    from tests.pipelines.local.helpers import definition as steps_definition, script_step

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(steps_definition(script_step("A", "print(1)"))))
    config = build_config(("test", {"bucket": "bkt", "role_arn": "arn:aws:iam::123456789012:role/R",
                                    "mlflow_tracking_uri": "off",
                                    "tags": [{"Key": "team", "Value": "growth"}]}))
    target = LocalTarget(config, tmp_path / "store", definition_file=path)
    result = target.run(target.prepare(), {}, Progress("t", stream=io.StringIO(), live=False))
    assert result.status == "Succeeded"
    assert result.unenforced["(pipeline)"] == ["tags team=growth: resource tags are applied on SageMaker only"]


def test_sample_rows_fill_a_definitions_empty_input_only_when_asked(tmp_path):
    import io

    from pipelines.config import build_config
    from pipelines.local.target import LocalTarget
    from pipelines.progress import Progress
    from tests.pipelines.local.helpers import script_step

    count = ("import glob, pathlib; rows = sum(len(open(p).read().splitlines()) for p in "
             "glob.glob('/opt/ml/processing/in/*.csv')); pathlib.Path('/opt/ml/processing/out/rows.txt')"
             ".write_text(str(rows))")
    step = script_step("Count", count, retry=False)
    step["Arguments"]["ProcessingInputs"] = [{"InputName": "in", "S3Input": {
        "S3Uri": {"Get": "Parameters.InputDataUrl"}, "LocalPath": "/opt/ml/processing/in", "S3DataType": "S3Prefix"}}]
    path = tmp_path / "count.json"
    path.write_text(json.dumps({"Version": "2020-12-01", "Steps": [step], "Parameters": [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": "s3://bkt/leads/"}]}))
    config = build_config(("test", {"bucket": "bkt", "role_arn": "arn:aws:iam::123456789012:role/R",
                                    "mlflow_tracking_uri": "off"}))

    def run(store: Path, sample_rows):
        target = LocalTarget(config, store, definition_file=path, sample_rows=sample_rows)
        return target.run(target.prepare(), {}, Progress("t", stream=io.StringIO(), live=False))

    asked = run(tmp_path / "asked", 500)
    assert asked.status == "Succeeded"
    assert (tmp_path / "asked" / "s3" / "bkt" / "runs" / asked.execution_id / "Count" / "rows.txt").read_text() == "500"
    not_asked = run(tmp_path / "not-asked", None)
    assert not_asked.status == "Failed" and "no objects under s3://bkt/leads/" in not_asked.failure_reason
