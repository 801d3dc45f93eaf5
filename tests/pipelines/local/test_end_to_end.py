"""The whole pipeline on the local engine, as a user runs it (a subprocess), on small sample data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.local.registry import Registry

REPO = Path(__file__).resolve().parents[3]


def run_local(store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    return subprocess.run([sys.executable, "-m", "pipelines.run", "--store", str(store), "--sample-rows", "12000",
                           "--source-revision", "test-rev", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    summary = store / "summary.json"
    result = run_local(store, "--summary-json", str(summary))
    return store, result, json.loads(summary.read_text()) if summary.exists() else None


def test_pipeline_succeeds_registers_and_scores(good_run):
    store, result, summary = good_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary["status"] == "Succeeded"
    assert [s["name"] for s in summary["steps"]] == [
        "PrepareData", "Train", "Evaluate", "CheckQuality", "RegisterModel", "CreateModel", "BatchTransform"]
    assert summary["metrics"]["auc"] > 0.75
    model = summary["registered_model"]
    assert model["ModelApprovalStatus"] == "PendingManualApproval" and model["ModelPackageVersion"] == 1
    registry = Registry(store / "registry.sqlite")
    package = registry.describe("LeadScoringModels", 1)
    assert package["CustomerMetadataProperties"]["SourceRevision"] == "test-rev"
    assert package["CustomerMetadataProperties"]["PipelineExecutionId"] == summary["execution_id"]
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("/evaluation.json")
    assert f"Model test AUC: {summary['metrics']['auc']:.4f}" in result.stdout
    report = Path(summary["report"]["local_path"])
    assert report.name == "report.html" and report.is_file() and f"Evaluation report: {report.as_uri()}" in result.stdout
    assert summary["report"]["s3_uri"].endswith("/Evaluate/evaluation/report.html")
    assert json.loads(Path(summary["evaluation"]["local_path"]).read_text())["binary_classification_metrics"]
    assert Path(summary["transform_output"]["local_path"]).is_dir()
    assert summary["transform_output"]["s3_uri"].startswith("s3://sagemaker-local/")
    assert summary["parameters"]["NumRound"] == 300 and summary["failure_reason"] is None


def test_transform_output_has_label_and_score_per_test_row(good_run):
    store, _, summary = good_run
    execution = summary["execution_id"]
    base = store / "s3" / "sagemaker-local" / "lead-scoring" / execution
    test_rows = (base / "PrepareData" / "test" / "test.csv").read_text().splitlines()
    predictions = (base / "BatchTransform" / "predictions" / "test.csv.out").read_text().splitlines()
    assert len(predictions) == len(test_rows) > 1000
    for row, prediction in zip(test_rows, predictions):
        label, score = prediction.split(",")
        assert label == row.split(",")[0] and 0.0 <= float(score) <= 1.0


def test_execution_record_is_persisted(good_run):
    store, _, summary = good_run
    record = json.loads((store / "executions" / summary["execution_id"] / "execution.json").read_text())
    assert record["status"] == "Succeeded"
    train = next(s for s in record["steps"] if s["name"] == "Train")
    assert train["properties"]["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
    assert {m["MetricName"] for m in train["properties"]["FinalMetricDataList"]} == {"train:auc", "validation:auc"}


def test_failing_gate_ends_in_fail_step_with_exit_1(good_run):
    store, _, good = good_run
    result = run_local(store, "--parameter", "AucThreshold=0.99")
    assert result.returncode == 1
    auc = json.loads(Path(good["evaluation"]["local_path"]).read_text())["binary_classification_metrics"]["auc"]["value"]
    message = f"Model test AUC {auc:.4f} is below the threshold AucThreshold = 0.99"
    assert re.search(rf"^QualityGateFailed: Failed in \d+\.\ds - {re.escape(message)}$", result.stdout, re.MULTILINE)
    assert result.stdout.count(message) == 1
    assert "Failed step: QualityGateFailed (its reason is above)" in result.stdout
    # the threshold is not part of any job's cache key: the jobs are reused from the first run
    # (how long a cache hit takes depends on the machine's load, so the duration is not asserted)
    for step in ("PrepareData", "Train", "Evaluate"):
        hit = rf"^{step}: Succeeded in \d+\.\ds \(cache hit from execution {good['execution_id']}\)$"
        assert re.search(hit, result.stdout, re.MULTILINE), result.stdout
    execution = next(line.split()[1][:-1] for line in result.stdout.splitlines() if line.startswith("Execution "))
    retried = subprocess.run([sys.executable, "-m", "pipelines.run", "retry", execution, "--store", str(store)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert retried.returncode == 1
    assert f"note: execution {execution} ended in the Fail step QualityGateFailed; a retry runs with the same " \
           "parameters" in retried.stderr


def test_every_unenforced_setting_is_reported(good_run):
    store, result, summary = good_run
    [counted] = [line for line in result.stdout.splitlines() if line.startswith("Accepted but not enforced")]
    command = f"-m pipelines.run describe {summary['execution_id']} --not-enforced --store {store}"
    assert re.fullmatch(r"Accepted but not enforced by the local engine: \d+ settings \(\S+ " + re.escape(command)
                        + r" lists them\)", counted)
    assert any(line.startswith("RoleArn = ") for line in summary["unenforced"]["Train"])
    assert any("EnableNetworkIsolation = True" in line for line in summary["unenforced"]["CreateModel"])
    listed = subprocess.run([sys.executable, *command.split()], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and int(counted.split(": ")[1].split()[0]) == len(listed.stdout.splitlines())
    assert re.search(r"^(\w+, )*Train(, \w+)*: RoleArn = ", listed.stdout, re.MULTILINE), listed.stdout


def test_the_run_ends_with_the_command_that_approves_what_it_registered(good_run):
    store, result, summary = good_run
    version = summary["registered_model"]["ModelPackageVersion"]
    assert result.stdout.splitlines()[-1].endswith(
        f"-m pipelines.registry approve LeadScoringModels {version} --description 'Reviewed: ...' --store {store}")


def test_an_unchanged_rerun_registers_no_copy_of_its_model(good_run):
    store, _, first = good_run
    result = run_local(store)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (f"note: RegisterModel: the model package is the same as version 1, registered by execution "
            f"{first['execution_id']}; no new version was registered") in result.stdout
    assert [p["ModelPackageVersion"] for p in Registry(store / "registry.sqlite").list("LeadScoringModels")] == [1]


def test_distributed_training_matches_one_instance(good_run):
    """3 instances over 2 train shards: 2 workers train together, the third host drops out."""
    store, _, single = good_run
    summary = store / "distributed.json"
    result = run_local(store, "--parameter", "TrainingInstanceCount=3", "--parameter", "TrainShardCount=2",
                       "--summary-json", str(summary))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Distributed training on 2 hosts (algo-1, algo-2)" in result.stdout
    assert "algo-3: no data in its train shard; this host drops out of training" in result.stdout
    distributed = json.loads(summary.read_text())
    assert abs(distributed["metrics"]["auc"] - single["metrics"]["auc"]) < 0.01
