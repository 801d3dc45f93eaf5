"""Our pipelines by name (``--pipeline``), and what is checked of a run of one before its definition exists."""

from __future__ import annotations

from typing import Any

from pipelines.config import PipelineConfig, local_config

PIPELINES = ("lead-scoring", "batch-scoring")


def pipeline_module(name: str) -> Any:
    """The module of the named pipeline (its ``build``, ``get_pipeline``, ``write_sample``)."""
    if name == "batch-scoring":
        from pipelines import batch_scoring

        return batch_scoring
    from pipelines import lead_scoring

    return lead_scoring


def security_rules(config: PipelineConfig, definition_file: bool, security_lint: bool) -> Any:
    """Our pipelines meet the security rules of their config; a definition file only with ``security_lint``."""
    from pipelines.validation import SecurityRules

    if not definition_file:
        return SecurityRules.for_config(config)
    return SecurityRules() if security_lint else None


def check_parameters(pipeline: str, config: PipelineConfig, assignments: list[str]) -> None:
    """Names, types and ranges of --parameter values for our pipelines, before the definition is built (seconds)."""
    from pipelines import parameters
    from pipelines.errors import ParameterError
    from pipelines.overrides import resolve

    specs, defaults = parameters.for_pipeline(pipeline, local_config(config))  # the defaults only name the parameters
    values = resolve({"Parameters": parameters.declarations(specs, defaults)}, assignments)
    found = parameters.problems(specs, values)
    if found:
        raise ParameterError("; ".join(found))


def latest_approved_arn(registry: Any, group: str) -> str:
    """The ARN of the newest Approved version of ``group`` in ``registry``; says which it chose."""
    from pipelines.model_registry import latest_approved

    package = latest_approved(registry, group)
    print(f"ModelPackageArn not given: scoring with {group} version {package['ModelPackageVersion']}, the latest "
          f"Approved ({package['ModelPackageArn']})")
    return package["ModelPackageArn"]
