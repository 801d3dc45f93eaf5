"""MLflow tracking of local executions: an observer of the execution record the engine keeps.

Once a local execution (or a retry of it) ends, it becomes one MLflow run: the pipeline's parameters and
Train's hyperparameters as params; Train's per-round metrics (its ``[i]#011train-auc:...`` log lines) as
metric history; the test metrics of the evaluation report with their bootstrap standard deviations;
each step's duration; the report, its charts and the model as artifacts; and tags naming the execution,
the pipeline, the revision, what each step did (cache hits, reuse), the registered model version and
the retries. A retry logs into the run of its execution. The tracking server being unreachable or
misconfigured costs one warning: the execution and its record are not affected. ``pipelines.tracking_logger``
runs this in the background, in a process of its own.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from pipelines.atomic import TMP_PREFIX
from pipelines.errors import UnsafePathError
from pipelines.local import safe_files
from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.store import Store
from pipelines.results import model_quality_metrics

STORE = "store"  # the tracking URI that means: a SQLite tracking store inside the local store
ROUND = re.compile(r"^\[(\d+)\]((?:(?:#011|\t)[\w-]+:-?[\d.]+(?:e-?\d+)?)+)\s*$")
BATCH, BATCH_PARAMS, BATCH_TAGS = 1000, 100, 100  # one log_batch call's limits: in all, params, tags
RUN_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED"}  # anything else (stopped, interrupted): KILLED


def tracking_uri(setting: str, store: Store) -> str:
    """The MLflow tracking URI of a setting: ``store`` is ``<store>/mlflow/mlflow.db``, anything else as given."""
    if setting == STORE:
        return f"sqlite:///{store.root / 'mlflow' / 'mlflow.db'}"
    return setting


def _prepare_store_database(store: Store) -> None:
    """A new store's tracking database is a copy of an empty one made once per MLflow version: MLflow's
    migrations of a new database take seconds, which every first run in a store would otherwise pay."""
    database = store.root / "mlflow" / "mlflow.db"
    safe_files.make_folders(store.root, database.parent / "artifacts")  # never a link: MLflow writes through it
    found = safe_files.kind(store.root, database)
    if found == "file":
        return
    if found is not None:
        raise UnsafePathError(f"{database} is not a regular file; the local store's tracking database is never "
                              "opened through a link or a special file (remove it: the next run makes a new one)")
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipelines.local.environments.cache import default_cache

    empty = default_cache().parent / "mlflow" / f"empty-{mlflow.__version__}.db"
    if not empty.is_file():
        empty.parent.mkdir(parents=True, exist_ok=True)
        building = empty.with_name(f"{TMP_PREFIX}{os.getpid()}-{empty.name}")
        MlflowClient(tracking_uri=f"sqlite:///{building}").search_experiments()  # creates and migrates it
        os.replace(building, empty)
    with open(empty, "rb") as source, safe_files.replacing(store.root, database) as copy:
        shutil.copyfileobj(source, copy)


def warm_up() -> None:
    """Import what logging needs (MLflow's client, entities and SQLAlchemy tracking store: seconds), creating
    nothing: a process that will log soon pays for it before it has anything to log."""
    for module in ("mlflow.tracking", "mlflow.entities", "mlflow.store.tracking.sqlalchemy_store"):
        importlib.import_module(module)


def _client(setting: str, store: Store) -> Any:
    """An MlflowClient of the setting's tracking store, ready to log."""
    # a server that does not answer is given up on after a few seconds, not after MLflow's minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient

    if setting == STORE:
        _prepare_store_database(store)
    return MlflowClient(tracking_uri=tracking_uri(setting, store))


def track(record: ExecutionRecord, definition: dict[str, Any], store: Store, setting: str, experiment: str | None,
          source_revision: str, warn: Callable[[str], None]) -> dict[str, str] | None:
    """Log the execution as an MLflow run (the one its earlier tries logged to, for a retry): where, as its
    record keeps it (``mlflow_run``: run_id, experiment, experiment_id, tracking_uri); or None with one warning
    when tracking failed (whatever MLflow or its server said: the execution is not affected)."""
    uri, named = tracking_uri(setting, store), experiment or experiment_of(definition, record)
    try:
        run_id, experiment_id = _log(_client(setting, store), record, definition, store, named, source_revision)
    except Exception as exc:  # noqa: BLE001 - a linked database, a refused URI, a server down: all one warning
        warn(f"MLflow tracking at {uri} failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''});"
             f" execution {record.execution_id} is recorded in the store as usual")
        return None
    return {"run_id": run_id, "experiment": named, "experiment_id": experiment_id, "tracking_uri": uri}


def failure_warning(record: ExecutionRecord) -> str | None:
    """The warning of the execution's last logging, kept in its record, if it failed."""
    return (record.mlflow_run or {}).get("warning")


def run_summary(run: dict[str, str]) -> str:
    """Where an execution is tracked, as one line: ``RUN_ID (experiment NAME) at URI`` (``none`` for the id if no
    try of it was logged), then the warning of its last logging, if it failed."""
    where = f"{run.get('run_id', 'none')} (experiment {run.get('experiment')}) at {run.get('tracking_uri')}"
    return where + (f"; last logging: {run['warning']}" if "warning" in run else "")


def experiment_of(definition: dict[str, Any], record: ExecutionRecord) -> str:
    """A definition's own MlflowConfig names its experiment; else the pipeline's name."""
    config = definition.get("MlflowConfig")
    named = config.get("MlflowExperimentName") if isinstance(config, dict) else None
    return named if isinstance(named, str) and named else record.pipeline_name


def _log(client: Any, record: ExecutionRecord, definition: dict[str, Any], store: Store, experiment: str,
         source_revision: str) -> tuple[str, str]:
    from mlflow.entities import Metric, Param, RunTag

    found = client.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    elif client.tracking_uri.startswith("sqlite:///"):  # artifacts beside the tracking store, not in the cwd
        experiment_id = client.create_experiment(experiment, artifact_location=(store.root / "mlflow" / "artifacts")
                                                 .as_uri())
    else:
        experiment_id = client.create_experiment(experiment)
    earlier = client.search_runs([experiment_id], f"tags.execution_id = '{record.execution_id}'", max_results=1)
    # tagged as it is created: a logger killed before its first batch leaves a run the next one finds
    run_id = earlier[0].info.run_id if earlier else client.create_run(
        experiment_id, start_time=_milliseconds(record.start_time), tags={"execution_id": record.execution_id},
        run_name=record.execution_id).info.run_id
    # a few calls for everything: one call a value took a second for our pipeline, a minute for 3,000 rounds
    params = [Param(key, value) for key, value in _params(record).items()]
    tags = [RunTag(key, value) for key, value in _tags(record, source_revision).items()]
    points = [Metric(key, value, at, step) for key, value, step, at in _metrics(record, store)]
    while params or tags or points:
        some_params, some_tags = params[:BATCH_PARAMS], tags[:BATCH_TAGS]
        room = BATCH - len(some_params) - len(some_tags)
        client.log_batch(run_id, params=some_params, tags=some_tags, metrics=points[:room])
        params, tags, points = params[BATCH_PARAMS:], tags[BATCH_TAGS:], points[room:]
    for folder, path in _artifacts(record, store):
        client.log_artifact(run_id, str(path), folder)
    client.set_terminated(run_id, RUN_STATUS.get(record.status, "KILLED"),
                          end_time=_milliseconds(record.end_time) if record.end_time else None)
    return run_id, experiment_id


def _milliseconds(when: str) -> int:
    """An ISO 8601 time as MLflow keeps times: milliseconds since the epoch."""
    return int(datetime.fromisoformat(when).timestamp() * 1000)


def _params(record: ExecutionRecord) -> dict[str, str]:
    params = {name: str(value) for name, value in record.parameters.items()}
    train = _training_step(record)
    if train is not None:
        params.update({f"Train.{name}": str(value) for name, value in train.properties.get("HyperParameters", {}).items()})
    return params


def _training_step(record: ExecutionRecord) -> StepRecord | None:
    return next((step for step in record.steps if step.type == "Training" and step.status == "Succeeded"), None)


def _tags(record: ExecutionRecord, source_revision: str) -> dict[str, str]:
    tags = {"execution_id": record.execution_id, "pipeline": record.pipeline_name, "status": record.status,
            "source_revision": source_revision, "retries": str(record.retries)}
    for step in record.steps:
        done = f"{step.status}" + (f" in {step.duration_seconds:.1f}s" if step.duration_seconds is not None else "")
        if step.cache_hit_from:
            done += f", cache hit from {step.cache_hit_from}"
        if step.reused_from:
            done += f", reused from {step.reused_from} (not selected)"
        if record.earlier_tries(step.name):
            done += f", after {len(record.earlier_tries(step.name))} earlier tries"
        tags[f"step.{step.name}"] = done
        if step.failure_reason:
            tags[f"step.{step.name}.reason"] = step.failure_reason[:5000]
        if step.type == "RegisterModel" and step.status == "Succeeded":
            tags["registered_model"] = (f"{step.properties.get('ModelPackageGroupName')} version "
                                        f"{step.properties.get('ModelPackageVersion')}")
            tags["model_package_arn"] = str(step.properties.get("ModelPackageArn"))
    reused = [f"{s.name} <- {s.cache_hit_from or s.reused_from}" for s in record.steps if s.cache_hit_from or s.reused_from]
    tags["reused_steps"] = ", ".join(reused) or "none"
    return tags


def _metrics(record: ExecutionRecord, store: Store) -> list[tuple[str, float, int, int]]:
    """(name, value, round, when) of every metric point; ``when`` is the end of the step that produced it, so that
    logging a retried execution again adds no point twice (MLflow keeps one of identical points)."""
    found: list[tuple[str, float, int, int]] = []
    train = _training_step(record)
    if train is not None:
        source = train.cache_hit_from or train.reused_from or record.execution_id  # the job that wrote the log
        log = safe_files.optional_text(store.root, store.job_dir(source, train.name) / "job.log")
        if log is not None:
            found += [(*point, _ended(train, record)) for point in per_round_metrics(log)]
    for step in record.steps:
        at = _ended(step, record)
        for document in step.property_files.values():
            found += [(f"test_{name}", float(value), 0, at) for name, value in model_quality_metrics(document).items()]
            metrics = document.get("binary_classification_metrics", {}) if isinstance(document, dict) else {}
            found += [(f"test_{name}_std", float(entry["standard_deviation"]), 0, at) for name, entry in metrics.items()
                      if isinstance(entry, dict) and isinstance(entry.get("standard_deviation"), (int, float))]
            top = (document.get("lead_scoring_metrics") or {}).get("top_decile", {}) if isinstance(document, dict) else {}
            found += [(f"top_decile_{name}", float(value), 0, at) for name, value in top.items()
                      if isinstance(value, (int, float))]
        if step.duration_seconds is not None:  # named to sort after the model's metrics in MLflow's views
            found.append((f"wall_seconds/{step.name}", step.duration_seconds, 0, at))
    return found


def _ended(step: StepRecord, record: ExecutionRecord) -> int:
    return _milliseconds(step.end_time or record.end_time or record.start_time)


def per_round_metrics(log: str) -> list[tuple[str, float, int]]:
    """(metric, value, round) of each ``[i]#011train-auc:0.8#011validation-auc:0.79`` line of a training log."""
    found = []
    for line in log.splitlines():
        matched = ROUND.match(line.strip())
        if matched:
            for pair in re.split(r"#011|\t", matched.group(2)):
                if pair:
                    name, value = pair.rsplit(":", 1)
                    found.append((name, float(value), int(matched.group(1))))
    return found


def _artifacts(record: ExecutionRecord, store: Store) -> list[tuple[str, Path]]:
    """(artifact folder, file) of the evaluation's files and the model archive."""
    found: list[tuple[str, Path]] = []
    for step in record.steps:
        if step.status != "Succeeded":
            continue
        if step.property_files:
            for output in step.properties.get("ProcessingOutputConfig", {}).get("Outputs", []):
                uri = output.get("S3Output", {}).get("S3Uri")
                folder = store.path(uri) if isinstance(uri, str) else None
                if folder is not None:
                    found += [("evaluation", folder / name) for name, kind in safe_files.entries(store.root, folder)
                              if kind == "file"]
        model = step.properties.get("ModelArtifacts", {}).get("S3ModelArtifacts") if step.type == "Training" else None
        if isinstance(model, str) and store.path(model).is_file():
            found.append(("model", store.path(model)))
    return found
