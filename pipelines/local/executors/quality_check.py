"""QualityCheck: Model Monitor's data-quality and model-quality checks (the SDK's ``QualityCheckStep``), run as
the processing job the step's Arguments describe, with the engine's own analyzer
(``pipelines.local.monitoring.analyzer``) in the Model Monitor container's place.

As on SageMaker: the step always calculates a new baseline from its input (``CalculatedBaseline*``). Unless
``SkipCheck``, it checks the input against the previous baseline (``SuppliedBaseline*`` if given, else the
``DriftCheckBaselines`` of the latest Approved version in ``ModelPackageGroupName``), writes
``constraint_violations.json`` beside the new baseline, and fails on a violation unless ``FailOnViolation`` is
false. ``BaselineUsedForDriftCheck*`` is the new baseline with ``RegisterNewBaseline``, else the previous one.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.local import job_runtime, safe_files
from pipelines.local.executors import processing
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.local.expressions import resolve
from pipelines.s3uri import join_uri

ANALYZER = "pipelines.local.monitoring.analyzer"
BASELINE_DIR = "/opt/ml/processing/baseline"
OUTPUT_NAME = "quality_check_output"
# CheckType -> the section of ModelMetrics / DriftCheckBaselines holding its baseline
SECTIONS = {"DATA_QUALITY": "ModelDataQuality", "MODEL_QUALITY": "ModelQuality"}
NOT_REPRODUCED = ("the Model Monitor analyzer runs as the local engine's own program (pandas and scikit-learn); "
                  "distributions are exact 10-bucket counts where the analyzer keeps Deequ's KLL sketches (no "
                  "sketch is written), and a baseline's per-feature monitoringConfigOverrides are not applied")


def execute(run: StepRun) -> StepOutcome:
    """Calculate the baseline, check against the previous one unless skipped; the step's four baseline
    properties."""
    check_type = _resolved(run, "CheckType")
    if check_type not in SECTIONS:
        raise StepFailed(f"ClientError: CheckType {check_type!r}: a QualityCheck step's is DATA_QUALITY or "
                         "MODEL_QUALITY")
    skip, register_new = _flag(run, "SkipCheck", False), _flag(run, "RegisterNewBaseline", False)
    fail_on_violation = _flag(run, "FailOnViolation", True)
    previous = _previous_baseline(run, SECTIONS[check_type])
    if not skip and previous is None:
        raise StepFailed(f"ClientError: SkipCheck is false, but there is no baseline to check against: give "
                         f"SuppliedBaselineStatistics and SuppliedBaselineConstraints, or approve a version of the "
                         f"model package group {_resolved(run, 'ModelPackageGroupName')!r} registered with "
                         f"DriftCheckBaselines.{SECTIONS[check_type]} (a pipeline's first run sets SkipCheck and "
                         "RegisterNewBaseline)")
    output_uri = _output_uri(run.arguments)
    run.report(f"CheckType = {check_type}: {NOT_REPRODUCED}")
    arguments = run.arguments if skip else _with_baseline(run.arguments, previous)
    job = processing.run_job(run, arguments, job_runtime.engine_module_command(ANALYZER))
    calculated = (join_uri(output_uri, "statistics.json"), join_uri(output_uri, "constraints.json"))
    used = calculated if register_new or previous is None else previous
    properties = {"CalculatedBaselineStatistics": calculated[0], "CalculatedBaselineConstraints": calculated[1],
                  "BaselineUsedForDriftCheckStatistics": used[0], "BaselineUsedForDriftCheckConstraints": used[1],
                  "CheckType": check_type, "CheckJobArn": job.properties["ProcessingJobArn"],
                  "SkipCheck": skip, "RegisterNewBaseline": register_new}
    if skip:
        run.log(f"baseline calculated at {output_uri}; the check is skipped (SkipCheck)")
        return StepOutcome(properties=properties)
    report = join_uri(output_uri, "constraint_violations.json")
    violations = _violations(run, report)
    properties["ViolationReport"] = report
    run.log(f"checked against the baseline {previous[1]}: {len(violations)} violation(s)")
    if violations and fail_on_violation:
        first = violations[0]
        what = first.get("feature_name") or first.get("metric_name")
        raise StepFailed(f"ClientError: Quality check failed: {len(violations)} violation(s) of the baseline "
                         f"{previous[1]}; the first, {what}: {first.get('constraint_check_type')}: "
                         f"{first.get('description')} (all of them: {report})")
    return StepOutcome(properties=properties)


def _resolved(run: StepRun, field: str) -> Any:
    return resolve(run.definition.get(field), run.context)


def _flag(run: StepRun, field: str, default: bool) -> bool:
    value = _resolved(run, field)
    if value is None:
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise StepFailed(f"ClientError: {field} must be true or false (got {value!r})")
    return value


def _previous_baseline(run: StepRun, section: str) -> tuple[str, str] | None:
    """(statistics URI, constraints URI) of the baseline to check against, or None if there is none."""
    supplied = _resolved(run, "SuppliedBaselineStatistics"), _resolved(run, "SuppliedBaselineConstraints")
    if any(supplied):
        if not all(supplied):
            raise StepFailed("ClientError: SuppliedBaselineStatistics and SuppliedBaselineConstraints are given "
                             "together or not at all")
        return supplied[0], supplied[1]
    group = _resolved(run, "ModelPackageGroupName")
    if not group:
        return None
    for package in reversed(run.registry.list(group, "Approved")):
        baseline = package.get("DriftCheckBaselines", {}).get(section, {})
        uris = baseline.get("Statistics", {}).get("S3Uri"), baseline.get("Constraints", {}).get("S3Uri")
        if all(uris):
            run.log(f"the previous baseline: {group} version {package['ModelPackageVersion']}'s "
                    f"DriftCheckBaselines.{section}")
            return uris[0], uris[1]
    return None


def _output_uri(arguments: dict[str, Any]) -> str:
    outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
    found = next((o for o in outputs if o.get("OutputName") == OUTPUT_NAME), outputs[0] if outputs else None)
    if found is None or "S3Output" not in found:
        raise StepFailed(f"ClientError: ProcessingOutputConfig.Outputs: a QualityCheck step needs its "
                         f"{OUTPUT_NAME} output")
    return found["S3Output"]["S3Uri"]


def _with_baseline(arguments: dict[str, Any], baseline: tuple[str, str]) -> dict[str, Any]:
    """The job with the previous baseline's files as inputs, named by the analyzer's variables."""
    inputs = list(arguments.get("ProcessingInputs", []))
    environment = dict(arguments.get("Environment") or {})
    for name, uri in zip(("statistics", "constraints"), baseline):
        local = f"{BASELINE_DIR}/{name}"
        inputs.append({"InputName": f"baseline_{name}", "S3Input": {"S3Uri": uri, "LocalPath": local,
                                                                     "S3DataType": "S3Prefix",
                                                                     "S3InputMode": "File"}})
        environment[f"baseline_{name}"] = f"{local}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
    return {**arguments, "ProcessingInputs": inputs, "Environment": environment}


def _violations(run: StepRun, uri: str) -> list[dict[str, Any]]:
    try:
        found = json.loads(safe_files.read_bytes(run.store.root, run.store.path(uri)))["violations"]
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise StepFailed(f"AlgorithmError: the analyzer wrote no readable {uri} ({exc})") from None
    return found if isinstance(found, list) else []
