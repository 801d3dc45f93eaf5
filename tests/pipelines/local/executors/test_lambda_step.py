"""Lambda steps built by the installed SDK v3 (``LambdaStep``), run end to end with a local handler: the event
is the step's resolved inputs, the declared outputs come from the handler's returned keys (typed, nested values
as JSON text), and an unmapped function is refused before anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.local import executions
from pipelines.local.store import Store
from tests.sandboxing import needs_container_paths

REPO = Path(__file__).resolve().parents[4]
ARN = "arn:aws:lambda:us-east-1:111122223333:function:split-dataset"

HANDLER = '''
import os


def split(event, context):
    print("event", sorted(event.items()), "function", context.function_name,
          "time left", context.get_remaining_time_in_millis() > 0)
    print("home visible:", os.path.exists(os.path.expanduser("~/.planted-by-test")))
    if event["rows"] < 0:
        raise ValueError(f"rows must not be negative, got {event['rows']}")
    return {"train_rows": event["rows"] * 7 // 10, "where": {"bucket": event["bucket"]}, "ignored": 1}
'''


def build() -> dict:
    """The pipeline as the SDK writes it: a LambdaStep, a ConditionStep on its output, a Fail step using
    another output."""
    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.core.workflow.conditions import ConditionGreaterThan
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.mlops.workflow.pipeline import Pipeline

    rows = ParameterInteger(name="Rows", default_value=100)
    train_rows = LambdaOutput(output_name="train_rows", output_type=LambdaOutputTypeEnum.Integer)
    where = LambdaOutput(output_name="where", output_type=LambdaOutputTypeEnum.String)
    split = LambdaStep(name="Split", lambda_func=Lambda(function_arn=ARN), inputs={"rows": rows, "bucket": "leads"},
                       outputs=[train_rows, where])
    big = ConditionStep(name="IsBig", conditions=[ConditionGreaterThan(left=split.properties.Outputs["train_rows"],
                                                                        right=50)],
                        if_steps=[FailStep(name="TooBig", error_message=Join(on=" ", values=[
                            "too many rows for", split.properties.Outputs["where"]]))], else_steps=[])
    return json.loads(Pipeline(name="splits", steps=[split, big], parameters=[rows]).definition())


def run_cli(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    return subprocess.run([sys.executable, "-m", "pipelines.run", "--definition", str(tmp_path / "splits.json"),
                           "--store", str(tmp_path / "store"), *arguments], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def pipeline(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    (tmp_path / "splits.json").write_text(json.dumps(build()))
    (tmp_path / "handlers.py").write_text(HANDLER)
    return tmp_path


@needs_container_paths
def test_a_lambda_step_runs_its_local_handler_with_the_sdks_event_and_outputs(pipeline):
    planted = Path.home() / ".planted-by-test"
    planted.write_text("a secret of the user's")
    try:
        small = run_cli(pipeline, "--local-lambda", f"split-dataset={pipeline / 'handlers.py'}:split",
                        "--parameter", "Rows=60")
    finally:
        planted.unlink()
    assert small.returncode == 0, small.stdout[-3000:] + small.stderr[-3000:]
    assert "event [('bucket', 'leads'), ('rows', 60)] function split-dataset time left True" in small.stdout
    assert "home visible: False" in small.stdout  # the handler runs in the job sandbox
    [record] = executions.all_records(Store(pipeline / "store").root, lambda message: None)
    split = record.step("Split")
    assert split.properties["OutputParameters"] == {"train_rows": 42, "where": '{"bucket": "leads"}'}
    assert record.step("IsBig").properties["Outcome"] in (False, "False")
    assert any(line.startswith(f"FunctionArn = {ARN}: the function runs as the local handler") for line in split.unenforced)

    large = run_cli(pipeline, "--local-lambda", f"{ARN}={pipeline / 'handlers.py'}:split")  # by ARN, Rows=100
    assert large.returncode == 1
    assert 'TooBig: Failed in ' in large.stdout and 'too many rows for {"bucket": "leads"}' in large.stdout


def test_an_unmapped_function_is_one_line_naming_the_flag_and_nothing_is_written(pipeline):
    result = run_cli(pipeline)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: no local handler is mapped to the Lambda function of step 'Split': FunctionArn '{ARN}': set "
        "--local-lambda 'ARN=MODULE:FUNCTION' (config local_lambdas)")
    assert not (pipeline / "store").exists()


@needs_container_paths
def test_a_handler_that_raises_fails_the_step_once_with_its_error(pipeline):
    result = run_cli(pipeline, "--local-lambda", f"split-dataset={pipeline / 'handlers.py'}:split",
                     "--parameter", "Rows=-1")
    assert result.returncode == 1
    [record] = executions.all_records(Store(pipeline / "store").root, lambda message: None)
    assert record.step("Split").failure_reason == (
        f"ClientError: the Lambda function {ARN} failed: ValueError: rows must not be negative, got -1")
    assert record.step("Split").attempts == 1


@needs_container_paths
@pytest.mark.parametrize("returned, says", [
    ('{"train_rows": "many", "where": "x"}', "ClientError: OutputParameters['train_rows']: 'many' is not of OutputType Integer"),
    ('["not", "an", "object"]', "returned list, not an object whose keys are its OutputParameters"),
])
def test_outputs_that_do_not_fit_their_declaration_are_one_client_error(pipeline, returned, says):
    (pipeline / "handlers.py").write_text(f"def split(event, context):\n    return {returned}\n")
    result = run_cli(pipeline, "--local-lambda", f"split-dataset={pipeline / 'handlers.py'}:split")
    assert result.returncode == 1
    [record] = executions.all_records(Store(pipeline / "store").root, lambda message: None)
    assert says in record.step("Split").failure_reason


def test_a_handler_that_names_no_file_is_refused_before_anything_is_written(pipeline):
    result = run_cli(pipeline, "--local-lambda", f"split-dataset={pipeline / 'nowhere.py'}:split")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: step 'Split': local handler '{pipeline / 'nowhere.py'}:split': no file "
                                     f"{pipeline / 'nowhere.py'}")
    assert not (pipeline / "store").exists()
