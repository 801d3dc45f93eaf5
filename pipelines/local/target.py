"""The local target: the same definition the SageMaker target upserts, executed by the local engine."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from pipelines import model_registry, next_steps, sample_data, tracking, tracking_logger
from pipelines.atomic import TMP_PREFIX
from pipelines.config import PipelineConfig
from pipelines.credentials import refuse_credentials
from pipelines.errors import ConfigError, ExecutionInterrupted
from pipelines.lead_scoring import BuiltPipeline, build
from pipelines.lead_scoring import write_sample as write_lead_sample
from pipelines.local import executions, safe_files, unenforced
from pipelines.local.engine import LocalEngine, RunOptions, parameter_values, runnable_graph
from pipelines.selection import Selection
from pipelines.local.environments import Environments
from pipelines.local.executions import ExecutionRecord
from pipelines.local.graph import walk_steps
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from pipelines.progress import Progress
from pipelines.results import (
    REPORT_FILE,
    Location,
    RunResult,
    StepStatus,
    model_quality_metrics,
)
from pipelines.s3uri import check_uris, join_uri

DEFAULT_SAMPLE_ROWS = 100_000


@dataclass
class LocalTarget:
    """Runs a definition on this machine, against a store directory standing in for S3."""

    config: PipelineConfig
    store: Path
    definition_file: Path | None = None
    sample_rows: int | None = None  # None: 100,000 for our pipelines; a --definition gets sample data only if given
    options: RunOptions = field(default_factory=RunOptions)
    name: str = "local"
    builder: Callable[[PipelineConfig], BuiltPipeline] = build
    selection: Selection | None = None  # selective execution: the steps to run, and the reference execution
    execution_id: str | None = None  # the id of an execution started in the background (default: a new one)

    def prepare(self) -> BuiltPipeline:
        """Our definition, or the --definition file as given (checked for credentials); nothing is written yet."""
        if self.definition_file is not None:
            text, document = read_definition_file(self.definition_file)
            refuse_credentials(document, f"--definition {self.definition_file}", check_names=False)
            # with --sample-rows, a definition's empty InputDataUrl gets sample lead data, as our pipeline's does
            return BuiltPipeline(None, text, (), "", self.definition_file.stem,
                                 write_sample=write_lead_sample if self.sample_rows is not None else None)
        return self.builder(self.config)

    def run(self, built: BuiltPipeline, overrides: dict[str, Any], progress: Progress) -> RunResult:
        """Execute the definition; sample data is generated when our pipeline has no input."""
        definition = built.definition_dict
        runnable_graph(definition, self.engine_options())  # a refused definition writes nothing
        store = Store(self.store.resolve())
        values = parameter_values(definition, overrides)
        for upload in built.uploads:  # our code, where the definition expects it
            store.put_file(upload.local_path, upload.s3_uri)
        check_uris(values, path="Parameters")
        if "InputDataUrl" in values:
            sampled = self._ensure_input(store, values["InputDataUrl"], built, progress)
            if sampled is not None:  # a parameter, as on SageMaker: another row count is another cache key
                overrides = {**overrides, "InputDataUrl": sampled}
        with self._background_logger(store) as logger:
            with self._tracked_if_stopped(store, progress, logger):
                record = self._engine(store, progress).run(definition, built.name, overrides, self.selection,
                                                           self.execution_id)
            progress.update(never_ran(definition, record))
            record.unenforced = unenforced.pipeline_settings(definition)
            if self.config.tags:
                record.unenforced.append(f"tags {', '.join(f'{k}={v}' for k, v in self.config.tags)}: resource tags "
                                         "are applied on SageMaker only")
            if record.unenforced:
                record.save(store.root)  # `describe --not-enforced` lists them with the steps' own
            return self._tracked(_result(record, store), record, definition, store, progress, logger)

    def retry(self, execution_id: str, progress: Progress) -> RunResult:
        """Re-run the failed and never-run steps of a local execution (like RetryPipelineExecution)."""
        store = Store(self.store.resolve())
        # an earlier try still being logged is logged first: the retry logs into its run, and rewrites its record
        tracking_logger.settle(store.root, lambda line: progress.update([], f"note: {line}"),
                               lambda line: progress.update([], f"warning: {line}"))
        with self._background_logger(store) as logger:
            with self._tracked_if_stopped(store, progress, logger):
                record = self._engine(store, progress).retry(execution_id)
            definition = executions.load_definition(store.root, execution_id)
            return self._tracked(_result(record, store), record, definition, store, progress, logger)

    @contextlib.contextmanager
    def _background_logger(self, store: Store) -> Iterator[tracking_logger.Logger | None]:
        """The MLflow logger of this run, started now so that it imports MLflow on another core while the
        execution runs (None where tracking is off). Its input is closed when the block ends, whatever happened:
        it then logs what was handed to it, or ends having written nothing."""
        if self.config.mlflow_tracking_uri == "off":
            yield None
            return
        logger = tracking_logger.start(store.root)
        try:
            yield logger
        finally:
            logger.close()

    @contextlib.contextmanager
    def _tracked_if_stopped(self, store: Store, progress: Progress, logger: tracking_logger.Logger | None
                            ) -> Iterator[None]:
        """An execution stopped by Ctrl-C (or the studio's Stop) is tracked as it ended, as any other is; the
        command waits for it to be logged (a second Ctrl-C leaves it to the logger)."""
        try:
            yield
        except ExecutionInterrupted as stopped:
            if stopped.execution_id is not None:
                record = executions.load(store.root, stopped.execution_id)
                self.track(record, executions.load_definition(store.root, record.execution_id), store, progress,
                           logger, wait=True)
            raise

    def _tracked(self, result: RunResult, record: ExecutionRecord, definition: dict[str, Any], store: Store,
                 progress: Progress, logger: tracking_logger.Logger | None) -> RunResult:
        """The result, once the execution is handed to the MLflow logger where tracking is configured."""
        note = self.track(record, definition, store, progress, logger)
        if note is not None:
            result.notes.append(note)
        return result

    def track(self, record: ExecutionRecord, definition: dict[str, Any], store: Store, progress: Progress,
              logger: tracking_logger.Logger | None = None, wait: bool = False) -> str | None:
        """Hand the ended execution to the MLflow logger where tracking is configured (``logger``, else one
        started now): a line saying where it is logged, or None (not tracked, or a warning said why). The
        logging is waited for only where its outcome would be missed: with ``wait``, and with a tracking server
        over HTTP (one that does not answer costs its warning now, not at the next reader)."""
        setting = self.config.mlflow_tracking_uri
        if setting == "off":
            return None
        tracking_logger.request(store.root, record.execution_id, self.config)
        logger = logger or tracking_logger.start(store.root)
        logger.close()
        uri = tracking.tracking_uri(setting, store)
        if not (wait or uri.startswith(("http://", "https://"))):
            shows = next_steps.command("pipelines.run", "describe", record.execution_id, store=self.store)
            named = self.config.mlflow_experiment_name or tracking.experiment_of(definition, record)
            return (f"MLflow: execution {record.execution_id} is being logged in the background to experiment "
                    f"{named} at {uri}; `{shows}` shows its run"
                    + (f", `mlflow ui --backend-store-uri {uri}` all runs" if uri.startswith("sqlite:") else ""))
        return self._logged(record.execution_id, store, progress, logger)

    def _logged(self, execution_id: str, store: Store, progress: Progress, logger: tracking_logger.Logger
                ) -> str | None:
        """Once ``logger`` has ended: where the execution's run is, or None with one warning."""
        log = store.root / tracking_logger.LOG
        try:
            logger.wait()
        except KeyboardInterrupt:
            progress.update([], f"warning: the MLflow logging of execution {execution_id} goes on in the "
                                f"background (its log: {log})")
            return None
        if execution_id in tracking_logger.pending(store.root):
            progress.update([], f"warning: the MLflow logger ended before logging execution {execution_id} (its "
                                f"log: {log}); the next command that reads its run logs it")
            return None
        run = executions.load(store.root, execution_id)
        failure = tracking.failure_warning(run)
        if failure is not None:
            progress.update([], f"warning: {failure}")
            return None
        return f"MLflow run {tracking.run_summary(run.mlflow_run or {})}"

    def engine_options(self) -> RunOptions:
        """The engine's options: this target's, with what the configuration says of local stand-ins."""
        cache = self.config.environments_cache
        return replace(self.options, image_programs=dict(self.config.local_image_programs),
                       lambdas=dict(self.config.local_lambdas), callback_timeout=self.config.callback_timeout_seconds,
                       region=self.config.region, api_delete_any=self.config.local_api_deletes == "any",
                       environments=Environments(Path(cache).expanduser().resolve() if cache else None,
                                                 self.config.image_libraries))

    def _engine(self, store: Store, progress: Progress) -> LocalEngine:
        registry = Registry(store.root / "registry.sqlite", self.config.region)
        return LocalEngine(store, registry, progress.log, lambda record: progress.update(_steps(record)),
                           self.engine_options())

    def _ensure_input(self, store: Store, input_url: str, built: BuiltPipeline, progress: Progress) -> str | None:
        """The URI of sample data staged for an empty input that is our pipeline's default (or a --definition's
        input, with --sample-rows), or None to read the input as given; an error for any other empty input."""
        if store.objects(input_url.rstrip("/") + "/"):
            if self.sample_rows is not None and built.write_sample is not None:
                progress.update([], f"--sample-rows {self.sample_rows} not used: InputDataUrl {input_url} "
                                    "already holds data, read as it is")
            return None
        samples_here = built.write_sample is not None and (self.definition_file is not None
                                                           or input_url == built.sample_input_url)
        if not samples_here:
            if self.definition_file is not None:
                return None  # a definition written elsewhere: its steps report what they miss
            raise ConfigError(f"no objects under {input_url} in the store ({store.path(input_url)}); "
                              "stage your CSV there (see the README's store layout)")
        rows = self.sample_rows or DEFAULT_SAMPLE_ROWS
        ids = self.config.scoring_id_columns
        sample_url = f"{input_url.rstrip('/')}-sample-{rows}-rows" + ("" if ids == 1 else f"-{ids}-ids")
        kept, generated = self._sample_files(store, built, rows)
        for path in kept:
            with safe_files.open_read(store.root, path) as data:
                store.put_stream(data, join_uri(sample_url, path.name))
        verb = "Generated" if generated else "Reused"
        progress.update([], f"{verb} {rows} rows of sample lead data in {len(kept)} files under {sample_url} "
                            "(InputDataUrl)")
        return sample_url

    def _sample_files(self, store: Store, built: BuiltPipeline, rows: int) -> tuple[list[Path], bool]:
        """The sample files for ``rows`` rows, generated once per (pipeline, rows, id columns, generator
        version) into ``<store>/cache/sample-data/`` and reused; True if they were generated now."""
        key = f"{built.name}-v{sample_data.GENERATOR_VERSION}-{rows}-ids{self.config.scoring_id_columns}"
        folder = store.sample_data_dir(key)
        if safe_files.kind(store.root, folder) == "folder":
            return _sample_parts(store, folder), False
        staging = folder.with_name(f"{TMP_PREFIX}{os.getpid()}-{key}")
        safe_files.remove_tree(store.root, staging)
        safe_files.make_folders(store.root, staging)  # never through a link on the way
        built.write_sample(self.config, staging, rows)
        try:
            staging.rename(folder)
        except OSError:  # another run kept the same files first
            safe_files.remove_tree(store.root, staging)
        return _sample_parts(store, folder), True

    def registry(self) -> Any:
        """The local store's model registry."""
        from pipelines.model_registry import LocalModelRegistry

        return LocalModelRegistry(Store(self.store.resolve()), self.config.region)


def _sample_parts(store: Store, folder: Path) -> list[Path]:
    return [folder / name for name, kind in safe_files.entries(store.root, folder)
            if kind == "file" and name.startswith("part-") and name.endswith(".csv")]


def read_definition_file(path: Path) -> tuple[str, dict[str, Any]]:
    """(text, parsed object) of a definition JSON file; ConfigError naming the file (and line) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read --definition {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--definition {path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--definition {path} line {exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"--definition {path}: the top level must be a JSON object")
    return text, document


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


def never_ran(definition: dict[str, Any], record: ExecutionRecord) -> list[StepStatus]:
    """The definition's steps an ended execution did not run: ``Not taken`` in the branch its condition did
    not choose, ``Not run`` otherwise (after a failure, or not selected)."""
    outcomes = {step.name: step for step in record.steps}
    found = []
    for step, branch in walk_steps(definition.get("Steps", [])):
        name = step.get("Name") if isinstance(step, dict) else None
        if not isinstance(name, str) or name in outcomes:
            continue
        condition = outcomes.get(branch[0]) if branch else None
        taken = condition is not None and condition.status == "Succeeded" and \
            (condition.properties.get("Outcome") in ("True", True)) is branch[1]
        found.append(StepStatus(name, "Not taken" if condition is not None and condition.status == "Succeeded"
                                and not taken else "Not run"))
    return found


def _steps(record: ExecutionRecord) -> list[StepStatus]:
    return [StepStatus(s.name, s.status, _parse(s.start_time), _parse(s.end_time), s.failure_reason, s.attempts,
                       s.cache_hit_from, reused_from=s.reused_from) for s in record.steps]


def _result(record: ExecutionRecord, store: Store) -> RunResult:
    result = RunResult("local", record.pipeline_name, record.execution_id, None, record.status, _steps(record),
                       record.failure_reason, parameters=dict(record.parameters))
    failed = [s for s in record.steps if s.status == "Failed"]
    if failed:
        result.failed_step, result.failure_reason = failed[0].name, failed[0].failure_reason
    result.unenforced = record.unenforced_report()
    declared = {step.get("Name"): step.get("PropertyFiles", []) for step, _ in
                walk_steps(executions.load_definition(store.root, record.execution_id).get("Steps", []))
                if isinstance(step, dict)}
    for step in record.steps:
        for document in step.property_files.values():
            result.metrics.update(model_quality_metrics(document))
        if step.property_files:
            _evaluation_locations(result, step.properties, declared.get(step.name, []), store)
        if step.type == "RegisterModel" and step.status == "Succeeded":
            result.registered_model = {k: step.properties[k] for k in
                                       ("ModelPackageGroupName", "ModelPackageVersion", "ModelApprovalStatus", "ModelPackageArn")}
            registered_by = model_registry.registered_by(step.properties)
            if registered_by and registered_by != record.execution_id:
                result.notes.append(f"{step.name}: the model package is the same as version "
                                    f"{step.properties['ModelPackageVersion']}, registered by execution "
                                    f"{registered_by}; no new version was registered")
        if step.type == "Transform" and step.status == "Succeeded":
            uri = step.properties["TransformOutput"]["S3OutputPath"]
            result.transform_output = Location(uri, str(store.path(uri)))
    return result


def _evaluation_locations(result: RunResult, properties: dict[str, Any], files: list[dict[str, Any]],
                          store: Store) -> None:
    """Where a step's property file and the report beside it are."""
    outputs = {o.get("OutputName"): o["S3Output"]["S3Uri"]
               for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])}
    for spec in files:
        if spec.get("OutputName") in outputs:
            uri = join_uri(outputs[spec["OutputName"]], spec["FilePath"])
            result.evaluation = Location(uri, str(store.path(uri)))
            report = join_uri(outputs[spec["OutputName"]], REPORT_FILE)
            if store.path(report).is_file():
                result.report = Location(report, str(store.path(report)))
