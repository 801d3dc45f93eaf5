"""The one progress renderer: plain one-line events without a terminal, a live table on one."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

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
        "  [Train] [0]#011train-auc:0.7",
    ]


def test_live_mode_draws_a_table_with_attempt_and_cache_columns():
    stream = io.StringIO()
    with Progress("LeadScoringPipeline on local", stream=stream, live=True) as progress:
        progress.update(steps())
    text = stream.getvalue()
    for expected in ("LeadScoringPipeline on local", "Attempt", "Cache", "PrepareData", "abc123", "Evaluate", "Failed"):
        assert expected in text
