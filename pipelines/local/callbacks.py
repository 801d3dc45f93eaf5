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
import re
import secrets
import string
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from pipelines.atomic import write_text
from pipelines.errors import CallbackError
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
    record = store.callback_path(token)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_text(record, json.dumps({**step, "token": token, "queue_url": queue_url, "message": message,
                                   "status": WAITING}, indent=1))
    queue = store.queue_dir(queue_name(queue_url))
    queue.mkdir(parents=True, exist_ok=True)
    sent = queue / f"{time.time_ns()}-{token}.json"
    write_text(sent, json.dumps(message, indent=1))
    return sent


def record(store: Store, token: str) -> dict[str, Any]:
    """What the store holds of a token; CallbackError if it holds nothing."""
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise CallbackError(f"CallbackToken {token!r} is not a token (ten letters and digits)")
    try:
        return json.loads(store.callback_path(token).read_text())
    except FileNotFoundError:
        raise CallbackError(f"no Callback step of this store waits for the token {token} (ResourceNotFound)") from None
    except (OSError, ValueError) as exc:
        raise CallbackError(f"the record of token {token} cannot be read: {exc}") from None


def waiting(store: Store) -> list[dict[str, Any]]:
    """Every token that still waits for an answer, oldest first."""
    folder = store.root / "callbacks"
    found = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if entry.get("status") == WAITING:
            found.append(entry)
    return found


@contextlib.contextmanager
def _answering(store: Store, token: str) -> Iterator[dict[str, Any]]:
    """The token's record, locked, to be answered; CallbackError if it is answered already."""
    entry = record(store, token)
    lock = store.callback_path(token).with_suffix(".lock")
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        entry = record(store, token)
        if entry.get("status") != WAITING:
            raise CallbackError(f"token {token} was answered already: step {entry.get('step')} of execution "
                                f"{entry.get('execution_id')} is {entry.get('status')} (ConflictException)")
        yield entry
        write_text(store.callback_path(token), json.dumps(entry, indent=1))


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
    write_text(store.queue_dir(queue_name(entry["queue_url"])) / f"{time.time_ns()}-{token}.json",
               json.dumps({**entry["message"], "status": "Stopping"}, indent=1))


def expire(store: Store, token: str, reason: str) -> dict[str, Any]:
    """Fail a token that still waits (its step timed out); the record as it ends (an answer that came first
    wins)."""
    with contextlib.suppress(CallbackError):
        with _answering(store, token) as entry:
            entry.update(status=FAILED, failure_reason=reason, timed_out=True)
    return record(store, token)
