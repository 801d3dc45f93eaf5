"""``python -m pipelines.run executions | describe ID | logs ID STEP | retry ID``: executions, local or on
SageMaker, as first-class objects."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from rich.console import Console

from pipelines import next_steps, tracking, tracking_logger
from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.cli.tables import print_rows, print_table
from pipelines.config import local_config
from pipelines.errors import ConfigError, ExecutionError
from pipelines.local import executions
from pipelines.local.executions import ExecutionRecord
from pipelines.local.graph import steps_by_name
from pipelines.local.job_logs import log_lines, step_logs
from pipelines.local.store import Store
from pipelines.progress import readable

COMMANDS = ("executions", "describe", "logs", "retry")


def parser() -> argparse.ArgumentParser:
    """The parser of the execution subcommands."""
    p = CommandParser(prog="python -m pipelines.run",
                      description="Executions, local or on SageMaker: list, describe, logs, retry.")
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("executions", help="list the executions, newest first",
                             usage="python -m pipelines.run executions [--limit N] [--json] [--target T] [--store DIR]")
    listing.add_argument("--limit", type=options.positive_int, metavar="N", help="show the newest N (default: all local ones; the "
                         f"newest {SAGEMAKER_LISTED} on SageMaker)")
    describe = sub.add_parser("describe", help="one execution: its steps, reasons, outputs, properties, unenforced "
                              "settings", usage="python -m pipelines.run describe ID [--not-enforced] [--full] "
                                               "[--json] [--target T] [--store DIR]")
    describe.add_argument("execution_id", help="the execution's id (or, on SageMaker, its ARN)")
    describe.add_argument("--not-enforced", action="store_true",
                          help="only the settings the local engine accepted but did not enforce, by step")
    describe.add_argument("--full", action="store_true",
                          help="print long property values (curves, lists) whole instead of their first items")
    logs = sub.add_parser("logs", help="a step's whole job log (every host's, for a job on several instances; "
                          "CloudWatch Logs on SageMaker)", usage="python -m pipelines.run logs ID STEP [--target T] "
                                                                "[--store DIR]")
    logs.add_argument("execution_id", help="the execution's id (or, on SageMaker, its ARN)")
    logs.add_argument("step", help="the step's name")
    retry = sub.add_parser("retry", help="re-run the failed and never-run steps of an execution, reusing the others",
                           usage="python -m pipelines.run retry ID [--summary-json FILE] [engine flags] [--target T] "
                                 "[--store DIR]")
    retry.add_argument("execution_id", help="the execution's id (or, on SageMaker, its ARN)")
    retry.add_argument("--summary-json", type=Path, metavar="FILE", help="write a machine-readable run summary")
    retry.add_argument("--not-enforced", action="store_true",
                       help="list every setting the local engine accepted but did not enforce (default: their count)")
    options.add_engine_arguments(retry)
    options.add_watch_arguments(retry)
    # the definition is the execution's own: only the settings of a local execution apply
    options.add_settings(retry, (*options.LOCAL_SETTINGS, "pipeline_name"))
    for command in (listing, describe, logs):
        options.add_settings(command, ("config", "region", "pipeline_name"))
    for command in (listing, describe, logs, retry):
        command.add_argument("--target", choices=("local", "sagemaker"), default="local",
                             help="executions of the local engine (default) or of SageMaker (the configured "
                                  "--pipeline-name in --region)")
        options.add_store_argument(command)
    for command in (listing, describe):
        command.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


SAGEMAKER_LISTED = 50
LOCAL_ONLY = ("inject_fault", "no_cache", "retry_interval_scale", "local_image_programs", "local_lambdas",
              "callback_timeout_seconds", "job_sandbox")  # retry's engine flags


def main(argv: Sequence[str]) -> int:
    """Run one execution subcommand; exit codes as for a run."""
    return run_parsed(parser(), argv, run_command)


def run_command(args: argparse.Namespace) -> int:
    """The chosen subcommand."""
    if args.target == "sagemaker":
        return sagemaker_command(args)
    if args.command == "executions":
        return list_executions(args.store, args.json, args.limit)
    if args.command == "describe":
        return describe(args.store, args.execution_id, args.json, args.not_enforced, args.full)
    if args.command == "logs":
        return print_logs(args.store, args.execution_id, args.step)
    return retry(args)


def print_logs(store: Path, execution_id: str, step_name: str) -> int:
    """Print a step's job log: its program's output, then each further host's under a header."""
    store = store.resolve()
    record = executions.load(store, execution_id)
    step = _recorded_step(record, step_name)
    found = step_logs(Store(store), execution_id, step_name)
    return _print_log_sections(step, [(label, log_lines(Store(store), path)) for label, path in found])


def _recorded_step(record: ExecutionRecord, step_name: str) -> executions.StepRecord:
    step = record.step(step_name)
    if step is None:
        raise ExecutionError(f"execution {record.execution_id} has no step {step_name!r} that ran; its steps: "
                             f"{', '.join(s.name for s in record.steps) or 'none'}")
    return step


def _print_log_sections(step: executions.StepRecord, sections: list[tuple[str, Iterable[str]]]) -> int:
    """Print each (label, lines) section of a step's logs, under a header when there are several."""
    if not sections:
        print(f"{step.name} has no job log (a {step.type} step {step.status.lower()}); `describe` shows what it did",
              file=sys.stderr)
        return 0
    for label, lines in sections:
        if len(sections) > 1:
            print(f"==> {label} <==")
        for line in lines:  # as read, but syslog's #011 as the tab it stands for
            line = readable(line)
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
    return 0


def list_executions(store: Path, as_json: bool, limit: int | None = None) -> int:
    """Print id, pipeline, status, start, duration and retries of every execution."""
    store = store.resolve()
    if not store.is_dir():
        raise ExecutionError(f"there is no local store at {store}: pass the --store a run used")
    records = list(executions.all_records(store, lambda message: print(f"warning: {message}", file=sys.stderr)))
    rows = [{"execution_id": r.execution_id, "pipeline_name": r.pipeline_name, "status": executions.status_of(store, r),
             "start_time": r.start_time, "duration_seconds": r.duration_seconds, "retries": r.retries,
             "step_retries": r.step_retries, "failure_reason": r.failure_reason, "failure": executions.failure_of(r)}
            for r in records]
    return _print_executions(rows[:limit], f"Executions in {store}", as_json)


def _print_executions(rows: list[dict[str, Any]], title: str, as_json: bool) -> int:
    if as_json:
        print_rows(rows)
        return 0
    pipelines = {row["pipeline_name"] for row in rows}
    one_pipeline = len(pipelines) == 1  # then it is named in the title, and its column left out
    columns = ["Execution", *([] if one_pipeline else ["Pipeline"]), "Status", "Started", "Took", "Retries", "Failure"]
    cells = []
    for row in rows:
        duration = row["duration_seconds"]
        started = str(row["start_time"])[5:16].replace("T", " ")  # MM-DD HH:MM
        cells.append([row["execution_id"], *([] if one_pipeline else [row["pipeline_name"]]), row["status"], started,
                      "" if duration is None else f"{duration:.1f}s",
                      f"{_count(row['retries'])}/{_count(row['step_retries'])}",  # of the execution / of its steps
                      row.get("failure") or row["failure_reason"] or ""])
    print_table(f"{title}: {next(iter(pipelines))}" if one_pipeline else title, columns, cells, wide="Failure",
                empty="no executions", key="Execution")
    return 0


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def describe(store: Path, execution_id: str, as_json: bool, only_unenforced: bool = False, full: bool = False) -> int:
    """Print one local execution with each step's status, timing, attempts, cache hit, reason, properties and
    MLflow run (once the executions waiting to be logged are)."""
    store = store.resolve()
    tracking_logger.settle(store, _note, lambda line: print(f"warning: {line}", file=sys.stderr))
    record = executions.load(store, execution_id)
    try:
        definition = executions.load_definition(store, execution_id)
    except ExecutionError:
        definition = {}  # every property is shown, arguments included
    local_store = Store(store)
    return _print_record(record, executions.status_of(store, record), definition, as_json,
                         locate=lambda uri: f"{uri} ({local_store.path(uri)})", only_unenforced=only_unenforced,
                         full=full, store=store)


LONG_LIST = 8  # items of a list shown before "..." (an ROC curve has hundreds)


def brief(value: Any) -> Any:
    """``value`` with every list longer than LONG_LIST cut to its first items and a count of the rest, and
    every float to 6 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {key: brief(item) for key, item in value.items()}
    if isinstance(value, list):
        shown = [brief(item) for item in value[:LONG_LIST]]
        return shown + ([f"... {len(value) - LONG_LIST} more (--full shows them)"] if len(value) > LONG_LIST else [])
    return value


def _print_unenforced(record: ExecutionRecord) -> int:
    from pipelines.local.unenforced import report_lines

    lines = report_lines(record.unenforced_report())
    print("\n".join(lines) if lines else
          f"execution {record.execution_id}: the local engine enforced every setting it was given")
    return 0


def _print_record(record: ExecutionRecord, status: str, definition: dict[str, Any], as_json: bool,
                  locate: Callable[[str], str], only_unenforced: bool = False, full: bool = False,
                  target: str = "local", store: Path | None = None) -> int:
    """One execution, whichever target ran it (``locate`` says where an S3 URI is for it), and what to run next."""
    if as_json:
        print(json.dumps({**asdict(record), "status": status, "step_retries": record.step_retries}, indent=2, default=str))
        return 0
    if only_unenforced:
        return _print_unenforced(record)
    shown = (lambda value: value) if full else brief
    definition_steps = steps_by_name(definition)
    console = Console(highlight=False, soft_wrap=True)  # long lines stay whole when piped
    console.print(f"Execution {record.execution_id} of {record.pipeline_name}: {status}", markup=False)
    console.print(f"Started {record.start_time}; ended {record.end_time or '-'}; retries {_count(record.retries)}; "
                  f"step retries {record.step_retries}", markup=False)
    console.print(f"Parameters: {json.dumps(record.parameters)}", markup=False)
    if record.selected_steps is not None:
        console.print(f"Selective execution of {', '.join(record.selected_steps)}"
                      + (f", the other steps' outputs from {record.reference_execution}" if record.reference_execution
                         else ""), markup=False)
    if record.failure_reason:
        console.print(f"Failure: {record.failure_reason}", markup=False)
    if record.mlflow_run:
        console.print(f"MLflow run: {tracking.run_summary(record.mlflow_run)}", markup=False)
    for step in record.steps:
        timing = f" in {step.duration_seconds:.1f}s" if step.duration_seconds is not None else ""
        extras = [f"attempt {step.attempts}"] + ([f"cache hit from {step.cache_hit_from}"] if step.cache_hit_from else []) \
            + ([f"not selected: reused from {step.reused_from}"] if step.reused_from else []) \
            + [f"before a retry: {earlier.status.lower()} after {earlier.attempts} attempt"
               f"{'s' if earlier.attempts > 1 else ''}" for earlier in record.earlier_tries(step.name)]
        console.print(f"\n{step.name} ({step.type}): {step.status}{timing} [{', '.join(extras)}]", markup=False)
        if step.failure_reason:
            console.print(f"  reason: {step.failure_reason}", markup=False)
        for earlier in record.earlier_tries(step.name):
            if earlier.failure_reason:
                console.print(f"  reason before the retry: {earlier.failure_reason}", markup=False)
        for what, uri in executions.output_locations(step):
            console.print(f"  {what}: {locate(uri)}", markup=False)
        for key, value in executions.produced_properties(step, definition_steps).items():
            console.print(f"  {key}: {json.dumps(shown(value), default=str)}", markup=False)
        for name, document in step.property_files.items():
            console.print(f"  property file {name}:", markup=False)
            for line in json.dumps(shown(document), indent=2).splitlines():
                console.print(f"    {line}", markup=False)
        for line in step.unenforced:
            console.print(f"  not enforced locally: {line}", markup=False)
    following = next_steps.after_execution(record.execution_id, status, target, store)
    if following:
        console.print(f"\nNext: {following}", markup=False)
    return 0


def _note(line: str) -> None:
    print(f"note: {line}", file=sys.stderr)


def _fail_step_note(record: ExecutionRecord) -> None:
    """Say so when an execution ended in a Fail step: a retry runs with the same parameters."""
    ended_in = [s.name for s in record.steps if s.type == "Fail" and s.status == "Failed"]
    if ended_in:
        print(f"note: execution {record.execution_id} ended in the Fail step {ended_in[0]}; a retry runs with the same "
              "parameters, so it ends the same way unless the data it reads changed (start a new run with other "
              "--parameter values instead)", file=sys.stderr)


def retry(args: argparse.Namespace) -> int:
    """Resume a failed or interrupted local execution and report it like a run."""
    from pipelines.local.target import LocalTarget
    from pipelines.progress import Progress
    from pipelines.reporting import finish_run

    config = local_config(options.config_from_args(args, os.environ))
    record = executions.load(args.store.resolve(), args.execution_id)
    _fail_step_note(record)
    target = LocalTarget(config, store=args.store, options=options.engine_options(args))
    with Progress(f"retry of {args.execution_id} on local") as progress:
        definition = executions.load_definition(args.store.resolve(), args.execution_id)
        progress.declare(list(steps_by_name(definition)))
        result = target.retry(args.execution_id, progress)
    return finish_run(result, args.summary_json, reasons_shown=not progress.live_mode, store=args.store,
                      all_unenforced=args.not_enforced)


def sagemaker_command(args: argparse.Namespace) -> int:
    """The subcommand for executions of the configured pipeline on SageMaker."""
    from pipelines.aws import aws_session
    from pipelines.targets.sagemaker_executions import SageMakerExecutions

    defaults = parser().parse_args(["retry", "-"]) if args.command == "retry" else args
    given = [name for name in LOCAL_ONLY if getattr(args, name, None) != getattr(defaults, name, None)]
    if given:
        raise ConfigError(f"--{given[0].replace('_', '-')} applies to local executions only (not with --target sagemaker)")
    config = options.config_from_args(args, os.environ)
    service = SageMakerExecutions(aws_session(config), poll_seconds=getattr(args, "poll_seconds", 30.0),
                                  timeout_seconds=getattr(args, "timeout", None))
    if args.command == "executions":
        summaries = service.summaries(config.pipeline_name, args.limit or SAGEMAKER_LISTED)
        rows = [{"execution_id": s["PipelineExecutionArn"].rsplit("/", 1)[-1], "pipeline_name": config.pipeline_name,
                 "status": s.get("PipelineExecutionStatus"), "start_time": s.get("StartTime"), "duration_seconds": None,
                 "retries": None, "step_retries": None, "failure_reason": s.get("PipelineExecutionFailureReason") or None,
                 "execution_arn": s["PipelineExecutionArn"]} for s in summaries]
        return _print_executions(rows, f"Executions of {config.pipeline_name} in {config.region}", args.json)
    arn = service.arn_of(config.pipeline_name, args.execution_id)
    if args.command == "retry":
        return sagemaker_retry(service, arn, args)
    record, definition = service.record(arn, note=_note)
    if args.command == "describe":
        return _print_record(record, record.status, definition, args.json, locate=lambda uri: uri,
                             only_unenforced=args.not_enforced, full=args.full, target="sagemaker")
    return print_sagemaker_logs(service, _recorded_step(record, args.step))


def print_sagemaker_logs(service: Any, step: executions.StepRecord) -> int:
    """Print each CloudWatch log stream of the job a step ran, under a header when there are several."""
    from pipelines.targets.sagemaker_executions import job_of

    job = job_of(step.properties)
    if job is None:
        return _print_log_sections(step, [])
    kind, name = job
    streams = service.log_streams(kind, name)
    if not streams:
        print(f"{step.name}: no log streams {name}/... in {kind.log_group} (the job wrote none yet, or they were "
              "deleted)", file=sys.stderr)
        return 0
    return _print_log_sections(step, [(f"{kind.log_group} {stream}", service.log_lines(kind, stream))
                                      for stream in streams])


def sagemaker_retry(service: Any, arn: str, args: argparse.Namespace) -> int:
    """RetryPipelineExecution, then watch the execution and report it like a run."""
    from pipelines.progress import Progress
    from pipelines.reporting import finish_run
    from pipelines.results import RunResult

    record, definition = service.record(arn, note=_note, outputs=False)  # what ran and how it ended suffices
    _fail_step_note(record)
    service.retry(arn, args.max_parallel_steps)
    result = RunResult("sagemaker", record.pipeline_name, record.execution_id, arn, "Executing",
                       parameters=record.parameters)
    with Progress(f"retry of {record.execution_id} on sagemaker") as progress:
        progress.declare(list(steps_by_name(definition)))
        progress.update([], f"Retrying execution {arn}")
        if not args.no_wait:
            service.watch(result, progress)
            if result.status == "Succeeded":
                service.collect_metrics(result, definition)
    return finish_run(result, args.summary_json, reasons_shown=not progress.live_mode)
