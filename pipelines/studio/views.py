"""What the studio's pages show, read from the store through the library (the studio keeps no state of its own)."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipelines import tracking, tracking_logger
from pipelines.errors import NotFoundError
from pipelines.local import executions, launcher
from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.graph import steps_by_name
from pipelines.local.job_logs import step_logs
from pipelines.local.store import Store
from pipelines.results import model_quality_metrics
from pipelines.studio.layout import layout

S3_URI = re.compile(r"^s3://[^\s\"']+$")
JOB_FIELDS = ("ProcessingJobName", "ProcessingJobArn", "TrainingJobName", "TrainingJobArn", "TransformJobName",
              "TransformJobArn", "HyperParameterTuningJobName", "HyperParameterTuningJobArn", "ModelPackageArn",
              "ModelArn", "FunctionArn")


def records(store: Store) -> list[ExecutionRecord]:
    """Every readable execution, newest first (an unreadable one is left out, as `executions` leaves it)."""
    return list(executions.all_records(store.root))


def summary_row(store: Store, record: ExecutionRecord) -> dict[str, Any]:
    """One execution as the lists show it."""
    return {"id": record.execution_id, "pipeline": record.pipeline_name,
            "status": executions.status_of(store.root, record).replace("`", ""), "start": record.start_time,
            "end": record.end_time, "duration": record.duration_seconds, "retries": record.retries,
            "step_retries": record.step_retries, "failure": executions.failure_of(record)}


def pipelines(store: Store) -> list[dict[str, Any]]:
    """Each pipeline with executions in the store: how many, and its latest."""
    found: dict[str, dict[str, Any]] = {}
    for record in records(store):
        entry = found.setdefault(record.pipeline_name, {"name": record.pipeline_name, "executions": 0,
                                                        "latest": summary_row(store, record)})
        entry["executions"] += 1
    return sorted(found.values(), key=lambda p: p["name"])


def parameters(definition: dict[str, Any], specs: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The definition's parameters: name, type, default, the allowed values and what each is for."""
    described = {spec.name: spec.description for spec in specs}
    found = []
    for parameter in definition.get("Parameters", []) if isinstance(definition.get("Parameters"), list) else []:
        if isinstance(parameter, dict) and isinstance(parameter.get("Name"), str):
            found.append({"name": parameter["Name"], "type": parameter.get("Type", "String"),
                          "default": parameter.get("DefaultValue"), "enum": parameter.get("EnumValues"),
                          "description": described.get(parameter["Name"], "")})
    return found


def graph(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition's drawing: placed steps and edges, as the templates and the script use them."""
    placed = layout(definition)
    return {"steps": [asdict(s) for s in placed.steps], "edges": [asdict(e) for e in placed.edges],
            "width": placed.width, "height": placed.height}


def state(store: Store, record: ExecutionRecord, definition: dict[str, Any], mlflow_ui: str | None = None
          ) -> dict[str, Any]:
    """What the execution page shows and updates live: the execution, each step's status (the definition's
    steps that have not run: Pending while it runs, Not taken in the branch a condition did not choose, or
    Not run), the condition outcomes, and whether Stop can stop it (if not, while it runs, why: the page says
    so in Stop's place)."""
    from pipelines.local.target import never_ran

    row = summary_row(store, record)
    ran = {step.name: _step_state(step) for step in record.steps}
    running = record.status == "Executing" and row["status"] == "Executing"
    for status in never_ran(definition, record):
        shown = "Pending" if running and status.status == "Not run" else status.status
        ran.setdefault(status.name, {"name": status.name, "status": shown})
    stop_note = launcher.stop_refusal(store.root, record.execution_id) if running else None
    shown_run = mlflow_run(store, record, definition)
    return {**row, "steps": ran, "parameters": record.parameters, "selected_steps": record.selected_steps,
            "reference_execution": record.reference_execution, "running": running, "mlflow_run": shown_run,
            "mlflow_link": mlflow_link(shown_run, mlflow_ui),
            "stoppable": running and stop_note is None, "stop_note": stop_note}


def _step_state(step: StepRecord) -> dict[str, Any]:
    return {"name": step.name, "type": step.type, "status": step.status, "start": step.start_time,
            "end": step.end_time, "duration": step.duration_seconds, "attempts": step.attempts,
            "failure": step.failure_reason, "cache_hit_from": step.cache_hit_from, "reused_from": step.reused_from,
            "outcome": step.properties.get("Outcome") if step.type == "Condition" else None}


def step_detail(store: Store, record: ExecutionRecord, definition: dict[str, Any], name: str) -> dict[str, Any]:
    """One step's Input, Output, Logs and Info; ExecutionError if the definition has no such step."""
    declared = steps_by_name(definition)
    if name not in declared:
        raise NotFoundError(f"execution {record.execution_id} has no step {name!r}")
    step = record.step(name)
    arguments = declared[name].get("Arguments", {})
    detail: dict[str, Any] = {"name": name, "type": declared[name].get("Type"), "ran": step is not None,
                              "declared_arguments": arguments, "depends_on": declared[name].get("DependsOn", [])}
    if step is None:
        return detail
    properties = step.properties
    detail.update(
        step=_step_state(step),
        arguments={k: v for k, v in properties.items() if k in arguments} or arguments,
        inputs=[(where, uri) for where, uri in s3_uris(properties)
                if where.split(".")[0] in arguments and "Output" not in where.split(".")[0]],
        outputs=executions.output_locations(step),
        produced=executions.produced_properties(step, declared),
        property_files=step.property_files,
        metrics={k: v for document in step.property_files.values() for k, v in model_quality_metrics(document).items()},
        logs=[label for label, _ in step_logs(store, record.execution_id, name)],
        jobs={k: v for k, v in properties.items() if k in JOB_FIELDS},
        unenforced=step.unenforced, earlier_tries=[_step_state(s) for s in record.earlier_tries(name)],
        cache_key=step.cache_key,
    )
    return detail


def s3_uris(value: Any, where: str = "") -> list[tuple[str, str]]:
    """(field path, URI) of every S3 URI in a (resolved) document."""
    if isinstance(value, str):
        return [(where, value)] if S3_URI.match(value) else []
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in s3_uris(item, f"{where}.{key}" if where else key)]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in s3_uris(item, f"{where}[{i}]")]
    return []


def log_file(store: Store, execution_id: str, step: str, label: str) -> Path:
    """The log file of one host of a step; ExecutionError if there is none by that label."""
    for found, path in step_logs(store, execution_id, step):
        if found == label:
            return path
    raise NotFoundError(f"step {step} of {execution_id} has no log {label!r}")


def definition_diff(store: Store, first: str, second: str) -> list[dict[str, str]]:
    """The lines in which the definitions two executions ran differ (unified diff of their indented JSON)."""
    texts = [json.dumps(executions.load_definition(store.root, e), indent=2, sort_keys=True).splitlines()
             for e in (first, second)]
    lines = difflib.unified_diff(texts[0], texts[1], f"execution {first}", f"execution {second}", lineterm="", n=3)
    return [{"kind": "add" if line.startswith("+") else "del" if line.startswith("-") else
             "hunk" if line.startswith("@@") else "same", "text": line} for line in lines]


def comparison(store: Store, ids: list[str]) -> dict[str, Any]:
    """Parameters, metrics, step statuses and durations of several executions side by side; each row says
    whether the executions differ in it."""
    chosen = [executions.load(store.root, execution_id) for execution_id in ids]
    rows: list[dict[str, Any]] = []

    def add(section: str, label: str, values: list[Any]) -> None:
        shown = [plain(v) for v in values]
        rows.append({"section": section, "label": label, "values": shown, "differs": len(set(shown)) > 1})

    add("Execution", "status", [executions.status_of(store.root, r) for r in chosen])
    add("Execution", "duration (s)", [r.duration_seconds for r in chosen])
    for name in sorted({k for r in chosen for k in r.parameters}):
        add("Parameters", name, [r.parameters.get(name) for r in chosen])
    metrics = [_metrics(r) for r in chosen]
    for name in sorted({k for m in metrics for k in m}):
        add("Metrics", name, [m.get(name) for m in metrics])
    for name in _step_names(chosen):
        trainings = [_training(r.step(name)) for r in chosen]
        if any(trainings):
            add("Training", f"{name}: image", [t.get("image") for t in trainings])
            for key in sorted({k for t in trainings for k in t.get("hyperparameters", {})}):
                add("Training", f"{name}: {key}", [t.get("hyperparameters", {}).get(key) for t in trainings])
    for name in _step_names(chosen):
        add("Steps", name, [_step_cell(r.step(name)) for r in chosen])
    return {"executions": [summary_row(store, r) for r in chosen], "rows": rows}


def _training(step: StepRecord | None) -> dict[str, Any]:
    """A training step's image and hyperparameters as it ran (its properties), or nothing."""
    if step is None or step.type != "Training":
        return {}
    spec = step.properties.get("AlgorithmSpecification")
    hyperparameters = step.properties.get("HyperParameters")
    return {"image": spec.get("TrainingImage") if isinstance(spec, dict) else None,
            "hyperparameters": {k: v for k, v in hyperparameters.items() if not str(k).startswith("sagemaker_")}
            if isinstance(hyperparameters, dict) else {}}


def _metrics(record: ExecutionRecord) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for step in record.steps:
        for document in step.property_files.values():
            found.update(model_quality_metrics(document))
            lead = document.get("lead_scoring_metrics", {}) if isinstance(document, dict) else {}
            if isinstance(lead.get("top_decile"), dict) and "lift" in lead["top_decile"]:
                found["top_decile_lift"] = lead["top_decile"]["lift"]
    return {k: v for k, v in found.items() if isinstance(v, (int, float, str))}


def _step_names(chosen: list[ExecutionRecord]) -> list[str]:
    names: list[str] = []
    for record in chosen:
        names += [s.name for s in record.steps if s.name not in names]
    return names


def _step_cell(step: StepRecord | None) -> str:
    if step is None:
        return "-"
    seconds = step.duration_seconds
    return step.status + (f" in {seconds:.1f}s" if seconds is not None else "") + \
        (" (cache hit)" if step.cache_hit_from else "")


def plain(value: Any) -> str:
    """A value as the comparisons show it: floats to 6 significant digits, nothing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)



def mlflow_run(store: Store, record: ExecutionRecord, definition: dict[str, Any]) -> dict[str, str] | None:
    """The execution's MLflow run as the pages show it: ``logging…`` in place of its id while it waits to be
    logged in the background (a page never waits for that; the execution's page updates once it is logged), and
    ``not logged`` where its logging failed."""
    waiting = tracking_logger.pending(store.root).get(record.execution_id)
    if waiting is not None:
        return {"run_id": "logging…", "experiment": waiting.experiment or tracking.experiment_of(definition, record),
                "tracking_uri": tracking.tracking_uri(waiting.tracking, store)}
    if record.mlflow_run and not record.mlflow_run.get("run_id"):
        return {**record.mlflow_run, "run_id": "not logged"}
    return record.mlflow_run


def mlflow_link(run: dict[str, str] | None, ui: str | None) -> str | None:
    """The address of an execution's MLflow run in a UI: ``ui`` (an ``mlflow ui`` the studio was told of), or
    the tracking server itself when the run was logged to one over HTTP (it serves its UI too)."""
    if not run or not run.get("experiment_id"):
        return None
    base = ui or (run["tracking_uri"] if run.get("tracking_uri", "").startswith(("http://", "https://")) else None)
    return f"{base.rstrip('/')}/#/experiments/{run['experiment_id']}/runs/{run['run_id']}" if base else None
