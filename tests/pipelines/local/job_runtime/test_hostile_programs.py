"""Hostile job programs in the sandbox: each attempt is denied or contained, every sentinel outside the job is
unchanged, and the job's own outputs are still published."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipelines.local.store import Store
from tests.pipelines.local.helpers import definition, engine, script_step
from tests.sandboxing import needs_bubblewrap

pytestmark = needs_bubblewrap

REPO = Path(__file__).resolve().parents[4]

# each attempt records what happened to it; the job then writes its own output as usual
HOSTILE = """
import json, os, pathlib, signal, subprocess, sys, time
targets = json.loads(sys.argv[1])
seen = {}
def attempt(name, action):
    try:
        seen[name] = ["done", action()]
    except Exception as exc:
        seen[name] = ["refused", type(exc).__name__]
attempt("write_home", lambda: pathlib.Path(targets["home_file"]).write_text("owned"))
attempt("read_planted", lambda: pathlib.Path(targets["planted"]).read_text())
attempt("write_store", lambda: pathlib.Path(targets["store_file"]).write_text("owned"))
attempt("list_store", lambda: os.listdir(targets["store"]))
attempt("write_project", lambda: open(targets["project_file"], "a").write("owned"))
attempt("write_venv", lambda: pathlib.Path(targets["venv_file"]).write_text("owned"))
attempt("kill_engine", lambda: os.kill(targets["engine_pid"], signal.SIGKILL))
attempt("credentials", lambda: pathlib.Path(targets["credentials"]).read_text())
# a process that outlives the job: it leaves the job's process group and would run on for a minute
subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(60)"],
                 env={**os.environ, "HOSTILE_TOKEN": targets["token"]}, start_new_session=True)
pathlib.Path("/opt/ml/processing/out/seen.json").write_text(json.dumps(seen))
"""


def code_with(targets: dict) -> str:
    return f"import sys; sys.argv[1:] = [{json.dumps(targets)!r}]\n" + HOSTILE


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def processes_with(token: str) -> list[int]:
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"HOSTILE_TOKEN={token}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.fixture
def planted():
    """A file in the user's real home folder, as credentials or keys would be; removed afterwards."""
    path = Path.home() / f".pipelines-sandbox-test-{uuid.uuid4().hex}"
    path.write_text("the user's secret")
    yield path
    path.unlink(missing_ok=True)


def test_a_hostile_processing_program_is_denied_or_contained_and_its_outputs_still_published(tmp_path, planted):
    store_dir = tmp_path / "store"
    store = Store(store_dir)
    store.put_bytes(b"registry rows", "s3://bkt/other-team/model.tar.gz")
    sentinel = store.path("s3://bkt/other-team/model.tar.gz")
    home_file = Path.home() / f".pipelines-sandbox-written-{uuid.uuid4().hex}"
    targets = {"home_file": str(home_file), "planted": str(planted), "store": str(store_dir),
               "store_file": str(sentinel), "project_file": str(REPO / "README.md"),
               "venv_file": str(Path(sys.prefix) / f"hostile-{uuid.uuid4().hex}.txt"), "engine_pid": os.getpid(),
               "credentials": str(Path.home() / ".aws" / "credentials"), "token": uuid.uuid4().hex}
    readme = digest(REPO / "README.md")
    run, _ = engine(store_dir)
    record = run.run(definition(script_step("Hostile", code_with(targets))), "p", {})

    assert record.status == "Succeeded", record.failure_reason  # and this process is alive to say so
    seen = json.loads(store.path(f"s3://bkt/runs/{record.execution_id}/Hostile/seen.json").read_text())
    # nothing of this machine's is visible: reads find nothing, writes land in the job's throwaway root or fail
    assert seen["read_planted"] == ["refused", "FileNotFoundError"]
    assert seen["credentials"] == ["refused", "FileNotFoundError"]
    assert seen["list_store"] == ["refused", "FileNotFoundError"]
    assert seen["write_store"][0] == "refused"  # the store's folders are not there to write into
    assert seen["write_venv"] == ["refused", "OSError"]  # read-only: the job's interpreter is not its to change
    assert seen["kill_engine"] == ["refused", "ProcessLookupError"]  # the engine is not in the job's PID namespace
    # the home folder and the project may be written as far as the program can tell: into its own throwaway
    # root; the real ones are untouched
    assert not home_file.exists() and planted.read_text() == "the user's secret"
    assert sentinel.read_bytes() == b"registry rows" and digest(REPO / "README.md") == readme
    assert not Path(targets["venv_file"]).exists()
    assert processes_with(targets["token"]) == []  # the forked process ended with its job


def test_a_network_isolated_job_reaches_nothing_but_gets_its_inputs_and_publishes_its_outputs(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = (f"import json, os, pathlib, socket, urllib.request\n"
            f"seen = {{'input': pathlib.Path('/opt/ml/processing/input/rows.csv').read_text()}}\n"
            f"for name, action in (('listener', lambda: socket.create_connection(('127.0.0.1', {port}), 3)),\n"
            f"                     ('s3', lambda: urllib.request.urlopen(os.environ['AWS_ENDPOINT_URL'], timeout=3))):\n"
            f"    try:\n"
            f"        action(); seen[name] = 'reached'\n"
            f"    except OSError as exc:\n"
            f"        seen[name] = type(exc).__name__\n"
            f"pathlib.Path('/opt/ml/processing/out/seen.json').write_text(json.dumps(seen))\n")
    step = script_step("Isolated", code)
    step["Arguments"]["NetworkConfig"] = {"EnableNetworkIsolation": True}
    step["Arguments"]["ProcessingInputs"] = [{"InputName": "rows", "S3Input": {
        "S3Uri": "s3://bkt/rows", "LocalPath": "/opt/ml/processing/input", "S3DataType": "S3Prefix"}}]
    store = Store(tmp_path / "store")
    store.put_bytes(b"1,2,3\n", "s3://bkt/rows/rows.csv")
    run, _ = engine(tmp_path / "store")
    try:
        record = run.run(definition(step), "p", {})
        assert record.status == "Succeeded", record.failure_reason
        seen = json.loads(store.path(f"s3://bkt/runs/{record.execution_id}/Isolated/seen.json").read_text())
        assert seen["input"] == "1,2,3\n"
        assert seen["listener"] != "reached" and seen["s3"] != "reached"
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
        assert not any("EnableNetworkIsolation" in line for line in record.step("Isolated").unenforced)
    finally:
        listener.close()


def test_without_network_isolation_a_job_reaches_the_store_endpoint(tmp_path):
    code = ("import os, pathlib, urllib.request\n"
            "pathlib.Path('/opt/ml/processing/out/status.txt').write_text("
            "str(urllib.request.urlopen(os.environ['AWS_ENDPOINT_URL'] + '/bkt/rows/rows.csv').status))\n")
    store = Store(tmp_path / "store")
    store.put_bytes(b"1,2,3\n", "s3://bkt/rows/rows.csv")
    run, _ = engine(tmp_path / "store")
    started = time.monotonic()
    record = run.run(definition(script_step("Reaches", code)), "p", {})
    assert record.status == "Succeeded", record.failure_reason
    assert store.path(f"s3://bkt/runs/{record.execution_id}/Reaches/status.txt").read_text() == "200"
    assert time.monotonic() - started < 60
