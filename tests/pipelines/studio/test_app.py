"""The studio over HTTP, with a real server on loopback and urllib as the client: the token and the host
are required, actions need the token header, nothing outside the store is served, Start checks its
parameters by the field, and the pages show what the records say."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from pipelines.local import executions
from pipelines.local.job_logs import step_logs
from pipelines.local.store import Store
from tests.pipelines.studio.conftest import TOKEN, post, run_demo, wait_until_ended
from tests.pipelines.studio.demo import NAME


def test_every_request_needs_the_token_and_the_url_token_becomes_a_cookie(ran):
    studio, succeeded, _ = ran
    for path in ("/", f"/executions/{succeeded}", "/api/events", "/static/studio.js", "/registry"):
        status, body = studio.get(path, token=False)
        assert status == 403 and "token" in body, path
    assert studio.get("/?token=wrong", token=False)[0] == 403
    request = urllib.request.Request(studio.url + f"/executions/{succeeded}?token={TOKEN}")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(request, timeout=10)
        raise AssertionError("the token in the URL must be answered with a redirect")
    except urllib.error.HTTPError as exc:
        assert exc.code == 303 and exc.headers["Location"] == f"/executions/{succeeded}"
        cookie = exc.headers["Set-Cookie"]
        assert f"studio_token={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert studio.get(f"/executions/{succeeded}")[0] == 200
    assert studio.get("/", token=False, headers={"Authorization": f"token {TOKEN}"})[0] == 200


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_an_action_needs_the_token_header_and_another_host_is_refused(ran):
    studio, _, failed = ran
    status, answer = post(studio, f"/api/executions/{failed}/retry", {}, token_header=False)
    assert status == 403 and "X-Studio-Token" in answer["text"]
    assert executions.load(studio.store, failed).retries == 0  # nothing was done
    status, body = studio.get("/", headers={"Host": "attacker.example:80"})
    assert status == 403 and "loopback" in body


@pytest.mark.parametrize("path", [
    "/objects?uri=s3://sagemaker-local/../../etc/passwd",
    "/objects?uri=s3://../etc/passwd",
    "/s3/sagemaker-local/..%2F..%2F..%2Fetc%2Fpasswd",
    "/objects?uri=/etc/passwd",
    "/executions/..%2F..%2Fetc/steps/x",
])
def test_nothing_outside_the_store_is_served(ran, path):
    studio = ran[0]
    status, body = studio.get(path)
    assert status in (400, 403, 404) and "root:" not in body, (path, status)


def test_a_symbolic_link_in_the_store_is_refused(ran, tmp_path):
    studio = ran[0]
    bucket = studio.store / "s3" / "bkt"
    bucket.mkdir(parents=True)
    (bucket / "escape").symlink_to("/etc/passwd")
    for path in ("/objects?uri=s3://bkt/escape", "/s3/bkt/escape"):
        status, body = studio.get(path)
        assert status == 403 and "symbolic link" in body and "root:" not in body


def test_objects_are_shown_by_kind_and_served_in_a_sandbox(ran):
    studio = ran[0]
    bucket = studio.store / "s3" / "bkt" / "data"
    bucket.mkdir(parents=True)
    (bucket / "rows.csv").write_text("label,a,b\n1,2,3\n0,4,5\n")
    (bucket / "page.html").write_text("<script>fetch('/')</script>")
    status, body = studio.get("/objects?uri=s3://bkt/data/rows.csv")
    assert status == 200 and "<td>label</td>" in body and "<td>4</td>" in body
    status, body = studio.get("/objects?uri=s3://bkt/data/")
    assert status == 200 and "s3://bkt/data/page.html" in body and "s3://bkt/data/rows.csv" in body
    with urllib.request.urlopen(urllib.request.Request(studio.url + "/s3/bkt/data/page.html",
                                                       headers={"Cookie": f"studio_token={TOKEN}"})) as response:
        assert response.headers["Content-Security-Policy"] == "sandbox allow-same-origin"  # no script, no form
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert studio.get("/objects?uri=s3://bkt/nothing-here")[0] == 404


def test_start_checks_each_parameter_as_the_cli_does_and_names_the_field(ran):
    studio = ran[0]
    status, answer = post(studio, f"/api/pipelines/{NAME}/start",
                          {"parameters": {"Rows": "many", "Mode": "slow", "Unknown": "1", "Threshold": "3"}})
    assert status == 400
    errors = answer["errors"]
    assert set(errors) == {"Rows", "Mode", "Unknown"}
    assert errors["Rows"] == "parameter Rows is Integer; 'many' is not a valid integer"
    assert errors["Mode"] == "parameter Mode must be one of fast, thorough; got 'slow'"
    assert errors["Unknown"].startswith("unknown parameter 'Unknown'")
    before = len(list(executions.all_records(studio.store)))
    assert before == 2  # a refused Start starts nothing


def test_start_stop_and_retry_run_in_the_background(ran):
    studio, _, failed = ran
    status, answer = post(studio, f"/api/pipelines/{NAME}/start", {"parameters": {"Seconds": "60"}})
    assert status == 200, answer
    started = answer["execution_id"]
    record = executions.load(studio.store, started)
    assert record.status == "Executing" and record.parameters["Seconds"] == 60.0
    deadline = time.monotonic() + 60
    while (executions.load(studio.store, started).step("Prepare") is None) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert post(studio, f"/api/executions/{started}/stop", {})[0] == 200
    while executions.load(studio.store, started).status == "Executing" and time.monotonic() < deadline:
        time.sleep(0.1)
    stopped = executions.load(studio.store, started)
    assert stopped.status == "Stopped" and stopped.step("Prepare").status == "Stopped"
    assert time.monotonic() < deadline  # stopped well before the step's minute was up
    status, answer = post(studio, f"/api/executions/{started}/stop", {})
    assert status == 400 and answer["error"] == f"execution {started} is not running"

    assert post(studio, f"/api/executions/{failed}/retry", {})[0] == 200
    while executions.ExecutionLock(studio.store, failed).is_held_elsewhere() or \
            executions.load(studio.store, failed).status == "Executing":
        time.sleep(0.1)
    retried = executions.load(studio.store, failed)
    assert retried.retries == 1 and retried.status == "Failed"  # the same parameters fail the same way
    assert [s.name for s in retried.history] == ["TooFew"]


def test_compare_and_the_definition_difference(ran):
    studio, succeeded, failed = ran
    status, body = studio.get(f"/compare?id={succeeded}&id={failed}")
    assert status == 200
    assert '<tr class="differs"><td>Rows</td><td>100</td><td>5</td></tr>' in body
    assert '<tr class="same"><td>Threshold</td><td>10</td><td>10</td></tr>' in body
    status, body = studio.get(f"/pipelines/{NAME}/diff?a={succeeded}&b={failed}")
    assert status == 200 and "ran the same definition" in body
    status, body = studio.get(f"/pipelines/{NAME}/definition.json")
    assert status == 200 and json.loads(body)["Parameters"][0]["Name"] == "Rows"


def test_the_state_stream_sends_the_execution_and_each_step(ran):
    studio, _, failed = ran
    request = urllib.request.Request(studio.url + f"/api/executions/{failed}/events",
                                     headers={"Cookie": f"studio_token={TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        line = response.readline().decode()
    state = json.loads(line.removeprefix("data: "))
    assert state["status"] == "Failed" and state["failure"] == "TooFew: too few rows: 5"
    assert state["steps"]["EnoughRows"]["outcome"] in (False, "False")
    assert state["steps"]["Score"]["status"] == "Not taken"
    assert state["steps"]["TooFew"]["status"] == "Failed"


def test_the_log_stream_shows_the_training_logs_escaped_tabs_as_tabs(ran):
    studio, succeeded, _ = ran
    [(_, log)] = [entry for entry in step_logs(Store(studio.store), succeeded, "Prepare") if entry[0] == "algo-1"]
    with open(log, "a") as handle:
        handle.write("[0]#011train-auc:0.91#011validation-auc:0.88\n")
    request = urllib.request.Request(studio.url + f"/api/executions/{succeeded}/steps/Prepare/log?host=algo-1",
                                     headers={"Cookie": f"studio_token={TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        events = response.read().decode().split("\n\n")
    lines = [json.loads(event.removeprefix("data: ")) for event in events if event.startswith("data: ")]
    assert lines[-1] == "[0]\ttrain-auc:0.91\tvalidation-auc:0.88"


def test_a_step_page_shows_its_log_and_a_missing_step_is_a_404(ran):
    studio, succeeded, _ = ran
    status, body = studio.get(f"/executions/{succeeded}/steps/Prepare")
    assert status == 200 and "/log?host=algo-1" in body and "Resolved arguments" in body
    status, body = studio.get(f"/executions/{succeeded}/steps/Nope")
    assert status == 404 and "no step" in body
    status, body = studio.get("/executions/nosuchexecution")
    assert status == 404


def test_the_studio_command_refuses_a_missing_store_in_one_line(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pipelines.studio", "--store", str(tmp_path / "nope"),
                             "--no-browser"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PIPELINE_REGION": "us-east-1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: there is no local store at")


def test_selected_steps_run_again_with_the_others_reused_from_the_execution(ran):
    studio, succeeded, _ = ran
    status, answer = post(studio, f"/api/executions/{succeeded}/rerun", {"steps": ["Nope"]})
    assert status == 400 and "Nope" in answer["error"] and "does not have" in answer["error"]
    status, answer = post(studio, f"/api/executions/{succeeded}/rerun", {"steps": ["Score"]})
    assert status == 200, answer
    record = wait_until_ended(studio, answer["execution_id"])
    assert record.status == "Succeeded" and record.selected_steps == ["Score"]
    assert record.reference_execution == succeeded
    assert {s.name: s.reused_from for s in record.steps} == {"Prepare": succeeded, "EnoughRows": succeeded,
                                                            "Score": None}
    assert record.parameters == executions.load(studio.store, succeeded).parameters


def test_the_registry_pages_and_a_decision_that_is_not_one(ran):
    from pipelines.local.registry import Registry

    studio = ran[0]
    registry = Registry(studio.store / "registry.sqlite")
    for _ in range(2):
        registry.register("Leads", "PendingManualApproval", {"Containers": [{"Image": "img",
                                                                             "ModelDataUrl": "s3://bkt/m.tar.gz"}]},
                          description=f"v{_}")
    status, body = studio.get("/registry")
    assert status == 200 and "/registry/Leads/2" in body and "/registry/Leads/1" in body
    status, body = studio.get("/registry/Leads/2")
    assert status == 200 and "No evaluation report is registered" in body and "No decision yet." in body
    status, answer = post(studio, "/api/registry/Leads/2/decision", {"decision": "maybe", "comment": "x"})
    assert status == 400 and answer["error"] == "decision must be approve or reject"
    status, answer = post(studio, "/api/registry/Leads/2/deploy", {"endpoint": "e"})
    assert status == 400 and "only an Approved version is deployed" in answer["error"]
    status, answer = post(studio, "/api/registry/Leads/2/decision", {"decision": "reject",
                                                                      "comment": "key AKIAIOSFODNN7EXAMPLE"})
    assert status == 400 and registry.describe("Leads", 2)["ModelApprovalStatus"] == "PendingManualApproval"
    status, answer = post(studio, "/api/registry/Leads/2/decision", {"decision": "reject", "comment": "lift too low"})
    assert status == 200 and answer == {"status": "Rejected", "version": 2}
    assert registry.history("Leads", 2)[-1]["description"] == "lift too low"
    assert studio.get("/registry/Leads/9")[0] == 400
    status, body = studio.get("/registry/Leads/compare?v=1&v=2")
    assert status == 200 and "version 1" in body and "version 2" in body


def test_a_stopped_execution_is_recorded_and_tracked_as_a_killed_mlflow_run(tmp_path, start_studio, demo_lambdas):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "store"
    run_demo(store, demo_lambdas)
    studio = start_studio(store, local_lambdas=demo_lambdas, mlflow_tracking_uri="store")
    status, answer = post(studio, f"/api/pipelines/{NAME}/start", {"parameters": {"Seconds": "60"}})
    assert status == 200, answer
    started = answer["execution_id"]
    deadline = time.monotonic() + 60
    while executions.load(studio.store, started).step("Prepare") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert post(studio, f"/api/executions/{started}/stop", {})[0] == 200
    record = wait_until_ended(studio, started)
    assert record.status == "Stopped" and record.failure_reason == "stopped by request (Stop)"
    while record.mlflow_run is None and time.monotonic() < deadline + 60:  # tracked once the record says Stopped
        time.sleep(0.2)
        record = executions.load(studio.store, started)
    run = MlflowClient(record.mlflow_run["tracking_uri"]).get_run(record.mlflow_run["run_id"])
    assert run.info.status == "KILLED" and run.data.tags["execution_id"] == started
    assert run.data.tags["status"] == "Stopped"


def test_the_studio_command_prints_its_url_with_the_token_and_opens_it_with_browser(tmp_path):
    import re
    import signal
    import subprocess
    import sys

    (tmp_path / "store").mkdir()
    opener = tmp_path / "open-browser"
    opener.write_text(f"#!/bin/sh\necho \"$1\" > {tmp_path / 'opened'}\n")
    opener.chmod(0o755)
    env = {**os.environ, "BROWSER": str(opener), "PIPELINE_REGION": "us-east-1"}
    server = subprocess.Popen([sys.executable, "-m", "pipelines.studio", "--store", str(tmp_path / "store"),
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout.readline().startswith("Local studio of ")
        url = server.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{32}", url)
        deadline = time.monotonic() + 30
        while not (tmp_path / "opened").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "opened").read_text().strip() == url
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # keeps the cookie, as one does
        with browser.open(url.replace("/?token=", "/?tab=graph&token="), timeout=10) as response:
            assert response.status == 200 and response.geturl().endswith("/?tab=graph")  # the token left the URL
        with browser.open(url.split("?")[0] + "registry", timeout=10) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 130  # stopped by Ctrl-C, as the command's docstring says
        assert "Traceback" not in server.stderr.read()


def test_looking_at_the_registry_of_a_store_without_one_creates_none(tmp_path, start_studio):
    studio = start_studio(tmp_path / "empty")
    status, body = studio.get("/registry")
    assert status == 200 and "No model is registered" in body
    status, body = studio.get("/registry/Leads/1")
    assert status == 404 and "no model registry" in body
    status, answer = post(studio, "/api/registry/Leads/1/decision", {"decision": "approve", "comment": "ok"})
    assert status == 404
    assert not (studio.store / "registry.sqlite").exists()


def test_a_body_of_the_wrong_shape_is_a_400_naming_the_field_and_changes_nothing(ran):
    from pipelines.local.registry import Registry

    studio = ran[0]
    for body, expected in ((b"not json", "the request body must be JSON"), (b"[1]", "must be a JSON object")):
        request = urllib.request.Request(studio.url + f"/api/pipelines/{NAME}/start", data=body, method="POST",
                                         headers={"Cookie": f"studio_token={TOKEN}", "X-Studio-Token": TOKEN})
        try:
            urllib.request.urlopen(request, timeout=30)
            raise AssertionError("a body that is not a JSON object must be refused")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and expected in json.loads(exc.read())["error"]
    status, answer = post(studio, f"/api/pipelines/{NAME}/start", {"parameters": "Rows=5"})
    assert status == 400 and answer["error"] == "parameters: must be an object; got str"
    registry = Registry(studio.store / "registry.sqlite")
    registry.register("Leads", "PendingManualApproval", {"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/m"}]})
    status, answer = post(studio, "/api/registry/Leads/1/decision", {"decision": "approve", "comment": 5})
    assert status == 400 and answer["error"] == "comment: must be a string; got int"
    assert registry.describe("Leads", 1)["ModelApprovalStatus"] == "PendingManualApproval"
    assert len(list(executions.all_records(studio.store))) == 2


@pytest.mark.parametrize("argv, line", [
    (["-m", "pipelines.studio", "--port", "99999"], "argument --port: must be 0 to 65535, got 99999"),
    (["-m", "pipelines.studio", "--mlflow-ui", "ftp://x", "--no-browser"],
     "error: --mlflow-ui 'ftp://x' must be an http:// or https:// address"),
    (["-m", "pipelines.local.launcher"], "usage: python -m pipelines.local.launcher EXECUTION_DIR"),
    (["-m", "pipelines.local.launcher", "/nonexistent"], "error: /nonexistent is not an execution started in the "
                                                          "background"),
])
def test_a_wrong_value_for_the_studio_or_its_launcher_is_one_line_and_exit_2(tmp_path, argv, line):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, *argv, *(["--store", str(tmp_path)] if "pipelines.studio" in argv else [])],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PIPELINE_REGION": "us-east-1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert line in result.stderr
