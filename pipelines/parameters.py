"""The pipeline's parameters: names, types, defaults and what each one is for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.config import PipelineConfig


@dataclass(frozen=True)
class ParameterSpec:
    """One pipeline parameter as declared in the definition."""

    name: str
    type: str  # String | Integer | Float | Boolean
    description: str


SPECS = (
    ParameterSpec("InputDataUrl", "String", "S3 prefix of the raw CSV (label first, as Redshift UNLOAD writes it)"),
    ParameterSpec("ProcessingInstanceType", "String", "Instance type of the PrepareData and Evaluate jobs"),
    ParameterSpec("TrainingInstanceType", "String", "Instance type of the Train job"),
    ParameterSpec("TrainingInstanceCount", "Integer", "Training instances; >1 trains distributed on ShardedByS3Key"),
    ParameterSpec("TrainShardCount", "Integer", "How many files the train split is written as (>= instance count)"),
    ParameterSpec("NumRound", "Integer", "XGBoost num_round (boosting rounds)"),
    ParameterSpec("MaxDepth", "Integer", "XGBoost max_depth"),
    ParameterSpec("Eta", "Float", "XGBoost eta (learning rate)"),
    ParameterSpec("EarlyStoppingRounds", "Integer", "Stop after this many rounds without validation AUC gain"),
    ParameterSpec("SubSample", "Float", "XGBoost subsample (row fraction per tree)"),
    ParameterSpec("AucThreshold", "Float", "Minimum test AUC for the model to be registered"),
    ParameterSpec("ModelApprovalStatus", "String", "Approval status of the registered model version"),
)


def specs(config: PipelineConfig) -> tuple[ParameterSpec, ...]:
    """The parameters of this configuration (no InputDataUrl when the input comes from Redshift)."""
    return tuple(s for s in SPECS if not (config.reads_redshift and s.name == "InputDataUrl"))


def defaults(config: PipelineConfig) -> dict[str, Any]:
    """Default value of every parameter for this configuration."""
    values = {
        "InputDataUrl": None if config.reads_redshift else config.input_data_url or f"{config.s3_prefix()}/input/raw",
        "ProcessingInstanceType": config.processing_instance_type,
        "TrainingInstanceType": config.training_instance_type,
        "TrainingInstanceCount": 1,
        "TrainShardCount": 4,
        "NumRound": 300,
        "MaxDepth": 5,
        "Eta": 0.1,
        "EarlyStoppingRounds": 20,
        "SubSample": 0.8,
        "AucThreshold": 0.75,
        "ModelApprovalStatus": "PendingManualApproval",
    }
    return {spec.name: values[spec.name] for spec in specs(config)}


SCORING_SPECS = (
    ParameterSpec("InputDataUrl", "String", "S3 prefix of the leads to score: headerless CSV, the lead id column(s) "
                  "first, then the training features, no label"),
    ParameterSpec("ModelPackageArn", "String", "Approved model package version to score with (run-pipeline fills in "
                  "the latest Approved version of the group when it is not given)"),
    ParameterSpec("TransformInstanceType", "String", "Instance type of the scoring transform job"),
    ParameterSpec("TransformInstanceCount", "Integer", "Instances of the scoring transform job"),
)


def scoring_defaults(config: PipelineConfig) -> dict[str, Any]:
    """Default value of every parameter of the batch-scoring pipeline."""
    return {"InputDataUrl": f"{config.s3_prefix()}/scoring/input", "ModelPackageArn": None,
            "TransformInstanceType": config.transform_instance_type, "TransformInstanceCount": 1}


def declare(config: PipelineConfig) -> dict[str, Any]:
    """SDK parameter objects of the lead-scoring pipeline, keyed by name, with this configuration's defaults."""
    return _declare(specs(config), defaults(config))


def declare_scoring(config: PipelineConfig) -> dict[str, Any]:
    """SDK parameter objects of the batch-scoring pipeline."""
    return _declare(SCORING_SPECS, scoring_defaults(config))


def _declare(declared_specs: tuple[ParameterSpec, ...], values: dict[str, Any]) -> dict[str, Any]:
    from sagemaker.core.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )

    classes = {"String": ParameterString, "Integer": ParameterInteger, "Float": ParameterFloat, "Boolean": ParameterBoolean}
    declared: dict[str, Any] = {}
    for spec in declared_specs:
        kwargs: dict[str, Any] = {"name": spec.name, "default_value": values[spec.name]}
        if spec.name == "ModelApprovalStatus":
            kwargs["enum_values"] = ["PendingManualApproval", "Approved", "Rejected"]
        declared[spec.name] = classes[spec.type](**kwargs)
    return declared


def description_table(declared_specs: tuple[ParameterSpec, ...]) -> str:
    """Plain-text list of parameters, for the pipeline description shown in Studio."""
    return "\n".join(f"{s.name} ({s.type}): {s.description}" for s in declared_specs)
