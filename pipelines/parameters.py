"""The pipeline's parameters: names, types, defaults and what each one is for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.local.registry import APPROVAL_STATUSES


@dataclass(frozen=True)
class ParameterSpec:
    """One pipeline parameter as declared in the definition, and what a value must satisfy where it is used."""

    name: str
    type: str  # String | Integer | Float | Boolean
    description: str
    minimum: float | None = None
    maximum: float | None = None
    hyperparameter: str | None = None  # the built-in XGBoost hyperparameter it feeds (checked by its rules)
    instance_types: str | None = None  # the botocore enum shape of the instance type it names
    enum: tuple[str, ...] = ()


SPECS = (
    ParameterSpec("InputDataUrl", "String", "S3 prefix of the raw CSV (label first, as Redshift UNLOAD writes it)"),
    ParameterSpec("ProcessingInstanceType", "String", "Instance type of the PrepareData and Evaluate jobs",
                  instance_types="ProcessingInstanceType"),
    ParameterSpec("TrainingInstanceType", "String", "Instance type of the Train job",
                  instance_types="TrainingInstanceType"),
    ParameterSpec("TrainingInstanceCount", "Integer", "Training instances; >1 trains distributed on ShardedByS3Key",
                  minimum=1),
    ParameterSpec("TrainShardCount", "Integer", "How many files the train split is written as (>= instance count)",
                  minimum=1),
    ParameterSpec("NumRound", "Integer", "XGBoost num_round (boosting rounds)", hyperparameter="num_round"),
    ParameterSpec("MaxDepth", "Integer", "XGBoost max_depth", hyperparameter="max_depth"),
    ParameterSpec("Eta", "Float", "XGBoost eta (learning rate)", hyperparameter="eta"),
    ParameterSpec("EarlyStoppingRounds", "Integer", "Stop after this many rounds without validation AUC gain",
                  hyperparameter="early_stopping_rounds"),
    ParameterSpec("SubSample", "Float", "XGBoost subsample (row fraction per tree)", hyperparameter="subsample"),
    ParameterSpec("AucThreshold", "Float", "Minimum test AUC for the model to be registered", minimum=0, maximum=1),
    ParameterSpec("ModelApprovalStatus", "String", "Approval status of the registered model version",
                  enum=APPROVAL_STATUSES),
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
    ParameterSpec("TransformInstanceType", "String", "Instance type of the scoring transform job",
                  instance_types="TransformInstanceType"),
    ParameterSpec("TransformInstanceCount", "Integer", "Instances of the scoring transform job", minimum=1),
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
        if spec.enum:
            kwargs["enum_values"] = list(spec.enum)
        declared[spec.name] = classes[spec.type](**kwargs)
    return declared


def description_table(declared_specs: tuple[ParameterSpec, ...]) -> str:
    """Plain-text list of parameters, for the pipeline description shown in Studio."""
    return "\n".join(f"{s.name} ({s.type}): {s.description}" for s in declared_specs)


def declarations(declared_specs: tuple[ParameterSpec, ...], values: dict[str, Any]) -> list[dict[str, Any]]:
    """The specs as a definition's ``Parameters`` list, without building it (for checking --parameter early)."""
    return [{"Name": s.name, "Type": s.type, **({"DefaultValue": values[s.name]} if values[s.name] is not None else {}),
             **({"EnumValues": list(s.enum)} if s.enum else {})} for s in declared_specs]


def problems(declared_specs: tuple[ParameterSpec, ...], values: dict[str, Any]) -> list[str]:
    """What is wrong with typed parameter ``values`` where the pipeline uses them (ranges, XGBoost's rules,
    instance types, S3 URIs)."""
    from pipelines.errors import DefinitionError
    from pipelines.s3uri import check_uris

    found = []
    for spec in declared_specs:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.minimum is not None and value < spec.minimum:
            found.append(f"parameter {spec.name} must be >= {spec.minimum:g} (got {value})")
        if spec.maximum is not None and value > spec.maximum:
            found.append(f"parameter {spec.name} must be <= {spec.maximum:g} (got {value})")
        if spec.hyperparameter:
            found += _hyperparameter_problem(spec, value)
        if spec.instance_types:
            found += _instance_type_problem(spec, value)
        if spec.type == "String" and str(value).startswith("s3://"):
            try:
                check_uris({spec.name: value}, path="Parameters")
            except DefinitionError as exc:
                found.append(str(exc))
    return found


def _hyperparameter_problem(spec: ParameterSpec, value: Any) -> list[str]:
    from pipelines.local.xgboost_algorithm import AlgorithmError, parse_hyperparameters

    raw = {"num_round": "1", spec.hyperparameter: str(value)}
    try:
        parse_hyperparameters(raw)
    except AlgorithmError as exc:
        return [f"parameter {spec.name}: {exc}"]
    return []


def _instance_type_problem(spec: ParameterSpec, value: Any) -> list[str]:
    from pipelines.validation.references import service_model

    allowed = service_model().shape_for(spec.instance_types).enum
    return [] if value in allowed else [f"parameter {spec.name}: {value!r} is not a SageMaker {spec.instance_types}"]


def for_pipeline(pipeline: str, config: PipelineConfig) -> tuple[tuple[ParameterSpec, ...], dict[str, Any]]:
    """(specs, defaults) of the named pipeline ("lead-scoring" or "batch-scoring")."""
    if pipeline == "batch-scoring":
        return SCORING_SPECS, scoring_defaults(config)
    return specs(config), defaults(config)
