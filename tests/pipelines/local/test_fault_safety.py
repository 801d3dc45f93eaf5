"""Crashes and faults: registration is never doubled, bad records and registries are survived with one line,
a store that cannot be written ends the run retryable, deterministic errors are never retried."""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.local import safe_files
from pipelines.errors import ConfigError, RegistryError
from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.executions import load
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.pipelines.local.helpers import INTERNAL_ERROR_POLICY, definition, engine, script_step

REPO = Path(__file__).resolve().parents[3]
THROTTLING_POLICY = {"ExceptionType": ["Step.THROTTLING"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 2}


def register_step(name: str = "Register") -> dict:
    return {"Name": name, "Type": "RegisterModel", "RetryPolicies": [THROTTLING_POLICY], "Arguments": {
        "ModelPackageGroupName": "Leads", "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {"Containers": [{"Image": "img", "ModelDataUrl": "s3://bkt/m.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}}}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_retry_after_a_crash_between_registry_commit_and_record_reuses_the_version(tmp_path):
    store = tmp_path / "store"
    run, _ = engine(store)
    first = run.run(definition(register_step(), script_step("After", "print(1)", depends_on=("Register",))), "p", {})
    assert first.status == "Succeeded"
    # the state a SIGKILL right after the registry commit leaves: the step is not recorded as Succeeded
    path = store / "executions" / first.execution_id / "execution.json"
    raw = json.loads(path.read_text())
    raw["status"], raw["end_time"] = "Executing", None
    raw["steps"] = [s for s in raw["steps"] if s["name"] == "Register"]
    raw["steps"][0].update(status="Executing", end_time=None, properties={})
    path.write_text(json.dumps(raw))
    again, lines = engine(store)
    retried = again.retry(first.execution_id)
    assert retried.status == "Succeeded"
    assert [p["ModelPackageVersion"] for p in Registry(store / "registry.sqlite").list("Leads")] == [1]
    assert retried.step("Register").properties["ModelPackageVersion"] == 1
    assert any("found the version this step registered before: Leads version 1" in line for line in lines)


@pytest.mark.parametrize("content", [b'{"execution_id": "x", "steps": [', b"\xff\xfe not utf-8",
                                     b'{"execution_id": 5, "pipeline_name": "p", "status": "Failed", "parameters": {},'
                                     b' "start_time": "2026-01-01T00:00:00+00:00", "steps": "nope"}'])
def test_a_malformed_execution_record_is_skipped_with_one_warning(tmp_path, content):
    store = tmp_path / "store"
    bad = store / "executions" / "broken1" / "execution.json"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(content)
    step = script_step("A", "print(1)", cache=True)
    run, lines = engine(store)
    assert run.run(definition(step), "p", {}).status == "Succeeded"
    assert run.run(definition(step), "p", {}).status == "Succeeded"
    warnings = [line for line in lines if "broken1" in line]
    assert len(warnings) == 1 and "is unreadable" in warnings[0] and "ignored" in warnings[0]
    listing = cli("executions", "--store", str(store))
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    assert "broken1/execution.json is unreadable" in listing.stderr
    for command in ("describe", "retry"):
        result = cli(command, "broken1", "--store", str(store))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1 and "broken1/execution.json is unreadable" in result.stderr


def test_a_full_disk_fails_the_step_and_leaves_the_execution_retryable(tmp_path, monkeypatch):
    store = tmp_path / "store"
    real = safe_files.replacing
    full = {"on": False}

    def replacing(root: Path, path: Path):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(root, path)

    code = "import pathlib; pathlib.Path('/opt/ml/processing/out/result.txt').write_text('x')"
    steps = definition(script_step("A", code), script_step("B", code, depends_on=("A",)))
    run, lines = engine(store, sleep=lambda seconds: None)
    original_attempt = LocalEngine._attempt

    def attempt(self, run_, node, step, arguments):
        full["on"] = node.name == "B"  # the disk fills up while B runs
        return original_attempt(self, run_, node, step, arguments)

    monkeypatch.setattr(safe_files, "replacing", replacing)
    monkeypatch.setattr(LocalEngine, "_attempt", attempt)
    record = run.run(steps, "p", {})
    assert record.status == "Failed" and record.step("B").attempts == 4  # policy: 3 retries of an I/O fault
    assert record.step("B").failure_reason.startswith("InternalServerError: ")
    assert "No space left on device" in record.step("B").failure_reason
    assert "the execution record could not be written" in record.failure_reason
    on_disk = load(store, record.execution_id)
    assert on_disk.status == "Executing" and on_disk.step("A").status == "Succeeded"
    monkeypatch.setattr(LocalEngine, "_attempt", original_attempt)
    full["on"] = False
    retried, _ = engine(store)
    assert retried.retry(record.execution_id).status == "Succeeded"


def test_a_corrupt_registry_is_one_line_naming_the_file(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "registry.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RegistryError, match="registry.sqlite cannot be read: file is not a database"):
        Registry(store / "registry.sqlite")
    result = cli("--store", str(store), "--sample-rows", "2000", "--parameter", "NumRound=5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: the local registry {store / 'registry.sqlite'}")


def test_a_registry_locked_past_its_timeout_is_throttling(tmp_path):
    store = tmp_path / "store"
    path = store / "registry.sqlite"
    run = LocalEngine(Store(store), Registry(path, timeout=0.2), lambda s, line: None, lambda r: None,
                      RunOptions(sleep=lambda seconds: None))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        record = run.run(definition(register_step()), "p", {})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    step = record.step("Register")
    assert record.status == "Failed" and step.attempts == 3  # the first attempt and MaxAttempts=2 retries
    assert step.failure_reason.startswith("ThrottlingException: the local registry ") and "stayed locked" in step.failure_reason


def test_a_model_that_cannot_be_loaded_fails_transform_once(tmp_path):
    store = Store(tmp_path / "store")
    store.put_bytes(b"not a tarball", "s3://bkt/model/model.tar.gz")
    store.put_bytes(b"1,2\n", "s3://bkt/in/rows.csv")
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    model = {"Name": "M", "Type": "Model", "Arguments": {"ExecutionRoleArn": "arn:aws:iam::1:role/r", "PrimaryContainer": {
        "Image": image, "ModelDataUrl": "s3://bkt/model/model.tar.gz"}}}
    transform = {"Name": "T", "Type": "Transform", "RetryPolicies": [INTERNAL_ERROR_POLICY], "Arguments": {
        "ModelName": {"Get": "Steps.M.ModelName"}, "TransformInput": {"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bkt/in/"}}, "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bkt/out/"}, "TransformResources": {"InstanceType": "ml.m5.large",
                                                                                     "InstanceCount": 1}}}
    run, _ = engine(tmp_path / "store", sleep=lambda seconds: pytest.fail("a deterministic error was retried"))
    record = run.run(definition(model, transform), "p", {})
    step = record.step("T")
    assert step.attempts == 1
    assert step.failure_reason.startswith("ClientError: ModelDataUrl s3://bkt/model/model.tar.gz: the model could not be loaded")


def test_inject_fault_naming_an_unknown_step_is_a_usage_error(tmp_path):
    run, _ = engine(tmp_path / "store", faults={"Nope": ("Step.THROTTLING", 1)})
    with pytest.raises(ConfigError, match="--inject-fault names step\\(s\\) Nope that the definition does not have"):
        run.run(definition(script_step("A", "print(1)")), "p", {})
    assert not (tmp_path / "store" / "executions").exists()


def test_listing_executions_of_a_store_that_does_not_exist_is_an_error(tmp_path):
    result = cli("executions", "--store", str(tmp_path / "typo"))
    assert result.returncode == 2 and result.stderr.strip() == (
        f"error: there is no local store at {tmp_path / 'typo'}: pass the --store a run used")
    assert not (tmp_path / "typo").exists()
