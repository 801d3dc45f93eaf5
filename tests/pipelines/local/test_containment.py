"""Hostile definitions, URIs, paths and links: each is refused and nothing outside the store is touched."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import build_config
from pipelines.errors import DefinitionError, UnsafePathError
from pipelines.lead_scoring import build
from pipelines.local.graph import walk_steps
from pipelines.local.store import Store
from tests.pipelines.local.helpers import definition, engine, script_step

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ours() -> dict:
    """Our own pipeline's definition, as the local target runs it."""
    config = build_config(("test", {"role_arn": "arn:aws:iam::123456789012:role/R", "bucket": "sagemaker-local"}))
    return build(config).definition_dict


def step_of(document: dict, name: str) -> dict:
    return next(step for step, _ in walk_steps(document["Steps"]) if step["Name"] == name)


def run_engine(tmp_path: Path, document: dict, overrides: dict | None = None):
    run, lines = engine(tmp_path / "store")
    return run.run(document, "hostile", overrides or {}), lines


@pytest.mark.parametrize("where, name", [("QualityGateFailed", "../../../victim"),
                                         ("CreateModel", "x/../../../../outside/m"),
                                         ("RegisterModel", "a" * 65), ("Train", "")])
def test_step_names_are_checked_before_anything_runs(tmp_path, sentinel, ours, where, name):
    document = copy.deepcopy(ours)
    step_of(document, where)["Name"] = name
    with pytest.raises(DefinitionError, match="step name|has no Name"):
        run_engine(tmp_path, document)
    assert not (tmp_path / "store" / "executions").exists()


def test_a_step_name_used_in_two_branches_is_refused(tmp_path, sentinel, ours):
    document = copy.deepcopy(ours)
    step_of(document, "QualityGateFailed")["Name"] = "CreateModel"
    with pytest.raises(DefinitionError, match="Step 'CreateModel': the step name is used twice"):
        run_engine(tmp_path, document)


def run_renamed(tmp_path, ours, name: str) -> subprocess.CompletedProcess:
    """A run of our definition with its Fail step renamed ``name``."""
    document = copy.deepcopy(ours)
    step_of(document, "QualityGateFailed")["Name"] = name
    path = tmp_path / "renamed.json"
    path.write_text(json.dumps(document))
    return subprocess.run([sys.executable, "-m", "pipelines.run", "--store", str(tmp_path / "store"), "--definition",
                           str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_a_definition_with_a_hostile_step_name_exits_2_with_one_line(tmp_path, sentinel, ours):
    result = run_renamed(tmp_path, ours, "../../../victim")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "  Steps[7].Name: step name '../../../victim' must match ^[A-Za-z0-9\\-_]{1,64}$ (letters, digits, '-' and "
        "'_', 64 at most), as SageMaker requires")
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("uri, problem", [
    ("s3://sagemaker-local//tmp/x/", "an empty segment"),
    ("s3://../registry.sqlite", "bucket '..' is not a valid S3 bucket name"),
    ("s3://sagemaker-local/a/../../../outside/", "a '..' segment"),
    ("s3://sagemaker-local/./x", "a '.' segment"),
    ("s3://192.168.0.1/x", "formatted as an IP address"),
])
def test_hostile_uris_in_a_definition_fail_the_step_naming_the_field(tmp_path, sentinel, ours, uri, problem):
    document = copy.deepcopy(ours)
    step_of(document, "PrepareData")["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"] = uri
    record, _ = run_engine(tmp_path, document, {"InputDataUrl": "s3://sagemaker-local/in/"})
    step = record.step("PrepareData")
    assert record.status == "Failed" and step.attempts == 1
    assert step.failure_reason.startswith(
        "ClientError: Step 'PrepareData': Arguments.ProcessingInputs[1].S3Input.S3Uri: ")
    assert problem in step.failure_reason
    assert [s.name for s in record.steps] == ["PrepareData"]


def test_a_hostile_uri_built_by_an_expression_is_refused(tmp_path, sentinel, ours):
    document = copy.deepcopy(ours)
    output = step_of(document, "PrepareData")["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    output["S3Uri"] = {"Std:Join": {"On": "/", "Values": ["s3://sagemaker-local", "..", "..", "..", "outside"]}}
    record, _ = run_engine(tmp_path, document, {"InputDataUrl": "s3://sagemaker-local/in/"})
    assert "Arguments.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri: " in record.step("PrepareData").failure_reason


def test_a_hostile_parameter_value_is_refused_before_the_run(tmp_path, sentinel):
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "--store", str(tmp_path / "store"),
                             "--parameter", "InputDataUrl=s3://../registry.sqlite"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: Parameters.InputDataUrl: 's3://../registry.sqlite': bucket '..' is not a valid S3 bucket name")
    assert not (tmp_path / "store" / "executions").exists()


@pytest.mark.parametrize("field, local_path", [
    ("ProcessingOutputConfig", "/opt/ml/processing/../../../../outside"),
    ("ProcessingOutputConfig", "/tmp/elsewhere"),
    ("ProcessingInputs", "/opt/ml/processing/input/../../../../../outside/victim"),
])
def test_processing_local_paths_stay_under_opt_ml_processing(tmp_path, sentinel, ours, field, local_path):
    document = copy.deepcopy(ours)
    arguments = step_of(document, "PrepareData")["Arguments"]
    if field == "ProcessingInputs":
        arguments["ProcessingInputs"][1]["S3Input"]["LocalPath"] = local_path
        Store(tmp_path / "store").put_bytes(b"print(1)\n", arguments["ProcessingInputs"][1]["S3Input"]["S3Uri"])
    else:
        arguments["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"] = local_path
    Store(tmp_path / "store").put_bytes(b"1,2\n", "s3://sagemaker-local/in/a.csv")
    record, _ = run_engine(tmp_path, document, {"InputDataUrl": "s3://sagemaker-local/in/"})
    reason = record.step("PrepareData").failure_reason
    assert reason.startswith("ClientError: ") and "must be a path under /opt/ml/processing/" in reason
    assert local_path in reason


def test_outputs_are_never_written_through_a_linked_prefix(tmp_path, sentinel):
    store = tmp_path / "store"
    (store / "s3" / "bkt").mkdir(parents=True)
    os.symlink(sentinel, store / "s3" / "bkt" / "runs")
    record, _ = run_engine(tmp_path, definition(script_step(
        "A", "import pathlib; pathlib.Path('/opt/ml/processing/out/x.txt').write_text('x')")))
    reason = record.step("A").failure_reason
    assert record.status == "Failed" and record.step("A").attempts == 1
    assert "s3://bkt/runs is a symbolic link in the local store; links are never followed" in reason


def input_step(code: str = "print(open('/opt/ml/processing/in/rows.csv').read())") -> dict:
    step = script_step("Read", code)
    step["Arguments"]["ProcessingInputs"] = [{"InputName": "in", "S3Input": {
        "S3Uri": "s3://bkt/data/", "LocalPath": "/opt/ml/processing/in", "S3DataType": "S3Prefix"}}]
    return step


def test_a_linked_input_object_is_never_read(tmp_path, sentinel):
    data = tmp_path / "store" / "s3" / "bkt" / "data"
    data.mkdir(parents=True)
    os.symlink(sentinel / "data.csv", data / "rows.csv")
    record, _ = run_engine(tmp_path, definition(input_step()))
    assert "s3://bkt/data/rows.csv is a symbolic link" in record.step("Read").failure_reason


def test_a_linked_sub_folder_is_refused_not_skipped(tmp_path, sentinel):
    data = tmp_path / "store" / "s3" / "bkt" / "data"
    data.mkdir(parents=True)
    (data / "rows.csv").write_text("1,2\n")
    os.symlink(sentinel / "victim", data / "more")
    record, _ = run_engine(tmp_path, definition(input_step()))
    assert "s3://bkt/data/more is a symbolic link" in record.step("Read").failure_reason


def test_a_link_the_job_leaves_in_its_output_is_not_published(tmp_path, sentinel):
    code = (f"import os; os.symlink({str(sentinel / 'data.csv')!r}, '/opt/ml/processing/out/leak.csv')")
    record, _ = run_engine(tmp_path, definition(script_step("A", code, retry=False)))
    assert "leak.csv is a symbolic link" in record.step("A").failure_reason
    assert not list((tmp_path / "store" / "s3").rglob("leak.csv"))


def test_execution_ids_from_the_command_line_cannot_name_other_folders(tmp_path, sentinel):
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "describe", "../../outside",
                             "--store", str(tmp_path / "store")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: execution id '../../outside' may hold only letters, digits, '-' and '_' "
                                     "(128 at most)")


def test_store_refuses_unsafe_keys_directly(tmp_path):
    store = Store(tmp_path / "store")
    for uri in ("s3://bkt//etc/passwd", "s3://bkt/a/../../x", "s3://../x", "s3://bkt/a\x00b"):
        with pytest.raises(UnsafePathError):
            store.path(uri)
    assert store.path("s3://bkt/prefix/") == tmp_path / "store" / "s3" / "bkt" / "prefix"


def test_a_step_name_over_64_characters_says_the_limit_and_how_to_shorten_it(tmp_path, ours):
    result = run_renamed(tmp_path, ours, "Lead-scoring-model-for-the-emea-region-quality-gate-RegisterModel")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "(nothing was uploaded or run; SageMaker refuses these too)" in result.stderr
    assert "--no-validate" not in result.stderr  # skipping the check would not help: SageMaker has the same limit
    assert ("is 65 characters and SageMaker allows 64 at most: shorten it (SDK v2 names a step collection's steps "
            "NAME-RegisterModel") in result.stderr
    assert not (tmp_path / "store").exists()


def test_a_definition_refused_for_a_step_type_writes_nothing(tmp_path):
    path = tmp_path / "lambda.json"
    path.write_text(json.dumps({"Version": "2020-12-01", "Steps": [{
        "Name": "Notify", "Type": "EMR", "Arguments": {}}]}))
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "--store", str(tmp_path / "store"), "--definition",
                             str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Type 'EMR' is not supported by the local engine" in result.stderr
    assert not (tmp_path / "store").exists()  # not even the registry's database
