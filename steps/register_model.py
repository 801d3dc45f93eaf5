"""RegisterModel: a new version in the model package group, with its metrics and provenance."""

from __future__ import annotations

from typing import Any

from steps import evaluate
from steps.context import StepContext

NAME = "RegisterModel"


def build(ctx: StepContext, train: Any, evaluate_step: Any) -> Any:
    """The RegisterModel ModelStep (ModelBuilder.register) for the trained model."""
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.mlops.workflow import ModelStep

    builder = ctx.model_builder(train, ctx.config.inference_instance_type)
    metrics = ModelMetrics(
        model_statistics=MetricsSource(s3_uri=evaluate.report_uri(evaluate_step), content_type="application/json")
    )
    step_args = builder.register(
        model_package_group_name=ctx.config.model_package_group,
        approval_status=ctx.params["ModelApprovalStatus"],
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=[ctx.config.inference_instance_type],
        transform_instances=[ctx.config.transform_instance_type],
        model_metrics=metrics,
        description=f"Lead-scoring XGBoost model trained by pipeline {ctx.config.pipeline_name}",
        customer_metadata_properties={
            "PipelineName": ctx.config.pipeline_name,
            "PipelineExecutionId": ExecutionVariables.PIPELINE_EXECUTION_ID,
            "SourceRevision": ctx.config.source_revision,
            "TrainingMode": ctx.config.training_mode,
        },
    )
    return ModelStep(
        name=NAME,
        display_name="Register model",
        description="Register the model version in the Model Registry with its evaluation metrics, "
        "awaiting approval (ModelApprovalStatus).",
        step_args=step_args,
        retry_policies=ctx.retry_policies()[:1],
    )
