"""The studio's launcher as its processes see it: a launcher that ended is reaped (no zombie stays behind), and
Stop signals only the launcher it started, never a process that merely has the pid its record names."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from pipelines.config import PipelineConfig, local_config
from pipelines.errors import ExecutionError
from pipelines.local import executions, launcher
from pipelines.local.executions import ExecutionLock, ExecutionRecord, now
from tests.pipelines.studio import demo


def state_of(pid: int) -> str | None:
    """The process's state letter (Z: a zombie nobody reaped), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def start_time_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[19])  # field 22


def test_a_launcher_that_ended_leaves_no_zombie(tmp_path):
    lambdas = demo.write(tmp_path / "demo")[1]
    config = local_config(PipelineConfig(mlflow_tracking_uri="off", local_lambdas=lambdas))
    store = tmp_path / "store"
    execution_id = launcher.start(store, config, demo.definition(), demo.NAME, {})
    directory = executions.execution_dir(store, execution_id)
    pid = int(re.search(r"\d+", (directory / launcher.PID).read_text()).group())
    deadline = time.monotonic() + 60
    while state_of(pid) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert executions.load(store, execution_id).status == "Succeeded"
    while state_of(pid) == "Z" and time.monotonic() < deadline:  # reaped by the studio's side, not at its exit
        time.sleep(0.05)
    assert state_of(pid) is None, f"the launcher {pid} stayed a zombie"


@pytest.fixture
def running_elsewhere(tmp_path):
    """An execution recorded as Executing whose lock this test holds, as an engine in a terminal would."""
    store = tmp_path / "store"
    ExecutionRecord("terminalrun01", "chain", "Executing", {}, now()).save(store)
    lock = ExecutionLock(store, "terminalrun01")
    assert lock.acquire()
    yield store, "terminalrun01"
    lock.release()


@pytest.mark.parametrize("recorded", [
    lambda pid: str(pid),  # a pid alone, as a launcher of an older version recorded it
    lambda pid: json.dumps({"pid": pid, "start_time": start_time_of(pid)}),  # the right start time, not a launcher
    lambda pid: json.dumps({"pid": pid, "start_time": start_time_of(pid) + 1}),  # reused: another start time
])
def test_a_pid_record_naming_another_process_sends_it_no_signal(running_elsewhere, recorded):
    store, execution_id = running_elsewhere
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (executions.execution_dir(store, execution_id) / launcher.PID).write_text(recorded(sleeper.pid))
        with pytest.raises(ExecutionError, match=f"execution {execution_id} is not running from the studio"):
            launcher.stop(store, execution_id)
        time.sleep(0.3)
        assert sleeper.poll() is None, "Stop signalled a process that is not the execution's launcher"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stop_of_an_execution_started_in_a_terminal_says_where_to_stop_it(running_elsewhere):
    store, execution_id = running_elsewhere
    with pytest.raises(ExecutionError, match=f"^execution {execution_id} was started from a terminal; stop it there "
                                             "with Ctrl-C$"):
        launcher.stop(store, execution_id)
    assert launcher.stop_refusal(store, execution_id) == (f"execution {execution_id} was started from a terminal; "
                                                          "stop it there with Ctrl-C")
