"""The executions table: it fits the terminal, and a failed execution's Failure is its failed step's reason."""

from __future__ import annotations

import pytest

from pipelines.cli.commands.executions import list_executions
from pipelines.local.executions import ExecutionRecord, StepRecord


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_the_table_fits_the_terminal_and_says_why_an_execution_failed(tmp_path, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    ExecutionRecord("k3n1rdsa0b2q", "LeadScoringPipeline", "Failed", {}, "2026-12-01T10:00:00+00:00",
                    "2026-12-01T10:03:00+00:00", "Step failure: One or multiple steps failed.", steps=[
                        StepRecord("Train", "Training", "Failed",
                                   failure_reason="AlgorithmError: training exited with code 1: bad max_depth")]
                    ).save(tmp_path)
    ExecutionRecord("a1b2c3d4e5f6", "LeadScoringPipeline", "Succeeded", {}, "2026-12-01T11:00:00+00:00",
                    "2026-12-01T11:01:00+00:00").save(tmp_path)
    assert list_executions(tmp_path, as_json=False) == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= columns
    assert "k3n1rdsa0b2q" in printed and "a1b2c3d4e5f6" in printed  # ids are never folded
    assert "Train: " in printed and "One or multiple" not in printed  # the failed step's reason, not SageMaker's
    assert "Executions in " in printed and "LeadScoringPipeline" in printed


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_the_execution_id_is_never_cut_other_columns_give_way(tmp_path, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    reason = "AlgorithmError: training exited with code 1: " + "a long reason from the job's own log " * 3
    for number, pipeline in enumerate(("LeadScoringPipeline", "BatchScoringPipelineWithALongerName")):
        ExecutionRecord(f"3qx7fw2k9d1{number}", pipeline, "Failed", {}, "2026-12-01T10:00:00+00:00",
                        "2026-12-01T10:03:00+00:00", "Step failure", steps=[
                            StepRecord("Train", "Training", "Failed", failure_reason=reason)]).save(tmp_path)
    assert list_executions(tmp_path, as_json=False) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert any(line.split()[:1] == ["Execution"] for line in lines)  # the heading whole, too
    assert {line.split()[0] for line in lines if line.strip().startswith("3qx")} == {"3qx7fw2k9d10", "3qx7fw2k9d11"}
