"""Local executions started in the background (the studio's Start and Retry), and stopped (its Stop).

Each runs in a process of its own, in a session of its own (a closed browser tab or a stopped studio never
stops it), started as ``python -m pipelines.local.launcher EXECUTION_DIR``. The execution's folder keeps
what it was asked to do (``launch.json``), the engine's process id with its start time (``engine.pid``) and
what the engine printed (``engine.log``). Stop interrupts the engine as Ctrl-C does, then records the
execution as Stopped: its succeeded steps are kept, and Retry runs the rest, as on SageMaker.

A thread of the starting process waits for each launcher, so that one that ended is reaped at once (no
zombie). Stop signals a process only once it is sure it is that execution's launcher: the process the record
names started when the record says (``/proc/PID/stat``) and runs the launcher of that folder; a pid the system
has since given to another process gets nothing. Retry checks that the execution is not running and launches
its engine under a launch lock (``.launch.lock``), held until the engine holds the execution's own lock, so
that two presses at once launch one engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from pipelines.config import PipelineConfig, build_config
from pipelines.errors import ExecutionError, ExecutionInterrupted, PipelineError
from pipelines.local import executions, package_index, safe_files
from pipelines.local.job_runtime.processes import stat_fields
from pipelines.local.executions import ExecutionLock, new_execution_id
from pipelines.local.package_index import IndexSettings
from pipelines.local.store import Store
from pipelines.selection import Selection

SPEC = "launch.json"
PID = "engine.pid"
LOG = "engine.log"
LAUNCH_LOCK = ".launch.lock"
MODULE = "pipelines.local.launcher"
STOPPED = "stopped by request (Stop)"  # a stopped execution's FailureReason
STARTED_WITHIN_SECONDS = 60.0  # the child writes its record within this long, or its start is reported as failed


def start(store_root: Path, config: PipelineConfig, definition: dict[str, Any], pipeline_name: str,
          overrides: dict[str, Any], selection: Selection | None = None) -> str:
    """Start a new execution of ``definition`` with typed ``overrides`` (only the selected steps, with a
    ``selection``, checked here as SageMaker checks it); returns its id once its record exists. What the engine
    cannot run is refused here, before anything is written."""
    from pipelines.local.engine import runnable_graph
    from pipelines.local.target import LocalTarget

    nodes = runnable_graph(definition, LocalTarget(config, store_root).engine_options())
    if selection is not None:
        from pipelines.local import selective

        selective.reused_steps(nodes, selection, store_root, pipeline_name)
    execution_id = new_execution_id()
    _launch(store_root, execution_id, {"action": "run", "definition": definition, "pipeline_name": pipeline_name,
                                       "overrides": overrides, "config": config.as_values(),
                                       "selection": None if selection is None else
                                       {"steps": list(selection.steps), "reference": selection.reference}})
    return execution_id


class LaunchLock(ExecutionLock):
    """Held from the check that an execution is not running until the engine launched for it holds its lock."""

    def __init__(self, store_root: Path, execution_id: str):
        super().__init__(store_root, execution_id)
        self.path = self.path.with_name(LAUNCH_LOCK)


def retry(store_root: Path, config: PipelineConfig, execution_id: str) -> str:
    """Re-run the failed, stopped and never-run steps of an execution in the background (RetryPipelineExecution)."""
    launching = LaunchLock(store_root, execution_id)
    if not launching.acquire():
        raise ExecutionError(f"execution {execution_id} is still running: a retry of it is starting")
    try:
        record = executions.load(store_root, execution_id)
        if record.status == "Succeeded":
            raise ExecutionError(f"execution {execution_id} succeeded; there is nothing to retry")
        if ExecutionLock(store_root, execution_id).is_held_elsewhere():
            raise ExecutionError(f"execution {execution_id} is still running")
        _launch(store_root, execution_id, {"action": "retry", "config": config.as_values()}, since=record.retries)
    finally:
        launching.release()
    return execution_id


def stop_refusal(store_root: Path, execution_id: str) -> str | None:
    """Why Stop cannot interrupt the execution now (None: it can): it is not running, or not by the studio's
    launcher (a terminal runs it)."""
    directory = executions.execution_dir(store_root, execution_id)
    if not ExecutionLock(store_root, execution_id).is_held_elsewhere():
        return f"execution {execution_id} is not running"
    if safe_files.kind(store_root, directory / PID) is None:
        return f"execution {execution_id} was started from a terminal; stop it there with Ctrl-C"
    if _launcher(directory) is None:
        return (f"execution {execution_id} is not running from the studio: the process its {PID} names is not its "
                "launcher (that one ended); if a terminal runs it, stop it there with Ctrl-C")
    return None


def stop(store_root: Path, execution_id: str) -> None:
    """Interrupt a running execution's engine (StopPipelineExecution); ExecutionError saying why it cannot."""
    refusal = stop_refusal(store_root, execution_id)
    if refusal is not None:
        raise ExecutionError(refusal)
    try:
        _interrupt(executions.execution_dir(store_root, execution_id))
    except ProcessLookupError:  # its launcher ended since the check
        raise ExecutionError(f"execution {execution_id} is not running") from None


def _interrupt(directory: Path) -> None:
    """SIGINT to the folder's launcher through a pidfd: held by one, the process checked is the process signalled,
    even if it ends and its pid is given to another in between; ProcessLookupError if it is gone."""
    launched = _launcher(directory)
    if launched is None:
        raise ProcessLookupError
    handle = os.pidfd_open(launched[0])
    try:
        if _launcher(directory) != launched:
            raise ProcessLookupError
        signal.pidfd_send_signal(handle, signal.SIGINT)
    finally:
        os.close(handle)


def engine_log(store_root: Path, execution_id: str) -> Path:
    """What the engine of a background execution printed."""
    return executions.execution_dir(store_root, execution_id) / LOG


def _launch(store_root: Path, execution_id: str, spec: dict[str, Any], since: int | None = None) -> None:
    directory = executions.execution_dir(store_root, execution_id)
    safe_files.write_text(store_root, directory / SPEC, json.dumps(spec, default=str))
    with safe_files.open_append(store_root, directory / LOG) as log:
        process = subprocess.Popen([sys.executable, "-m", MODULE, str(directory)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=store_root)
    started = _process(process.pid)  # read before the waiter may reap it: until then the pid is its own
    threading.Thread(target=process.wait, name=f"reaps launcher {process.pid}", daemon=True).start()
    safe_files.write_text(store_root, directory / PID,
                          json.dumps({"pid": process.pid, "start_time": started[0] if started else None}))
    deadline = time.monotonic() + STARTED_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if _has_started(store_root, execution_id, since):
            return
        if process.returncode is not None:  # set by the waiter
            if _has_started(store_root, execution_id, since):
                return
            lines = safe_files.read_text(store_root, directory / LOG).strip().splitlines()
            raise ExecutionError(lines[-1] if lines else f"the engine of {execution_id} exited with {process.returncode}")
        time.sleep(0.05)
    raise ExecutionError(f"the engine of {execution_id} did not start within {STARTED_WITHIN_SECONDS:.0f}s "
                         f"(see {directory / LOG})")


def _launcher(directory: Path) -> tuple[int, int] | None:
    """(pid, start time) of the launcher of this execution folder while it runs, as ``engine.pid`` records it;
    None if the process it names is gone, or is another (a pid reused, a start time or command line that differ)."""
    try:
        recorded = json.loads(safe_files.read_bytes(directory.parent.parent, directory / PID))
        pid, start_time = recorded["pid"], recorded["start_time"]
    except (OSError, ValueError, TypeError, KeyError, PipelineError):  # a link or special file: nothing to signal
        return None
    if type(pid) is not int or pid <= 0:
        return None
    found = _process(pid)
    if found is None or found[0] != start_time or found[1][:2] != ["-m", MODULE] or len(found[1]) != 3 \
            or os.path.realpath(found[1][2]) != os.path.realpath(directory):
        return None
    return pid, start_time


def _process(pid: int) -> tuple[int, list[str]] | None:
    """(start time in clock ticks after boot, arguments after the program) of a live process; None if it is gone
    or a zombie."""
    fields = stat_fields(pid)
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:-1]
    except OSError:
        return None
    if len(fields) <= 19 or fields[0] == "Z":
        return None
    return int(fields[19]), [os.fsdecode(argument) for argument in arguments]


def _has_started(store_root: Path, execution_id: str, since: int | None) -> bool:
    """True once the record says the engine began: it exists (a new execution) or counts one more retry."""
    try:
        record = executions.load(store_root, execution_id)
    except ExecutionError:
        return False
    return since is None or (record.retries or 0) > since


def _run(directory: Path, index: IndexSettings) -> int:
    """The child: run what ``launch.json`` asks for to the end, as the CLI would in a terminal (jobs' pip
    installing from ``index``)."""
    from pipelines.lead_scoring import BuiltPipeline
    from pipelines.local.engine import RunOptions
    from pipelines.local.target import LocalTarget
    from pipelines.progress import Progress

    try:
        spec = json.loads(safe_files.read_bytes(directory.parent.parent, directory / SPEC))
        if not isinstance(spec, dict) or spec.get("action") not in ("run", "retry"):
            raise ValueError("not a launch record")
    except (OSError, ValueError, RecursionError, PipelineError) as exc:
        raise ExecutionError(f"{directory} is not an execution started in the background: {directory / SPEC} "
                             f"cannot be read ({exc})") from None
    store_root, execution_id = directory.parent.parent, directory.name
    config = build_config(("the launch record", spec["config"]))
    chosen = spec.get("selection")
    selection = Selection(tuple(chosen["steps"]), chosen["reference"]) if chosen else None
    target = LocalTarget(config, store=store_root, execution_id=execution_id, selection=selection,
                         options=RunOptions(package_index=index, stop_reason=STOPPED))
    with Progress(execution_id, stream=sys.stdout, live=False) as progress:
        try:
            if spec["action"] == "retry":
                result = target.retry(execution_id, progress)
            else:
                built = BuiltPipeline(None, json.dumps(spec["definition"]), (), "", spec["pipeline_name"])
                result = target.run(built, spec["overrides"], progress)
        except ExecutionInterrupted:  # the engine recorded it Stopped, and the target tracked it
            print(f"execution {execution_id}: Stopped")
            return 1
        except KeyboardInterrupt:  # before or after the engine ran
            record = executions.load(store_root, execution_id)
            if record.status == "Executing":
                record.stop(STOPPED)
                record.save(store_root)
            target.track(record, executions.load_definition(store_root, execution_id), Store(store_root), progress)
            print(f"execution {execution_id}: {record.status}")
            return 1
    print(f"execution {execution_id}: {result.status}")
    return 0 if result.status == "Succeeded" else 1


def main(argv: Sequence[str]) -> int:
    """Entry of the background process: ``python -m pipelines.local.launcher EXECUTION_DIR``."""
    if len(argv) != 1:
        print("usage: python -m pipelines.local.launcher EXECUTION_DIR (the studio starts it)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # terminated: stopped as Ctrl-C stops it
    try:
        return _run(Path(argv[0]), package_index.from_user(os.environ))
    except PipelineError as exc:
        print(f"{exc.label}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
