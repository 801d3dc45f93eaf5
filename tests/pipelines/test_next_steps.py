"""Every command of the walkthrough ends with the command to run next, as pasted from where the user is."""

from __future__ import annotations

from pipelines.cli.commands.executions import describe
from pipelines.cli.commands.sample_data import main as sample_data
from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.reporting import next_command
from pipelines.results import Location, RunResult


def test_sample_data_ends_with_scoring_the_file_it_wrote_through_the_default_endpoint(tmp_path, capsys):
    assert sample_data(["--rows", "5", "--output", str(tmp_path / "leads.csv"), "--id-columns", "1"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("Next: ") and last.endswith(
        f" -m inference.invoke --endpoint-name lead-scoring --input {tmp_path / 'leads.csv'} --output scores.csv "
        "--id-columns 1")


def test_describe_ends_with_retry_after_a_failure_and_with_the_registry_after_a_success(tmp_path, capsys):
    ExecutionRecord("k3n1rdsa0b2q", "LeadScoringPipeline", "Failed", {}, "2026-12-01T10:00:00+00:00",
                    "2026-12-01T10:03:00+00:00", "Step failure", steps=[
                        StepRecord("Train", "Training", "Failed", failure_reason="AlgorithmError: bad")]).save(tmp_path)
    ExecutionRecord("a1b2c3d4e5f6", "LeadScoringPipeline", "Succeeded", {}, "2026-12-01T11:00:00+00:00",
                    "2026-12-01T11:01:00+00:00").save(tmp_path)
    assert describe(tmp_path, "k3n1rdsa0b2q", as_json=False) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        f" -m pipelines.run retry k3n1rdsa0b2q --store {tmp_path}")
    assert describe(tmp_path, "a1b2c3d4e5f6", as_json=False) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(f" -m pipelines.registry list --store {tmp_path}")
    assert describe(tmp_path, "a1b2c3d4e5f6", as_json=True) == 0
    assert "Next" not in capsys.readouterr().out  # JSON stays JSON


def test_a_batch_scoring_run_ends_with_the_endpoints_one_may_take_down(tmp_path):
    scored = RunResult("local", "BatchScoringPipeline", "x1", None, "Succeeded",
                       transform_output=Location("s3://b/scores/", None))
    assert next_command(scored, tmp_path).endswith(f" -m pipelines.deploy endpoints --store {tmp_path}")


def test_registry_describe_ends_with_approving_a_pending_version_and_deploying_an_approved_one(tmp_path, capsys):
    from pipelines.cli.commands.registry import main as registry
    from pipelines.local.registry import Registry

    container = {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                 "ModelDataUrl": "s3://b/m/model.tar.gz"}
    Registry(tmp_path / "registry.sqlite").register("LeadScoringModels", "PendingManualApproval",
                                                    {"Containers": [container]})
    assert registry(["describe", "LeadScoringModels", "1", "--store", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        f" -m pipelines.registry approve LeadScoringModels 1 --description 'Reviewed: ...' --store {tmp_path}")
    assert registry(["approve", "LeadScoringModels", "1", "--description", "good", "--store", str(tmp_path)]) == 0
    capsys.readouterr()
    assert registry(["describe", "LeadScoringModels", "1", "--store", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        f" -m pipelines.deploy deploy --group LeadScoringModels --version 1 --endpoint-name lead-scoring --store {tmp_path}")
