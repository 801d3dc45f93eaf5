"""A pipeline in the shape of the public Model Monitor + Clarify example, built with the real SDK v3 and run
unchanged on the local engine: a Model step, a Transform whose input filter, join and output filter give
'label,score' lines, a model-quality check of those lines and a model-bias check of the model, and a
registration carrying both checks' baselines as ModelMetrics and DriftCheckBaselines, which ``model-registry
describe`` and the studio's version page show the approver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config import PipelineConfig, local_config
from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.inference.test_xgboost_csv import model_archive
from tests.pipelines.local.test_pipelines_written_elsewhere import BUCKET, ROLE, sdk_on_moto
from tests.pipelines.studio.conftest import Studio
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
GROUP = "LeadsGoverned"
TEST_DATA = f"s3://{BUCKET}/governed/test/test.csv"


def build(monkeypatch) -> tuple[dict, dict[str, bytes]]:
    with sdk_on_moto(monkeypatch) as s3:
        from sagemaker.core.clarify import BiasConfig, DataConfig, ModelConfig, ModelPredictedLabelConfig
        from sagemaker.core.drift_check_baselines import DriftCheckBaselines
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.core.model_monitor.dataset_format import DatasetFormat
        from sagemaker.core.transformer import Transformer
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import ModelStep, TransformStep
        from sagemaker.mlops.workflow.check_job_config import CheckJobConfig
        from sagemaker.mlops.workflow.clarify_check_step import ClarifyCheckStep, ModelBiasCheckConfig
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.mlops.workflow.quality_check_step import ModelQualityCheckConfig, QualityCheckStep
        from sagemaker.serve.model_builder import ModelBuilder

        session = PipelineSession(default_bucket=BUCKET)
        job = CheckJobConfig(role=ROLE, instance_count=1, instance_type="ml.m5.xlarge", sagemaker_session=session)
        builder = ModelBuilder(image_uri=XGBOOST, s3_model_data_url=f"s3://{BUCKET}/governed/model.tar.gz",
                               role_arn=ROLE, sagemaker_session=session, instance_type="ml.m5.large")
        model = ModelStep(name="CreateModel", step_args=builder.build())
        transform = TransformStep(name="Score", step_args=Transformer(
            model_name=model.properties.ModelName, instance_count=1, instance_type="ml.m5.large",
            strategy="MultiRecord", assemble_with="Line", accept="text/csv",
            output_path=f"s3://{BUCKET}/governed/scores", sagemaker_session=session).transform(
            data=TEST_DATA, content_type="text/csv", split_type="Line", input_filter="$[1:]", join_source="Input",
            output_filter="$[0,-1]"))
        quality = QualityCheckStep(
            name="ModelQualityCheck", check_job_config=job, skip_check=True, register_new_baseline=True,
            model_package_group_name=GROUP, quality_check_config=ModelQualityCheckConfig(
                baseline_dataset=transform.properties.TransformOutput.S3OutputPath,
                dataset_format=DatasetFormat.csv(header=False), output_s3_uri=f"s3://{BUCKET}/governed/quality",
                problem_type="BinaryClassification", probability_attribute="_c1", ground_truth_attribute="_c0",
                probability_threshold_attribute=0.5))
        bias = ClarifyCheckStep(
            name="ModelBiasCheck", check_job_config=job, skip_check=True, register_new_baseline=True,
            model_package_group_name=GROUP, clarify_check_config=ModelBiasCheckConfig(
                data_config=DataConfig(s3_data_input_path=TEST_DATA, s3_output_path=f"s3://{BUCKET}/governed/bias",
                                       label="label", headers=["label", "score", "is_small", "visits"],
                                       dataset_type="text/csv"),
                data_bias_config=BiasConfig(label_values_or_threshold=[1], facet_name="is_small",
                                            facet_values_or_threshold=[1]),
                model_config=ModelConfig(model_name=model.properties.ModelName, instance_count=1,
                                         instance_type="ml.m5.large", accept_type="text/csv", content_type="text/csv"),
                model_predicted_label_config=ModelPredictedLabelConfig(probability_threshold=0.5)))
        register = ModelStep(name="Register", step_args=builder.register(
            model_package_group_name=GROUP, approval_status="PendingManualApproval", content_types=["text/csv"],
            response_types=["text/csv"], inference_instances=["ml.m5.large"], transform_instances=["ml.m5.large"],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(s3_uri=quality.properties.CalculatedBaselineStatistics,
                                               content_type="application/json"),
                bias_post_training=MetricsSource(s3_uri=bias.properties.CalculatedBaselineConstraints,
                                                 content_type="application/json")),
            drift_check_baselines=DriftCheckBaselines(
                model_statistics=MetricsSource(s3_uri=quality.properties.BaselineUsedForDriftCheckStatistics,
                                               content_type="application/json"),
                model_constraints=MetricsSource(s3_uri=quality.properties.BaselineUsedForDriftCheckConstraints,
                                                content_type="application/json"),
                bias_post_training_constraints=MetricsSource(
                    s3_uri=bias.properties.BaselineUsedForDriftCheckConstraints, content_type="application/json"))))
        definition = json.loads(Pipeline(name="governed", steps=[model, transform, quality, bias, register],
                                          sagemaker_session=session).definition())
        uploaded = {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                    for item in page.get("Contents", [])}
    return definition, uploaded


def test_the_public_examples_governed_pipeline_runs_and_registers_its_baselines(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    definition, uploaded = build(monkeypatch)
    store = Store(tmp_path / "store")
    for key, data in uploaded.items():
        store.put_bytes(data, f"s3://{BUCKET}/{key}")
    store.put_file(model_archive(tmp_path), f"s3://{BUCKET}/governed/model.tar.gz")
    generator = np.random.default_rng(7)
    score = generator.normal(0, 1, 400)
    rows = pd.DataFrame({"label": (score + generator.normal(0, 0.3, 400) > 0).astype(int), "score": score.round(3),
                         "is_small": generator.integers(0, 2, 400), "visits": generator.integers(0, 30, 400)})
    store.put_bytes(rows.to_csv(header=False, index=False).encode(), TEST_DATA)
    registry = Registry(store.root / "registry.sqlite")
    lines: list[str] = []
    record = LocalEngine(store, registry, lambda step, line: lines.append(f"{step}: {line}"), lambda r: None,
                         RunOptions()).run(definition, "governed", {})
    assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
    quality = record.step("ModelQualityCheck").properties
    metrics = json.loads(store.path(quality["CalculatedBaselineStatistics"]).read_text())
    assert metrics["dataset"]["item_count"] == 400  # one 'label,score' line per input row, from the join and filters
    assert metrics["binary_classification_metrics"]["auc"]["value"] > 0.85  # labels from the score, with noise
    package = registry.describe(GROUP, 1)
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == quality["CalculatedBaselineStatistics"]
    assert package["DriftCheckBaselines"]["Bias"]["PostTrainingConstraints"]["S3Uri"] == (
        record.step("ModelBiasCheck").properties["BaselineUsedForDriftCheckConstraints"])
    assert package["DriftCheckBaselines"]["ModelQuality"]["Constraints"]["S3Uri"] == (
        quality["BaselineUsedForDriftCheckConstraints"])

    # the approver sees what the checks found, in the CLI and on the studio's version page
    described = subprocess.run([sys.executable, "-m", "pipelines.registry", "describe", GROUP, "1", "--store",
                                str(store.root)], cwd=Path(__file__).resolve().parents[3], capture_output=True,
                               text=True, timeout=120)
    assert described.returncode == 0, described.stderr
    def line(title: str) -> str:
        return next(text for text in described.stdout.splitlines() if text.strip().startswith(f"{title}: "))

    assert "is_small = 1: " in line("Model bias") and " DPPL " in line("Model bias")
    assert "thresholds: " in line("Drift baseline: model quality")
    assert "LessThanThreshold" in line("Drift baseline: model quality")
    studio = Studio(store.root, local_config(PipelineConfig(mlflow_tracking_uri="off")))
    try:
        status, page = studio.get(f"/registry/{GROUP}/1")
    finally:
        studio.stop()
    assert status == 200 and '<table class="grid compact" id="checks">' in page
    # its ModelQuality statistics are Model Monitor's, not our evaluation report: the AUC, no charts, no error
    assert "Test AUC <strong>0.8" in page and "roc.png" not in page and "expected shape" not in page
    assert "Drift baseline: model bias" in page and "is_small = 1: " in page
