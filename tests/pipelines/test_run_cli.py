"""The CLI as a user runs it: a subprocess, against moto_server on loopback for SageMaker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import KMS, ROLE

REPO = Path(__file__).resolve().parents[2]
BASE_ARGS = ["--role-arn", ROLE, "--bucket", "lead-bucket", "--kms-key-arn", KMS, "--source-revision", "abc123"]


def run_cli(*args: str, env: dict[str, str] | None = None, module: str = "pipelines.run") -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
                    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"})
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def moto_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_definition_only_needs_no_credentials_and_matches_get_pipeline_definition(tmp_path):
    out = tmp_path / "definition.json"
    first = run_cli("--definition-only", str(out), *BASE_ARGS)
    assert first.returncode == 0, first.stderr
    second = run_cli(*BASE_ARGS, "--file-name", "-", module="pipelines.get_definition")
    assert second.returncode == 0, second.stderr
    assert json.loads(out.read_text()) == json.loads(second.stdout)
    assert second.stderr == ""  # no SDK chatter


def test_sagemaker_target_against_moto_server(moto_server, tmp_path):
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="lead-bucket")
    summary = tmp_path / "summary.json"
    result = run_cli("--target", "sagemaker", *BASE_ARGS, "--parameter", "NumRound=25", "--poll-seconds", "0.1",
                     "--summary-json", str(summary), "--store", str(tmp_path / "store"), env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    output = result.stdout + result.stderr
    execution_id = json.loads(summary.read_text())["execution_id"]
    assert output.count(f"Execution {execution_id}: Succeeded") == 1  # the closing line, said once
    # no library INFO logging; moto_server lacks ListPipelineExecutionSteps and answers with an HTML page
    assert "INFO" not in output and "<" not in output
    assert "ListPipelineExecutionSteps failed: HTTP 500 answered with an HTML page (500 Internal Server Error)" in output
    described = run_cli("describe", execution_id, "--target", "sagemaker", env=env)
    assert described.returncode == 0 and f"Execution {execution_id} of LeadScoringPipeline: Succeeded" in described.stdout
    assert described.stderr.startswith("note: steps unavailable: sagemaker:ListPipelineExecutionSteps failed: HTTP 500")
    sm = boto3.client("sagemaker", endpoint_url=moto_server, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = sm.describe_pipeline(PipelineName="LeadScoringPipeline")["PipelineDefinition"]
    local = run_cli("--definition-only", "-", *BASE_ARGS)
    assert json.loads(stored) == json.loads(local.stdout)
    data = json.loads(summary.read_text())
    assert data["status"] == "Succeeded" and data["execution_arn"].startswith("arn:aws:sagemaker:")
    again = run_cli("--target", "sagemaker", *BASE_ARGS, "--poll-seconds", "0.1", "--store", str(tmp_path / "store"),
                    env=env)
    assert again.returncode == 0 and "Definition unchanged: reusing the one built before" in again.stdout
    assert sm.describe_pipeline(PipelineName="LeadScoringPipeline")["PipelineDefinition"] == stored


def test_usage_errors_exit_2_with_one_line():
    missing_role = run_cli("--target", "sagemaker", "--bucket", "lead-bucket")
    assert missing_role.returncode == 2
    assert missing_role.stderr.strip() == "error: --target sagemaker needs --role-arn (the role the pipeline's jobs run as)"
    no_creds = run_cli("--target", "sagemaker", *BASE_ARGS)
    assert no_creds.returncode == 2 and no_creds.stderr.startswith("error: no AWS credentials found")
    unknown = run_cli("--definition-only", "-", *BASE_ARGS, "--parameter", "Bogus=1")
    assert unknown.returncode == 2 and "unknown parameter 'Bogus'" in unknown.stderr
    secret = run_cli("--definition-only", "-", *BASE_ARGS, "--kwargs", '{"aws_secret_access_key": "x"}')
    assert secret.returncode == 2 and "looks like a credential" in secret.stderr


def test_engine_flag_errors_exit_2_with_one_line(tmp_path):
    fault = run_cli("--store", str(tmp_path), "--inject-fault", "Train=Oops")
    assert fault.returncode == 2 and fault.stderr.startswith("error: --inject-fault 'Train=Oops': expected STEP=TYPE")
    assert fault.stderr.count("\n") == 1


@pytest.mark.parametrize("flags, message", [
    (["--max-parallel-steps", "0"], "argument --max-parallel-steps: must be at least 1, got 0"),
    (["--sample-rows", "-5"], "argument --sample-rows: must be at least 1, got -5"),
    (["--sample-rows", "many"], "argument --sample-rows: not a whole number: 'many'"),
    (["--poll-seconds", "-1"], "argument --poll-seconds: must be a number of seconds >= 0, got -1"),
    (["--timeout", "inf"], "argument --timeout: must be a number of seconds >= 0, got inf"),
    (["executions", "--limit", "0"], "argument --limit: must be at least 1, got 0"),
    (["retry", "x", "--poll-seconds", "later"], "argument --poll-seconds: not a number of seconds: 'later'"),
])
def test_out_of_range_numbers_are_usage_errors_not_tracebacks(tmp_path, flags, message):
    result = run_cli(*flags, "--store", str(tmp_path))
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and lines[0].endswith(message) and lines[1].startswith("usage: "), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("assignments, message", [
    (["NumRound=0"], "error: parameter NumRound: Hyperparameter num_round: value '0' must be >= 1"),
    (["Eta=1.5"], "error: parameter Eta: Hyperparameter eta: value '1.5' must be <= 1"),
    (["TrainingInstanceCount=0"], "error: parameter TrainingInstanceCount must be >= 1 (got 0)"),
    (["AucThreshold=1.2"], "error: parameter AucThreshold must be <= 1 (got 1.2)"),
    (["TrainingInstanceType=ml.m5.huge"], "error: parameter TrainingInstanceType: 'ml.m5.huge' is not a SageMaker "
                                          "TrainingInstanceType"),
    (["TrainShardCount=0"], "error: parameter TrainShardCount must be >= 1 (got 0)"),
    (["NumRoud=5"], "error: unknown parameter 'NumRoud'; this pipeline's parameters are: "),
])
def test_parameters_are_checked_before_the_definition_is_built(tmp_path, assignments, message):
    argv = [arg for assignment in assignments for arg in ("--parameter", assignment)]
    result = run_cli("--store", str(tmp_path / "store"), *argv)
    assert result.returncode == 2 and result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "store").exists()


def test_scoring_parameters_are_checked_too(tmp_path):
    result = run_cli("--pipeline", "batch-scoring", "--store", str(tmp_path / "store"), "--parameter",
                     "TransformInstanceCount=0")
    assert result.returncode == 2 and result.stderr.strip() == "error: parameter TransformInstanceCount must be >= 1 (got 0)"


def test_every_flag_has_help_and_the_subcommands_are_listed():
    from pipelines.cli.commands.run import parser

    p = parser()
    assert [a.option_strings for a in p._actions if a.option_strings and not a.help] == []
    assert "`validate`" in p.epilog and "`retry ID`" in p.epilog


def test_flags_the_other_settings_make_idle_are_said_to_do_nothing(tmp_path):
    built = run_cli("--definition-only", str(tmp_path / "d.json"), *BASE_ARGS, "--calibration", "platt",
                    "--max-bad-rows", "5", "--redshift-query", "SELECT 1")
    assert built.returncode == 0, built.stderr
    assert "note: --calibration does nothing in this run: it applies to --training-mode custom with our image" \
        in built.stderr
    assert "note: --max-bad-rows does nothing in this run: it caps skipped rows, and --bad-rows is fail" in built.stderr
    assert "note: --redshift-query does nothing in this run: it applies to --data-source redshift" in built.stderr
    quiet = run_cli("--definition-only", str(tmp_path / "d.json"), *BASE_ARGS, "--training-mode", "custom",
                    "--training-image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-xgboost:1",
                    "--calibration", "platt")
    assert quiet.returncode == 0 and "does nothing" not in quiet.stderr



def test_an_offline_build_names_every_missing_flag_in_one_line_whatever_is_given():
    said = set()
    for given in ([], ["--bucket", "lead-bucket"]):
        result = run_cli("--definition-only", "-", *given)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and "--role-arn" in result.stderr, result.stderr
        said.add(result.stderr)
    assert len(said) == 1  # adding the --bucket the first line seemed to offer changes nothing: both say all
    assert run_cli("--definition-only", "-", "--role-arn", ROLE).returncode == 0  # what the line asked for is enough
