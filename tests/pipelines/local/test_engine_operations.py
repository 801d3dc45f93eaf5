"""The engine's operations on hand-written definitions: parallel steps, caching, retries, max runtime,
and resuming an execution whose engine was killed (a real subprocess and SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.local.executions import load
from pipelines.local.store import Store
from tests.pipelines.local.helpers import MARK, definition, engine, markers, script_step, stamp

REPO = Path(__file__).resolve().parents[3]
def times(marker_dir: Path, name: str) -> tuple[float, float]:
    return float((marker_dir / f"{name}.start").read_text()), float((marker_dir / f"{name}.end").read_text())


def test_independent_steps_run_at_the_same_time(tmp_path):
    doc = definition(script_step("A", stamp("A", 1.5)), script_step("B", stamp("B", 1.5)),
                     script_step("C", stamp("C"), depends_on=("A", "B")))
    record = engine(tmp_path / "store", max_parallel_steps=2)[0].run(doc, "p", {})
    assert record.status == "Succeeded"
    (a_start, a_end), (b_start, b_end), (c_start, _) = (times(markers(tmp_path / "store"), n) for n in "ABC")
    assert a_start < b_end and b_start < a_end          # A and B overlapped
    assert c_start > max(a_end, b_end)                  # C waited for both


def test_parallelism_bound_of_one_serialises_steps(tmp_path):
    doc = definition(script_step("A", stamp("A", 0.5)), script_step("B", stamp("B", 0.5)))
    doc["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": 1}
    assert engine(tmp_path / "store")[0].run(doc, "p", {}).status == "Succeeded"
    (a_start, a_end), (b_start, b_end) = times(markers(tmp_path / "store"), "A"), times(markers(tmp_path / "store"), "B")
    assert a_end <= b_start or b_end <= a_start


def test_second_run_reuses_cached_steps_and_no_cache_runs_them(tmp_path):
    doc = definition(script_step("A", stamp("A"), cache=True),
                     script_step("B", stamp("B"), depends_on=("A",)))
    eng, lines = engine(tmp_path / "store")
    first = eng.run(doc, "p", {})
    second = eng.run(doc, "p", {})
    a2 = second.step("A")
    assert a2.cache_hit_from == first.execution_id and a2.status == "Succeeded"
    # the cached step's properties point at the first execution's outputs, which still exist
    uri = a2.properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert first.execution_id in uri and Store(tmp_path / "store").objects(uri)
    assert second.step("B").cache_hit_from is None  # B has no CacheConfig
    assert any(f"A: cache hit: reusing the outputs of execution {first.execution_id}" == line for line in lines)
    third = engine(tmp_path / "store", cache=False)[0].run(doc, "p", {})
    assert third.step("A").cache_hit_from is None


def test_a_changed_argument_misses_the_cache(tmp_path):
    eng, _ = engine(tmp_path / "store")
    eng.run(definition(script_step("A", stamp("A"), cache=True)), "p", {})
    changed = eng.run(definition(script_step("A", stamp("A") + "# changed\n", cache=True)), "p", {})
    assert changed.step("A").cache_hit_from is None


def test_a_retry_policy_recovers_from_an_injected_transient_fault(tmp_path):
    sleeps: list[float] = []
    eng, lines = engine(tmp_path / "store", faults={"A": ("SageMaker.JOB_INTERNAL_ERROR", 2)}, sleep=sleeps.append)
    record = eng.run(definition(script_step("A", stamp("A"))), "p", {})
    step = record.step("A")
    assert record.status == "Succeeded" and step.attempts == 3
    assert sleeps == [1.0, 2.0]  # IntervalSeconds, then times BackoffRate
    assert any("attempt 1 failed with SageMaker.JOB_INTERNAL_ERROR" in line for line in lines)


def test_executions_and_describe_count_retries_and_step_attempts_alike(tmp_path, capsys):
    from pipelines.cli.commands.executions import main

    eng, _ = engine(tmp_path / "store", faults={"A": ("SageMaker.JOB_INTERNAL_ERROR", 2)}, sleep=lambda s: None)
    record = eng.run(definition(script_step("A", "print(1)"), script_step("B", "print(2)")), "p", {})
    assert main(["executions", "--store", str(tmp_path / "store"), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert main(["describe", record.execution_id, "--store", str(tmp_path / "store"), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert (listed["retries"], listed["step_retries"]) == (described["retries"], described["step_retries"]) == (0, 2)
    assert [s["attempts"] for s in described["steps"]] == [3, 1]
    assert main(["describe", record.execution_id, "--store", str(tmp_path / "store")]) == 0
    assert "retries 0; step retries 2" in capsys.readouterr().out


def test_retry_waits_can_be_scaled_for_quick_local_runs(tmp_path):
    sleeps: list[float] = []
    eng, lines = engine(tmp_path / "store", faults={"A": ("SageMaker.JOB_INTERNAL_ERROR", 2)}, sleep=sleeps.append,
                        retry_interval_scale=0.25)
    assert eng.run(definition(script_step("A", "print(1)")), "p", {}).status == "Succeeded"
    assert sleeps == [0.25, 0.5]
    assert any("retrying in 0.25s (IntervalSeconds x 0.25)" in line for line in lines)


def test_retries_stop_at_max_attempts(tmp_path):
    eng, _ = engine(tmp_path / "store", faults={"A": ("SageMaker.CAPACITY_ERROR", 10)}, sleep=lambda s: None)
    record = eng.run(definition(script_step("A", stamp("A"))), "p", {})
    step = record.step("A")
    assert record.status == "Failed" and step.attempts == 4  # the first attempt and MaxAttempts=3 retries
    assert step.failure_reason.startswith("InsufficientCapacityError: fault injected") and "after 4 attempts" in step.failure_reason


def test_a_retry_keeps_the_attempts_of_the_tries_before_it(tmp_path, capsys):
    from pipelines.cli.commands.executions import main

    store = tmp_path / "store"
    failing, _ = engine(store, faults={"A": ("SageMaker.CAPACITY_ERROR", 10)}, sleep=lambda s: None)
    failed = failing.run(definition(script_step("A", stamp("A"))), "p", {})
    assert failed.status == "Failed" and failed.step_retries == 3
    record = engine(store, sleep=lambda s: None)[0].retry(failed.execution_id)
    assert record.status == "Succeeded" and record.step("A").attempts == 1
    assert [(s.name, s.status, s.attempts) for s in record.history] == [("A", "Failed", 4)]
    assert load(store, failed.execution_id).step_retries == 3  # kept in the record, as `executions` counts them
    assert main(["describe", failed.execution_id, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "A (Processing): Succeeded" in out and "[attempt 1, before a retry: failed after 4 attempts]" in out
    assert "retries 1; step retries 3" in out
    assert "reason before the retry: InsufficientCapacityError: fault injected" in out


def test_a_script_that_exits_non_zero_is_not_retried(tmp_path):
    sleeps: list[float] = []
    eng, _ = engine(tmp_path / "store", sleep=sleeps.append)
    record = eng.run(definition(script_step("A", "import sys; print('bad input'); sys.exit(3)")), "p", {})
    step = record.step("A")
    assert record.status == "Failed" and step.attempts == 1 and sleeps == []
    assert step.failure_reason == "AlgorithmError: the processing program exited with code 3: bad input"


def test_a_step_over_its_max_runtime_is_stopped(tmp_path):
    eng, _ = engine(tmp_path / "store")
    started = time.monotonic()
    record = eng.run(definition(script_step("A", "import time; time.sleep(60)", max_runtime=1)), "p", {})
    assert time.monotonic() - started < 30
    step = record.step("A")
    assert record.status == "Failed" and step.attempts == 1
    assert step.failure_reason.startswith("MaxRuntimeExceeded: processing job pipelines-")
    assert "MaxRuntimeInSeconds (1)" in step.failure_reason


def test_unenforced_settings_are_in_the_execution_record(tmp_path):
    record = engine(tmp_path / "store")[0].run(definition(script_step("A", stamp("A"))), "p", {})
    assert any(line.startswith("RoleArn = arn:aws:iam::111122223333:role/Mine") for line in record.step("A").unenforced)


def cli(store: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    return subprocess.run([sys.executable, "-m", "pipelines.run", *args, "--store", str(store)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, **kwargs)


def running(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigkill_in_the_middle_of_a_step_then_retry_completes_the_execution(tmp_path):
    store = tmp_path / "store"
    count_runs = "mark('A.runs', str(int(marked('A.runs') or 0) + 1))\n"
    slow = (MARK + "import pathlib, time\n"
            "if marked('B.started') is None:\n"
            "    mark('B.started'); time.sleep(60)\n"
            "pathlib.Path('/opt/ml/processing/out/result.txt').write_text('B')\n")
    doc = definition(script_step("A", stamp("A") + count_runs),
                     script_step("B", slow, depends_on=("A",)),
                     script_step("C", stamp("C"), depends_on=("B",)))
    path = tmp_path / "def.json"
    path.write_text(json.dumps(doc))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    engine_process = subprocess.Popen([sys.executable, "-m", "pipelines.run", "--definition", str(path), "--store", str(store)],
                                      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (markers(store) / "B.started").exists():
        assert time.monotonic() < deadline and engine_process.poll() is None, "step B never started"
        time.sleep(0.1)
    engine_process.send_signal(signal.SIGKILL)
    engine_process.wait()

    [execution_id] = [p.name for p in (store / "executions").iterdir()]
    record = load(store, execution_id)
    assert record.status == "Executing" and record.step("B").status == "Executing"
    assert "Executing (interrupted" in cli(store, "executions").stdout

    orphan = int((store / "jobs" / execution_id / "B" / "job.pid").read_text())
    deadline = time.monotonic() + 10
    while running(orphan):  # B's program dies with its engine, as a container dies with its instance
        assert time.monotonic() < deadline, "B's program outlived its engine"
        time.sleep(0.1)

    result = cli(store, "retry", execution_id)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = load(store, execution_id)
    assert record.status == "Succeeded" and record.retries == 1
    assert [s.name for s in record.steps] == ["A", "B", "C"]
    assert (markers(store) / "A.runs").read_text() == "1"  # A was reused, not run again
    outputs = sorted(p.relative_to(store / "s3").as_posix() for p in (store / "s3" / "bkt" / "runs").rglob("*")
                     if p.is_file())
    assert outputs == [f"bkt/runs/{execution_id}/{n}/result.txt" for n in "ABC"]  # no temporary names left
    described = cli(store, "describe", execution_id)
    assert described.returncode == 0 and f"Execution {execution_id} of def: Succeeded" in described.stdout
    assert cli(store, "retry", execution_id).returncode == 2  # nothing left to retry


def test_describe_unknown_execution_is_a_clear_error(tmp_path):
    result = cli(tmp_path, "describe", "nope")
    assert result.returncode == 2 and "no execution 'nope'" in result.stderr


TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine)


def sigint_to_a_step_thread(pid: int) -> None:
    """SIGINT aimed at a non-main thread, as the kernel may pick any thread for a process-directed signal."""
    import ctypes

    threads = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert threads, "the engine has no step thread"
    assert ctypes.CDLL(None).syscall(TGKILL, pid, threads[-1], signal.SIGINT) == 0


@pytest.mark.parametrize("deliver", [
    pytest.param(lambda process: process.send_signal(signal.SIGINT), id="main-thread"),
    pytest.param(lambda process: sigint_to_a_step_thread(process.pid), id="step-thread",
                 marks=pytest.mark.skipif(TGKILL is None, reason="tgkill number unknown on this architecture")),
])
def test_ctrl_c_stops_running_job_programs_and_the_execution_as_the_studios_stop_does(tmp_path, deliver):
    store = tmp_path / "store"
    slow = MARK + "import time; mark('A.started'); time.sleep(60)\n"
    path = tmp_path / "def.json"
    path.write_text(json.dumps(definition(script_step("A", slow))))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_", "MLFLOW_"))}  # tracked
    # as a user's terminal gives it: a shell starting the suite in the background leaves SIGINT ignored,
    # and a Python started with SIGINT ignored never turns it into KeyboardInterrupt
    engine_process = subprocess.Popen([sys.executable, "-m", "pipelines.run", "--definition", str(path), "--store", str(store)],
                                      cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (markers(store) / "A.started").exists():
        assert time.monotonic() < deadline and engine_process.poll() is None, "step A never started"
        time.sleep(0.1)
    [execution_id] = [p.name for p in (store / "executions").iterdir()]
    program = int((store / "jobs" / execution_id / "A" / "job.pid").read_text())
    deliver(engine_process)
    assert engine_process.wait(timeout=30) == 130
    said = engine_process.stderr.read()
    assert f"interrupted: execution {execution_id} stopped; its succeeded steps are kept, and `" in said, said
    assert f"-m pipelines.run retry {execution_id} --store {store}` runs the rest" in said
    assert not running(program)
    record = load(store, execution_id)  # Stopped and tracked, as the studio's Stop leaves it
    assert record.status == "Stopped" and record.step("A").status == "Stopped"
    assert record.failure_reason == "stopped by request (Ctrl-C)" and record.mlflow_run is not None
    listed = cli(store, "executions").stdout
    assert "Stopped" in listed and "interrupted" not in listed


def test_job_programs_get_a_passive_openmp_wait_policy_unless_their_environment_says_otherwise(tmp_path):
    code = ("import os, pathlib; pathlib.Path('/opt/ml/processing/out/policy.txt')"
            ".write_text(os.environ.get('OMP_WAIT_POLICY', 'unset'))")
    default, own = script_step("Default", code), script_step("Own", code)
    own["Arguments"]["Environment"] = {"OMP_WAIT_POLICY": "ACTIVE"}
    run, _ = engine(tmp_path / "store")
    record = run.run(definition(default, own), "p", {})
    assert record.status == "Succeeded"
    store = tmp_path / "store" / "s3" / "bkt" / "runs" / record.execution_id
    assert (store / "Default" / "policy.txt").read_text() == "PASSIVE"
    assert (store / "Own" / "policy.txt").read_text() == "ACTIVE"


def test_logs_prints_a_steps_whole_job_log_and_names_the_steps_otherwise(tmp_path):
    local, _ = engine(tmp_path / "store")
    code = "print('\\n'.join(f'line {i}' for i in range(500)))"
    record = local.run(definition(script_step("Many", code)), "p", {})
    run = lambda *argv: subprocess.run([sys.executable, "-m", "pipelines.run", "logs", *argv, "--store",  # noqa: E731
                                        str(tmp_path / "store")], capture_output=True, text=True, timeout=60)
    shown = run(record.execution_id, "Many")
    assert shown.returncode == 0 and shown.stdout.splitlines() == [f"line {i}" for i in range(500)]
    missing = run(record.execution_id, "Few")
    assert missing.returncode == 2 and "has no step 'Few' that ran; its steps: Many" in missing.stderr


def test_describe_shows_where_each_step_wrote_and_keeps_long_json_whole(tmp_path):
    local, _ = engine(tmp_path / "store")
    code = ("import json, pathlib; pathlib.Path('/opt/ml/processing/out/report.json').write_text(json.dumps("
            "{'text': 'x' * 500}))")
    step = script_step("Report", code)
    step["PropertyFiles"] = [{"PropertyFileName": "R", "OutputName": "out", "FilePath": "report.json"}]
    record = local.run(definition(step), "p", {})
    shown = subprocess.run([sys.executable, "-m", "pipelines.run", "describe", record.execution_id, "--store",
                            str(tmp_path / "store")], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    uri = f"s3://bkt/runs/{record.execution_id}/Report"
    assert f"  output out: {uri} ({tmp_path / 'store' / 's3' / 'bkt' / 'runs' / record.execution_id / 'Report'})" \
        in shown.stdout.splitlines()
    lines = shown.stdout.splitlines()
    assert lines[lines.index("  property file R:") + 2] == '      "text": "' + "x" * 500 + '"'  # strings stay whole


def test_a_fault_injected_into_a_cache_hit_is_said_to_do_nothing(tmp_path):
    doc = definition(script_step("A", stamp("A"), cache=True))
    assert engine(tmp_path / "store")[0].run(doc, "p", {}).status == "Succeeded"
    eng, lines = engine(tmp_path / "store", faults={"A": ("SageMaker.JOB_INTERNAL_ERROR", 1)}, sleep=lambda s: None)
    record = eng.run(doc, "p", {})
    assert record.status == "Succeeded" and record.step("A").cache_hit_from and record.step("A").attempts == 1
    assert "A: note: --inject-fault A=... does nothing here: the step is a cache hit, so no attempt runs " \
           "(--no-cache runs it)" in lines
