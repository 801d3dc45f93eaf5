"""The background MLflow logger (pipelines/tracking_logger.py), with real processes and real MLflow: a run is
logged once its command has ended, a request no logger logged (none started, or killed) is logged by the next
reader, two requests for one execution make one run, a refused command writes no tracking folder, a failure
is one warning, and files of the queue that are not requests cost one line each, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.config import build_config
from pipelines.local import executions
from pipelines.local.store import Store
from pipelines.tracking_logger import LOG, PENDING, pending, request, settle, start

# a pipeline of no job: Check fails it through Stop when Threshold is below 0.1
TINY = {"Version": "2020-12-01", "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}],
        "Steps": [{"Name": "Check", "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Parameters.Threshold"},
                            "RightValue": 0.1}],
            "IfSteps": [], "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "too low"}}]}}]}


def pipelines_run(store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_", "MLFLOW_"))}
    return subprocess.run([sys.executable, "-m", "pipelines.run", *args, "--store", str(store)], cwd=store.parent,
                          env=env, capture_output=True, text=True, timeout=300)


def execution_of(result: subprocess.CompletedProcess) -> str:
    return next(line.split()[1][:-1] for line in result.stdout.splitlines() if line.startswith("Execution "))


def tracked(setting: str = "store"):
    return build_config(("test", {"mlflow_tracking_uri": setting, "source_revision": "rev-2"}))


def runs(store: Path, execution_id: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("Tiny")
    return client.search_runs([experiment.experiment_id], f"tags.execution_id = '{execution_id}'")


def settled(store: Path) -> list[str]:
    said: list[str] = []
    settle(store, lambda line: None, said.append)
    return said


def loggers_of(store: Path) -> list[int]:
    """The logger processes working for ``store``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"pipelines.tracking_logger" in words and os.fsencode(str(store)) in words:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def untracked(tmp_path_factory) -> tuple[Path, str, str]:
    """A store with a failed and a succeeded execution of Tiny, neither tracked."""
    folder = tmp_path_factory.mktemp("untracked")
    (folder / "Tiny.json").write_text(json.dumps(TINY))
    store = folder / "store"
    failed = pipelines_run(store, "--definition", str(folder / "Tiny.json"), "--mlflow-tracking-uri", "off",
                           "--parameter", "Threshold=0")
    succeeded = pipelines_run(store, "--definition", str(folder / "Tiny.json"), "--mlflow-tracking-uri", "off")
    assert (failed.returncode, succeeded.returncode) == (1, 0), failed.stdout + failed.stderr
    assert not (store / "mlflow").exists()
    return store, execution_of(failed), execution_of(succeeded)


@pytest.fixture
def store(untracked, tmp_path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(untracked[0], copy, symlinks=True)
    shutil.copy(untracked[0].parent / "Tiny.json", tmp_path / "Tiny.json")
    return copy


def test_a_run_is_logged_after_its_command_ends_and_read_back_at_once_through_settle(store):
    result = pipelines_run(store, "--definition", str(store.parent / "Tiny.json"), "--parameter", "Threshold=0.05")
    assert result.returncode == 1, result.stdout + result.stderr
    execution = execution_of(result)
    uri = f"sqlite:///{store / 'mlflow' / 'mlflow.db'}"
    assert (f"note: MLflow: execution {execution} is being logged in the background to experiment Tiny at {uri}; "
            in result.stdout)
    assert settled(store) == [] and pending(store) == {}
    [run] = runs(store, execution)
    assert run.info.status == "FAILED" and run.data.params == {"Threshold": "0.05"}
    assert run.data.tags["step.Stop"].startswith("Failed")
    assert executions.load(store, execution).mlflow_run["run_id"] == run.info.run_id


@pytest.mark.parametrize("logger", ["none started", "killed"])
def test_a_request_no_logger_logged_is_logged_by_the_next_reader(store, untracked, logger):
    _, failed, _ = untracked
    if logger == "killed":  # the command died after queueing; its logger was killed at once
        started = start(store)
        request(store, failed, tracked())
        os.kill(started.process.pid, signal.SIGKILL)
        started.wait()
    else:  # the command died between queueing and starting its logger
        request(store, failed, tracked())
    described = pipelines_run(store, "describe", failed)
    assert described.returncode == 0, described.stderr
    [run] = runs(store, failed)
    assert f"\nMLflow run: {run.info.run_id} (experiment Tiny) at sqlite:///" in described.stdout
    assert run.info.status == "FAILED" and run.data.tags["source_revision"] == "rev-2"
    assert pending(store) == {} and "Traceback" not in described.stderr


def test_two_requests_for_one_execution_make_one_run_logged_by_one_logger(store, untracked):
    _, failed, _ = untracked
    logger = start(store)
    first = request(store, failed, tracked())
    second = request(store, failed, tracked())
    assert first.name < second.name and set(pending(store)) == {failed}
    logger.close()
    logger.wait()
    assert logger.process.returncode == 0 and pending(store) == {}
    [run] = runs(store, failed)
    lines = [line for line in (store / LOG).read_text().splitlines() if f"execution {failed}: " in line]
    assert len(lines) == 2 and all(f"MLflow run {run.info.run_id} (experiment Tiny)" in line for line in lines)


def test_a_refused_retry_writes_no_tracking_folder(store, untracked):
    _, _, succeeded = untracked
    refused = pipelines_run(store, "retry", succeeded)
    assert refused.returncode == 2 and "nothing to retry" in refused.stderr
    deadline = time.monotonic() + 120
    while loggers_of(store):  # its logger ends once its input does, having written nothing
        assert time.monotonic() < deadline, "the logger of a refused retry did not end"
        time.sleep(0.2)
    assert not (store / "mlflow").exists()


def test_a_tracking_failure_is_one_warning_for_the_reader_that_settles_it_and_kept_in_the_record(store, untracked):
    _, failed, _ = untracked
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{probe.getsockname()[1]}"
    request(store, failed, tracked(uri))
    [warning] = settled(store)
    assert warning.startswith(f"MLflow tracking at {uri} failed (") and \
        warning.endswith(f"execution {failed} is recorded in the store as usual")
    assert settled(store) == []  # said once
    described = pipelines_run(store, "describe", failed)
    assert f"\nMLflow run: none (experiment Tiny) at {uri}; last logging: {warning}\n" in described.stdout


def test_queue_files_that_are_not_requests_cost_one_line_each_never_a_traceback(store, untracked):
    _, failed, _ = untracked
    queue = store / PENDING
    good = request(store, failed, tracked())
    stamp = good.name.split("-")[0]
    (queue / "notes.json").write_text("{}")
    (queue / "bad\nname.json").write_text("{}")
    (queue / f"{stamp}-linked.json").symlink_to(good)
    broken = {f"{stamp}-notjson.json": "not json", f"{stamp}-other.json": good.read_text(),
              f"{stamp}-secret.json": json.dumps({**json.loads(good.read_text()), "execution_id": "secret",
                                                  "mlflow_tracking_uri": "https://user:pw@mlflow.example.com"}),
              f"{stamp}-gone.json": json.dumps({**json.loads(good.read_text()), "execution_id": "gone"}),
              f"{stamp}-huge.json": " " * 100_000}
    for name, text in broken.items():
        (queue / name).write_text(text)
    logger = start(store)
    logger.close()
    logger.wait()
    log = (store / LOG).read_text()
    assert logger.process.returncode == 0 and "Traceback" not in log and "pw@" not in log
    assert f"execution {failed}: MLflow run " in log and len(runs(store, failed)) == 1
    for name in broken:  # refused once, and removed
        assert log.count(f"{name} refused and removed: ") == 1 and not (queue / name).exists()
    assert log.count("'notes.json' is not an MLflow logging request (not named TIME-EXECUTION.json)") == 1
    assert log.count("'bad\\nname.json' is not an MLflow logging request") == 1
    assert log.count(f"'{stamp}-linked.json' is not an MLflow logging request (a link or a special file)") == 1
    said = settled(store)  # a reader says the same of what is left, a line each
    assert len(said) == 3 and all(line.endswith("ignored (remove it)") for line in said)


def test_the_studio_shows_a_run_waiting_to_be_logged_without_waiting(store, untracked):
    from pipelines.studio.views import mlflow_run

    _, failed, _ = untracked
    request(store, failed, tracked())
    record, definition = executions.load(store, failed), executions.load_definition(store, failed)
    assert mlflow_run(Store(store), record, definition) == {
        "run_id": "logging…", "experiment": "Tiny", "tracking_uri": f"sqlite:///{store / 'mlflow' / 'mlflow.db'}"}
    settled(store)
    shown = mlflow_run(Store(store), executions.load(store, failed), definition)
    assert shown["run_id"] == runs(store, failed)[0].info.run_id and shown["experiment"] == "Tiny"
