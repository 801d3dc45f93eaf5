"""Usage errors: one line saying what is wrong (with "did you mean"), the command's short usage, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def command(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv, first_line", [
    (["-m", "pipelines.run", "--paramter", "NumRound=3"],
     "python -m pipelines.run: error: unrecognized arguments: --paramter NumRound=3 (did you mean --parameter?)"),
    (["-m", "pipelines.registry", "aprove", "G", "1"],
     "model-registry: error: unknown command 'aprove' (choose from list, describe, approve, reject) (did you mean "
     "approve?)"),
    (["-m", "pipelines.registry", "approve", "G", "1", "--description", "ok", "--stroe", "x"],
     "model-registry approve: error: unrecognized arguments: --stroe x (did you mean --store?)"),
    (["-m", "pipelines.deploy", "deploy", "--endpoint-name", "e", "--instance-cont", "2"],
     "deploy-model deploy: error: unrecognized arguments: --instance-cont 2 (did you mean --instance-count?)"),
    (["-m", "pipelines.run", "images", "lst"],
     "python -m pipelines.run images: error: unknown command 'lst' (choose from list, show, prepare) (did you mean list?)"),
    (["-m", "pipelines.run", "executions", "--jsn"],
     "python -m pipelines.run executions: error: unrecognized arguments: --jsn (did you mean --json?)"),
])
def test_a_usage_error_is_one_line_with_a_suggestion_and_the_short_usage(argv, first_line):
    result = command(*argv)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and lines[0] == first_line, result.stderr
    assert lines[1].startswith("usage: ") and lines[-1].endswith("--help` lists every option)")
    assert len(lines) <= 5 and "Traceback" not in result.stderr


def test_a_word_close_to_nothing_gets_no_suggestion():
    result = command("-m", "pipelines.registry", "zzzz")
    assert result.returncode == 2 and "did you mean" not in result.stderr


@pytest.mark.parametrize("argv, present, absent", [
    (["-m", "pipelines.registry", "approve", "--help"], ["--description", "--store", "--target", "--region"],
     ["--redshift-query", "--calibration", "--bad-rows", "--kms-key-arn", "--local-lambda"]),
    (["-m", "pipelines.run", "describe", "--help"], ["--not-enforced", "--json", "--store"],
     ["--redshift-query", "--inject-fault", "--training-image"]),
    (["-m", "pipelines.run", "retry", "--help"], ["--inject-fault", "--local-lambda", "--no-wait"],
     ["--redshift-query", "--training-mode", "--bucket"]),
    (["-m", "inference.invoke", "--help"], ["--id-columns", "--resume", "--store"], ["--redshift-query", "--tags"]),
    (["-m", "pipelines.deploy", "deploy", "--help"], ["--kms-key-arn", "--role-arn", "--instance-type"],
     ["--redshift-query", "--calibration"]),
    (["-m", "pipelines.run", "--help"], ["--redshift-query", "--parameter", "--inject-fault"], []),
])
def test_each_command_lists_only_the_flags_that_apply_to_it(argv, present, absent):
    result = command(*argv)
    assert result.returncode == 0
    for flag in present:
        assert flag in result.stdout, flag
    for flag in absent:
        assert flag not in result.stdout, flag


def test_sample_data_into_a_folder_that_does_not_exist_is_one_line(tmp_path):
    result = command("-m", "pipelines.run", "sample-data", "--output", str(tmp_path / "missing" / "leads.csv"))
    assert result.returncode == 2 and result.stderr == (f"error: --output {tmp_path / 'missing' / 'leads.csv'}: there is "
                                                        f"no folder {tmp_path / 'missing'} to write it in\n")
    assert not (tmp_path / "missing").exists()
