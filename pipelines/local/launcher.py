"""Local executions started in the background (the studio's Start and Retry), and stopped (its Stop).

Each runs in a process of its own, in a session of its own (a closed browser tab or a stopped studio never
stops it), started as ``python -m pipelines.local.launcher EXECUTION_DIR``. The execution's folder keeps
what it was asked to do (``launch.json``), the engine's process id (``engine.pid``) and what the engine
printed (``engine.log``). Stop interrupts the engine as Ctrl-C does, then records the execution as
Stopped: its succeeded steps are kept, and Retry runs the rest, as on SageMaker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from pipelines.atomic import write_text
from pipelines.config import PipelineConfig, build_config
from pipelines.errors import ExecutionError, ExecutionInterrupted, PipelineError
from pipelines.local import executions
from pipelines.local.executions import ExecutionLock, new_execution_id, now
from pipelines.local.store import Store
from pipelines.selection import Selection

SPEC = "launch.json"
PID = "engine.pid"
LOG = "engine.log"
STARTED_WITHIN_SECONDS = 60.0  # the child writes its record within this long, or its start is reported as failed


def start(store_root: Path, config: PipelineConfig, definition: dict[str, Any], pipeline_name: str,
          overrides: dict[str, Any], selection: Selection | None = None) -> str:
    """Start a new execution of ``definition`` with typed ``overrides`` (only the selected steps, with a
    ``selection``, checked here as SageMaker checks it); returns its id once its record exists."""
    if selection is not None:
        from pipelines.local import selective
        from pipelines.local.engine import runnable_graph
        from pipelines.local.target import LocalTarget

        nodes = runnable_graph(definition, LocalTarget(config, store_root).engine_options())
        selective.reused_steps(nodes, selection, store_root, pipeline_name)
    execution_id = new_execution_id()
    _launch(store_root, execution_id, {"action": "run", "definition": definition, "pipeline_name": pipeline_name,
                                       "overrides": overrides, "config": config.as_values(),
                                       "selection": None if selection is None else
                                       {"steps": list(selection.steps), "reference": selection.reference}})
    return execution_id


def retry(store_root: Path, config: PipelineConfig, execution_id: str) -> str:
    """Re-run the failed, stopped and never-run steps of an execution in the background (RetryPipelineExecution)."""
    record = executions.load(store_root, execution_id)
    if record.status == "Succeeded":
        raise ExecutionError(f"execution {execution_id} succeeded; there is nothing to retry")
    if ExecutionLock(store_root, execution_id).is_held_elsewhere():
        raise ExecutionError(f"execution {execution_id} is still running")
    _launch(store_root, execution_id, {"action": "retry", "config": config.as_values()}, since=record.retries)
    return execution_id


def stop(store_root: Path, execution_id: str) -> None:
    """Interrupt a running execution's engine (StopPipelineExecution); ExecutionError if it is not running."""
    directory = executions.execution_dir(store_root, execution_id)
    if not ExecutionLock(store_root, execution_id).is_held_elsewhere():
        raise ExecutionError(f"execution {execution_id} is not running")
    try:
        pid = int((directory / PID).read_text())
    except (OSError, ValueError):
        raise ExecutionError(f"execution {execution_id} was started from a terminal; stop it there with Ctrl-C") from None
    os.kill(pid, signal.SIGINT)


def engine_log(store_root: Path, execution_id: str) -> Path:
    """What the engine of a background execution printed."""
    return executions.execution_dir(store_root, execution_id) / LOG


def _launch(store_root: Path, execution_id: str, spec: dict[str, Any], since: int | None = None) -> None:
    directory = executions.execution_dir(store_root, execution_id)
    directory.mkdir(parents=True, exist_ok=True)
    write_text(directory / SPEC, json.dumps(spec, default=str))
    with open(directory / LOG, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "pipelines.local.launcher", str(directory)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=store_root)
    write_text(directory / PID, str(process.pid))
    deadline = time.monotonic() + STARTED_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if _has_started(store_root, execution_id, since):
            return
        if process.poll() is not None:
            if _has_started(store_root, execution_id, since):
                return
            lines = (directory / LOG).read_text(errors="replace").strip().splitlines()
            raise ExecutionError(lines[-1] if lines else f"the engine of {execution_id} exited with {process.returncode}")
        time.sleep(0.05)
    raise ExecutionError(f"the engine of {execution_id} did not start within {STARTED_WITHIN_SECONDS:.0f}s "
                         f"(see {directory / LOG})")


def _has_started(store_root: Path, execution_id: str, since: int | None) -> bool:
    """True once the record says the engine began: it exists (a new execution) or counts one more retry."""
    try:
        record = executions.load(store_root, execution_id)
    except ExecutionError:
        return False
    return since is None or (record.retries or 0) > since


def _run(directory: Path) -> int:
    """The child: run what ``launch.json`` asks for to the end, as the CLI would in a terminal."""
    from pipelines.lead_scoring import BuiltPipeline
    from pipelines.local.target import LocalTarget
    from pipelines.progress import Progress

    try:
        spec = json.loads((directory / SPEC).read_text(encoding="utf-8"))
        if not isinstance(spec, dict) or spec.get("action") not in ("run", "retry"):
            raise ValueError("not a launch record")
    except (OSError, ValueError) as exc:
        raise ExecutionError(f"{directory} is not an execution started in the background: {directory / SPEC} "
                             f"cannot be read ({exc})") from None
    store_root, execution_id = directory.parent.parent, directory.name
    config = build_config(("the launch record", spec["config"]))
    chosen = spec.get("selection")
    selection = Selection(tuple(chosen["steps"]), chosen["reference"]) if chosen else None
    target = LocalTarget(config, store=store_root, execution_id=execution_id, selection=selection)
    with Progress(execution_id, stream=sys.stdout, live=False) as progress:
        try:
            if spec["action"] == "retry":
                result = target.retry(execution_id, progress)
            else:
                built = BuiltPipeline(None, json.dumps(spec["definition"]), (), "", spec["pipeline_name"])
                result = target.run(built, spec["overrides"], progress)
        except (ExecutionInterrupted, KeyboardInterrupt):
            record = _record_stopped(store_root, execution_id)
            target.track(record, executions.load_definition(store_root, execution_id), Store(store_root), progress)
            print(f"execution {execution_id}: Stopped")
            return 1
    print(f"execution {execution_id}: {result.status}")
    return 0 if result.status == "Succeeded" else 1


def _record_stopped(store_root: Path, execution_id: str) -> executions.ExecutionRecord:
    """Stopped, as SageMaker records a stopped execution: the steps that were running are Stopped too."""
    record = executions.load(store_root, execution_id)
    ended = now()
    for step in record.steps:
        if step.status not in ("Succeeded", "Failed"):
            step.status, step.end_time = "Stopped", step.end_time or ended
    record.status, record.end_time, record.failure_reason = "Stopped", ended, "stopped by request (Stop)"
    record.save(store_root)
    return record


def main(argv: Sequence[str]) -> int:
    """Entry of the background process: ``python -m pipelines.local.launcher EXECUTION_DIR``."""
    if len(argv) != 1:
        print("usage: python -m pipelines.local.launcher EXECUTION_DIR (the studio starts it)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # terminated: stopped as Ctrl-C stops it
    try:
        return _run(Path(argv[0]))
    except PipelineError as exc:
        print(f"{exc.label}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
