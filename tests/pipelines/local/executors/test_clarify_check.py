"""ClarifyCheck steps built by the installed SDK v3 (``ClarifyCheckStep`` with ``DataBiasCheckConfig``,
``ModelBiasCheckConfig`` and ``ModelExplainabilityCheckConfig``) run end to end on the local engine with
Clarify's own bias library (smclarify) and SHAP, in an environment of their own: the baseline ``analysis.json``
in Clarify's shape, registered as the model's bias baseline, later data checked against it, more bias failing
the step with its violation report; model checks asking a real XGBoost model, served on loopback, for its
predictions; SHAP values ranking the feature the model uses first, and a drifted ranking failing the check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.pipelines.local.test_pipelines_written_elsewhere import BUCKET, ROLE, sdk_on_moto
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

REPO = Path(__file__).resolve().parents[4]
GROUP = "LeadsFair"
HEADERS = ["label", "company_size", "region", "visits"]


def build(monkeypatch) -> dict:
    """A data-bias check of the training data on the facet ``company_size`` (small companies as the sensitive
    group), its drift-check baseline registered with the model, as the public Clarify example wires them."""
    with sdk_on_moto(monkeypatch):
        from sagemaker.core.clarify import BiasConfig, DataConfig
        from sagemaker.core.drift_check_baselines import DriftCheckBaselines
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.core.workflow.parameters import ParameterBoolean, ParameterString
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import ModelStep
        from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
        from sagemaker.mlops.workflow.clarify_check_step import ClarifyCheckStep, DataBiasCheckConfig
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.serve.model_builder import ModelBuilder

        session = PipelineSession(default_bucket=BUCKET)
        skip = ParameterBoolean(name="SkipCheck", default_value=False)
        register_new = ParameterBoolean(name="RegisterNewBaseline", default_value=False)
        data_url = ParameterString(name="DataUrl", default_value=f"s3://{BUCKET}/fair/week1/data.csv")
        check = ClarifyCheckStep(
            name="DataBiasCheck", skip_check=skip, register_new_baseline=register_new, model_package_group_name=GROUP,
            check_job_config=CheckJobConfig(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                                            sagemaker_session=session),
            clarify_check_config=DataBiasCheckConfig(
                data_config=DataConfig(s3_data_input_path=data_url, s3_output_path=f"s3://{BUCKET}/checks/data-bias",
                                       label="label", headers=HEADERS, dataset_type="text/csv"),
                data_bias_config=BiasConfig(label_values_or_threshold=[1], facet_name="company_size",
                                            facet_values_or_threshold=["small"], group_name="region")))
        register = ModelStep(name="Register", step_args=ModelBuilder(
            image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            s3_model_data_url=f"s3://{BUCKET}/model/model.tar.gz", role_arn=ROLE, sagemaker_session=session).register(
            model_package_group_name=GROUP, approval_status="PendingManualApproval", content_types=["text/csv"],
            response_types=["text/csv"], inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
            model_metrics=ModelMetrics(bias_pre_training=MetricsSource(
                s3_uri=check.properties.CalculatedBaselineConstraints, content_type="application/json")),
            drift_check_baselines=DriftCheckBaselines(bias_pre_training_constraints=MetricsSource(
                s3_uri=check.properties.BaselineUsedForDriftCheckConstraints, content_type="application/json"))))
        pipeline = Pipeline(name="fair", steps=[check, register], parameters=[skip, register_new, data_url],
                            sagemaker_session=session)
        definition = json.loads(pipeline.definition())
        config_key = "checks/data-bias/analysis_config.json"
        config = session.boto_session.client("s3").get_object(Bucket=BUCKET, Key=config_key)["Body"].read()
    return definition, {config_key: config}


def leads(rows: int, seed: int, small_positive_rate: float) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    size = generator.choice(["small", "medium", "large"], rows, p=[0.4, 0.3, 0.3])
    rate = np.where(size == "small", small_positive_rate, 0.5)
    return pd.DataFrame({"label": (generator.random(rows) < rate).astype(int), "company_size": size,
                         "region": generator.choice(["north", "south"], rows), "visits": generator.integers(0, 30, rows)})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    definition, uploaded = build(monkeypatch)
    monkeypatch.undo()
    store = Store(tmp_path_factory.mktemp("clarify") / "store")
    for key, data in uploaded.items():
        store.put_bytes(data, f"s3://{BUCKET}/{key}")
    for name, frame in (("week1", leads(800, 1, 0.45)), ("biased", leads(800, 3, 0.10))):
        store.put_bytes(frame.to_csv(header=False, index=False).encode(), f"s3://{BUCKET}/fair/{name}/data.csv")
    store.put_bytes(b"not read by a check", f"s3://{BUCKET}/model/model.tar.gz")
    return definition, store, Registry(store.root / "registry.sqlite")


def run(world, **parameters):
    definition, store, registry = world
    lines: list[str] = []
    engine = LocalEngine(store, registry, lambda step, line: lines.append(f"{step}: {line}"), lambda record: None,
                         RunOptions())
    return engine.run(definition, "fair", parameters), lines


def test_a_data_bias_baseline_is_registered_and_later_data_is_checked_against_it(world):
    _, store, registry = world
    record, lines = run(world, SkipCheck=True, RegisterNewBaseline=True)
    assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
    checked = record.step("DataBiasCheck").properties
    assert checked["CalculatedBaselineConstraints"] == f"s3://{BUCKET}/checks/data-bias/analysis.json"
    analysis = json.loads(store.path(checked["CalculatedBaselineConstraints"]).read_text())
    section = analysis["pre_training_bias_metrics"]
    assert (section["label"], section["label_value_or_threshold"]) == ("label", "1")
    [small] = section["facets"]["company_size"]
    metrics = {m["name"]: m["value"] for m in small["metrics"]}
    assert small["value_or_threshold"] == "small" and {"CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL"} <= set(metrics)
    assert 0.1 < metrics["CI"] < 0.3 and abs(metrics["DPL"]) < 0.15  # 40 % small companies, alike labels
    assert registry.describe(GROUP, 1)["DriftCheckBaselines"]["Bias"]["PreTrainingConstraints"]["S3Uri"] == (
        checked["CalculatedBaselineConstraints"])
    assert any("smclarify" in line for line in record.step("DataBiasCheck").unenforced)
    registry.set_approval(GROUP, 1, "Approved", "baseline week")

    same, lines = run(world)  # the baseline's own data, checked against the registered baseline
    assert same.status == "Succeeded", (same.failure_reason, lines[-10:])
    assert json.loads(store.path(same.step("DataBiasCheck").properties["ViolationReport"]).read_text())[
        "violations"] == []

    biased, lines = run(world, DataUrl=f"s3://{BUCKET}/fair/biased/data.csv")
    reason = biased.step("DataBiasCheck").failure_reason
    assert biased.status == "Failed" and reason.startswith("ClientError: Clarify check failed: "), (reason, lines[-10:])
    assert "(facet company_size = small): bias_drift_check" in reason
    report = json.loads(store.path(f"s3://{BUCKET}/checks/data-bias/constraint_violations.json").read_text())
    assert "DPL" in {v["metric_name"] for v in report["violations"]}


def test_a_check_type_clarify_does_not_have_is_refused_before_anything_runs(world, tmp_path):
    definition, _, _ = world
    changed = json.loads(json.dumps(definition))
    changed["Steps"][0]["CheckType"] = "MODEL_FAIRNESS"
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    done = subprocess.run([sys.executable, "-m", "pipelines.run", "--definition", str(path), "--store",
                           str(tmp_path / "store")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not (tmp_path / "store" / "executions").exists()
    assert ("Step 'DataBiasCheck': CheckType: MODEL_FAIRNESS: not a Clarify check type; the local engine runs "
            "DATA_BIAS, MODEL_BIAS, MODEL_EXPLAINABILITY") in done.stderr


def build_model_checks(monkeypatch) -> tuple[dict, dict[str, bytes]]:
    """A Model step, then a model-bias check of its predictions on the facet ``is_small`` and an explainability
    check, as the public Clarify example wires them (``ModelConfig(model_name=step.properties.ModelName)``)."""
    with sdk_on_moto(monkeypatch):
        from sagemaker.core.clarify import BiasConfig, DataConfig, ModelConfig, ModelPredictedLabelConfig, SHAPConfig
        from sagemaker.core.workflow.parameters import ParameterBoolean, ParameterString
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import ModelStep
        from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
        from sagemaker.mlops.workflow.clarify_check_step import (ClarifyCheckStep, ModelBiasCheckConfig,
                                                                 ModelExplainabilityCheckConfig)
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.serve.model_builder import ModelBuilder

        session = PipelineSession(default_bucket=BUCKET)
        skip = ParameterBoolean(name="SkipCheck", default_value=False)
        data_url = ParameterString(name="DataUrl", default_value=f"s3://{BUCKET}/scored/week1/data.csv")
        model = ModelStep(name="CreateModel", step_args=ModelBuilder(
            image_uri="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            s3_model_data_url=f"s3://{BUCKET}/model/model.tar.gz", role_arn=ROLE, sagemaker_session=session,
            instance_type="ml.m5.large").build())
        check = ClarifyCheckStep(
            name="ModelBiasCheck", skip_check=skip, register_new_baseline=False,
            supplied_baseline_constraints=ParameterString(name="Baseline", default_value=""),
            check_job_config=CheckJobConfig(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                                            sagemaker_session=session),
            clarify_check_config=ModelBiasCheckConfig(
                data_config=DataConfig(s3_data_input_path=data_url, s3_output_path=f"s3://{BUCKET}/checks/model-bias",
                                       label="label", headers=["label", "score", "is_small", "visits"],
                                       dataset_type="text/csv"),
                data_bias_config=BiasConfig(label_values_or_threshold=[1], facet_name="is_small",
                                            facet_values_or_threshold=[1]),
                model_config=ModelConfig(model_name=model.properties.ModelName, instance_count=1,
                                         instance_type="ml.m5.large", accept_type="text/csv", content_type="text/csv"),
                model_predicted_label_config=ModelPredictedLabelConfig(probability_threshold=0.5)))
        explained = ClarifyCheckStep(
            name="ExplainabilityCheck", skip_check=skip, register_new_baseline=False,
            supplied_baseline_constraints=ParameterString(name="ExplainedBaseline", default_value=""),
            check_job_config=CheckJobConfig(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge",
                                            sagemaker_session=session),
            clarify_check_config=ModelExplainabilityCheckConfig(
                data_config=DataConfig(s3_data_input_path=data_url, s3_output_path=f"s3://{BUCKET}/checks/shap",
                                       label="label", headers=["label", "score", "is_small", "visits"],
                                       dataset_type="text/csv"),
                model_config=ModelConfig(model_name=model.properties.ModelName, instance_count=1,
                                         instance_type="ml.m5.large", accept_type="text/csv", content_type="text/csv"),
                explainability_config=SHAPConfig(baseline=[[0.0, 0, 10]], num_samples=40, agg_method="mean_abs",
                                                 save_local_shap_values=True)))
        pipeline = Pipeline(name="fair-model", steps=[model, check, explained], sagemaker_session=session,
                            parameters=[skip, data_url, check.supplied_baseline_constraints,
                                        explained.supplied_baseline_constraints])
        definition = json.loads(pipeline.definition())
        client = session.boto_session.client("s3")
        configs = {key: client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                   for key in ("checks/model-bias/analysis_config.json", "checks/shap/analysis_config.json")}
    return definition, configs


def scored(rows: int, seed: int, small_shift: float) -> pd.DataFrame:
    """Rows whose label is ``score > 0`` (the rule the test model learnt), small companies' scores shifted."""
    generator = np.random.default_rng(seed)
    small = generator.integers(0, 2, rows)
    score = generator.normal(0, 1, rows) + small * small_shift
    return pd.DataFrame({"label": (score > 0).astype(int), "score": score.round(3), "is_small": small,
                         "visits": generator.integers(0, 30, rows)})


def test_model_checks_ask_the_served_model_and_fail_on_more_bias_or_a_drifted_ranking(tmp_path, monkeypatch):
    from tests.inference.test_xgboost_csv import model_archive

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    definition, uploaded = build_model_checks(monkeypatch)
    store = Store(tmp_path / "store")
    for key, data in uploaded.items():
        store.put_bytes(data, f"s3://{BUCKET}/{key}")
    store.put_file(model_archive(tmp_path), f"s3://{BUCKET}/model/model.tar.gz")
    for name, frame in (("week1", scored(300, 1, 0.0)), ("biased", scored(300, 2, -1.0))):
        store.put_bytes(frame.to_csv(header=False, index=False).encode(), f"s3://{BUCKET}/scored/{name}/data.csv")
    world = (definition, store, Registry(store.root / "registry.sqlite"))
    record, lines = run(world, SkipCheck=True)
    assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
    assert any(line.startswith("ModelBiasCheck: model pipelines-") and "served for the Clarify job" in line
               for line in lines)
    baseline = record.step("ModelBiasCheck").properties["CalculatedBaselineConstraints"]
    section = json.loads(store.path(baseline).read_text())["post_training_bias_metrics"]
    [small] = section["facets"]["is_small"]
    metrics = {m["name"]: m["value"] for m in small["metrics"]}
    assert {"DPPL", "DI", "DCA", "DCR", "RD", "DAR", "DRR", "AD", "TE", "FT"} <= set(metrics)
    assert abs(metrics["DPPL"]) < 0.15 and metrics["AD"] is not None  # the model's rule treats both groups alike
    kept = f"s3://{BUCKET}/kept/analysis.json"
    store.put_bytes(store.path(baseline).read_bytes(), kept)
    explained = record.step("ExplainabilityCheck").properties["CalculatedBaselineConstraints"]
    shap_values = json.loads(store.path(explained).read_text())["explanations"]["kernel_shap"]["label0"]
    ranking = sorted(shap_values["global_shap_values"], key=lambda n: -shap_values["global_shap_values"][n])
    assert ranking[0] == "score" and shap_values["global_shap_values"]["visits"] < 0.01  # the model's only input
    assert 0 < shap_values["expected_value"] < 1
    assert len(store.path(f"s3://{BUCKET}/checks/shap/explanations_shap/out.csv").read_text().splitlines()) == 301
    drifted = {"explanations": {"kernel_shap": {"label0": {"expected_value": 0.5, "global_shap_values": {
        "score": 0.0, "is_small": 0.3, "visits": 0.2}}}}}
    store.put_bytes(json.dumps(drifted).encode(), f"s3://{BUCKET}/kept/drifted.json")
    biased, lines = run(world, DataUrl=f"s3://{BUCKET}/scored/biased/data.csv", Baseline=kept,
                        ExplainedBaseline=f"s3://{BUCKET}/kept/drifted.json")
    reason = biased.step("ModelBiasCheck").failure_reason or ""
    assert biased.status == "Failed" and "(facet is_small = 1): bias_drift_check" in reason, (reason, lines[-10:])
    reason = biased.step("ExplainabilityCheck").failure_reason or ""
    assert "shap: feature_attribution_drift_check: Feature attribution drift" in reason, (reason, lines[-10:])
