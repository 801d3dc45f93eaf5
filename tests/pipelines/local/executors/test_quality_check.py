"""QualityCheck steps built by the installed SDK v3 (``QualityCheckStep``) run end to end on the local engine:
a data-quality baseline registered as the model's drift-check baseline, the next run checked against the
registered (or a supplied) baseline, drift that fails the step with its violation report, and a model-quality
baseline and check of binary-classification predictions; every file in Model Monitor's documented shape."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.pipelines.local.test_pipelines_written_elsewhere import BUCKET, ROLE, sdk_on_moto
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
GROUP = "LeadsMonitored"


def build(monkeypatch) -> dict:
    """A data-quality check and a model-quality check, and a registration whose drift-check baselines are the
    data-quality check's, as the public Model Monitor example wires them."""
    with sdk_on_moto(monkeypatch):
        from sagemaker.core.drift_check_baselines import DriftCheckBaselines
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.core.model_monitor.dataset_format import DatasetFormat
        from sagemaker.core.workflow.parameters import ParameterBoolean, ParameterString
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import ModelStep
        from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.mlops.workflow.quality_check_step import (DataQualityCheckConfig, ModelQualityCheckConfig,
                                                                 QualityCheckStep)
        from sagemaker.serve.model_builder import ModelBuilder

        session = PipelineSession(default_bucket=BUCKET)
        job = CheckJobConfig(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=session)
        skip = ParameterBoolean(name="SkipCheck", default_value=False)
        register_new = ParameterBoolean(name="RegisterNewBaseline", default_value=False)
        data_url = ParameterString(name="DataUrl", default_value=f"s3://{BUCKET}/data/week1")
        scores_url = ParameterString(name="ScoresUrl", default_value=f"s3://{BUCKET}/scores/week1")
        supplied_statistics = ParameterString(name="SuppliedStatistics", default_value="")
        supplied_constraints = ParameterString(name="SuppliedConstraints", default_value="")
        data = QualityCheckStep(
            name="DataQualityCheck", check_job_config=job, skip_check=skip, register_new_baseline=register_new,
            model_package_group_name=GROUP, quality_check_config=DataQualityCheckConfig(
                baseline_dataset=data_url, dataset_format=DatasetFormat.csv(header=False),
                output_s3_uri=f"s3://{BUCKET}/checks/data-quality"))
        model = QualityCheckStep(
            name="ModelQualityCheck", check_job_config=job, skip_check=skip, register_new_baseline=register_new,
            supplied_baseline_statistics=supplied_statistics, supplied_baseline_constraints=supplied_constraints,
            quality_check_config=ModelQualityCheckConfig(
                baseline_dataset=scores_url, dataset_format=DatasetFormat.csv(header=False),
                output_s3_uri=f"s3://{BUCKET}/checks/model-quality", problem_type="BinaryClassification",
                inference_attribute="_c1", probability_attribute="_c2", ground_truth_attribute="_c0",
                probability_threshold_attribute=0.5))
        properties = data.properties
        register = ModelStep(name="Register", step_args=ModelBuilder(
            image_uri=XGBOOST, s3_model_data_url=f"s3://{BUCKET}/model/model.tar.gz", role_arn=ROLE,
            sagemaker_session=session).register(
            model_package_group_name=GROUP, approval_status="PendingManualApproval", content_types=["text/csv"],
            response_types=["text/csv"], inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
            model_metrics=ModelMetrics(model_data_statistics=MetricsSource(
                s3_uri=properties.CalculatedBaselineStatistics, content_type="application/json")),
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=MetricsSource(s3_uri=properties.BaselineUsedForDriftCheckStatistics,
                                                    content_type="application/json"),
                model_data_constraints=MetricsSource(s3_uri=properties.BaselineUsedForDriftCheckConstraints,
                                                     content_type="application/json"))))
        pipeline = Pipeline(name="monitored", steps=[data, model, register], sagemaker_session=session,
                            parameters=[skip, register_new, data_url, scores_url, supplied_statistics,
                                        supplied_constraints])
        return json.loads(pipeline.definition())


def leads(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    return pd.DataFrame({"label": generator.integers(0, 2, rows), "age": (generator.normal(40, 9, rows) + shift).round(1),
                         "size": generator.choice(["small", "medium", "large"], rows)})


def scores(rows: int, seed: int, noise: float) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    probability = generator.random(rows)
    truth = (probability + generator.normal(0, noise, rows) > 0.5).astype(int)
    return pd.DataFrame({"label": truth, "predicted": (probability > 0.5).astype(int), "probability": probability.round(4)})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    definition = build(monkeypatch)
    monkeypatch.undo()
    root = tmp_path_factory.mktemp("quality")
    store = Store(root / "store")
    for name, frame in (("data/week1", leads(600, 1)), ("data/week2", leads(600, 2)),
                        ("data/drifted", leads(600, 3, shift=12.0)), ("scores/week1", scores(400, 4, 0.1)),
                        ("scores/worse", scores(400, 5, 0.6))):
        store.put_bytes(frame.to_csv(header=False, index=False).encode(), f"s3://{BUCKET}/{name}/part-0.csv")
    store.put_bytes(b"not read by a check", f"s3://{BUCKET}/model/model.tar.gz")
    registry = Registry(store.root / "registry.sqlite")
    return definition, store, registry


def run(world, **parameters):
    definition, store, registry = world
    lines: list[str] = []
    engine = LocalEngine(store, registry, lambda step, line: lines.append(f"{step}: {line}"), lambda record: None,
                         RunOptions())
    return engine.run(definition, "monitored", parameters), lines


def read(store: Store, uri: str) -> dict:
    return json.loads(store.path(uri).read_text())


def test_a_first_run_calculates_and_registers_the_baseline_in_model_monitor_s_formats(world):
    _, store, registry = world
    record, lines = run(world, SkipCheck=True, RegisterNewBaseline=True)
    assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
    checked = record.step("DataQualityCheck").properties
    assert checked["CalculatedBaselineStatistics"] == f"s3://{BUCKET}/checks/data-quality/statistics.json"
    assert checked["BaselineUsedForDriftCheckConstraints"] == checked["CalculatedBaselineConstraints"]
    statistics = read(store, checked["CalculatedBaselineStatistics"])
    assert statistics["dataset"] == {"item_count": 600}
    label, age, size = statistics["features"]
    assert (label["name"], label["inferred_type"], age["inferred_type"], size["inferred_type"]) == (
        "_c0", "Integral", "Fractional", "String")
    numbers = age["numerical_statistics"]
    assert numbers["common"] == {"num_present": 600, "num_missing": 0} and 35 < numbers["mean"] < 45
    assert len(numbers["distribution"]["kll"]["buckets"]) == 10
    assert sum(b["count"] for b in numbers["distribution"]["kll"]["buckets"]) == 600
    assert {b["value"] for b in size["string_statistics"]["distribution"]["categorical"]["buckets"]} == {
        "small", "medium", "large"}
    constraints = read(store, checked["CalculatedBaselineConstraints"])
    assert constraints["features"][2]["string_constraints"]["domains"] == ["large", "medium", "small"]
    assert constraints["features"][1]["completeness"] == 1.0
    assert constraints["monitoring_config"]["distribution_constraints"]["perform_comparison"] == "Enabled"
    model = record.step("ModelQualityCheck").properties
    metrics = read(store, model["CalculatedBaselineStatistics"])["binary_classification_metrics"]
    assert metrics["auc"]["value"] > 0.9 and isinstance(metrics["auc"]["standard_deviation"], float)
    assert sum(sum(row.values()) for row in metrics["confusion_matrix"].values()) == 400
    assert read(store, model["CalculatedBaselineConstraints"])["binary_classification_constraints"]["auc"][
        "comparison_operator"] == "LessThanThreshold"
    package = registry.describe(GROUP, 1)
    assert package["DriftCheckBaselines"]["ModelDataQuality"]["Constraints"]["S3Uri"] == (
        checked["BaselineUsedForDriftCheckConstraints"])
    assert any("Deequ's KLL sketches" in line for line in record.step("DataQualityCheck").unenforced)
    registry.set_approval(GROUP, 1, "Approved", "the baseline week")


def test_the_next_run_is_checked_against_the_registered_baseline_and_drift_fails_it(world):
    _, store, registry = world
    baseline = registry.describe(GROUP, 1)["DriftCheckBaselines"]["ModelDataQuality"]
    supplied = {"SuppliedStatistics": f"s3://{BUCKET}/checks/model-quality/statistics.json",
                "SuppliedConstraints": f"s3://{BUCKET}/checks/model-quality/constraints.json"}
    store.put_bytes(store.path(supplied["SuppliedStatistics"]).read_bytes(), f"s3://{BUCKET}/kept/statistics.json")
    store.put_bytes(store.path(supplied["SuppliedConstraints"]).read_bytes(), f"s3://{BUCKET}/kept/constraints.json")
    kept = {key: value.replace("checks/model-quality", "kept") for key, value in supplied.items()}
    record, lines = run(world, DataUrl=f"s3://{BUCKET}/data/week2", **kept)
    assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
    checked = record.step("DataQualityCheck").properties
    assert checked["BaselineUsedForDriftCheckStatistics"] == baseline["Statistics"]["S3Uri"]
    assert read(store, checked["ViolationReport"]) == {"violations": []}
    # the same model, metrics and drift-check baselines (the previous ones): no copy of version 1 is registered
    assert record.step("Register").properties["ModelPackageVersion"] == 1

    drifted, lines = run(world, DataUrl=f"s3://{BUCKET}/data/drifted", **kept)
    assert drifted.status == "Failed"
    reason = drifted.step("DataQualityCheck").failure_reason
    assert reason.startswith("ClientError: Quality check failed: 1 violation(s) of the baseline ")
    assert "_c1: baseline_drift_check: Baseline drift distance" in reason
    [violation] = read(store, f"s3://{BUCKET}/checks/data-quality/constraint_violations.json")["violations"]
    assert (violation["feature_name"], violation["constraint_check_type"]) == ("_c1", "baseline_drift_check")

    worse, lines = run(world, ScoresUrl=f"s3://{BUCKET}/scores/worse", **kept)
    reason = worse.step("ModelQualityCheck").failure_reason
    assert worse.status == "Failed" and "LessThanThreshold" in reason, (reason, lines[-10:])
    violations = read(store, f"s3://{BUCKET}/checks/model-quality/constraint_violations.json")["violations"]
    assert {"auc", "accuracy"} <= {v["metric_name"] for v in violations}


def test_a_check_without_any_baseline_says_how_to_get_one(world):
    definition, store, _ = world
    fresh = json.loads(json.dumps(definition).replace(GROUP, "NeverRegistered"))
    record, _ = run((fresh, store, Registry(store.root / "registry.sqlite")))
    reason = record.step("DataQualityCheck").failure_reason
    assert record.status == "Failed" and reason.startswith("ClientError: SkipCheck is false, but there is no baseline")
    assert "'NeverRegistered'" in reason and "RegisterNewBaseline" in reason


@pytest.mark.parametrize("variable, value, says", [
    ("record_preprocessor_script", "/opt/ml/processing/input/record_preprocessor_script_input/pre.py",
     "Environment.record_preprocessor_script: the local Model Monitor analyzer runs no custom scripts"),
    ("dataset_format", '{"sagemakerCaptureJson": {}}', 'Environment.dataset_format: {"sagemakerCaptureJson": {}}: '
                                                       "the local analyzer reads csv and json (lines) datasets"),
])
def test_settings_the_local_analyzer_cannot_honour_are_refused_before_anything_runs(world, tmp_path, variable, value,
                                                                                   says):
    import subprocess
    import sys
    from pathlib import Path

    changed = json.loads(json.dumps(world[0]))
    changed["Steps"][0]["Arguments"]["Environment"][variable] = value
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    done = subprocess.run([sys.executable, "-m", "pipelines.run", "--definition", str(path), "--store",
                           str(tmp_path / "store")], cwd=Path(__file__).resolve().parents[4], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and not (tmp_path / "store" / "executions").exists()
    assert f"Step 'DataQualityCheck': Arguments.{says}" in done.stderr, done.stderr
