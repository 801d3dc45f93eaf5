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


def ignored_settings(pipeline: str, config: PipelineConfig, given: set[str]) -> list[str]:
    """A note for each setting in ``given`` (the flags a user passed) that this run's other settings make do
    nothing, so that nobody waits on a flag that has no effect."""
    custom, redshift = config.training_mode == "custom", config.data_source == "redshift"
    rules = [
        ("calibration", not custom, "it applies to --training-mode custom with our image"),
        ("monotone_constraints", not custom, "it applies to --training-mode custom with our image"),
        ("xgboost_version", custom, "it picks the built-in XGBoost image, and --training-mode custom uses yours"),
        ("max_bad_rows", config.bad_rows == "fail", "it caps skipped rows, and --bad-rows is fail"),
        ("max_bad_percent", config.bad_rows == "fail", "it caps skipped rows, and --bad-rows is fail"),
        ("input_data_url", redshift, "PrepareData reads the Redshift query (--data-source redshift)"),
        ("scoring_id_columns", pipeline != "batch-scoring", "it applies to --pipeline batch-scoring"),
        *((name, not redshift, "it applies to --data-source redshift")
          for name in ("redshift_cluster_id", "redshift_database", "redshift_db_user", "redshift_query",
                       "redshift_cluster_role_arn", "redshift_output_s3_uri")),
    ]
    return [f"--{name.replace('_', '-')} does nothing in this run: {why}" for name, idle, why in rules
            if idle and name in given]


def specs_of(pipeline_name: str, config: PipelineConfig) -> tuple[Any, ...]:
    """The parameter specs of ours that a pipeline of this name declares (none for a pipeline written elsewhere)."""
    from pipelines import batch_scoring, parameters

    names = {config.pipeline_name: "lead-scoring", batch_scoring.pipeline_name(config): "batch-scoring"}
    return parameters.for_pipeline(names[pipeline_name], local_config(config))[0] if pipeline_name in names else ()


def checked_overrides(definition: dict[str, Any], pipeline_name: str, config: PipelineConfig,
                      given: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(typed overrides, problem by parameter name) for values typed by a person, checked as ``--parameter``
    values are: no credential, the definition's types and enums, then, for our pipelines, ranges and XGBoost's
    rules."""
    from pipelines import parameters
    from pipelines.credentials import refuse_credentials
    from pipelines.errors import CredentialInConfigError, ParameterError
    from pipelines.overrides import resolve

    overrides, problems = {}, {}
    specs = {spec.name: spec for spec in specs_of(pipeline_name, config)}
    for name, raw in given.items():
        try:
            refuse_credentials({name: raw}, "parameter", check_names=False)
            resolved = resolve(definition, [f"{name}={raw}"])
            if list(resolved) != [name]:  # ' Rows' or 'Note=x' would be read as another name in the Name=Value form
                raise ParameterError(f"unknown parameter {name!r}; a parameter's name has no '=' and no space around it")
            value = resolved[name]
        except (CredentialInConfigError, ParameterError) as exc:
            problems[name] = str(exc)
            continue
        found = parameters.problems((specs[name],), {name: value}) if name in specs else []
        if found:
            problems[name] = "; ".join(found)
        else:
            overrides[name] = value
    return overrides, problems
