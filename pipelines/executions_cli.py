"""``python -m pipelines.run executions | describe ID | logs ID STEP | retry ID``: local executions as
first-class objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from pipelines.errors import ExecutionError, exit_code_of
from pipelines.local import executions
from pipelines.local.executions import ExecutionLock, ExecutionRecord
from pipelines.local.graph import walk_steps
from pipelines.local.store import Store

COMMANDS = ("executions", "describe", "logs", "retry")


def parser() -> argparse.ArgumentParser:
    """The parser of the execution subcommands."""
    from pipelines.run import CONFIG_GROUP, add_engine_arguments, add_local_config_arguments

    p = argparse.ArgumentParser(prog="python -m pipelines.run", description="Local executions: list, describe, retry.")
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("executions", help="list the local executions, newest first")
    describe = sub.add_parser("describe", help="one execution: its steps, reasons, properties, unenforced settings")
    describe.add_argument("execution_id")
    logs = sub.add_parser("logs", help="a step's whole job log (every host's, for a job on several instances)")
    logs.add_argument("execution_id")
    logs.add_argument("step", help="the step's name")
    retry = sub.add_parser("retry", help="re-run the failed and never-run steps of an execution, reusing the others")
    retry.add_argument("execution_id")
    retry.add_argument("--summary-json", type=Path, metavar="FILE", help="write a machine-readable run summary")
    add_engine_arguments(retry)
    add_local_config_arguments(retry.add_argument_group(CONFIG_GROUP))
    retry.set_defaults(kwargs=None)  # the definition is the execution's own: only these settings apply
    for command in (listing, describe, logs, retry):
        command.add_argument("--store", type=Path, default=Path(".sagemaker-local"), help="the local store")
    for command in (listing, describe):
        command.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def main(argv: Sequence[str]) -> int:
    """Run one execution subcommand; exit codes as for a run."""
    args = parser().parse_args(argv)
    return exit_code_of(lambda: run_command(args))


def run_command(args: argparse.Namespace) -> int:
    """The chosen subcommand."""
    if args.command == "executions":
        return list_executions(args.store, args.json)
    if args.command == "describe":
        return describe(args.store, args.execution_id, args.json)
    if args.command == "logs":
        return print_logs(args.store, args.execution_id, args.step)
    return retry(args)


def print_logs(store: Path, execution_id: str, step_name: str) -> int:
    """Print a step's job log: its program's output, then each further host's under a header."""
    store = store.resolve()
    record = executions.load(store, execution_id)
    steps = [s.name for s in record.steps]
    if step_name not in steps:
        raise ExecutionError(f"execution {execution_id} has no step {step_name!r} that ran; its steps: "
                             f"{', '.join(steps) or 'none'}")
    job_dir = Store(store).job_dir(execution_id, step_name)
    logs = [("", job_dir / "job.log")] + [(f"{path.parent.name}: ", path) for path in
                                           sorted(job_dir.glob("hosts/*/job.log")) + sorted(job_dir.glob("hosts/*/worker.log"))]
    found = [(label, path) for label, path in logs if path.is_file()]
    if not found:
        print(f"{step_name} ran no job program (a {next(s.type for s in record.steps if s.name == step_name)} step): "
              "it has no log; `describe` shows what it did", file=sys.stderr)
        return 0
    for label, path in found:
        if len(found) > 1:
            print(f"==> {label or 'algo-1: '}{path.relative_to(job_dir)} <==")
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                sys.stdout.write(line)
    return 0


def status_of(store: Path, record: ExecutionRecord) -> str:
    """The recorded status, marking an execution whose engine died while it ran."""
    if record.status == "Executing" and not ExecutionLock(store, record.execution_id).is_held_elsewhere():
        return "Executing (interrupted: `retry` resumes it)"
    return record.status


def list_executions(store: Path, as_json: bool) -> int:
    """Print id, pipeline, status, start and duration of every execution."""
    store = store.resolve()
    if not store.is_dir():
        raise ExecutionError(f"there is no local store at {store}: pass the --store a run used")
    records = list(executions.all_records(store, lambda message: print(f"warning: {message}", file=sys.stderr)))
    if as_json:
        print(json.dumps([{"execution_id": r.execution_id, "pipeline_name": r.pipeline_name,
                           "status": status_of(store, r), "start_time": r.start_time,
                           "duration_seconds": r.duration_seconds, "retries": r.retries} for r in records], indent=2))
        return 0
    table = Table(title=f"Executions in {store}")
    for column in ("Execution", "Pipeline", "Status", "Start", "Duration", "Retries"):
        table.add_column(column)
    for r in records:
        duration = f"{r.duration_seconds:.1f}s" if r.duration_seconds is not None else ""
        table.add_row(r.execution_id, r.pipeline_name, status_of(store, r), r.start_time[:19].replace("T", " "),
                      duration, str(r.retries))
    Console(width=140).print(table)
    return 0


def produced_properties(step: executions.StepRecord, definition_steps: dict[str, Any]) -> dict[str, Any]:
    """The properties a step produced: everything the Describe* call adds to the step's own arguments."""
    arguments = definition_steps.get(step.name, {}).get("Arguments", {})
    return {k: v for k, v in step.properties.items() if k not in arguments}


def output_locations(step: executions.StepRecord) -> list[tuple[str, str]]:
    """(what, s3 URI) of everything a step wrote: processing outputs, the model artifact, transform output."""
    properties = step.properties
    found = [(f"output {o.get('OutputName')}", o["S3Output"]["S3Uri"])
             for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", []) if "S3Output" in o]
    if "S3ModelArtifacts" in properties.get("ModelArtifacts", {}):
        found.append(("model", properties["ModelArtifacts"]["S3ModelArtifacts"]))
    if "S3OutputPath" in properties.get("TransformOutput", {}):
        found.append(("transform output", properties["TransformOutput"]["S3OutputPath"]))
    return [(what, uri) for what, uri in found if isinstance(uri, str)]


def describe(store: Path, execution_id: str, as_json: bool) -> int:
    """Print one execution with each step's status, timing, attempts, cache hit, reason and properties."""
    store = store.resolve()
    record = executions.load(store, execution_id)
    if as_json:
        print(json.dumps({**asdict(record), "status": status_of(store, record)}, indent=2, default=str))
        return 0
    try:
        definition_steps = _definition_steps(executions.load_definition(store, execution_id))
    except ExecutionError:
        definition_steps = {}  # every property is shown, arguments included
    console = Console(highlight=False, soft_wrap=True)  # long lines stay whole when piped
    local_store = Store(store)
    console.print(f"Execution {record.execution_id} of {record.pipeline_name}: {status_of(store, record)}", markup=False)
    console.print(f"Started {record.start_time}; ended {record.end_time or '-'}; retries {record.retries}", markup=False)
    console.print(f"Parameters: {json.dumps(record.parameters)}", markup=False)
    if record.failure_reason:
        console.print(f"Failure: {record.failure_reason}", markup=False)
    for step in record.steps:
        timing = f" in {step.duration_seconds:.1f}s" if step.duration_seconds is not None else ""
        extras = [f"attempt {step.attempts}"] + ([f"cache hit from {step.cache_hit_from}"] if step.cache_hit_from else [])
        console.print(f"\n{step.name} ({step.type}): {step.status}{timing} [{', '.join(extras)}]", markup=False)
        if step.failure_reason:
            console.print(f"  reason: {step.failure_reason}", markup=False)
        for what, uri in output_locations(step):
            console.print(f"  {what}: {uri} ({local_store.path(uri)})", markup=False)
        for key, value in produced_properties(step, definition_steps).items():
            console.print(f"  {key}: {json.dumps(value, default=str)}", markup=False)
        for name, document in step.property_files.items():
            console.print(f"  property file {name}: {json.dumps(document)}", markup=False)
        for line in step.unenforced:
            console.print(f"  not enforced locally: {line}", markup=False)
    return 0


def _definition_steps(definition: dict[str, Any]) -> dict[str, Any]:
    return {step["Name"]: step for step, _ in walk_steps(definition.get("Steps", []))}


def retry(args: argparse.Namespace) -> int:
    """Resume a failed or interrupted local execution and report it like a run."""
    from pipelines.local.target import LocalTarget
    from pipelines.progress import Progress
    from pipelines.run import config_from_args, engine_options, finish_run, local_config

    config = local_config(config_from_args(args, os.environ))
    ended_in = [s.name for s in executions.load(args.store.resolve(), args.execution_id).steps
                if s.type == "Fail" and s.status == "Failed"]
    if ended_in:
        print(f"note: execution {args.execution_id} ended in the Fail step {ended_in[0]}; a retry runs with the same "
              "parameters, so it ends the same way unless the data it reads changed (start a new run with other "
              "--parameter values instead)", file=sys.stderr)
    target = LocalTarget(config, store=args.store, options=engine_options(args))
    with Progress(f"retry of {args.execution_id} on local") as progress:
        definition = executions.load_definition(args.store.resolve(), args.execution_id)
        progress.declare(list(_definition_steps(definition)))
        result = target.retry(args.execution_id, progress)
    return finish_run(result, args.summary_json, reasons_shown=not progress.live_mode)
