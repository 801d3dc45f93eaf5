"""The lead-scoring pipeline: ``get_pipeline(config)`` and its JSON definition."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipelines import parameters, sample_data
from pipelines.config import PipelineConfig
from pipelines.errors import ConfigError
from pipelines.sdk import mlflow_config, offline_session, quiet_sdk_loggers, sdk_environment
from steps import batch_transform, check_quality, create_model, evaluate, prepare_data, register_model, train
from steps.context import CodeUpload, StepContext


@dataclass(frozen=True)
class BuiltPipeline:
    """A built pipeline: the SDK object, its definition JSON, the files it needs in S3, its name, and (for a local
    run given no input) where sample input goes and how to write it."""

    pipeline: Any
    definition: str
    uploads: tuple[CodeUpload, ...]
    description: str
    name: str = ""
    sample_input_url: str | None = None
    write_sample: Callable[[PipelineConfig, Path, int], list[Path]] | None = None

    @property
    def definition_dict(self) -> dict[str, Any]:
        """The definition parsed into a dict."""
        return json.loads(self.definition)


def description(config: PipelineConfig) -> str:
    """Pipeline description shown in Studio, listing the parameters."""
    return (
        f"Lead scoring: prepare label-first CSV ({'from Redshift' if config.reads_redshift else 'from S3'}), "
        + ("train with your image, batch-score the test split through its serving, evaluate the scores, gate on "
           f"AUC and register in {config.model_package_group}" if config.training_mode == "custom" else
           f"train XGBoost, evaluate, gate on AUC, register in {config.model_package_group} and batch-score the "
           "test split")
        + ".\nParameters:\n"
        + parameters.description_table(parameters.specs(config))
    )[:3072]


def pipeline_name(config: PipelineConfig) -> str:
    """The SageMaker pipeline name."""
    return config.pipeline_name


def write_sample(config: PipelineConfig, directory: Path, rows: int) -> list[Path]:
    """Labelled sample leads, for a local run given no input."""
    return sample_data.write(directory, rows)


def get_pipeline(config: PipelineConfig, session: Any = None) -> Any:
    """The SageMaker Pipeline object for ``config`` (built offline unless ``session`` is given)."""
    return pipeline_object(config, _assemble, session)


def build(config: PipelineConfig) -> BuiltPipeline:
    """Build the pipeline offline and render its definition (deterministic for a given config)."""
    sample_url = None if config.reads_redshift or config.input_data_url else parameters.defaults(config)["InputDataUrl"]
    return render(config, _assemble, description(config), pipeline_name(config), sample_url, write_sample)


Assemble = Callable[[PipelineConfig, Any], "tuple[Any, StepContext]"]


def pipeline_object(config: PipelineConfig, assemble: Assemble, session: Any = None) -> Any:
    """The SDK Pipeline ``assemble`` makes for ``config`` (offline unless ``session`` is given)."""
    require_role_and_bucket(config)
    with sdk_environment(config.region):
        return assemble(config, session)[0]


def render(config: PipelineConfig, assemble: Assemble, text: str, name: str, sample_url: str | None,
           sample: Callable[[PipelineConfig, Path, int], list[Path]]) -> BuiltPipeline:
    """Assemble offline and render the definition JSON, with what a target needs to upload and run it."""
    require_role_and_bucket(config)
    with sdk_environment(config.region):
        pipeline, ctx = assemble(config, None)
        definition = pipeline.definition()
    return BuiltPipeline(pipeline, definition, tuple(ctx.uploads), text, name, sample_url, sample)


def require_role_and_bucket(config: PipelineConfig) -> None:
    """ConfigError unless the role and the bucket are set."""
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
    model = create_model.build(ctx, training)
    transform = batch_transform.build(ctx, model, prepare)
    if config.training_mode == "custom":
        # a custom image's model is scored by its own serving: the batch transform of the test split comes
        # before Evaluate, which reads its scores, and the gate then only decides the registration
        evaluation, report = evaluate.build(ctx, prepare, training, transform)
        registration = register_model.build(ctx, training, evaluation)
        steps = [prepare, training, model, transform, evaluation,
                 check_quality.build(ctx, evaluation, report, if_steps=[registration])]
    else:
        evaluation, report = evaluate.build(ctx, prepare, training)
        registration = register_model.build(ctx, training, evaluation)
        steps = [prepare, training, evaluation,
                 check_quality.build(ctx, evaluation, report, if_steps=[registration, model, transform])]
    pipeline = Pipeline(
        name=config.pipeline_name,
        parameters=list(ctx.params.values()),
        steps=steps,
        sagemaker_session=session,
        pipeline_experiment_config=PipelineExperimentConfig(
            ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID
        ),
        mlflow_config=mlflow_config(config, config.pipeline_name),
    )
    return pipeline, ctx
