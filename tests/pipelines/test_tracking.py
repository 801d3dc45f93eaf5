"""MLflow tracking of local executions, read back through MlflowClient once the background logger is done
(``settle``): in the store's own tracking store, on a real MLflow tracking server started on loopback, and with
a server that does not answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from pipelines.tracking import per_round_metrics
from pipelines.tracking_logger import settle

REPO = Path(__file__).resolve().parents[2]


def test_per_round_metrics_are_read_from_the_training_log():
    log = ("[0]#011train-auc:0.81#011validation-auc:0.79\n[1]#011train-auc:0.82#011validation-auc:0.80\n"
           "Stopping. Best iteration: [1]\n[2]\ttrain-logloss:1.5e-01\n")
    assert per_round_metrics(log) == [("train-auc", 0.81, 0), ("validation-auc", 0.79, 0), ("train-auc", 0.82, 1),
                                      ("validation-auc", 0.80, 1), ("train-logloss", 0.15, 2)]


def run_local(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_", "MLFLOW_"))}
    return subprocess.run([sys.executable, "-m", "pipelines.run", "--sample-rows", "3000", "--source-revision", "rev-1",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def only_run(uri: str, execution_id: str):
    tracked = client(uri)
    experiment = tracked.get_experiment_by_name("LeadScoringPipeline")
    runs = tracked.search_runs([experiment.experiment_id], f"tags.execution_id = '{execution_id}'")
    assert len(runs) == 1
    return tracked, runs[0]


def execution_of(result: subprocess.CompletedProcess) -> str:
    return next(line.split()[1][:-1] for line in result.stdout.splitlines() if line.startswith("Execution "))


def settled(cwd: Path) -> list[str]:
    """The warnings of a reader of runs, once the background logging of the store's executions is done."""
    warnings: list[str] = []
    settle(cwd / ".sagemaker-local", lambda note: None, warnings.append)
    return warnings


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("tracked")
    result = run_local(cwd, "--mlflow-tracking-uri", "store")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert settled(cwd) == []
    return cwd, result, f"sqlite:///{cwd / '.sagemaker-local' / 'mlflow' / 'mlflow.db'}"


def test_a_local_execution_is_an_mlflow_run_with_params_metric_history_artifacts_and_tags(tracked_run):
    cwd, result, uri = tracked_run
    execution = execution_of(result)
    tracked, run = only_run(uri, execution)
    assert (f"note: MLflow: execution {execution} is being logged in the background to experiment "
            f"LeadScoringPipeline at {uri}; `") in result.stdout
    assert f"-m pipelines.run describe {execution}` shows its run" in result.stdout
    assert run.info.status == "FINISHED" and run.info.run_name == execution
    assert run.data.params["NumRound"] == "300" and run.data.params["Train.eta"] == "0.1"
    rounds = tracked.get_metric_history(run.info.run_id, "validation-auc")
    assert len(rounds) > 5 and [m.step for m in rounds] == list(range(len(rounds)))
    auc = float(next(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Model test AUC")))
    assert round(run.data.metrics["test_auc"], 4) == auc and run.data.metrics["test_auc_std"] > 0
    assert run.data.metrics["top_decile_lift"] > 1 and run.data.metrics["wall_seconds/Train"] > 0
    tags = run.data.tags
    assert tags["pipeline"] == "LeadScoringPipeline" and tags["source_revision"] == "rev-1"
    assert tags["registered_model"] == "LeadScoringModels version 1" and tags["reused_steps"] == "none"
    assert {a.path for a in tracked.list_artifacts(run.info.run_id, "evaluation")} >= {
        "evaluation/report.html", "evaluation/evaluation.json", "evaluation/roc.png"}
    assert [a.path for a in tracked.list_artifacts(run.info.run_id, "model")] == ["model/model.tar.gz"]
    described = subprocess.run([sys.executable, "-m", "pipelines.registry", "describe", "LeadScoringModels", "1"],
                               cwd=cwd, capture_output=True, text=True, timeout=120)
    assert f"  MLflow run:   {run.info.run_id} (experiment LeadScoringPipeline) at {uri}" in described.stdout
    described = subprocess.run([sys.executable, "-m", "pipelines.run", "describe", execution], cwd=cwd,
                               capture_output=True, text=True, timeout=120)
    assert f"\nMLflow run: {run.info.run_id} (experiment LeadScoringPipeline) at {uri}\n" in described.stdout


def test_the_run_lasts_as_the_execution_did_and_its_model_metrics_sort_before_step_durations(tracked_run):
    cwd, result, uri = tracked_run
    execution = execution_of(result)
    _, run = only_run(uri, execution)
    record = json.loads((cwd / ".sagemaker-local" / "executions" / execution / "execution.json").read_text())
    assert run.info.start_time == int(datetime.fromisoformat(record["start_time"]).timestamp() * 1000)
    assert run.info.end_time == int(datetime.fromisoformat(record["end_time"]).timestamp() * 1000)
    names = sorted(run.data.metrics)  # the order of MLflow's metric table and charts
    durations = [name for name in names if name.startswith("wall_seconds/")]
    assert len(durations) == len(record["steps"]) and names[-len(durations):] == durations
    assert {"test_auc", "validation-auc", "top_decile_lift"} <= set(names[:-len(durations)])


def test_cache_hits_and_a_retried_failure_are_recorded_as_they_happened(tracked_run):
    cwd, first, uri = tracked_run
    failed = run_local(cwd, "--mlflow-tracking-uri", "store", "--parameter", "AucThreshold=0.99")
    assert failed.returncode == 1
    execution = execution_of(failed)
    # at once, the first try still being logged in the background: the retry settles it before it runs
    retried = subprocess.run([sys.executable, "-m", "pipelines.run", "retry", execution, "--mlflow-tracking-uri",
                              "store"], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert retried.returncode == 1
    assert settled(cwd) == []
    _, run = only_run(uri, execution)  # the retry logs into its execution's run
    assert run.info.status == "FAILED" and f"Train <- {execution_of(first)}" in run.data.tags["reused_steps"]
    assert "cache hit from" in run.data.tags["step.Train"] and "AUC" in run.data.tags["step.QualityGateFailed.reason"]
    assert run.data.tags["retries"] == "1" and "after 1 earlier tries" in run.data.tags["step.QualityGateFailed"]
    record = json.loads((cwd / ".sagemaker-local" / "executions" / execution / "execution.json").read_text())
    assert record["mlflow_run"]["run_id"] == run.info.run_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_run_is_tracked_on_a_real_tracking_server_and_one_that_does_not_answer_costs_a_warning(tracked_run,
                                                                                                    tmp_path):
    cwd, _, _ = tracked_run
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                               "--artifacts-destination", (tmp_path / "artifacts").as_uri(), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # its first start migrates a database: minutes on a loaded machine
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the MLflow server did not start"
                time.sleep(0.5)
        result = run_local(cwd, "--mlflow-tracking-uri", uri)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        tracked, run = only_run(uri, execution_of(result))  # logged once the command ends: it waits for a server
        assert f"note: MLflow run {run.info.run_id} (experiment LeadScoringPipeline) at {uri}" in result.stdout
        assert run.data.params["NumRound"] == "300" and "test_auc" in run.data.metrics
        assert any(a.path == "evaluation/report.html" for a in tracked.list_artifacts(run.info.run_id, "evaluation"))
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    silent = run_local(cwd, "--mlflow-tracking-uri", f"http://127.0.0.1:{free_port()}")
    assert silent.returncode == 0, silent.stdout[-3000:] + silent.stderr[-3000:]
    warnings = [line for line in silent.stdout.splitlines() if "MLflow tracking at" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: MLflow tracking at http://127.0.0.1:")
    assert warnings[0].endswith(f"execution {execution_of(silent)} is recorded in the store as usual")


@pytest.mark.parametrize("uri", ["https://user:secret@mlflow.example.com", "not a uri", "mlflow.db"])
def test_a_tracking_uri_with_credentials_or_no_scheme_is_refused(uri):
    from pipelines.config import build_config
    from pipelines.errors import ConfigError

    with pytest.raises(ConfigError, match="must be 'store', 'off' or a tracking URI"):
        build_config(("test", {"mlflow_tracking_uri": uri}))


def test_off_tracks_nothing(tracked_run, tmp_path):
    result = run_local(tmp_path, "--mlflow-tracking-uri", "off", "--no-cache")
    assert result.returncode == 0 and "MLflow" not in result.stdout
    assert not (tmp_path / ".sagemaker-local" / "mlflow").exists()
