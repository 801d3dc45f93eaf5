"""Callback steps built by the installed SDK v3 (``CallbackStep``): the message lands in the store's local queue
in SageMaker's shape, the step waits until its token is answered (the ``callbacks`` command, or the boto3-shaped
functions), and a timeout or Ctrl-C ends the wait as a failure."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.errors import CallbackError
from pipelines.local import callbacks, executions
from pipelines.local.store import Store

REPO = Path(__file__).resolve().parents[4]
QUEUE = "https://sqs.us-east-1.amazonaws.com/111122223333/approvals"


def build() -> dict:
    """A CallbackStep with a parameter among its inputs, and a ConditionStep on its Integer output."""
    from sagemaker.core.workflow.conditions import ConditionGreaterThan
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.mlops.workflow.callback_step import CallbackOutput, CallbackOutputTypeEnum, CallbackStep
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.pipeline import Pipeline

    rows = ParameterInteger(name="Rows", default_value=100)
    approved = CallbackOutput(output_name="approved_rows", output_type=CallbackOutputTypeEnum.Integer)
    approve = CallbackStep(name="Approve", sqs_queue_url=QUEUE, inputs={"rows": rows, "team": "scoring"},
                           outputs=[approved])
    gate = ConditionStep(name="Gate", conditions=[ConditionGreaterThan(left=approve.properties.Outputs["approved_rows"],
                                                                       right=50)],
                         if_steps=[FailStep(name="TooMany", error_message="too many rows approved")], else_steps=[])
    return json.loads(Pipeline(name="approvals", steps=[approve, gate], parameters=[rows]).definition())


@pytest.fixture
def pipeline(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    (tmp_path / "approvals.json").write_text(json.dumps(build()))
    return tmp_path


def start(tmp_path: Path, *arguments: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    return subprocess.Popen([sys.executable, "-m", "pipelines.run", "--definition", str(tmp_path / "approvals.json"),
                             "--store", str(tmp_path / "store"), *arguments], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def queued(tmp_path: Path, count: int = 1, seconds: float = 60) -> list[dict]:
    """The messages of the local queue, once there are ``count``."""
    folder = tmp_path / "store" / "queues" / "approvals"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if len(files) >= count:
            return [json.loads(path.read_text()) for path in files]
        time.sleep(0.1)
    raise AssertionError(f"no {count} messages in {folder}")


def callbacks_cli(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", "callbacks", *arguments, "--store",
                           str(tmp_path / "store")], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_step_sends_sagemakers_message_and_waits_until_the_command_answers_it(pipeline):
    run = start(pipeline, "--parameter", "Rows=40")
    [message] = queued(pipeline)
    assert set(message) == {"token", "pipelineExecutionArn", "arguments", "status"}
    assert re.fullmatch(r"[A-Za-z0-9]{10}", message["token"]) and message["status"] == "Executing"
    assert message["arguments"] == {"rows": 40, "team": "scoring"}
    assert re.fullmatch(r"arn:aws:sagemaker:local:\d{12}:pipeline/approvals/execution/[a-z0-9]+",
                        message["pipelineExecutionArn"])
    listed = callbacks_cli(pipeline, "list")
    [row] = [line.split() for line in listed.stdout.splitlines() if message["token"] in line]
    assert listed.returncode == 0 and row[0] == message["token"] and row[2] == "Approve" and '"rows":' in row[3]
    time.sleep(0.5)
    assert run.poll() is None  # still waiting
    answered = callbacks_cli(pipeline, "succeed", message["token"], "--output", "approved_rows=30")
    assert answered.returncode == 0, answered.stderr
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output[-3000:]
    [record] = executions.all_records(Store(pipeline / "store").root, lambda line: None)
    assert record.step("Approve").properties["OutputParameters"] == {"approved_rows": 30}
    assert record.step("Gate").properties["Outcome"] in (False, "False")
    again = callbacks_cli(pipeline, "succeed", message["token"])
    assert again.returncode == 2 and "was answered already" in again.stderr and "Traceback" not in again.stderr
    assert callbacks_cli(pipeline, "list").stdout.strip() == "no Callback step waits for a token"


def test_a_failure_answer_fails_the_step_with_its_reason(pipeline):
    run = start(pipeline)
    [message] = queued(pipeline)
    answered = callbacks.send_pipeline_execution_step_failure(Store(pipeline / "store"),
                                                              CallbackToken=message["token"],
                                                              FailureReason="the reviewer said no")
    assert answered == {"PipelineExecutionArn": message["pipelineExecutionArn"]}
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 1 and "Approve: Failed in " in output and "the reviewer said no" in output


def test_a_token_not_answered_in_time_fails_the_step(pipeline):
    run = start(pipeline, "--callback-timeout", "1")
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 1
    [record] = executions.all_records(Store(pipeline / "store").root, lambda line: None)
    token = record.step("Approve").failure_reason.split()[3]
    assert record.step("Approve").failure_reason == (
        f"the callback token {token} was not answered within 1 s (--callback-timeout)")
    with pytest.raises(CallbackError, match="was answered already"):  # a late answer is refused
        callbacks.send_pipeline_execution_step_success(Store(pipeline / "store"), CallbackToken=token)


def test_ctrl_c_while_waiting_sends_the_stopping_message_and_exits(pipeline):
    run = start(pipeline)
    [message] = queued(pipeline)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 130, output[-2000:]
    first, stopping = queued(pipeline, 2)
    assert first == message and stopping == {**message, "status": "Stopping"}


@pytest.mark.parametrize("call, says", [
    (dict(CallbackToken="short"), "is not a token (ten letters and digits)"),
    (dict(CallbackToken="AAAAAAAAAA"), "no Callback step of this store waits for the token AAAAAAAAAA"),
    (dict(CallbackToken="AAAAAAAAAA", OutputParameters=[{"Name": "x", "Value": "v" * 1025}]),
     "a Value of at most 1024"),
    (dict(CallbackToken="AAAAAAAAAA", OutputParameters=[{"Name": f"o{i}", "Value": ""} for i in range(51)]),
     "at most 50"),
])
def test_answers_the_api_would_refuse_are_refused(tmp_path, call, says):
    with pytest.raises(CallbackError, match=re.escape(says)):
        callbacks.send_pipeline_execution_step_success(Store(tmp_path / "store"), **call)


def test_a_queue_url_that_is_not_sqs_fails_the_step_as_a_client_error(tmp_path):
    from tests.pipelines.local.helpers import engine

    run, _ = engine(tmp_path / "store")
    step = {"Name": "Approve", "Type": "Callback", "SqsQueueUrl": "https://example.com/q", "Arguments": {},
            "OutputParameters": []}
    record = run.run({"Version": "2020-12-01", "Steps": [step]}, "p", {})
    assert record.step("Approve").failure_reason == (
        "ClientError: SqsQueueUrl 'https://example.com/q' is not an SQS queue URL "
        "(https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")
