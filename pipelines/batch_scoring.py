"""The batch-scoring pipeline: score new, unlabeled leads with an Approved model version, no endpoint needed.

``get_pipeline(config)`` and ``build(config)`` as for the lead-scoring pipeline; steps: CreateScoringModel
(a Model from the model package in ``ModelPackageArn``) and ScoreLeads (a batch transform writing each
lead's ids and score under the execution id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines import parameters, sample_data
from pipelines.config import PipelineConfig
from pipelines.lead_scoring import BuiltPipeline, pipeline_object, render
from pipelines.sdk import mlflow_config, offline_session, quiet_sdk_loggers
from steps import score_leads, scoring_model
from steps.context import StepContext

NAME = "batch-scoring"


def pipeline_name(config: PipelineConfig) -> str:
    """The SageMaker pipeline name: the configured one with a '-batch-scoring' suffix."""
    return f"{config.pipeline_name}-{NAME}"


def description(config: PipelineConfig) -> str:
    """Pipeline description shown in Studio, listing the parameters."""
    return (f"Batch scoring of new leads with an Approved version of {config.model_package_group}; output: the "
            f"{config.scoring_id_columns} lead id column(s) and the score.\nParameters:\n"
            + parameters.description_table(parameters.SCORING_SPECS))[:3072]


def write_sample(config: PipelineConfig, directory: Path, rows: int) -> list[Path]:
    """Unlabeled sample leads with ids, for a local run given no input."""
    return sample_data.write_unlabeled(directory, rows, config.scoring_id_columns)


def get_pipeline(config: PipelineConfig, session: Any = None) -> Any:
    """The SageMaker Pipeline object for ``config`` (built offline unless ``session`` is given)."""
    return pipeline_object(config, _assemble, session)


def build(config: PipelineConfig) -> BuiltPipeline:
    """Build the pipeline offline and render its definition."""
    return render(config, _assemble, description(config), pipeline_name(config),
                  parameters.scoring_defaults(config)["InputDataUrl"], write_sample)


def _assemble(config: PipelineConfig, session: Any) -> tuple[Any, StepContext]:
    from sagemaker.mlops.workflow import Pipeline

    quiet_sdk_loggers()
    session = session or offline_session(config.region, config.bucket or "")
    ctx = StepContext(config=config, session=session, params=parameters.declare_scoring(config))
    model = scoring_model.build(ctx)
    transform = score_leads.build(ctx, model)
    pipeline = Pipeline(name=pipeline_name(config), parameters=list(ctx.params.values()), steps=[model, transform],
                        sagemaker_session=session, mlflow_config=mlflow_config(config, pipeline_name(config)))
    return pipeline, ctx
