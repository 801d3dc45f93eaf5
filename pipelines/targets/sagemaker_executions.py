"""Pipeline executions on SageMaker, read and driven through the API: what a run watches, and what
``executions``, ``describe``, ``logs`` and ``retry`` show with ``--target sagemaker``.

Steps come from ListPipelineExecutionSteps, their outputs from the Describe* call of the job each ran,
their logs from CloudWatch Logs, in the same records the local engine keeps (``ExecutionRecord``), so
that one printer serves both targets.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

from pipelines.aws import aws_call, error_code
from pipelines.errors import AwsError, ExecutionError
from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.graph import steps_by_name, walk_steps
from pipelines.progress import Progress
from pipelines.results import (
    REPORT_FILE,
    TERMINAL_EXECUTION_STATUSES,
    Location,
    RunResult,
    StepStatus,
    model_quality_metrics,
)
from pipelines.s3uri import join_uri, split_uri


@dataclass(frozen=True)
class JobKind:
    """A kind of job a step can run: its metadata key, Describe* call, name argument and log group."""

    metadata_key: str
    describe: str
    name_argument: str
    log_group: str
    outputs: tuple[str, ...]  # the keys of the Describe* answer that say where the job wrote


JOB_KINDS = (
    JobKind("ProcessingJob", "describe_processing_job", "ProcessingJobName", "/aws/sagemaker/ProcessingJobs",
            ("ProcessingOutputConfig",)),
    JobKind("TrainingJob", "describe_training_job", "TrainingJobName", "/aws/sagemaker/TrainingJobs",
            ("ModelArtifacts",)),
    JobKind("TransformJob", "describe_transform_job", "TransformJobName", "/aws/sagemaker/TransformJobs",
            ("TransformOutput",)),
)
_EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:pipeline/[^/]+/execution/[a-z0-9]+$")


def job_of(metadata: dict[str, Any]) -> tuple[JobKind, str] | None:
    """The kind and name of the job a step ran, from the step's metadata (None for steps that run no job)."""
    for kind in JOB_KINDS:
        arn = metadata.get(kind.metadata_key, {}).get("Arn")
        if isinstance(arn, str) and "/" in arn:
            return kind, arn.rsplit("/", 1)[-1]
    return None


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass
class SageMakerExecutions:
    """The executions of the account and region a boto3 session reaches."""

    session: Any
    poll_seconds: float = 30.0
    timeout_seconds: float | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.sagemaker = self.session.client("sagemaker")
        self.s3 = self.session.client("s3")

    def summaries(self, pipeline_name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The pipeline's executions, newest first (at most ``limit``)."""
        found: list[dict[str, Any]] = []
        try:
            with aws_call(f"sagemaker:ListPipelineExecutions {pipeline_name}"):
                pages = self.sagemaker.get_paginator("list_pipeline_executions").paginate(
                    PipelineName=pipeline_name, SortBy="CreationTime", SortOrder="Descending")
                for page in pages:
                    found.extend(page.get("PipelineExecutionSummaries", []))
                    if limit is not None and len(found) >= limit:
                        break
        except AwsError as exc:
            if error_code(exc) in ("ResourceNotFound", "ValidationException"):
                raise ExecutionError(f"there is no pipeline {pipeline_name} in {self.session.region_name}: pass the "
                                     "--pipeline-name and --region it was created with") from None
            raise
        found.sort(key=lambda summary: summary.get("StartTime") or datetime.min, reverse=True)  # as asked, in case
        return found[:limit] if limit is not None else found

    def arn_of(self, pipeline_name: str, execution: str) -> str:
        """The ARN of an execution given by ARN, or by id among the pipeline's executions."""
        if execution.startswith("arn:"):
            if not _EXECUTION_ARN.fullmatch(execution):
                raise ExecutionError(f"{execution!r} is not a pipeline execution ARN "
                                     "(arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID)")
            return execution
        for summary in self.summaries(pipeline_name):
            if summary["PipelineExecutionArn"].rsplit("/", 1)[-1] == execution:
                return summary["PipelineExecutionArn"]
        raise ExecutionError(f"pipeline {pipeline_name} has no execution {execution!r} in "
                             f"{self.session.region_name}; `executions --target sagemaker` lists them")

    def record(self, arn: str, note: Callable[[str], None], outputs: bool = True
               ) -> tuple[ExecutionRecord, dict[str, Any]]:
        """The execution as the local engine records one, and the definition it ran; without its steps (and a
        ``note`` saying why) where the endpoint does not list them. ``outputs``: also read each succeeded job's
        output locations and property files (a Describe*Job and S3 reads per step)."""
        with aws_call("sagemaker:DescribePipelineExecution"):
            execution = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        with aws_call("sagemaker:DescribePipelineDefinitionForExecution"):
            definition = json.loads(self.sagemaker.describe_pipeline_definition_for_execution(
                PipelineExecutionArn=arn)["PipelineDefinition"])
        with aws_call("sagemaker:ListPipelineParametersForExecution"):
            parameters = {p["Name"]: p["Value"] for page in self.sagemaker.get_paginator(
                "list_pipeline_parameters_for_execution").paginate(PipelineExecutionArn=arn)
                for p in page.get("PipelineParameters", [])}
        status = execution["PipelineExecutionStatus"]
        definition_steps = steps_by_name(definition)
        try:
            listed = self.list_steps(arn)
        except AwsError as exc:
            listed = []
            note(f"steps unavailable: {exc}")
        steps = [self._step_record(step, definition_steps.get(step.name, {}), outputs) for step in listed]
        record = ExecutionRecord(
            execution_id=arn.rsplit("/", 1)[-1], pipeline_name=execution.get("PipelineArn", arn).split("/")[1],
            status=status, parameters=parameters, start_time=_iso(execution.get("CreationTime")) or "",
            end_time=_iso(execution.get("LastModifiedTime")) if status in TERMINAL_EXECUTION_STATUSES else None,
            failure_reason=execution.get("FailureReason") or None, steps=steps, retries=None)
        return record, definition

    def _step_record(self, step: StepStatus, declared: dict[str, Any], outputs: bool) -> StepRecord:
        properties: dict[str, Any] = dict(step.metadata)
        property_files: dict[str, Any] = {}
        job = job_of(step.metadata)
        if outputs and job is not None and step.status == "Succeeded":
            kind, name = job
            description = self.describe_job(kind, name)
            properties.update({key: description[key] for key in kind.outputs if key in description})
            if declared.get("PropertyFiles") and kind.metadata_key == "ProcessingJob":
                documents, _ = self.read_property_files(description, declared["PropertyFiles"])
                property_files = {spec["PropertyFileName"]: doc for spec, doc in zip(declared["PropertyFiles"], documents)}
        return StepRecord(name=step.name, type=declared.get("Type", "Unknown"), status=step.status,
                          start_time=_iso(step.start_time), end_time=_iso(step.end_time),
                          failure_reason=step.failure_reason, properties=properties, property_files=property_files,
                          attempts=step.attempts, cache_hit_from=step.cache_hit_from)

    def describe_job(self, kind: JobKind, name: str) -> dict[str, Any]:
        """The Describe* answer for one job."""
        with aws_call(f"sagemaker:{kind.describe} {name}"):
            return getattr(self.sagemaker, kind.describe)(**{kind.name_argument: name})

    def list_steps(self, execution_arn: str) -> list[StepStatus]:
        """Every step of the execution so far, oldest first."""
        steps: list[StepStatus] = []
        with aws_call("sagemaker:ListPipelineExecutionSteps"):
            try:
                pages = self.sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
                    PipelineExecutionArn=execution_arn, SortOrder="Ascending"
                )
                for page in pages:
                    for raw in page.get("PipelineExecutionSteps", []):
                        steps.append(_step_status(raw))
            except NotImplementedError as exc:  # moto's in-process backend
                raise AwsError(f"sagemaker:ListPipelineExecutionSteps is not implemented by this endpoint ({exc})") from exc
        return steps

    def watch(self, result: RunResult, progress: Progress) -> None:
        """Poll the execution (and its steps, where the API offers them) until it ends or times out."""
        started = time.monotonic()
        steps_available = True
        while True:
            with aws_call("sagemaker:DescribePipelineExecution"):
                execution = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=result.execution_arn)
            result.status = execution["PipelineExecutionStatus"]
            result.failure_reason = execution.get("FailureReason") or None  # null, never "", on success
            if steps_available:
                try:
                    result.steps = self.list_steps(result.execution_arn)
                except AwsError as exc:
                    steps_available = False
                    result.notes.append(f"per-step status unavailable ({exc}); showing the execution status only")
            ended = result.status in TERMINAL_EXECUTION_STATUSES
            # the final status is the run's closing line; printed here too it would be said twice
            said = not steps_available and (progress.live_mode or not ended)
            progress.update(result.steps, f"Execution {result.execution_id}: {result.status}" if said else None)
            if ended:
                break
            if self.timeout_seconds is not None and time.monotonic() - started > self.timeout_seconds:
                result.notes.append(f"stopped watching after {self.timeout_seconds:.0f}s; the execution is still "
                                    f"{result.status}")
                return
            self.sleep(self.poll_seconds)
        failed = [s for s in result.steps if s.status == "Failed"]
        if failed:
            result.failed_step = failed[0].name
            result.failure_reason = failed[0].failure_reason or result.failure_reason

    def retry(self, arn: str, max_parallel_steps: int | None = None) -> None:
        """RetryPipelineExecution: SageMaker re-runs the failed steps and those after them."""
        extra: dict[str, Any] = {}
        if max_parallel_steps is not None:
            extra["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": max_parallel_steps}
        with aws_call("sagemaker:RetryPipelineExecution"):
            self.sagemaker.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=str(uuid.uuid4()),
                                                    **extra)

    def collect_metrics(self, result: RunResult, definition: dict[str, Any]) -> None:
        """Read the property files of the execution's processing steps into ``result.metrics``.

        Each declared PropertyFile is found the way the service finds it: the step's processing job
        (from the step metadata), that job's output of the declared OutputName, then FilePath under it.
        A report that cannot be read is a note, not a failure of the run.
        """
        jobs = {s.name: s.metadata.get("ProcessingJob", {}).get("Arn") for s in result.steps}
        for step, _ in walk_steps(definition.get("Steps", [])):
            files = step.get("PropertyFiles", [])
            if not files or not jobs.get(step["Name"]):
                continue
            try:
                job = self.describe_job(JOB_KINDS[0], jobs[step["Name"]].rsplit("/", 1)[-1])
                documents, outputs = self.read_property_files(job, files)
                for document in documents:
                    result.metrics.update(model_quality_metrics(document))
                result.evaluation = Location(join_uri(outputs[files[0]["OutputName"]], files[0]["FilePath"]))
                result.report = Location(join_uri(outputs[files[0]["OutputName"]], REPORT_FILE))
            except AwsError as exc:
                result.notes.append(f"metrics of step {step['Name']} unavailable: {exc}")

    def read_property_files(self, job: dict[str, Any], files: list[dict[str, Any]]) -> tuple[list[Any], dict[str, str]]:
        """The parsed JSON of each PropertyFile written by one processing job (its DescribeProcessingJob answer),
        and the job's output URIs by name."""
        job_name = job.get("ProcessingJobName", "?")
        outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in job.get("ProcessingOutputConfig", {}).get("Outputs", [])}
        documents = []
        for spec in files:
            if spec["OutputName"] not in outputs:
                raise AwsError(f"processing job {job_name} has no output named {spec['OutputName']!r}")
            uri = join_uri(outputs[spec["OutputName"]], spec["FilePath"])
            bucket, key = split_uri(uri)
            with aws_call(f"s3:GetObject {uri}"):
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            try:
                documents.append(json.loads(body))
            except ValueError:
                raise AwsError(f"{uri} is not JSON") from None
        return documents, outputs

    @functools.cached_property
    def logs(self) -> Any:
        """The CloudWatch Logs client, made when logs are first read (a run never reads them)."""
        return self.session.client("logs")

    def log_streams(self, kind: JobKind, job_name: str) -> list[str]:
        """The CloudWatch log streams of a job (one per host, and a transform's data log), by name."""
        logs = self.logs
        names: list[str] = []
        try:
            with aws_call(f"logs:DescribeLogStreams {kind.log_group}"):
                for page in logs.get_paginator("describe_log_streams").paginate(
                        logGroupName=kind.log_group, logStreamNamePrefix=f"{job_name}/"):
                    names.extend(stream["logStreamName"] for stream in page.get("logStreams", []))
        except AwsError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        return sorted(names)

    def log_lines(self, kind: JobKind, stream: str) -> Iterator[str]:
        """Every message of one log stream, oldest first."""
        logs = self.logs
        token: str | None = None
        while True:
            extra = {"nextToken": token} if token else {}
            with aws_call(f"logs:GetLogEvents {kind.log_group} {stream}"):
                page = logs.get_log_events(logGroupName=kind.log_group, logStreamName=stream, startFromHead=True,
                                           **extra)
            for event in page.get("events", []):
                yield event["message"]
            if not page.get("events") or page.get("nextForwardToken") in (None, token):
                return
            token = page["nextForwardToken"]


def _step_status(raw: dict[str, Any]) -> StepStatus:
    cache = raw.get("CacheHitResult", {}).get("SourcePipelineExecutionArn")
    return StepStatus(
        name=raw["StepName"],
        status=raw.get("StepStatus", "Unknown"),
        start_time=raw.get("StartTime"),
        end_time=raw.get("EndTime"),
        failure_reason=raw.get("FailureReason"),
        attempts=raw.get("AttemptCount", 1) or 1,
        cache_hit_from=cache.rsplit("/", 1)[-1] if cache else None,
        metadata=raw.get("Metadata", {}),
    )
