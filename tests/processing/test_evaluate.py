"""processing/evaluate.py: metrics checked against scikit-learn, report files, clear errors."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import xgboost as xgb
from sklearn import metrics as skm

from processing import evaluate


def test_metrics_match_scikit_learn():
    rng = np.random.RandomState(0)
    labels = (rng.uniform(size=2000) < 0.2).astype(float)
    scores = np.clip(labels * 0.3 + rng.uniform(size=2000) * 0.7, 0, 1).round(2)  # ties included
    report = evaluate.evaluate(labels, scores, 0.5, seed=1)
    m = report["binary_classification_metrics"]
    predicted = scores >= 0.5
    assert m["auc"]["value"] == pytest.approx(skm.roc_auc_score(labels, scores))
    assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert m["precision"]["value"] == pytest.approx(skm.precision_score(labels, predicted))
    assert m["recall"]["value"] == pytest.approx(skm.recall_score(labels, predicted))
    assert m["f1"]["value"] == pytest.approx(skm.f1_score(labels, predicted))
    assert m["log_loss"]["value"] == pytest.approx(skm.log_loss(labels, scores), rel=1e-6)
    assert 0 < m["auc"]["standard_deviation"] < 0.05
    precision, recall, thresholds = skm.precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    assert report["lead_scoring_metrics"]["f1_best_threshold"]["f1"] == pytest.approx(f1.max())
    top = np.argsort(-scores, kind="mergesort")[:200]
    assert report["lead_scoring_metrics"]["top_decile"]["capture_rate"] == pytest.approx(labels[top].sum() / labels.sum())


def make_model(tmp_path, features):
    rng = np.random.RandomState(1)
    x = rng.normal(size=(500, features))
    y = (x[:, 0] > 0).astype(float)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=y), 5)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    booster.save_model(str(tmp_path / "xgboost-model.json"))
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "xgboost-model.json", arcname="xgboost-model")
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    np.savetxt(test_dir / "test.csv", np.column_stack([y, x]), delimiter=",", fmt="%g")
    return model_dir, test_dir


def test_report_files(tmp_path):
    model_dir, test_dir = make_model(tmp_path, 3)
    out = tmp_path / "out"
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] > 0.9
    for png in ("roc.png", "precision_recall.png", "lift.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and 'src="roc.png"' in html and "</html>" in html


def test_the_report_says_which_model_training_job_data_and_revision_it_covers(tmp_path):
    model_dir, test_dir = make_model(tmp_path, 3)
    out = tmp_path / "out"
    given = {"--model-uri": "s3://b/p/exec1/Train/output/model.tar.gz", "--training-job": "pipelines-exec1-Train-x",
             "--test-uri": "s3://b/p/exec1/PrepareData/test", "--source-revision": "<rev&1>"}
    argv = ["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(out)]
    assert evaluate.main(argv + [word for pair in given.items() for word in pair]) == 0
    html = (out / "report.html").read_text()
    for label, value in (("Model artifact", "s3://b/p/exec1/Train/output/model.tar.gz"),
                         ("Training job", "pipelines-exec1-Train-x"), ("Test data", "s3://b/p/exec1/PrepareData/test"),
                         ("Source revision", "&lt;rev&amp;1&gt;")):
        assert f"<tr><th>{label}</th><td>{value}</td></tr>" in html


def test_one_class_and_bad_model_are_clear_errors(tmp_path, capsys):
    model_dir, test_dir = make_model(tmp_path, 3)
    (test_dir / "test.csv").write_text("1,0.1,0.2,0.3\n1,0.2,0.1,0.0\n")
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(tmp_path / "o")]) == 1
    assert "the test split has only label 1 (2 rows)" in capsys.readouterr().err
    (model_dir / "model.tar.gz").write_bytes(b"not a tarball")
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(tmp_path / "o")]) == 1
    assert "model.tar.gz is not a readable tar archive: neither a plain tar file nor" in capsys.readouterr().err


def test_the_scores_a_batch_transform_wrote_are_evaluated_as_the_models_own_would_be(tmp_path):
    model_dir, test_dir = make_model(tmp_path, 3)
    direct = tmp_path / "direct"
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(direct)]) == 0
    labels, scores = evaluate.scored_by_the_model(str(model_dir), str(test_dir))
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    rows = [f"{label:g},{float(score)!r}" for label, score in zip(labels, scores)]
    (predictions / "test.csv.out").write_text("\n".join(rows[:200]) + "\n")  # two files, as two instances write
    (predictions / "test2.csv.out").write_text("\n".join(rows[200:]) + "\n")
    transformed = tmp_path / "transformed"
    assert evaluate.main(["--predictions-dir", str(predictions), "--output-dir", str(transformed)]) == 0
    expected = json.loads((direct / "evaluation.json").read_text())
    assert json.loads((transformed / "evaluation.json").read_text()) == expected
    assert (transformed / "report.html").is_file()


@pytest.mark.parametrize("content, says", [
    ("1,0.9\n0,0.2,7\n", "part-0.out: Error tokenizing data. Expected 2 fields in line 2, saw 3"),
    ("1,0.9,3\n0,0.2,7\n", "have 3 columns; each line must be label,score"),
    ("1,0.9\n0,high\n", "part-0.out: line 2 is not numbers"),
    ("1,0.9\n0,1.7\n", "scores outside [0, 1]"),
    ("2,0.9\n0,0.1\n", "the predictions has labels other than 0 and 1"),
    ("", "the predictions in"),
])
def test_predictions_that_are_not_label_and_probability_are_one_clear_error(tmp_path, capsys, content, says):
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    (predictions / "part-0.out").write_text(content)
    assert evaluate.main(["--predictions-dir", str(predictions), "--output-dir", str(tmp_path / "o")]) == 1
    assert says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_extracted_model_is_removed_whether_loading_works_or_not(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(evaluate.tempfile, "tempdir", str(scratch))
    model_dir, test_dir = make_model(tmp_path, 3)
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(tmp_path / "o")]) == 0
    (model_dir / "model.tar.gz").write_bytes(b"not a tarball")
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(tmp_path / "p")]) == 1
    assert list(scratch.iterdir()) == []


def test_bootstrap_by_counts_equals_bootstrap_by_resampled_arrays():
    rng = np.random.RandomState(3)
    labels = (rng.uniform(size=3000) < 0.2).astype(float)
    scores = np.round(np.clip(labels * 0.3 + rng.uniform(size=3000) * 0.7, 0, 1), 2)  # many ties
    draws = np.random.RandomState(42)
    resampled: dict = {}
    for _ in range(evaluate.BOOTSTRAP_SAMPLES):
        idx = draws.randint(0, len(labels), len(labels))
        for name, value in evaluate.all_metrics(labels[idx], scores[idx], 0.5).items():
            resampled.setdefault(name, []).append(value)
    by_counts = evaluate.bootstrap_std(labels, scores, 0.5, seed=42)
    assert by_counts.keys() == resampled.keys()
    for name, values in resampled.items():
        assert by_counts[name] == pytest.approx(float(np.std(values)), rel=1e-12, abs=1e-15)


def test_xgboost_is_imported_without_scikit_learn_which_stays_importable():
    import subprocess
    import sys
    from pathlib import Path

    program = ("import sys\n"
               "from processing.evaluate import import_xgboost\n"
               "xgb = import_xgboost()\n"
               "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'\n"
               "import numpy as np\n"
               "booster = xgb.train({'objective': 'binary:logistic'}, xgb.DMatrix(np.eye(4), label=[0, 1, 0, 1]), 2)\n"
               "import sklearn.metrics\n"
               "print(sklearn.metrics.roc_auc_score([0, 1, 0, 1], booster.predict(xgb.DMatrix(np.eye(4)))))\n")
    result = subprocess.run([sys.executable, "-c", program], cwd=Path(__file__).resolve().parents[2],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 0 <= float(result.stdout) <= 1


def test_evaluate_logs_its_metrics_and_report_to_the_run_its_environment_names(tmp_path, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    model_dir, test_dir = make_model(tmp_path, 3)
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder store: no database to create for a test
    for name, value in {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "leads-q4",
                        "MLFLOW_RUN_NAME": "abc123-Evaluate", "PIPELINE_EXECUTION_ID": "abc123"}.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("leads-q4").experiment_id])
    assert run.info.run_name == "abc123-Evaluate" and run.data.tags["pipeline_execution_id"] == "abc123"
    assert run.data.metrics["test_auc"] == pytest.approx(report["binary_classification_metrics"]["auc"]["value"])
    assert run.data.metrics["test_auc_std"] > 0
    assert run.data.metrics["top_decile_lift"] == pytest.approx(report["lead_scoring_metrics"]["top_decile"]["lift"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/evaluation.json", "evaluation/report.html", "evaluation/roc.png"} <= artifacts
    assert f"logged to MLflow run {run.info.run_id}" in capsys.readouterr().out


def test_evaluate_without_mlflow_in_its_image_warns_once_and_writes_the_report(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    model_dir, test_dir = make_model(tmp_path, 3)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/x")
    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    out = tmp_path / "out"
    assert evaluate.main(["--model-dir", str(model_dir), "--test-dir", str(test_dir), "--output-dir", str(out)]) == 0
    assert (out / "evaluation.json").is_file() and (out / "report.html").is_file()
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "MLflow" in line]
    assert "mlflow is not installed in this job's image" in warning


def test_an_image_without_mlflow_installs_the_named_packages_first_or_says_why_not(tmp_path, monkeypatch, capsys):
    import builtins
    import os
    import subprocess

    from processing import mlflow_run

    real_import = builtins.__import__
    installed = []

    def no_mlflow(name, *args, **kwargs):
        if (name == "mlflow" or name.startswith("mlflow.")) and not installed:
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    def pip(command, **kwargs):  # stands in for pip: the real one would need the index
        assert command[1:4] == ["-m", "pip", "install"] and command[-2:] == ["mlflow-skinny==1", "sagemaker-mlflow==2"]
        if "--fail" in os.environ.get("PIP_BEHAVIOUR", ""):
            raise subprocess.CalledProcessError(1, command, stderr=b"ERROR: No matching distribution found\n")
        installed.append(command)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    monkeypatch.setattr(mlflow_run.subprocess, "run", pip)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    environ = {"MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
               "MLFLOW_PIP_INSTALL": "mlflow-skinny==1 sagemaker-mlflow==2"}
    with mlflow_run.job_run("Evaluate", environ) as mlflow:
        assert mlflow is not None and installed
        mlflow.log_metric("m", 1.0)
    installed.clear()
    monkeypatch.setenv("PIP_BEHAVIOUR", "--fail")
    with mlflow_run.job_run("Evaluate", environ) as mlflow:
        assert mlflow is None
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "MLflow" in line]
    assert "pip could not install it (ERROR: No matching distribution found)" in warning
