"""The one progress renderer: plain one-line events without a terminal, a live table on one."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import pytest

from pipelines.progress import Progress
from pipelines.results import StepStatus

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def steps() -> list[StepStatus]:
    return [StepStatus("PrepareData", "Succeeded", START, START, cache_hit_from="abc123"),
            StepStatus("Train", "Executing", START, attempts=2),
            StepStatus("Evaluate", "Failed", START, START + timedelta(seconds=3), "AlgorithmError: boom")]


def test_plain_mode_prints_each_change_once():
    stream = io.StringIO()
    with Progress("p", stream=stream, live=False) as progress:
        progress.update(steps(), "Started")
        progress.update(steps())  # nothing changed: nothing printed
        progress.log("Train", "[0]#011train-auc:0.7")
    assert stream.getvalue().splitlines() == [
        "Started",
        "PrepareData: Succeeded in 0.0s (cache hit from execution abc123)",
        "Train: Executing (attempt 2)",
        "Evaluate: Failed in 3.0s - AlgorithmError: boom",
        "  [Train] [0]\ttrain-auc:0.7",  # syslog's #011 shown as the tab it stands for
    ]


def test_live_mode_draws_a_table_with_attempt_and_cache_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    stream = io.StringIO()
    with Progress("LeadScoringPipeline on local", stream=stream, live=True) as progress:
        progress.update(steps())
    text = stream.getvalue()
    for expected in ("LeadScoringPipeline on local", "Attempt", "Cache", "PrepareData", "abc123", "Evaluate", "Failed"):
        assert expected in text


def test_live_mode_lists_declared_steps_as_pending_and_shows_the_latest_log_line_in_the_row(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    stream = io.StringIO()
    with Progress("p", stream=stream, live=True) as progress:
        progress.declare(["PrepareData", "Train", "Evaluate", "Register"])
        progress.update(steps()[:2])
        for i in range(300):  # a training job's per-iteration lines
            progress.log("Train", f"[{i}]#011train-auc:0.{i:03d}")
    text = stream.getvalue()
    last_table = text[text.rindex("Latest"):]
    assert re.search(r"\[299\] +train-auc:0\.299", last_table) and "#011" not in text  # the tab, as spaces
    assert not re.search(r"\[12\] +train-auc", text)  # iteration lines do not scroll the table away
    assert "Register" in last_table and "Pending" in last_table
    assert last_table.index("PrepareData") < last_table.index("Train") < last_table.index("Register")


def test_a_running_steps_elapsed_time_ticks_between_updates():
    stream = io.StringIO()
    progress = Progress("p", stream=stream, live=True)
    running = StepStatus("Train", "Executing", datetime.now(timezone.utc) - timedelta(seconds=5))
    progress.update([running])
    first = progress._table().columns[2]._cells[0]
    running.start_time -= timedelta(seconds=2)  # as if 2 s went by with no new event
    assert progress._table().columns[2]._cells[0] != first


def test_plain_mode_does_not_print_pending_steps():
    stream = io.StringIO()
    with Progress("p", stream=stream, live=False) as progress:
        progress.declare(["PrepareData", "Train"])
        progress.update([StepStatus("PrepareData", "Executing", START)])
    assert stream.getvalue().splitlines() == ["PrepareData: Executing"]


def test_steps_that_never_started_are_shown_as_such_and_not_printed(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    stream = io.StringIO()
    with Progress("p", stream=stream, live=True) as progress:
        progress.declare(["Gate", "QualityGateFailed", "Register"])
        progress.update([StepStatus("Gate", "Succeeded", START, START), StepStatus("QualityGateFailed", "Not taken"),
                         StepStatus("Register", "Not run")])
    last_table = stream.getvalue()[stream.getvalue().rindex("Latest"):]
    assert "Not taken" in last_table and "Not run" in last_table and "Pending" not in last_table
    plain = io.StringIO()
    with Progress("p", stream=plain, live=False) as progress:
        progress.update([StepStatus("QualityGateFailed", "Not taken"), StepStatus("Register", "Not run")])
    assert plain.getvalue() == ""


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_the_live_table_fits_the_terminal_and_keeps_every_column(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    stream = io.StringIO()
    with Progress("LeadScoringPipeline on local", stream=stream, live=True) as progress:
        progress.declare(["PrepareData", "Train", "Evaluate", "CheckQuality", "QualityGateFailed", "RegisterModel"])
        progress.update(steps())
        progress.log("Train", "[41]#011train-auc:0.81234#011validation-auc:0.79876 and a great deal more text " * 3)
    last_table = stream.getvalue()[stream.getvalue().rindex("Latest") - 200:]
    assert max(len(line) for line in last_table.splitlines()) <= columns
    for shown in ("PrepareData", "QualityGateFailed", "Succeeded", "Executing", "Failed", "Pending", "abc123"):
        assert shown in last_table, (shown, last_table)


class SlowPipe(io.StringIO):
    """A stream whose every write yields to other threads halfway, as a pipe to a slow reader lets them in."""

    def write(self, text: str) -> int:
        import time

        half = len(text) // 2
        super().write(text[:half])
        time.sleep(0.0005)
        return half + super().write(text[half:])


def test_lines_of_parallel_steps_never_interleave_without_a_terminal():
    import threading

    stream = SlowPipe()
    with Progress("run", stream=stream, live=False) as progress:
        def chatter(step: str) -> None:
            for number in range(40):
                progress.log(step, f"line {number} of {step}")

        threads = [threading.Thread(target=chatter, args=(f"Step{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 160
    for line in lines:
        step = line.split("]")[0].removeprefix("  [")
        assert line.startswith(f"  [{step}] line ") and line.endswith(f" of {step}"), line


def test_at_80_columns_info_lines_are_plain_lines_above_and_the_latest_line_keeps_room(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    stream = io.StringIO()
    info = "Generated 20000 rows of sample lead data in 4 files under s3://b/input/raw-sample-20000-rows"
    with Progress("LeadScoringPipeline on local", stream=stream, live=True) as progress:
        progress.declare(["PrepareData", "Train", "Evaluate", "CheckQuality", "RegisterModel", "BatchTransform"])
        progress.update([StepStatus("PrepareData", "Succeeded", START, START, cache_hit_from="3qx7fw2k9d1a"),
                         StepStatus("Train", "Executing", START, START + timedelta(seconds=95))], info)
        progress.update([], "warning: MLflow is not installed")
        progress.log("Train", "[41]#011train-auc:0.81234#011validation-auc:0.79876")
    lines = stream.getvalue().splitlines()
    assert lines[0] == info and lines[1] == "warning: MLflow is not installed"  # whole, from the first column
    assert sum(info in line for line in lines) == 1  # not repeated as a caption under the table
    assert re.search(r"\[41\] +train-auc:0\.", stream.getvalue())  # more of the latest line than 8 characters
