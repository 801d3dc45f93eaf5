"""Records, locks, logs, callbacks, the registry's files and published outputs under hostile hands: a link or a
special file planted where the store keeps its own files is refused by name, never followed, never waited on,
and nothing outside the store is read or written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.errors import CallbackError, UnsafePathError
from pipelines.local import callbacks
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.pipelines.local.helpers import definition, engine, script_step

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, str]:
    """A store holding one execution whose step A succeeded and whose step B failed (retry runs B again)."""
    store = tmp_path_factory.mktemp("finished") / "store"
    run, _ = engine(store)
    record = run.run(definition(script_step("A", "print('hello from A')", retry=False),
                                script_step("B", "raise SystemExit('B fails')", depends_on=("A",), retry=False)),
                     "hostile", {})
    assert record.status == "Failed" and record.step("A").status == "Succeeded"
    return store, record.execution_id


@pytest.fixture
def store(tmp_path, finished) -> tuple[Path, str]:
    """A copy of the finished store this test may spoil."""
    copy = tmp_path / "store"
    shutil.copytree(finished[0], copy, symlinks=True)
    return copy, finished[1]


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def one_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    return result.stderr.strip()


def secret_file(sentinel: Path) -> Path:
    path = sentinel / "victim" / "keep.txt"
    assert path.read_text() == "precious"
    return path


def test_a_linked_execution_folder_is_skipped_in_listings_and_refused_by_id(store, sentinel):
    root, execution_id = store
    outside = sentinel / "victim"
    record = json.loads((root / "executions" / execution_id / "execution.json").read_text())
    planted = root / "executions" / "planted"
    planted.symlink_to(outside)
    # the record it would render is outside the store: readable to the test, never to the engine
    (root.parent / "elsewhere").mkdir()
    (root.parent / "elsewhere" / "execution.json").write_text(json.dumps({**record, "execution_id": "planted2"}))
    (root / "executions" / "planted2").symlink_to(root.parent / "elsewhere")
    listed = cli("executions", "--store", str(root))
    assert listed.returncode == 0 and execution_id in listed.stdout and "planted2" not in listed.stdout
    assert "executions/planted2 is a symbolic link" in listed.stderr and "ignored" in listed.stderr
    line = one_line(cli("describe", "planted2", "--store", str(root)))
    assert "executions/planted2 is a symbolic link" in line


def test_retry_never_writes_through_a_linked_execution_folder(store, sentinel):
    root, execution_id = store
    folder = root / "executions" / execution_id
    moved = sentinel.parent / "moved-execution"
    folder.rename(moved)
    folder.symlink_to(moved)
    before = sorted(p.name for p in moved.iterdir())
    line = one_line(cli("retry", execution_id, "--store", str(root)))
    assert f"executions/{execution_id} is a symbolic link" in line
    assert sorted(p.name for p in moved.iterdir()) == before  # no .lock, engine.log or record written there


def test_a_linked_job_log_is_refused_and_its_target_never_shown(store, sentinel):
    root, execution_id = store
    log = root / "jobs" / execution_id / "A" / "job.log"
    assert "hello from A" in log.read_text()
    log.unlink()
    log.symlink_to(secret_file(sentinel))
    result = cli("logs", execution_id, "A", "--store", str(root))
    line = one_line(result)
    assert "job.log is a symbolic link" in line and "precious" not in result.stdout + result.stderr


def test_a_fifo_as_a_job_log_is_refused_at_once(store):
    root, execution_id = store
    log = root / "jobs" / execution_id / "A" / "job.log"
    log.unlink()
    os.mkfifo(log)
    started = time.monotonic()
    line = one_line(cli("logs", execution_id, "A", "--store", str(root)))
    assert "job.log is a FIFO, socket or device" in line and time.monotonic() - started < 60


def test_a_retry_never_removes_through_a_linked_job_folder(store, sentinel):
    root, execution_id = store
    jobs = root / "jobs" / execution_id
    shutil.rmtree(jobs)
    (sentinel / "victim" / "B").mkdir()  # what the retry's step B would wipe as its job folder
    (sentinel / "victim" / "B" / "keep.txt").write_text("precious too")
    jobs.symlink_to(sentinel / "victim")
    run, _ = engine(root)
    record = run.retry(execution_id)
    assert record.status == "Failed"
    assert f"jobs/{execution_id} is a symbolic link" in record.step("B").failure_reason
    assert (sentinel / "victim" / "B" / "keep.txt").read_text() == "precious too"
    shutil.rmtree(sentinel / "victim" / "B")  # the sentinel checks the rest


def waiting_token(root: Path) -> str:
    token = callbacks.new_token()
    callbacks.send_message(Store(root), token, "https://sqs.us-east-1.amazonaws.com/111122223333/q", "arn:p/e",
                           {"approve": "yes"}, {"execution_id": "e1", "step": "Approve"})
    return token


@pytest.mark.parametrize("content", ["[1, 2]", '{"token": "AAAAAAAAAA", "status": "Waiting"}', "not json", "{" * 100000,
                                     '{"token": "AAAAAAAAAA", "status": "Waiting", "message": [], "queue_url": "q", '
                                     '"execution_id": "e", "step": "s"}'])
def test_a_malformed_callback_record_is_named_and_never_answered(tmp_path, content):
    root = tmp_path / "store"
    good = waiting_token(root)
    bad = root / "callbacks" / "AAAAAAAAAA.json"
    bad.write_text(content)
    warnings: list[str] = []
    assert [entry["token"] for entry in callbacks.waiting(Store(root), warnings.append)] == [good]
    assert len(warnings) == 1 and "AAAAAAAAAA.json is not a callback token's record" in warnings[0]
    with pytest.raises(CallbackError, match="AAAAAAAAAA.json is not a callback token's record"):
        callbacks.send_pipeline_execution_step_success(Store(root), CallbackToken="AAAAAAAAAA")
    assert bad.read_text() == content  # nothing saved


def test_callbacks_list_warns_once_per_bad_record_and_lists_the_rest(tmp_path, sentinel):
    root = tmp_path / "store"
    good = waiting_token(root)
    (root / "callbacks" / "AAAAAAAAAA.json").write_text("[]")
    (root / "callbacks" / "BBBBBBBBBB.json").symlink_to(secret_file(sentinel))
    result = cli("callbacks", "list", "--store", str(root))
    assert result.returncode == 0 and good in result.stdout and "Traceback" not in result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 2 and "precious" not in result.stdout + result.stderr
    assert "AAAAAAAAAA.json is not a callback token's record" in warnings[0]
    assert "BBBBBBBBBB.json is a symbolic link" in warnings[1]
    line = one_line(cli("callbacks", "succeed", "BBBBBBBBBB", "--store", str(root)))
    assert "BBBBBBBBBB.json is a symbolic link" in line


def test_a_linked_callback_lock_is_never_truncated(tmp_path, sentinel):
    root = tmp_path / "store"
    token = waiting_token(root)
    (root / "callbacks" / f"{token}.lock").symlink_to(secret_file(sentinel))
    with pytest.raises(UnsafePathError, match=f"{token}.lock is a symbolic link"):
        callbacks.send_pipeline_execution_step_success(Store(root), CallbackToken=token)
    assert callbacks.record(Store(root), token)["status"] == callbacks.WAITING


def test_a_linked_registry_events_file_refuses_the_change_before_it_is_made(tmp_path, sentinel):
    registry = Registry(tmp_path / "store" / "registry.sqlite")
    spec = {"Containers": [{"Image": "img", "ModelDataUrl": "s3://bkt/m.tar.gz"}]}
    registry.register("Leads", "PendingManualApproval", spec)
    events = tmp_path / "store" / "events" / "model-package-state-change.jsonl"
    events.unlink()
    events.symlink_to(secret_file(sentinel))
    with pytest.raises(UnsafePathError, match="model-package-state-change.jsonl is a symbolic link"):
        registry.set_approval("Leads", 1, "Approved")
    assert registry.describe("Leads", 1)["ModelApprovalStatus"] == "PendingManualApproval"


def test_a_job_that_leaves_a_fifo_in_its_output_fails_without_publishing_any_of_it(tmp_path):
    code = ("import os; open('/opt/ml/processing/out/a-first.csv', 'w').write('1,2\\n'); "
            "os.mkfifo('/opt/ml/processing/out/pipe')")
    run, _ = engine(tmp_path / "store")
    started = time.monotonic()
    record = run.run(definition(script_step("A", code, retry=False)), "hostile", {})
    reason = record.step("A").failure_reason
    assert record.status == "Failed" and reason.startswith("ClientError: ") and time.monotonic() - started < 120
    assert "out/pipe is a FIFO, socket or device, not a regular file" in reason
    assert not list((tmp_path / "store" / "s3").rglob("a-first.csv"))  # nothing of that output is half-published


def test_a_linked_tracking_database_is_never_opened(store, sentinel):
    from pipelines.local import executions
    from pipelines.tracking import STORE, track

    root, execution_id = store
    (root / "mlflow").mkdir()
    (root / "mlflow" / "mlflow.db").symlink_to(secret_file(sentinel))
    warnings: list[str] = []
    tracked = track(executions.load(root, execution_id), executions.load_definition(root, execution_id), Store(root),
                    STORE, None, "", warnings.append)
    assert tracked is None and len(warnings) == 1
    assert "mlflow.db is not a regular file" in warnings[0] and "recorded in the store as usual" in warnings[0]
