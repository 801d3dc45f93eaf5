"""The lead-scoring pipeline: ``get_pipeline(config)`` and its JSON definition."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipelines import parameters
from pipelines.config import PipelineConfig
from pipelines.errors import ConfigError
from pipelines.sdk import offline_session, quiet_sdk_loggers, sdk_environment
from steps import batch_transform, check_quality, create_model, evaluate, prepare_data, register_model, train
from steps.context import CodeUpload, StepContext


@dataclass(frozen=True)
class BuiltPipeline:
    """A built pipeline: the SDK object, its definition JSON and the files it needs in S3."""

    pipeline: Any
    definition: str
    uploads: tuple[CodeUpload, ...]
    description: str

    @property
    def definition_dict(self) -> dict[str, Any]:
        """The definition parsed into a dict."""
        return json.loads(self.definition)


def description(config: PipelineConfig) -> str:
    """Pipeline description shown in Studio, listing the parameters."""
    return (
        f"Lead scoring: prepare label-first CSV ({'from Redshift' if config.reads_redshift else 'from S3'}), train XGBoost, evaluate, gate on AUC, register "
        f"in {config.model_package_group} and batch-score the test split.\nParameters:\n"
        + parameters.description_table(config)
    )[:3072]


def get_pipeline(config: PipelineConfig, session: Any = None) -> Any:
    """The SageMaker Pipeline object for ``config`` (built offline unless ``session`` is given)."""
    _require_role_and_bucket(config)
    with sdk_environment(config.region):
        return _assemble(config, session)[0]


def build(config: PipelineConfig) -> BuiltPipeline:
    """Build the pipeline offline and render its definition (deterministic for a given config)."""
    _require_role_and_bucket(config)
    with sdk_environment(config.region):
        pipeline, ctx = _assemble(config, None)
        definition = pipeline.definition()
    return BuiltPipeline(pipeline, definition, tuple(ctx.uploads), description(config))


def _require_role_and_bucket(config: PipelineConfig) -> None:
    if not config.role_arn:
        raise ConfigError("role ARN is not set: pass --role-arn (or set PIPELINE_ROLE_ARN)")
    if not config.bucket:
        raise ConfigError("bucket is not set: pass --bucket (or set PIPELINE_BUCKET)")


def _assemble(config: PipelineConfig, session: Any) -> tuple[Any, StepContext]:
    from sagemaker.mlops.workflow import Pipeline, PipelineExperimentConfig
    from sagemaker.core.workflow.execution_variables import ExecutionVariables

    quiet_sdk_loggers()  # the SDK creates more loggers as it is imported

    session = session or offline_session(config.region, config.bucket or "")
    ctx = StepContext(config=config, session=session, params=parameters.declare(config))
    prepare = prepare_data.build(ctx)
    training = train.build(ctx, prepare)
    evaluation, report = evaluate.build(ctx, prepare, training)
    registration = register_model.build(ctx, training, evaluation)
    model = create_model.build(ctx, training)
    transform = batch_transform.build(ctx, model, prepare)
    gate = check_quality.build(ctx, evaluation, report, if_steps=[registration, model, transform])
    pipeline = Pipeline(
        name=config.pipeline_name,
        parameters=list(ctx.params.values()),
        steps=[prepare, training, evaluation, gate],
        sagemaker_session=session,
        pipeline_experiment_config=PipelineExperimentConfig(
            ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID
        ),
    )
    return pipeline, ctx
