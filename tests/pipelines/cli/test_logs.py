"""`logs`: a job log as the job wrote it, with syslog's #011 shown as the tab it stands for."""

from __future__ import annotations

from pipelines.cli.commands.executions import print_logs
from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.store import Store


def test_logs_show_tabs_where_the_xgboost_container_wrote_011_and_the_file_keeps_them(tmp_path, capsys):
    ExecutionRecord("k3n1rdsa0b2q", "LeadScoringPipeline", "Succeeded", {}, "2026-12-01T10:00:00+00:00",
                    "2026-12-01T10:03:00+00:00", steps=[StepRecord("Train", "Training", "Succeeded")]).save(tmp_path)
    log = Store(tmp_path).job_dir("k3n1rdsa0b2q", "Train") / "job.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    written = "[0]#011train-auc:0.81#011validation-auc:0.79\nno escape here\n"
    log.write_text(written)
    assert print_logs(tmp_path, "k3n1rdsa0b2q", "Train") == 0
    assert capsys.readouterr().out == "[0]\ttrain-auc:0.81\tvalidation-auc:0.79\nno escape here\n"
    assert log.read_text() == written  # as SageMaker's CloudWatch stream shows it: tracking reads the rounds there
