"""The whole pipeline with our own image (container/) and with the R image (container-r/), on the local engine,
as a user runs it: Train runs the image's `train`, BatchTransform scores the test split through its `serve` on
loopback, Evaluate reads those scores, and a local endpoint serves the approved version; then no server is
left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import numpy as np
import pytest
from tests.sandboxing import needs_container_paths, needs_r


REPO = Path(__file__).resolve().parents[2]
OWN_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-xgboost:3f2a9c1d0b7e"
R_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-r:1.0.0"
# more page views and a demo request never lower a score; more days since the last visit never raise it
MONOTONE = "(1,0,0,0,0,0,1,0,0,0,-1,0,0,0,0,0,0,0,0,0)"

pytestmark = needs_container_paths


def cli(module: str, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def serve_processes(store: Path, marker: bytes = b"container\x00serve") -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes()
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in command and str(store).encode() in environ + command:
            found.append(int(proc.name))
    return found


def test_custom_mode_trains_calibrates_evaluates_transforms_and_serves_with_our_image(tmp_path) -> None:
    store = tmp_path / "store"
    run = cli("pipelines.run", "--store", str(store), "--sample-rows", "6000", "--training-mode", "custom",
              "--training-image", OWN_IMAGE, "--calibration", "platt", "--monotone-constraints", MONOTONE, "--summary-json",
              str(tmp_path / "summary.json"))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "Succeeded"
    assert "validation:brier_uncalibrated=" in run.stdout and "validation:brier=" in run.stdout
    train_dir = next((store / "jobs").glob("*/Train"))
    hyperparameters = json.loads((train_dir / "root/opt/ml/input/config/hyperparameters.json").read_text())
    assert (hyperparameters["calibration"], hyperparameters["monotone_constraints"]) == ("platt", MONOTONE)
    # BatchTransform: one calibrated probability per test row, label first
    output = Path(summary["transform_output"]["local_path"])
    lines = [line.split(",") for f in sorted(output.glob("*.out")) for line in f.read_text().splitlines()]
    assert len(lines) > 500 and all(len(parts) == 2 for parts in lines)
    scores = np.array([float(score) for _, score in lines])
    labels = np.array([float(label) for label, _ in lines])
    assert np.all((scores > 0) & (scores < 1))
    assert abs(scores.mean() - labels.mean()) < 0.05  # calibrated: the mean score is the conversion rate
    evaluation = json.loads(Path(summary["evaluation"]["local_path"]).read_text())
    assert evaluation["binary_classification_metrics"]["auc"]["value"] > 0.7
    # the image's own serving scored the test split before Evaluate, which read those scores, not the model
    [definition] = [json.loads(p.read_text()) for p in (store / "executions").glob("*/definition.json")]
    steps = {step["Name"]: step for step in definition["Steps"]}
    inputs = [item["InputName"] for item in steps["Evaluate"]["Arguments"]["ProcessingInputs"]]
    assert "predictions" in inputs and "model" not in inputs
    assert [s["Name"] for s in steps["CheckQuality"]["Arguments"]["IfSteps"]] == ["RegisterModel"]

    approve = cli("pipelines.registry", "approve", "LeadScoringModels", "1", "--store", str(store), "--description", "ok")
    assert approve.returncode == 0, approve.stderr
    deployed = cli("pipelines.deploy", "deploy", "--endpoint-name", "leads", "--store", str(store))
    assert deployed.returncode == 0, deployed.stderr
    try:
        url = json.loads((store / "endpoints" / "leads" / "endpoint.json").read_text())["Url"]
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                               aws_access_key_id="local", aws_secret_access_key="local")
        features = (Path(summary["transform_output"]["local_path"]).parents[1] / "PrepareData" / "test").glob("*.csv")
        first = next(features).read_text().splitlines()[:3]
        body = "\n".join(line.split(",", 1)[1] for line in first).encode()
        answer = runtime.invoke_endpoint(EndpointName="leads", Body=body, ContentType="text/csv")
        served = [float(s) for s in answer["Body"].read().decode().splitlines()]
        assert len(served) == 3 and all(0 < s < 1 for s in served)
        with pytest.raises(runtime.exceptions.ModelError) as refused:
            runtime.invoke_endpoint(EndpointName="leads", Body=b"1,2\n", ContentType="text/csv")
        assert refused.value.response["OriginalStatusCode"] == 400
    finally:
        undeployed = cli("pipelines.deploy", "undeploy", "leads", "--store", str(store))
    assert undeployed.returncode == 0, undeployed.stderr
    assert serve_processes(store) == []


@needs_r
def test_the_r_image_trains_passes_the_gate_is_registered_deployed_and_scores_beyond_the_payload_limit(tmp_path):
    store = tmp_path / "store"
    run = cli("pipelines.run", "--store", str(store), "--sample-rows", "4000", "--training-mode", "custom",
              "--training-image", R_IMAGE, "--calibration", "platt", "--parameter", "NumRound=80",
              "--parameter", "MaxDepth=3", "--summary-json", str(tmp_path / "summary.json"))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "Succeeded"
    evaluation = json.loads(Path(summary["evaluation"]["local_path"]).read_text())
    assert evaluation["binary_classification_metrics"]["auc"]["value"] > 0.7
    [definition] = [json.loads(p.read_text()) for p in (store / "executions").glob("*/definition.json")]
    steps = {step["Name"]: step for step in definition["Steps"]}
    [register] = steps["CheckQuality"]["Arguments"]["IfSteps"]
    assert register["Arguments"]["InferenceSpecification"]["Containers"][0]["Image"] == R_IMAGE
    validated = cli("pipelines.run", "validate", "--definition", str(next((store / "executions").glob(
        "*/definition.json"))), "--target", "sagemaker")
    assert validated.returncode == 0, validated.stdout + validated.stderr

    assert cli("pipelines.registry", "approve", "LeadScoringModels", "1", "--store", str(store),
               "--description", "R model").returncode == 0
    deployed = cli("pipelines.deploy", "deploy", "--endpoint-name", "leads-r", "--store", str(store))
    assert deployed.returncode == 0, deployed.stderr
    try:
        test_split = next((Path(summary["transform_output"]["local_path"]).parents[1] / "PrepareData" / "test")
                          .glob("*.csv"))
        rows = test_split.read_text().splitlines()
        scored = cli("inference.invoke", "--endpoint-name", "leads-r", "--store", str(store), "--input",
                     str(test_split), "--output", str(tmp_path / "scores.csv"), "--id-columns", "1",
                     "--max-payload-bytes", "20000", "--concurrency", "2")
        assert scored.returncode == 0, scored.stdout + scored.stderr
        answers = [line.split(",") for line in (tmp_path / "scores.csv").read_text().splitlines()]
        assert len(answers) == len(rows) > 20000 / 100  # more rows than one 20 kB request holds
        assert [label for label, _ in answers] == [row.split(",", 1)[0] for row in rows]
        assert all(0 < float(score) < 1 for _, score in answers)
    finally:
        undeployed = cli("pipelines.deploy", "undeploy", "leads-r", "--store", str(store))
    assert undeployed.returncode == 0, undeployed.stderr
    assert serve_processes(store, b"Rscript\x00serve") == []
