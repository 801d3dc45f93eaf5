"""The studio in a real Chromium (the distribution's, driven by Playwright): live updates without a reload,
a step's log, a failure in red on the graph, Start with a bad and a good parameter, an approval that
changes the registry and writes its event line, refusals, and screenshots of the main pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from pipelines.local import executions
from pipelines.local.registry import Registry
from tests.pipelines.studio.conftest import TOKEN, run_demo, screenshot
from tests.pipelines.studio.demo import NAME, write

REPO = Path(__file__).resolve().parents[3]
RED = "rgb(217, 21, 21)"


def enter(page, studio, path: str = "/") -> None:
    """Open the studio as its printed URL does: with the token, which becomes a cookie."""
    page.goto(f"{studio.url}{path}{'&' if '?' in path else '?'}token={TOKEN}")


def both_widths(page, name: str) -> None:
    """Screenshots at 1280 px and 800 px wide."""
    for width in (1280, 800):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)
        screenshot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_run_started_from_the_cli_appears_and_its_steps_turn_succeeded_without_a_reload(
        tmp_path, start_studio, page):
    store = tmp_path / "store"
    definition, lambdas = write(tmp_path / "demo")
    studio = start_studio(store)
    enter(page, studio)
    page.evaluate("window.notReloaded = true")
    command = [sys.executable, "-m", "pipelines.run", "--definition", str(definition), "--store", str(store),
               "--mlflow-tracking-uri", "off", "--parameter", "Seconds=4"]
    for arn, handler in lambdas:
        command += ["--local-lambda", f"{arn}={handler}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    run = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        row = page.locator("table.executions tbody tr", has_text=NAME)
        row.wait_for(timeout=60_000)  # the home page's list grew by itself
        assert page.evaluate("window.notReloaded") is True
        row.locator("a", has_text=NAME).wait_for()
        row.locator("td:nth-child(2) a").click()
        page.wait_for_url("**/executions/*")
        initial = json.loads(page.locator("#initial-state").text_content())
        assert initial["status"] == "Executing"  # the page opened while Prepare still slept
        page.evaluate("window.notReloaded = true")
        page.locator("#node-Prepare.status-Succeeded").wait_for(timeout=60_000)
        page.locator("#node-Score.status-Succeeded").wait_for(timeout=60_000)
        page.locator("#execution-status .status-Succeeded").wait_for(timeout=60_000)
        assert page.evaluate("window.notReloaded") is True  # every change came by the event stream
        assert "status-Not-taken" in page.locator("#node-TooFew").get_attribute("class")
        assert page.locator("#timeline .lane").count() == 3
        assert run.wait(60) == 0, run.stdout.read()
        page.locator("#node-Prepare").click()
        page.locator("#step-panel [data-tab=logs]").click()
        page.locator("#step-panel pre.log", has_text="prepared").wait_for()
        both_widths(page, "execution")
    finally:
        run.kill()
        run.wait()


def test_start_refuses_a_bad_parameter_by_its_field_then_starts_one_whose_failure_shows_in_red(
        tmp_path, start_studio, page, demo_lambdas):
    store = tmp_path / "store"
    run_demo(store, demo_lambdas)
    studio = start_studio(store, local_lambdas=demo_lambdas)
    enter(page, studio, f"/pipelines/{NAME}")
    both_widths(page, "pipeline")
    page.locator("[data-tab=graph]").click()
    assert page.locator("svg.graph .edge-branch .edge-label").all_text_contents() == ["true", "false"]
    page.locator("[data-tab=start]").click()
    page.fill("input[name=Rows]", "lots")
    page.locator("#start-form button[type=submit]").click()
    error = page.locator("[data-field=Rows] .field-error")
    error.wait_for()
    assert error.text_content() == "parameter Rows is Integer; 'lots' is not a valid integer"
    assert len(list(executions.all_records(store))) == 1  # nothing was started

    page.fill("input[name=Rows]", "5")
    page.locator("#start-form button[type=submit]").click()
    page.wait_for_url("**/executions/*")
    execution_id = page.url.rsplit("/", 1)[1]
    failed = page.locator("#node-TooFew.status-Failed")
    failed.wait_for(timeout=60_000)
    reason = failed.locator(".reason")
    assert reason.text_content() == "too few rows: 5"
    assert reason.evaluate("element => getComputedStyle(element).fill") == RED
    assert executions.load(store, execution_id).parameters["Rows"] == 5
    page.locator("#node-Prepare").click()
    page.locator("#step-panel [data-tab=logs]").click()
    page.locator("#step-panel pre.log", has_text="preparing 5 rows").wait_for()
    page.locator("#node-TooFew").click()
    page.locator("#step-panel .step-failure", has_text="too few rows: 5").wait_for()
    screenshot(page, "failed-execution")


def register(store: Path, tmp_path: Path) -> None:
    """Version 1 of LeadScoringModels, pending: a real XGBoost model of 3 features."""
    from pipelines.local.store import Store
    from tests.inference.test_xgboost_csv import model_archive

    folder = tmp_path / "model"
    folder.mkdir()
    Store(store).put_file(model_archive(folder), "s3://bkt/models/v1/model.tar.gz")
    Registry(store / "registry.sqlite").register("LeadScoringModels", "PendingManualApproval", {"Containers": [{
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "ModelDataUrl": "s3://bkt/models/v1/model.tar.gz"}]})


def test_approving_a_version_on_the_page_changes_the_registry_and_writes_the_event_line_then_it_serves(
        tmp_path, start_studio, page):
    store = tmp_path / "store"
    register(store, tmp_path)
    studio = start_studio(store)
    enter(page, studio, "/registry")
    page.locator("a", has_text="version 1").click()
    assert not page.locator("#deploy-form").is_visible()  # only an Approved version is deployed
    page.locator("#decision-form button[value=approve]").click()
    page.locator("[data-field=comment] .field-error", has_text="must say why").wait_for()
    assert Registry(store / "registry.sqlite").describe("LeadScoringModels", 1)["ModelApprovalStatus"] == \
        "PendingManualApproval"
    page.fill("textarea[name=comment]", "Reviewed: lift holds on the holdout")
    page.locator("#decision-form button[value=approve]").click()
    page.locator("#approval .status-Approved").wait_for()
    assert "Reviewed: lift holds on the holdout" in page.locator("#history tbody tr").first.text_content()
    assert Registry(store / "registry.sqlite").describe("LeadScoringModels", 1)["ModelApprovalStatus"] == "Approved"
    events = (store / "events" / "model-package-state-change.jsonl").read_text().splitlines()
    assert json.loads(events[-1])["detail"]["ModelApprovalStatus"] == "Approved"
    both_widths(page, "model-version")

    page.fill("input[name=endpoint]", "studio-leads")
    page.locator("#deploy-form button[type=submit]").click()
    page.locator("#deploy-form .form-result", has_text="Serving at http://127.0.0.1:").wait_for(timeout=90_000)
    try:
        page.goto(studio.url + "/endpoints")
        section = page.locator("section.endpoint[data-endpoint=studio-leads]")
        assert "version 1" in section.text_content() and "InService" in section.text_content()
        section.locator("textarea").fill("2,0,0")
        section.locator("button[type=submit]").click()
        answer = section.locator(".invoke-result")
        answer.wait_for()
        status, score = answer.text_content().splitlines()
        assert status == "HTTP 200" and 0.0 <= float(score) <= 1.0
        screenshot(page, "endpoints")
    finally:
        page.goto(studio.url + "/endpoints")
        page.locator(".undeploy[data-endpoint=studio-leads]").click()
        page.locator("text=No local endpoint").wait_for()
    assert not (store / "endpoints" / "studio-leads").exists()


def test_a_report_shows_its_charts_but_cannot_run_a_script(tmp_path, start_studio, page):
    import base64

    folder = tmp_path / "store" / "s3" / "bkt" / "eval"
    folder.mkdir(parents=True)
    pixel = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    (folder / "chart.png").write_bytes(pixel)
    (folder / "report.html").write_text('<h1>Report</h1><img id="chart" src="chart.png">'
                                        '<script>parent.document.title = "taken"; document.title = "ran"</script>')
    studio = start_studio(tmp_path / "store")
    enter(page, studio, "/objects?uri=s3://bkt/eval/report.html")
    frame = page.frame_locator("iframe.report")
    frame.locator("h1", has_text="Report").wait_for()
    assert frame.locator("#chart").evaluate("image => image.complete && image.naturalWidth") == 1
    assert page.title() != "taken" and frame.locator("html").evaluate("() => document.title") != "ran"


def test_without_the_token_or_outside_the_store_the_browser_is_refused(tmp_path, start_studio, page):
    studio = start_studio(tmp_path / "store")
    response = page.goto(studio.url + "/")
    assert response.status == 403 and "token" in page.content()
    enter(page, studio)
    response = page.goto(studio.url + "/objects?uri=s3://bkt/../../../etc/passwd")
    assert response.status == 403 and "root:" not in page.content()
    both_widths(page, "home-refused")


def test_stop_is_offered_only_where_it_can_stop_and_an_answer_stays_through_live_updates(
        tmp_path, start_studio, page, demo_lambdas):
    store = tmp_path / "store"
    execution_id = run_demo(store, demo_lambdas, Rows=5)
    record = executions.load(store, execution_id)
    record.status, record.end_time = "Executing", None  # a retry of it running in a terminal, which holds its lock
    record.save(store)
    lock = executions.ExecutionLock(store, execution_id)
    assert lock.acquire()
    try:
        studio = start_studio(store, local_lambdas=demo_lambdas)
        enter(page, studio, f"/executions/{execution_id}")
        note = page.locator("#stop-note")
        reason = f"execution {execution_id} was started from a terminal; stop it there with Ctrl-C"
        assert note.text_content() == reason and note.is_visible()
        assert not page.locator("#stop-button").is_visible()  # no button that can only be refused
        record.step("TooFew").status = "Executing"
        record.save(store)
        page.locator("#node-TooFew.status-Executing").wait_for()  # a live update came
        assert note.is_visible() and note.text_content() == reason and not page.locator("#stop-button").is_visible()

        record.status, record.end_time, record.step("TooFew").status = "Failed", record.start_time, "Failed"
        record.save(store)  # its record says Failed, while the terminal still holds it
        page.locator("#retry-button").click()
        problem = page.locator("#action-problem")
        problem.wait_for()
        assert problem.text_content().startswith(f"execution {execution_id} is still running")
        record.failure_reason = "changed"
        record.step("TooFew").status = "Stopped"
        record.save(store)
        page.locator("#node-TooFew.status-Stopped").wait_for()  # another live update
        assert problem.is_visible() and problem.text_content().startswith(f"execution {execution_id} is still running")
        screenshot(page, "stop-refused")
    finally:
        lock.release()
    assert executions.load(store, execution_id).retries == 0
