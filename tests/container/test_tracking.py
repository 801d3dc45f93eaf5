"""Our image's training job logs to the MLflow run its environment names (SageMaker managed MLflow on
SageMaker): hyperparameters, each round's AUC as metric history, the final metrics; without a tracking URI
nothing, and a tracking server that fails costs one warning, never the model."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from container.hyperparameters import parse
from container.train import fit
from container.tracking import log_training
from tests.container.helpers import leads


@pytest.fixture(scope="module")
def trained():
    hp = parse({"num_round": "12", "max_depth": "3", "early_stopping_rounds": "50", "calibration": "none"})
    history: dict = {}
    data, validation = leads(1500, 1), leads(800, 2)
    _, metrics = fit(hp, (data[:, 1:], data[:, 0]), (validation[:, 1:], validation[:, 0]), history)
    return hp, history, metrics


def test_each_round_is_metric_history_of_the_run_the_environment_names(tmp_path, trained, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder store: no database to create for a test
    hp, history, metrics = trained
    uri = (tmp_path / "mlruns").as_uri()
    environ = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "leads-q4", "MLFLOW_RUN_NAME": "abc123-Train",
               "TRAINING_JOB_NAME": "pipelines-abc123-Train-x", "PIPELINE_EXECUTION_ID": "abc123"}
    run_id = log_training(hp.__dict__, history, metrics, environ)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "abc123-Train"
    assert client.get_experiment(run.info.experiment_id).name == "leads-q4"
    assert run.data.params["max_depth"] == "3" and run.data.params["num_round"] == "12"
    rounds = client.get_metric_history(run_id, "validation-auc")
    assert [m.step for m in rounds] == list(range(12))
    assert [m.value for m in rounds] == pytest.approx(history["validation"]["auc"])
    assert len(client.get_metric_history(run_id, "train-auc")) == 12
    assert run.data.metrics["validation_auc"] == pytest.approx(metrics["validation:auc"])
    assert run.data.tags["training_job"] == "pipelines-abc123-Train-x"
    assert run.data.tags["pipeline_execution_id"] == "abc123"


def test_without_a_tracking_uri_nothing_is_logged(trained, capsys):
    assert log_training(trained[0].__dict__, trained[1], trained[2], {}) is None
    assert capsys.readouterr().err == ""


def test_a_tracking_server_that_fails_is_one_warning(trained, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    assert log_training(trained[0].__dict__, trained[1], trained[2], {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: MLflow logging to http://127.0.0.1:9 skipped: ")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/leads"
    assert log_training(trained[0].__dict__, trained[1], trained[2], {"MLFLOW_TRACKING_URI": arn}) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs the sagemaker-mlflow plugin" in err[0]
