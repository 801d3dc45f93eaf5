"""Stop and Retry pressed as people press them: on an execution a terminal runs, and twice at once."""

from __future__ import annotations

import json
import threading

import pytest

from pipelines.local import executions
from pipelines.local.executions import ExecutionLock
from tests.pipelines.studio.conftest import post, run_demo, wait_until_ended
from tests.pipelines.studio.demo import HANDLER


@pytest.fixture
def terminal_run(ran):
    """The failed demo execution, recorded as Executing again and locked by this test, as an engine in a terminal
    running its retry holds it."""
    studio, _, failed = ran
    record = executions.load(studio.store, failed)
    record.status, record.end_time = "Executing", None
    record.save(studio.store)
    lock = ExecutionLock(studio.store, failed)
    assert lock.acquire()
    yield studio, failed
    lock.release()


def test_stop_of_an_execution_a_terminal_runs_is_refused_with_where_to_stop_it_and_the_page_knows(terminal_run):
    studio, execution_id = terminal_run
    reason = f"execution {execution_id} was started from a terminal; stop it there with Ctrl-C"
    status, text = studio.get(f"/api/executions/{execution_id}")
    state = json.loads(text)
    assert status == 200 and state["running"] is True
    assert state["stoppable"] is False and state["stop_note"] == reason  # what the page shows in Stop's place
    status, answer = post(studio, f"/api/executions/{execution_id}/stop", {})
    assert status == 400 and answer["error"] == reason
    status, page = studio.get(f"/executions/{execution_id}")
    assert 'id="stop-button" hidden' in page and reason in page


def test_two_retries_at_once_retry_once_and_the_other_is_told_one_is_running(tmp_path, start_studio, demo_lambdas):
    store = tmp_path / "store"
    failed = run_demo(store, demo_lambdas, Seconds=-1)  # Prepare fails: sleep length must be non-negative
    assert executions.load(store, failed).step("Prepare").status == "Failed"
    handlers = tmp_path / "demo" / "handlers.py"
    handlers.write_text(HANDLER.replace('time.sleep(float(event["seconds"]))', "time.sleep(3)"))  # a slow retry
    studio = start_studio(store, local_lambdas=demo_lambdas)
    answers: list[tuple[int, dict]] = []
    barrier = threading.Barrier(2)

    def press() -> None:
        barrier.wait()
        answers.append(post(studio, f"/api/executions/{failed}/retry", {}))

    pressing = [threading.Thread(target=press) for _ in range(2)]
    for thread in pressing:
        thread.start()
    for thread in pressing:
        thread.join(120)
    assert sorted(status for status, _ in answers) == [200, 400], answers
    refused = next(answer for status, answer in answers if status == 400)
    assert refused["error"].startswith(f"execution {failed} is still running"), refused
    record = wait_until_ended(studio, failed)
    assert record.retries == 1 and record.status == "Succeeded", record


@pytest.mark.parametrize("action", ["stop", "retry"])
def test_stop_or_retry_of_an_execution_the_store_does_not_hold_is_a_404_that_leaves_nothing(ran, action):
    studio = ran[0]
    status, answer = post(studio, f"/api/executions/nosuchexecution/{action}", {})
    assert status == 404 and answer["error"].startswith("no execution 'nosuchexecution'"), answer
    assert not (studio.store / "executions" / "nosuchexecution").exists()
