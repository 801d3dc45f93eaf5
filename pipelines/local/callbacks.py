"""Callback steps' tokens in a local store, and the calls that answer them, shaped as boto3's
``send_pipeline_execution_step_success`` / ``send_pipeline_execution_step_failure``.

A Callback step writes its message (SageMaker's shape: ``token``, ``pipelineExecutionArn``, ``arguments``,
``status``) to the local queue named by its ``SqsQueueUrl`` (``<store>/queues/<name>/``) and a record of its
token (``<store>/callbacks/<token>.json``), then waits until the token is answered. Answering writes the
record again, whole (temporary name, then rename), under a lock, so a token is answered once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import string
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from pipelines.atomic import TMP_PREFIX
from pipelines.errors import CallbackError, PipelineError, UnsafePathError
from pipelines.local import safe_files
from pipelines.local.store import Store

TOKEN = re.compile(r"[A-Za-z0-9]{10}")  # SendPipelineExecutionStepSuccess: CallbackToken, fixed length 10
MAX_OUTPUTS, MAX_VALUE, MAX_REASON = 50, 1024, 256  # OutputParameters items, a Value's length, FailureReason's
# an SQS queue URL: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (or the legacy REGION.queue.amazonaws.com)
QUEUE_URL = re.compile(r"https://(?:sqs\.[a-z0-9-]+|[a-z0-9-]+\.queue)\.amazonaws\.com(?:\.cn)?/\d{12}/"
                       r"(?P<name>[A-Za-z0-9_-]{1,80}(?:\.fifo)?)")
WAITING, SUCCEEDED, FAILED = "Waiting", "Succeeded", "Failed"


def new_token() -> str:
    """A token as SageMaker makes them: ten letters and digits."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(10))


def queue_name(url: str) -> str:
    """The queue's name in an SQS queue URL; CallbackError if it is not one."""
    found = QUEUE_URL.fullmatch(url) if isinstance(url, str) else None
    if found is None:
        raise CallbackError(f"SqsQueueUrl {url!r} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/"
                            "ACCOUNT/NAME)")
    return found.group("name")


def send_message(store: Store, token: str, queue_url: str, execution_arn: str, arguments: dict[str, Any],
                 step: dict[str, Any]) -> Path:
    """Record a new token (``step``: what the record says of the step) and send its message to the queue;
    the message's file."""
    message = {"token": token, "pipelineExecutionArn": execution_arn, "arguments": arguments, "status": "Executing"}
    safe_files.write_text(store.root, store.callback_path(token),
                          json.dumps({**step, "token": token, "queue_url": queue_url, "message": message,
                                      "status": WAITING}, indent=1))
    return _send(store, queue_url, token, message)


def _send(store: Store, queue_url: str, token: str, message: dict[str, Any]) -> Path:
    """Put ``message`` in the local queue of ``queue_url``; its file."""
    sent = store.queue_dir(queue_name(queue_url)) / f"{time.time_ns()}-{token}.json"
    safe_files.write_text(store.root, sent, json.dumps(message, indent=1))
    return sent


def record(store: Store, token: str) -> dict[str, Any]:
    """What the store holds of a token; CallbackError if it holds nothing or what it holds is not a token's
    record (naming the file and what is wrong)."""
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise CallbackError(f"CallbackToken {token!r} is not a token (ten letters and digits)")
    try:
        return _read(store, store.callback_path(token))
    except FileNotFoundError:
        raise CallbackError(f"no Callback step of this store waits for the token {token} (ResourceNotFound)") from None


def _read(store: Store, path: Path) -> dict[str, Any]:
    """One token's record, its shape checked; CallbackError naming the file if it is not a record
    (UnsafePathError for a link or a special file)."""
    try:
        entry = json.loads(safe_files.read_bytes(store.root, path))
    except (ValueError, RecursionError) as exc:
        raise CallbackError(f"{path} is not a callback token's record: not JSON ({exc})") from None
    problem = _shape_problem(entry, path.stem)
    if problem:
        raise CallbackError(f"{path} is not a callback token's record: {problem}")
    return entry


def _shape_problem(entry: Any, token: str) -> str | None:
    """What in ``entry`` is not as ``send_message`` writes a record (and an answer keeps it)."""
    if not isinstance(entry, dict):
        return f"it holds a JSON {type(entry).__name__}, not an object"
    texts = {"token": token, "queue_url": None, "status": None, "execution_id": None, "step": None}
    for name, expected in texts.items():
        if not isinstance(entry.get(name), str) or (expected is not None and entry[name] != expected):
            return f"{name} is missing or not {expected or 'text'}"
    if entry["status"] not in (WAITING, SUCCEEDED, FAILED):
        return f"status {entry['status']!r} is not {WAITING}, {SUCCEEDED} or {FAILED}"
    message = entry.get("message")
    if not (isinstance(message, dict) and isinstance(message.get("pipelineExecutionArn"), str)
            and isinstance(message.get("arguments"), dict)):
        return "message is missing, or lacks its pipelineExecutionArn or arguments"
    if not isinstance(entry.get("output_parameters", []), list) or not all(
            isinstance(item, dict) and isinstance(item.get("Name"), str) and isinstance(item.get("Value"), str)
            for item in entry.get("output_parameters", [])):
        return "output_parameters is not a list of {Name, Value} text"
    return None


def waiting(store: Store, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every token that still waits for an answer, oldest first; ``warn`` is told of each file of the folder
    that is not a token's record (which is left out)."""
    folder = store.root / "callbacks"
    found = []
    for name, kind in safe_files.entries(store.root, folder):
        if not name.endswith(".json") or name.startswith(TMP_PREFIX):
            continue
        try:
            if kind != "file":
                raise UnsafePathError(f"{folder / name} is a symbolic link or a special file, not a token's record; "
                                      "links are never followed")
            entry = _read(store, folder / name)
            sent = os.stat(folder / name, follow_symlinks=False).st_mtime
        except (PipelineError, OSError) as exc:
            if warn is not None:
                warn(f"{exc}; ignored")
            continue
        if entry["status"] == WAITING:
            found.append((sent, name, entry))
    return [entry for _, _, entry in sorted(found, key=lambda item: item[:2])]


@contextlib.contextmanager
def _answering(store: Store, token: str) -> Iterator[dict[str, Any]]:
    """The token's record, locked, to be answered; CallbackError if it is answered already. What the block
    leaves in the record is checked before it is saved: nothing invalid is ever written."""
    path = store.callback_path(token)
    record(store, token)
    fd = safe_files.open_lock(store.root, path.with_suffix(".lock"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        entry = record(store, token)
        if entry["status"] != WAITING:
            raise CallbackError(f"token {token} was answered already: step {entry['step']} of execution "
                                f"{entry['execution_id']} is {entry['status']} (ConflictException)")
        yield entry
        problem = _shape_problem(entry, token)
        if problem:  # a defect of ours, never saved
            raise CallbackError(f"the answer to token {token} would leave its record invalid ({problem}); "
                                "nothing was saved")
        safe_files.write_text(store.root, path, json.dumps(entry, indent=1))
    finally:
        os.close(fd)


def send_pipeline_execution_step_success(store: Store, CallbackToken: str,  # noqa: N803 - boto3's names
                                         OutputParameters: list[dict[str, str]] | None = None,
                                         ClientRequestToken: str | None = None) -> dict[str, str]:
    """Complete the Callback step waiting for ``CallbackToken``, with its output parameters (as boto3's call)."""
    outputs = _checked_outputs(OutputParameters or [])
    with _answering(store, CallbackToken) as entry:
        entry.update(status=SUCCEEDED, output_parameters=outputs)
    return {"PipelineExecutionArn": entry["message"]["pipelineExecutionArn"]}


def send_pipeline_execution_step_failure(store: Store, CallbackToken: str,  # noqa: N803 - boto3's names
                                         FailureReason: str | None = None,
                                         ClientRequestToken: str | None = None) -> dict[str, str]:
    """Fail the Callback step waiting for ``CallbackToken``, with ``FailureReason`` (as boto3's call)."""
    if FailureReason is not None and (not isinstance(FailureReason, str) or len(FailureReason) > MAX_REASON):
        raise CallbackError(f"FailureReason must be text of at most {MAX_REASON} characters")
    with _answering(store, CallbackToken) as entry:
        entry.update(status=FAILED, failure_reason=FailureReason or "")
    return {"PipelineExecutionArn": entry["message"]["pipelineExecutionArn"]}


def _checked_outputs(outputs: Any) -> list[dict[str, str]]:
    if not isinstance(outputs, list) or len(outputs) > MAX_OUTPUTS:
        raise CallbackError(f"OutputParameters must be a list of at most {MAX_OUTPUTS} {{Name, Value}} items")
    for item in outputs:
        if not (isinstance(item, dict) and set(item) == {"Name", "Value"} and isinstance(item["Name"], str)
                and isinstance(item["Value"], str) and 0 < len(item["Name"]) <= 256 and len(item["Value"]) <= MAX_VALUE):
            raise CallbackError(f"OutputParameters: {item!r} is not {{Name, Value}} text (a Name of 1 to 256 "
                                f"characters, a Value of at most {MAX_VALUE})")
    return [dict(item) for item in outputs]


def answer(store: Store, token: str, timeout: float | None, stopping: threading.Event,
           poll_seconds: float = 0.2) -> dict[str, Any]:
    """The token's record once it is answered, or once ``timeout`` seconds have passed or ``stopping`` is set
    (status still ``Waiting``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        entry = record(store, token)
        if entry.get("status") != WAITING or (deadline is not None and time.monotonic() >= deadline):
            return entry
        if stopping.wait(poll_seconds):
            return record(store, token)


def send_stopping(store: Store, token: str) -> None:
    """The message SageMaker sends when the execution stops while the step waits: ``status`` ``Stopping``."""
    entry = record(store, token)
    _send(store, entry["queue_url"], token, {**entry["message"], "status": "Stopping"})


def expire(store: Store, token: str, reason: str) -> dict[str, Any]:
    """Fail a token that still waits (its step timed out); the record as it ends (an answer that came first
    wins)."""
    with contextlib.suppress(CallbackError):
        with _answering(store, token) as entry:
            entry.update(status=FAILED, failure_reason=reason, timed_out=True)
    return record(store, token)
