"""Persisted executions: ``<store>/executions/<id>/`` holds ``execution.json`` (rewritten atomically),
``definition.json`` (what ran, for ``retry``) and a lock held while an engine runs the execution.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from pipelines.errors import ExecutionError, NotFoundError, PipelineError, UnsafePathError
from pipelines.local import safe_files
from pipelines.local.store import plain_name

RECORD = "execution.json"
DEFINITION = "definition.json"
LOCK = ".lock"


def new_execution_id() -> str:
    """A SageMaker-like execution id (12 lower-case alphanumerics)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def now() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one ISO 8601 time to another (None unless both are known)."""
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@dataclass
class StepRecord:
    """What the execution record keeps of one step."""

    name: str
    type: str
    status: str
    start_time: str | None = None
    end_time: str | None = None
    failure_reason: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    property_files: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    cache_key: str | None = None
    cache_hit_from: str | None = None
    unenforced: list[str] = field(default_factory=list)
    reused_from: str | None = None  # selective execution: the reference execution whose result this is

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return seconds_between(self.start_time, self.end_time)


@dataclass
class ExecutionRecord:
    """One execution: parameters, status and its steps."""

    execution_id: str
    pipeline_name: str
    status: str
    parameters: dict[str, Any]
    start_time: str
    end_time: str | None = None
    failure_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    retries: int | None = 0  # executions retried with `retry`; None where not known (SageMaker's API does not say)
    selected_steps: list[str] | None = None  # selective execution: the only steps it runs
    reference_execution: str | None = None  # selective execution: where the other steps' results come from
    history: list[StepRecord] = field(default_factory=list)  # the tries of steps a `retry` ran again, oldest first
    unenforced: list[str] = field(default_factory=list)  # settings of the pipeline (not of a step) not enforced
    mlflow_run: dict[str, str] | None = None  # where the execution is tracked: run_id, experiment, tracking_uri

    def step(self, name: str) -> StepRecord | None:
        """The record of step ``name``, if it has run."""
        return next((s for s in self.steps if s.name == name), None)

    def stop(self, reason: str) -> None:
        """Stopped, as SageMaker records a stopped execution: the steps still running are Stopped too."""
        ended = now()
        for step in self.steps:
            if step.status not in ("Succeeded", "Failed"):
                step.status, step.end_time = "Stopped", step.end_time or ended
        self.status, self.end_time, self.failure_reason = "Stopped", ended, reason

    def save(self, store_root: Path) -> Path:
        """Write the record atomically; returns its path."""
        path = execution_dir(store_root, self.execution_id) / RECORD
        safe_files.write_text(store_root, path, json.dumps(asdict(self), indent=2, default=str))
        return path

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return seconds_between(self.start_time, self.end_time)

    @property
    def step_retries(self) -> int:
        """Attempts of its steps beyond each step's first: the retries its retry policies made, in this try and
        in the tries a ``retry`` ran again."""
        return sum(max(0, step.attempts - 1) for step in [*self.history, *self.steps])

    def unenforced_report(self) -> dict[str, list[str]]:
        """What the local engine accepted but did not enforce, by step ("(pipeline)" for the pipeline's own)."""
        report = {"(pipeline)": self.unenforced} if self.unenforced else {}
        return {**report, **{step.name: step.unenforced for step in self.steps if step.unenforced}}

    def earlier_tries(self, name: str) -> list[StepRecord]:
        """The tries of step ``name`` before the last ``retry``, oldest first."""
        return [step for step in self.history if step.name == name]


class UnreadableRecordError(ExecutionError):
    """An execution record exists but is not a record this engine can read (truncated, not UTF-8, wrong types)."""


def execution_dir(store_root: Path, execution_id: str) -> Path:
    """Where an execution's files live (the id must be a plain name: it becomes a folder)."""
    return store_root / "executions" / plain_name(execution_id, "execution id")


_TIME = "time"
_STEP_SHAPE: dict[str, tuple[Any, ...]] = {
    "name": (str,), "type": (str,), "status": (str,), "start_time": (_TIME, None), "end_time": (_TIME, None),
    "failure_reason": (str, None), "properties": (dict,), "property_files": (dict,), "attempts": (int,),
    "cache_key": (str, None), "cache_hit_from": (str, None), "unenforced": (list,), "reused_from": (str, None),
}
_RECORD_SHAPE: dict[str, tuple[Any, ...]] = {
    "execution_id": (str,), "pipeline_name": (str,), "status": (str,), "parameters": (dict,),
    "start_time": (_TIME,), "end_time": (_TIME, None), "failure_reason": (str, None), "steps": (list,),
    "retries": (int,), "selected_steps": (list, None), "reference_execution": (str, None), "history": (list,),
    "unenforced": (list,), "mlflow_run": (dict, None),
}


def _shape_problem(raw: Any, shape: dict[str, tuple[Any, ...]], where: str) -> str | None:
    """What in ``raw`` does not fit ``shape`` (field -> allowed types, None for null, _TIME for ISO 8601)."""
    if not isinstance(raw, dict):
        return f"{where} is {type(raw).__name__}, not an object"
    for name, allowed in shape.items():
        if name not in raw:
            if None in allowed or name in ("attempts", "retries", "unenforced", "property_files", "properties",
                                           "history"):
                continue
            return f"{where}.{name} is missing"
        value = raw[name]
        if value is None and None in allowed:
            continue
        if _TIME in allowed and isinstance(value, str):
            try:
                datetime.fromisoformat(value)
                continue
            except ValueError:
                return f"{where}.{name} {value!r} is not an ISO 8601 time"
        if not any(isinstance(value, t) and not (t is int and isinstance(value, bool))
                   for t in allowed if isinstance(t, type)):
            return f"{where}.{name} has the wrong type ({type(value).__name__})"
    return None


def read_record(store_root: Path, path: Path) -> ExecutionRecord:
    """Parse one execution.json; UnreadableRecordError naming the file and what is wrong with it (a link or a
    special file where the record should be is UnsafePathError)."""
    try:
        raw = json.loads(safe_files.read_bytes(store_root, path).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UnreadableRecordError(f"{path} is unreadable: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UnreadableRecordError(f"{path} is unreadable: not JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise UnreadableRecordError(f"{path} is unreadable: nested too deeply") from None
    problem = _shape_problem(raw, _RECORD_SHAPE, "record")
    for where in ("steps", "history"):
        if problem is None:
            problem = next((p for i, s in enumerate(raw.get(where, []))
                            if (p := _shape_problem(s, _STEP_SHAPE, f"{where}[{i}]"))), None)
    if problem is not None:
        raise UnreadableRecordError(f"{path} is unreadable: {problem}")
    step_fields = {f.name for f in fields(StepRecord)}
    steps, history = ([StepRecord(**{k: v for k, v in s.items() if k in step_fields}) for s in raw.pop(where, [])]
                      for where in ("steps", "history"))
    known = {f.name for f in fields(ExecutionRecord)}
    return ExecutionRecord(**{k: v for k, v in raw.items() if k in known}, steps=steps, history=history)


def load(store_root: Path, execution_id: str) -> ExecutionRecord:
    """The record of one execution; ExecutionError if there is none or it is unreadable."""
    path = execution_dir(store_root, execution_id) / RECORD
    try:
        return read_record(store_root, path)
    except FileNotFoundError:
        raise ExecutionError(f"no execution {execution_id!r} in the store {store_root}; "
                             "`python -m pipelines.run executions` lists them") from None


def record_paths(store_root: Path) -> list[Path]:
    """The record file of every execution folder, by id (folders that are links or hold none are left out)."""
    folder = store_root / "executions"
    return [folder / name / RECORD for name, kind in safe_files.entries(store_root, folder) if kind == "folder"
            and safe_files.kind(store_root, folder / name / RECORD) is not None]


def all_records(store_root: Path, warn: Callable[[str], None] | None = None) -> Iterator[ExecutionRecord]:
    """Every readable execution in the store, newest first; ``warn`` is told of each one that cannot be read
    (a link or a special file where a folder or record should be among them)."""
    records = []
    folder = store_root / "executions"
    for name, kind in safe_files.entries(store_root, folder):
        path = folder / name / RECORD
        try:
            if kind != "folder":
                raise UnsafePathError(f"{folder / name} is a symbolic link or a special file, not an execution's "
                                      "folder; links are never followed")
            if safe_files.kind(store_root, path) is None:
                continue
            records.append(read_record(store_root, path))
        except (PipelineError, OSError) as exc:
            if warn is not None:
                warn(f"{exc}; ignored" if isinstance(exc, PipelineError) else f"{path}: {exc}; ignored")
    yield from sorted(records, key=lambda r: r.start_time, reverse=True)


def save_definition(store_root: Path, execution_id: str, definition: dict[str, Any]) -> None:
    """Keep the definition an execution runs, so that it can be retried as it was."""
    safe_files.write_text(store_root, execution_dir(store_root, execution_id) / DEFINITION,
                          json.dumps(definition, indent=1))


def load_definition(store_root: Path, execution_id: str) -> dict[str, Any]:
    """The definition an execution ran; ExecutionError if it was not kept or cannot be read."""
    path = execution_dir(store_root, execution_id) / DEFINITION
    try:
        definition = json.loads(safe_files.read_bytes(store_root, path))
    except FileNotFoundError:
        raise ExecutionError(f"execution {execution_id} has no saved definition ({path}); "
                             "it was run by an older version and cannot be retried or fully described") from None
    except (ValueError, RecursionError) as exc:
        raise UnreadableRecordError(f"{path} is unreadable: not JSON ({exc})") from None
    if not isinstance(definition, dict):
        raise UnreadableRecordError(f"{path} is unreadable: not a JSON object")
    return definition


def pipeline_records(store_root: Path, name: str) -> list[ExecutionRecord]:
    """The executions of pipeline ``name``, newest first; NotFoundError if it has none."""
    found = [r for r in all_records(store_root) if r.pipeline_name == name]
    if not found:
        raise NotFoundError(f"no pipeline {name!r} has executions in the store {store_root}")
    return found


def latest_definition(store_root: Path, name: str, found: list[ExecutionRecord] | None = None
                      ) -> tuple[dict[str, Any], str]:
    """(definition, execution id) of the newest execution of pipeline ``name`` that kept its definition (among
    ``found``, its records already read, if given); NotFoundError or ExecutionError if there is none."""
    for record in found if found is not None else pipeline_records(store_root, name):
        try:
            return load_definition(store_root, record.execution_id), record.execution_id
        except ExecutionError:
            continue
    raise ExecutionError(f"no execution of {name} kept its definition")


def status_of(store_root: Path, record: ExecutionRecord) -> str:
    """The recorded status, marking an execution whose engine died while it ran."""
    if record.status == "Executing" and not ExecutionLock(store_root, record.execution_id).is_held_elsewhere():
        return "Executing (interrupted: `retry` resumes it)"
    return record.status


def failure_of(record: ExecutionRecord) -> str | None:
    """Why an execution failed: its first failed step's reason (SageMaker's own reason for an execution only
    says "Step failure: One or multiple steps failed.")."""
    failed = next((step for step in record.steps if step.status == "Failed" and step.failure_reason), None)
    return f"{failed.name}: {failed.failure_reason}" if failed else record.failure_reason


def produced_properties(step: StepRecord, definition_steps: dict[str, Any]) -> dict[str, Any]:
    """The properties a step produced: everything the Describe* call adds to the step's own arguments."""
    arguments = definition_steps.get(step.name, {}).get("Arguments", {})
    return {k: v for k, v in step.properties.items() if k not in arguments}


def output_locations(step: StepRecord) -> list[tuple[str, str]]:
    """(what, s3 URI) of everything a step wrote: processing outputs, the model artifact, transform output."""
    properties = step.properties
    found = [(f"output {o.get('OutputName')}", o["S3Output"]["S3Uri"])
             for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", []) if "S3Output" in o]
    if "S3ModelArtifacts" in properties.get("ModelArtifacts", {}):
        found.append(("model", properties["ModelArtifacts"]["S3ModelArtifacts"]))
    if "S3OutputPath" in properties.get("TransformOutput", {}):
        found.append(("transform output", properties["TransformOutput"]["S3OutputPath"]))
    return [(what, uri) for what, uri in found if isinstance(uri, str)]


class ExecutionLock:
    """An exclusive lock on an execution, held by the engine while it runs it.

    The OS drops the lock when the holder dies (even by SIGKILL), so a free lock on an
    execution still recorded as Executing means its engine is gone.
    """

    def __init__(self, store_root: Path, execution_id: str):
        self.store_root = store_root
        self.path = execution_dir(store_root, execution_id) / LOCK
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        fd = safe_files.open_lock(self.store_root, self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        """True while some engine runs this execution."""
        if self.acquire():
            self.release()
            return False
        return True
