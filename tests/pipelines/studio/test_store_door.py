"""The studio reads the store only through its one door: a link or a special file planted where a record, a log
or an object should be is refused (403) at once, and what it points at is never shown."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request

from tests.pipelines.studio.conftest import TOKEN

SECRET = "studio-door-secret"


def stream(studio, path: str, seconds: float = 20) -> str:
    """What an event stream sends until it ends (or ``seconds`` pass)."""
    request = urllib.request.Request(studio.url + path, headers={"Cookie": f"studio_token={TOKEN}"})
    received, deadline = b"", time.monotonic() + seconds
    with urllib.request.urlopen(request, timeout=seconds) as response:
        while time.monotonic() < deadline:
            line = response.readline()
            if not line:
                break
            received += line
            if b"event: end" in received or b"event: problem" in received:
                received += response.readline()  # its data line
                break
    return received.decode()


def planted_secret(tmp_path) -> str:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    return str(secret)


def test_a_fifo_object_is_refused_at_once_and_never_waited_on(ran):
    studio = ran[0]
    (studio.store / "s3" / "bkt").mkdir(parents=True, exist_ok=True)
    os.mkfifo(studio.store / "s3" / "bkt" / "pipe.csv")
    started = time.monotonic()
    assert studio.get("/objects?uri=s3://bkt/pipe.csv")[0] == 403
    assert studio.get("/s3/bkt/pipe.csv")[0] == 403
    assert time.monotonic() - started < 20


def test_a_linked_execution_folder_is_not_rendered(ran, tmp_path):
    studio, succeeded, _ = ran
    copy = tmp_path / "outside-execution"
    shutil.copytree(studio.store / "executions" / succeeded, copy)
    (copy / "execution.json").write_text((copy / "execution.json").read_text().replace("studio-demo", SECRET))
    shutil.rmtree(studio.store / "executions" / succeeded)
    (studio.store / "executions" / succeeded).symlink_to(copy)
    status, body = studio.get(f"/executions/{succeeded}")
    assert status == 403 and "symbolic link" in body and SECRET not in body
    status, body = studio.get("/")
    assert status == 200 and SECRET not in body


def test_a_linked_job_log_streams_a_refusal_not_the_file(ran, tmp_path):
    studio, succeeded, _ = ran
    log = studio.store / "jobs" / succeeded / "Prepare" / "job.log"
    assert log.is_file()
    log.unlink()
    log.symlink_to(planted_secret(tmp_path))
    received = stream(studio, f"/api/executions/{succeeded}/steps/Prepare/log?host=algo-1")
    assert "event: problem" in received and "job.log is a symbolic link" in received and SECRET not in received
