"""What a step's definition asks for that the local engine accepts but cannot honour.

Nothing is ignored silently: every such setting found in a step's resolved arguments is
reported, per step, at the end of a local run and in the execution record.
"""

from __future__ import annotations

from typing import Any, Iterator

from pipelines.local import request_fields


_NOT_WORTH_REPORTING = (None, "", False, [], {})
# what every job program of a local run may do that SageMaker would check
JOB_PROGRAMS = ("S3 permissions: job programs reach the store through a local S3 endpoint that checks no signature, "
                "IAM policy or bucket policy")
RUNS_PROGRAMS = {"Processing", "Training"}
# steps whose programs the job runtime starts (a Transform's model may be a serve program)
STARTS_PROGRAMS = RUNS_PROGRAMS | {"Transform"}
# with the job sandbox, a job's network isolation is a private network shared by its hosts only
ISOLATED_STEPS = RUNS_PROGRAMS
SERVING_NETWORK = ("network isolation of serving containers: an image's local serve program listens on this "
                   "machine's loopback, where the engine reaches it, and is not kept from the rest of the network "
                   "(the built-in XGBoost image's models are served by the engine itself)")


def _walk(value: Any, step_type: str, shape_path: str, shown: str, not_isolated: str | None) -> Iterator[str]:
    """The report's lines for the field at ``shown`` (``shape_path``: the same without list indexes)."""
    if shape_path:
        rules = request_fields.RULES[step_type]
        found, rule = request_fields.rule_for(step_type, shape_path)
        if not found and not request_fields.has_narrower_rules(step_type, shape_path):
            yield f"{shown} = {_shown(value)}: not read by the local engine (a field it does not know)"
            return
        if shape_path in rules and rule is not request_fields.HONOURED:
            yield from _reported(value, shown, step_type, rule, not_isolated)
            return
        if found and not request_fields.has_narrower_rules(step_type, shape_path):
            return  # honoured, all of it
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, step_type, f"{shape_path}.{key}" if shape_path else key,
                             f"{shown}.{key}" if shown else key, not_isolated)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, step_type, shape_path, f"{shown}[{index}]", not_isolated)


def _reported(value: Any, shown: str, step_type: str, rule: Any, not_isolated: str | None) -> Iterator[str]:
    if value in _NOT_WORTH_REPORTING:
        return
    if rule == request_fields.NETWORK_ISOLATION:
        if not_isolated:
            yield f"{shown} = {_shown(value)}: network isolation: without the job sandbox, jobs can reach this " \
                  "machine's network"
        elif step_type not in ISOLATED_STEPS:
            yield f"{shown} = {_shown(value)}: {SERVING_NETWORK}"
        return
    reason, quiet = rule if isinstance(rule, tuple) else (rule, frozenset())
    if isinstance(value, (dict, list)) or value not in quiet:
        yield f"{shown} = {_shown(value)}: {reason}"


def _shown(value: Any) -> str:
    return str(value) if isinstance(value, (str, int, float, bool)) else "set"


def settings(arguments: dict[str, Any], step_type: str = "", not_isolated: str | None = None) -> list[str]:
    """One line per field of a step's ``arguments`` that a local run accepts without enforcing it (its request's
    fields as ``pipelines.local.request_fields`` classifies them), and, for steps that run programs, the
    permissions their S3 calls skip. ``not_isolated`` is the job runtime's reason when jobs run without the
    sandbox (None: they run in it, and their network isolation is enforced)."""
    found = [JOB_PROGRAMS] if step_type in RUNS_PROGRAMS else []
    if not_isolated and step_type in STARTS_PROGRAMS:
        found.append(not_isolated)
    if step_type in request_fields.RULES and isinstance(arguments, dict):
        found += list(_walk(arguments, step_type, "", "", not_isolated))
    return found


def pipeline_settings(definition: dict[str, Any]) -> list[str]:
    """The definition-level settings a local run does not enforce."""
    found = []
    if definition.get("PipelineExperimentConfig"):
        found.append("PipelineExperimentConfig = set: SageMaker Experiments tracking of the pipeline's executions")
    mlflow = definition.get("MlflowConfig")
    if isinstance(mlflow, dict) and mlflow.get("MlflowResourceArn"):
        found.append(f"MlflowConfig = {mlflow.get('MlflowResourceArn')} (experiment "
                     f"{mlflow.get('MlflowExperimentName') or 'the pipeline name'}): SageMaker managed MLflow "
                     "tracking of the executions")
    return found


def grouped(report: dict[str, list[str]]) -> list[tuple[list[str], str]]:
    """The report as (steps, line) pairs: each distinct line once, with every step it concerns, in order."""
    steps_of: dict[str, list[str]] = {}
    for step, lines in report.items():
        for line in lines:
            steps_of.setdefault(line, []).append(step)
    return [(steps, line) for line, steps in steps_of.items()]


def report_lines(report: dict[str, list[str]]) -> list[str]:
    """The report as one ``STEP, STEP: line`` a distinct setting, as runs and ``describe`` print it."""
    return [f"{', '.join(steps)}: {line}" for steps, line in grouped(report)]
