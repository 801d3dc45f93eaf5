"""What QualityCheck and ClarifyCheck steps share, as SageMaker runs them: their own flags (``SkipCheck``,
``RegisterNewBaseline``, ``FailOnViolation``), the previous baseline (supplied, else the drift-check baselines
of the latest Approved version of ``ModelPackageGroupName``), the check job's output, its violations, and the
failure a violation is."""

from __future__ import annotations

import json
from typing import Any, Sequence

from pipelines.local import safe_files
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.local.expressions import resolve
from pipelines.s3uri import join_uri

BASELINE_DIR = "/opt/ml/processing/baseline"
MISSING_BASELINE = ("ClientError: SkipCheck is false, but there is no baseline to check against: give {supplied}, "
                    "or approve a version of the model package group {group!r} registered with "
                    "DriftCheckBaselines.{section} (a pipeline's first run sets SkipCheck and RegisterNewBaseline)")


def resolved(run: StepRun, field: str) -> Any:
    """A field of the step itself (not of its Arguments), its expressions resolved."""
    return resolve(run.definition.get(field), run.context)


def flag(run: StepRun, field: str, default: bool) -> bool:
    """A true-or-false field of the step; StepFailed for anything else."""
    value = resolved(run, field)
    if value is None:
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise StepFailed(f"ClientError: {field} must be true or false (got {value!r})")
    return value


def previous_baseline(run: StepRun, supplied_fields: Sequence[str], registered: Sequence[str]) -> tuple[str, ...] | None:
    """The URIs of the baseline to check against: the ``supplied_fields`` if given, else the members at the
    ``registered`` paths (``"Bias.PreTrainingConstraints"``) of the DriftCheckBaselines of the latest Approved
    version of the step's model package group; None if there is none."""
    supplied = tuple(resolved(run, field) for field in supplied_fields)
    if any(supplied):
        if not all(supplied):
            raise StepFailed(f"ClientError: {' and '.join(supplied_fields)} are given together or not at all")
        return supplied
    group = resolved(run, "ModelPackageGroupName")
    for package in reversed(run.registry.list(group, "Approved") if group else []):
        uris = tuple(_member(package.get("DriftCheckBaselines", {}), path).get("S3Uri") for path in registered)
        if all(uris):
            run.log(f"the previous baseline: {group} version {package['ModelPackageVersion']}'s DriftCheckBaselines."
                    f"{registered[0].split('.')[0]}")
            return uris
    return None


def missing_baseline(run: StepRun, supplied_fields: Sequence[str], section: str) -> StepFailed:
    """The failure of a check that has no baseline to check against, saying how to get one."""
    return StepFailed(MISSING_BASELINE.format(supplied=" and ".join(supplied_fields), section=section,
                                              group=resolved(run, "ModelPackageGroupName")))


def _member(value: dict[str, Any], path: str) -> dict[str, Any]:
    for key in path.split("."):
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return value if isinstance(value, dict) else {}


def with_baseline(arguments: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """The check job with the previous baseline's files (``{"statistics": URI, "constraints": URI}``, or fewer)
    as inputs under ``/opt/ml/processing/baseline/<name>``, each named by the job's ``baseline_<name>``
    variable, as the analyzer reads a baseline."""
    inputs = list(arguments.get("ProcessingInputs", []))
    environment = dict(arguments.get("Environment") or {})
    for name, uri in files.items():
        local = f"{BASELINE_DIR}/{name}"
        inputs.append({"InputName": f"baseline_{name}", "S3Input": {"S3Uri": uri, "LocalPath": local,
                                                                     "S3DataType": "S3Prefix",
                                                                     "S3InputMode": "File"}})
        environment[f"baseline_{name}"] = f"{local}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
    return {**arguments, "ProcessingInputs": inputs, "Environment": environment}


def output_uri(arguments: dict[str, Any], name: str, step_type: str) -> str:
    """Where the check job's output ``name`` goes."""
    outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
    found = next((o for o in outputs if o.get("OutputName") == name), outputs[0] if outputs else None)
    if found is None or "S3Output" not in found:
        raise StepFailed(f"ClientError: ProcessingOutputConfig.Outputs: a {step_type} step needs its {name} output")
    return found["S3Output"]["S3Uri"]


def violations(run: StepRun, uri: str) -> list[dict[str, Any]]:
    """The violations the check job wrote to ``uri``."""
    try:
        found = json.loads(safe_files.read_bytes(run.store.root, run.store.path(uri)))["violations"]
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise StepFailed(f"AlgorithmError: the check job wrote no readable {uri} ({exc})") from None
    return found if isinstance(found, list) else []


def check_failed(step_type: str, found: list[dict[str, Any]], baseline: str, report: str) -> StepFailed:
    """The failure of a check that found violations, naming the first and the report listing all of them."""
    first = found[0]
    what = first.get("feature_name") or first.get("metric_name")
    facet = f" (facet {first['facet']} = {first.get('facet_value')})" if first.get("facet") else ""
    return StepFailed(f"ClientError: {step_type} failed: {len(found)} violation(s) of the baseline {baseline}; the "
                      f"first, {what}{facet}: {first.get('constraint_check_type')}: {first.get('description')} (all "
                      f"of them: {report})")


def outcome(run: StepRun, properties: dict[str, Any], output: str, baseline: str | None, check: str) -> StepOutcome:
    """The step's result once its job ran: with no ``baseline`` (SkipCheck) its properties; else the violations
    the job wrote beside its output (``ViolationReport``), which fail the step unless ``FailOnViolation`` is
    false."""
    if baseline is None:
        run.log(f"baseline calculated at {output}; the check is skipped (SkipCheck)")
        return StepOutcome(properties=properties)
    report = join_uri(output, "constraint_violations.json")
    found = violations(run, report)
    run.log(f"checked against the baseline {baseline}: {len(found)} violation(s)")
    if found and flag(run, "FailOnViolation", True):
        raise check_failed(check, found, baseline, report)
    return StepOutcome(properties={**properties, "ViolationReport": report})
