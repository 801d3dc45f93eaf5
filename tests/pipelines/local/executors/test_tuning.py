"""Tuning steps as ``CreateHyperParameterTuningJob`` documents them (hand-written JSON), run end to end on the
built-in XGBoost image: every strategy tunes a small data set, the best training job is the one with the best
objective, and a Model step built on ``get_top_model_s3_uri``'s expression gets its model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.local.store import Store
from tests.pipelines.local.helpers import engine

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::111122223333:role/Mine"


def stage_data(store: Store) -> None:
    """Label-first CSV: a label that depends on two of four features, with noise."""
    rng = np.random.default_rng(7)
    for channel, rows in (("train", 400), ("validation", 200)):
        x = rng.normal(size=(rows, 4))
        y = ((x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.8, size=rows)) > 0).astype(int)
        text = "\n".join(",".join([str(label), *(f"{v:.4f}" for v in row)]) for label, row in zip(y, x)) + "\n"
        store.put_bytes(text.encode(), f"s3://bkt/data/{channel}/part.csv")


def channel(name: str) -> dict:
    return {"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://bkt/data/{name}", "S3DataDistributionType": "FullyReplicated"}}}


RANGES = {
    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "5", "ScalingType": "Linear"}],
    "ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"},
        {"Name": "subsample", "MinValue": "0.5", "MaxValue": "0.99", "ScalingType": "ReverseLogarithmic"}],
}
GRID = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["1", "4"]},
                                       {"Name": "eta", "Values": ["0.02", "0.3"]}]}


def tuning_definition(strategy: str, ranges: dict, jobs: int | None = 4) -> dict:
    """A Tuning step (``jobs`` None: no MaxNumberOfTrainingJobs, as a Grid search may leave it) and a Model step
    of its best model."""
    limits = {"MaxParallelTrainingJobs": 2} if jobs is None else {"MaxNumberOfTrainingJobs": jobs,
                                                                   "MaxParallelTrainingJobs": 2}
    tune = {"Name": "Tune", "Type": "Tuning", "Arguments": {
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "RandomSeed": 3,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            "ResourceLimits": limits,
            "ParameterRanges": ranges, "TrainingJobEarlyStoppingType": "Off"},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"objective": "binary:logistic", "eval_metric": "auc", "num_round": "12",
                                      "_tuning_objective_metric": "validation:auc"},
            "AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
            "RoleArn": ROLE, "InputDataConfig": [channel("train"), channel("validation")],
            "OutputDataConfig": {"S3OutputPath": "s3://bkt/tuning"},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}}}}
    best_model = {"Std:Join": {"On": "/", "Values": [  # what TuningStep.get_top_model_s3_uri(0, "bkt", "tuning") writes
        "s3:/", "bkt", "tuning", {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}, "output/model.tar.gz"]}}
    model = {"Name": "BestModel", "Type": "Model", "Arguments": {
        "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": XGBOOST, "ModelDataUrl": best_model}}}
    return {"Version": "2020-12-01", "Steps": [tune, model]}


@pytest.mark.parametrize("strategy, ranges, jobs", [
    ("Random", RANGES, 4), ("Bayesian", RANGES, 4), ("Hyperband", RANGES, 3), ("Grid", GRID, None)])
def test_each_strategy_tunes_and_the_best_job_has_the_best_objective(tmp_path, strategy, ranges, jobs):
    store = Store(tmp_path / "store")
    stage_data(store)
    run, lines = engine(store.root)
    record = run.run(tuning_definition(strategy, ranges, jobs), "p", {})
    assert record.status == "Succeeded", (record.step("Tune") or record.step("BestModel")).failure_reason
    tune = record.step("Tune").properties
    summaries = tune["TrainingJobSummaries"]
    assert len(summaries) == (4 if strategy == "Grid" else jobs)  # Grid: every combination
    scores = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert scores == sorted(scores, reverse=True) and tune["BestTrainingJob"] == summaries[0]
    assert all(s["TrainingJobStatus"] == "Completed" and s["ObjectiveStatus"] == "Succeeded" for s in summaries)
    for entry in summaries:
        tuned = entry["TunedHyperParameters"]
        if strategy == "Grid":
            assert (tuned["max_depth"], tuned["eta"]) in {(d, e) for d in ("1", "4") for e in ("0.02", "0.3")}
        else:
            assert 1 <= int(tuned["max_depth"]) <= 5 and 0.01 <= float(tuned["eta"]) <= 0.5
            assert 0.5 <= float(tuned["subsample"]) <= 0.99
    if strategy == "Grid":
        assert len({tuple(sorted(s["TunedHyperParameters"].items())) for s in summaries}) == 4
    # the model of the best job is the one the Model step got, and it is in the store
    model_url = record.step("BestModel").properties["PrimaryContainer"]["ModelDataUrl"]
    assert model_url == f"s3://bkt/tuning/{summaries[0]['TrainingJobName']}/output/model.tar.gz"
    assert store.path(model_url).is_file()
    assert len(tune["HyperParameterTuningJobName"]) <= 32
    assert all(s["TrainingJobName"].startswith(tune["HyperParameterTuningJobName"] + "-") for s in summaries)
    if strategy == "Bayesian":
        assert any("Optuna's TPE sampler" in line for line in record.step("Tune").unenforced)


def test_a_log_scaled_range_is_drawn_on_a_log_scale(tmp_path):
    from pipelines.local.executors.tuning import sampler, search_space

    import optuna

    space = search_space({"ContinuousParameterRanges": [
        {"Name": "eta", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"}]})
    study = optuna.create_study(sampler=sampler("Random", space, 1))
    draws = [study.ask(space).params["eta"] for _ in range(400)]
    below = sum(value < 0.01 for value in draws) / len(draws)
    assert math.isclose(below, 0.5, abs_tol=0.1)  # half of the log range lies below 0.01; linearly, 1%


@pytest.mark.parametrize("change, says", [
    (lambda a: a.update(WarmStartConfig={"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "x"}],
                                         "WarmStartType": "IdenticalDataAndAlgorithm"}),
     "ClientError: WarmStartConfig: warm start"),
    (lambda a: a["HyperParameterTuningJobConfig"]["ParameterRanges"].update(
        AutoParameters=[{"Name": "alpha", "ValueHint": "0.1"}]),
     "ClientError: ParameterRanges.AutoParameters (ranges SageMaker chooses) are not run locally"),
])  # what SageMaker itself refuses: test_tuning_limits.py
def test_what_cannot_be_tuned_here_is_one_client_error(tmp_path, change, says):
    definition = tuning_definition("Random", {k: [dict(e) for e in v] for k, v in RANGES.items()})
    change(definition["Steps"][0]["Arguments"])
    run, _ = engine(tmp_path / "store")
    record = run.run(definition, "p", {})
    assert record.step("Tune").failure_reason.startswith(says), record.step("Tune").failure_reason
    assert record.step("Tune").attempts == 1


def test_logs_show_each_training_job_of_the_tuning_job(tmp_path, capsys):
    from pipelines.cli.commands.executions import print_logs

    store = Store(tmp_path / "store")
    stage_data(store)
    run, _ = engine(store.root)
    record = run.run(tuning_definition("Random", RANGES, 2), "p", {})
    assert record.status == "Succeeded"
    assert print_logs(store.root, record.execution_id, "Tune") == 0
    printed = capsys.readouterr().out
    assert "==> training job 001 <==" in printed and "==> training job 002 <==" in printed
    assert "validation-auc:" in printed  # the built-in algorithm's own log lines, per job
