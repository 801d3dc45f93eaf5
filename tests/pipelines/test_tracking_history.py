"""A long training run's metric history reaches MLflow in a few batches, and logging a retried execution again
adds no point twice."""

from __future__ import annotations

from pathlib import Path

from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.store import Store
from pipelines.tracking import BATCH, STORE, track, tracking_uri

ROUNDS = 2500


def finished_training(store: Store) -> ExecutionRecord:
    """An execution whose Train step logged ROUNDS boosting rounds, as the built-in algorithm writes them."""
    log = store.job_dir("exec1", "Train") / "job.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"[{i}]#011train-auc:0.{i % 90 + 10}#011validation-auc:0.7\n" for i in range(ROUNDS)))
    train = StepRecord("Train", "Training", "Succeeded", "2026-12-07T00:00:01+00:00", "2026-12-07T00:01:00+00:00")
    return ExecutionRecord("exec1", "P", "Succeeded", {}, "2026-12-07T00:00:00+00:00", "2026-12-07T00:01:02+00:00",
                           steps=[train])


def test_every_round_goes_in_a_few_batches_and_a_retry_logs_no_point_twice(tmp_path: Path, monkeypatch):
    from mlflow.tracking import MlflowClient

    store = Store(tmp_path / "store")
    record = finished_training(store)
    calls: list[int] = []
    real = MlflowClient.log_batch

    def counted(self, run_id, metrics=(), **kwargs):
        calls.append(len(metrics))
        return real(self, run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", counted)
    for one_call_a_value in ("log_metric", "log_param", "set_tag"):
        monkeypatch.setattr(MlflowClient, one_call_a_value,
                            lambda *a, **k: (_ for _ in ()).throw(AssertionError("one call a value")))
    warnings: list[str] = []
    run_id = track(record, {}, store, STORE, None, "rev", warnings.append)["run_id"]
    assert not warnings and len(calls) <= 2 * ROUNDS // BATCH + 1 and max(calls) <= BATCH
    track(record, {}, store, STORE, None, "rev", warnings.append)  # the same execution logged again (a retry)
    client = MlflowClient(tracking_uri(STORE, store))
    history = client.get_metric_history(run_id, "train-auc")
    assert [point.step for point in history] == list(range(ROUNDS))
    run = client.get_run(run_id)
    assert (run.info.start_time, run.info.end_time) == (1796601600000, 1796601662000)
    assert run.data.tags["step.Train"] == "Succeeded in 59.0s" and run.data.tags["execution_id"] == "exec1"


def test_a_tracking_database_that_is_a_link_is_the_one_warning(tmp_path: Path):
    store = Store(tmp_path / "store")
    record = finished_training(store)
    warnings: list[str] = []
    assert track(record, {}, store, STORE, None, "rev", warnings.append) is not None
    assert not warnings and (store.root / "mlflow" / "mlflow.db").is_file()
    other = Store(tmp_path / "other")
    (other.root / "mlflow").mkdir(parents=True)
    (other.root / "mlflow" / "mlflow.db").symlink_to(tmp_path / "elsewhere.db")
    assert track(finished_training(other), {}, other, STORE, None, "rev", warnings.append) is None
    [warning] = warnings
    assert "UnsafePathError" in warning and "is not a regular file" in warning
    assert not (tmp_path / "elsewhere.db").exists()
