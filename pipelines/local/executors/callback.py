"""Callback: send the step's message, with a new token, to its local queue, and wait until the token is
answered (``python -m pipelines.run callbacks succeed|fail TOKEN``, or the boto3-shaped functions of
``pipelines.local.callbacks``); the answer's output parameters become the step's properties."""

from __future__ import annotations

from pipelines.errors import CallbackError
from pipelines.local import callbacks
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.local.executors.lambda_step import declared_outputs, typed


def execute(run: StepRun) -> StepOutcome:
    """Send the message and wait for its token's answer (at most ``run.callback_timeout`` seconds)."""
    kinds = declared_outputs(run.definition.get("OutputParameters") or [])
    token = callbacks.new_token()
    queue_url = run.definition.get("SqsQueueUrl")
    execution_arn = run.context.execution["PipelineExecutionArn"]
    try:
        sent = callbacks.send_message(run.store, token, queue_url, execution_arn, run.arguments,
                                      {"execution_id": run.execution_id, "step": run.name})
    except CallbackError as exc:
        raise StepFailed(f"ClientError: {exc}") from None
    run.report(f"SqsQueueUrl = {queue_url}: the message goes to the store's local queue {sent.parent}, not to SQS; "
               "the step waits " + (f"{run.callback_timeout:g} s (--callback-timeout)" if run.callback_timeout
                                    else "until its token is answered (--callback-timeout sets a limit)"))
    run.log(f"sent token {token} to {queue_url} (the local queue {sent.parent}); waiting for "
            f"`python -m pipelines.run callbacks succeed {token}` (or fail)")
    entry = callbacks.answer(run.store, token, run.callback_timeout, run.stopping)
    if entry.get("status") == callbacks.WAITING and run.stopping.is_set():
        callbacks.send_stopping(run.store, token)
        entry = callbacks.expire(run.store, token, f"the engine stopped while the step waited for token {token}; "
                                                   "a Stopping message was sent to its queue")
    elif entry.get("status") == callbacks.WAITING:
        entry = callbacks.expire(run.store, token, f"the callback token {token} was not answered within "
                                                   f"{run.callback_timeout:g} s (--callback-timeout)")
    if entry["status"] == callbacks.FAILED:
        raise StepFailed(entry.get("failure_reason") or f"the callback token {token} was answered with a failure")
    given = {item["Name"]: item["Value"] for item in entry.get("output_parameters", [])}
    outputs = {name: typed(value, kinds.get(name, "String"), f"OutputParameters['{name}']")
               for name, value in given.items()}
    for name in kinds:
        if name not in outputs:
            run.log(f"the answer gave no {name!r}; a reference to Steps.{run.name}.OutputParameters['{name}'] fails")
    run.log(f"token {token} answered: succeeded with {len(outputs)} output parameters")
    return StepOutcome(properties={"CallbackToken": token, "SqsQueueUrl": queue_url, "OutputParameters": outputs})
