"""What the studio's pages show, from records as runs leave them: comparisons name the image and the
hyperparameters that differ, numbers in one format, a dead engine's execution without markdown, and the
MLflow run's link in the live state."""

from __future__ import annotations

from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.store import Store
from pipelines.studio import views

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def record(store: Store, execution_id: str, image: str, depth: str, auc: float, status: str = "Succeeded"
           ) -> ExecutionRecord:
    train = StepRecord("Train", "Training", "Succeeded", "2026-12-07T00:00:00+00:00", "2026-12-07T00:00:10+00:00",
                       properties={"AlgorithmSpecification": {"TrainingImage": image},
                                   "HyperParameters": {"max_depth": depth, "eta": "0.1",
                                                       "sagemaker_program": "train.py"}})
    evaluate = StepRecord("Evaluate", "Processing", "Succeeded", property_files={"EvaluationReport": {
        "binary_classification_metrics": {"auc": {"value": auc}}}})
    found = ExecutionRecord(execution_id, "p", status, {"MaxDepth": int(depth)}, "2026-12-07T00:00:00+00:00",
                            steps=[train, evaluate],
                            mlflow_run={"run_id": "0123456789abcdef", "experiment": "p", "experiment_id": "1",
                                        "tracking_uri": "http://127.0.0.1:5000"})
    found.save(store.root)
    return found


def test_a_comparison_shows_the_image_and_hyperparameters_that_differ_in_one_number_format(tmp_path):
    store = Store(tmp_path / "store")
    record(store, "a1", IMAGE, "5", 0.8123456789012345)
    record(store, "b2", IMAGE.replace("xgboost:1.7-1", "xgboost:3.0-5"), "3", 0.8)
    rows = {(row["section"], row["label"]): row for row in views.comparison(store, ["a1", "b2"])["rows"]}
    image = rows[("Training", "Train: image")]
    assert image["differs"] and image["values"][1].endswith("xgboost:3.0-5")
    assert rows[("Training", "Train: max_depth")]["values"] == ["5", "3"]
    assert not rows[("Training", "Train: eta")]["differs"]
    assert ("Training", "Train: sagemaker_program") not in rows
    assert views.plain(0.8123456789012345) == "0.812346" and views.plain(None) == "-"


def test_a_dead_engines_execution_reads_without_markdown_and_the_state_links_its_mlflow_run(tmp_path):
    store = Store(tmp_path / "store")
    found = record(store, "c3", IMAGE, "5", 0.8, status="Executing")  # no engine holds its lock: it died
    assert views.summary_row(store, found)["status"] == "Executing (interrupted: retry resumes it)"
    state = views.state(store, found, {"Version": "2020-12-01", "Steps": []})
    assert state["mlflow_link"] == "http://127.0.0.1:5000/#/experiments/1/runs/0123456789abcdef"
