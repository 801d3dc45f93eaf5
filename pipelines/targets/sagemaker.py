"""Run the pipeline on Amazon SageMaker: upload code, upsert, start, watch."""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from pipelines.aws import aws_call, error_code
from pipelines.config import PipelineConfig
from pipelines.errors import AwsError, ConfigError
from pipelines.lead_scoring import BuiltPipeline, build
from pipelines.local.graph import walk_steps
from pipelines.overrides import as_strings
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
from pipelines.target_clients import aws_session


def default_bucket(region: str, account: str) -> str:
    """The SageMaker SDK's default bucket name."""
    return f"sagemaker-{region}-{account}"


def _head_bucket_code(s3: Any, bucket: str) -> str | None:
    """None if the bucket is there and ours to use, else the error code HeadBucket answered."""
    try:
        with aws_call(f"s3:HeadBucket {bucket}"):
            s3.head_bucket(Bucket=bucket)
    except AwsError as exc:
        code = error_code(exc)
        if code is None:
            raise
        return code
    return None


def with_bucket(config: PipelineConfig, session: Any) -> PipelineConfig:
    """The config with a bucket that exists: the one given (checked), or the SDK's default bucket
    ``sagemaker-{region}-{account}``, created when missing as the SDK creates it."""
    s3 = session.client("s3")
    if config.bucket:
        code = _head_bucket_code(s3, config.bucket)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise ConfigError(f"bucket {config.bucket} does not exist: create it, or leave out --bucket to use the "
                              f"SDK's default bucket sagemaker-{config.region}-ACCOUNT (created when missing)")
        if code is not None:
            raise ConfigError(f"bucket {config.bucket} cannot be used with these credentials (HeadBucket: {code})")
        return config
    with aws_call("sts:GetCallerIdentity"):
        account = session.client("sts").get_caller_identity()["Account"]
    bucket = default_bucket(config.region, account)
    code = _head_bucket_code(s3, bucket)
    if code in ("404", "NoSuchBucket", "NotFound"):
        location = {} if config.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": config.region}}
        with aws_call(f"s3:CreateBucket {bucket}"):
            s3.create_bucket(Bucket=bucket, **location)
        print(f"note: no --bucket: created and using the SDK's default bucket {bucket}", file=sys.stderr)
    elif code is not None:
        raise ConfigError(f"the default bucket {bucket} cannot be used with these credentials (HeadBucket: {code}); "
                          "pass --bucket")
    return config.replace(bucket=bucket)


@dataclass
class SageMakerTarget:
    """Upserts and starts the pipeline in the configured account and region."""

    config: PipelineConfig
    wait: bool = True
    poll_seconds: float = 30.0
    timeout_seconds: float | None = None
    max_parallel_steps: int | None = None
    sleep: Callable[[float], None] = time.sleep
    name: str = "sagemaker"
    builder: Callable[[PipelineConfig], BuiltPipeline] = build

    def __post_init__(self) -> None:
        if not self.config.role_arn:
            raise ConfigError("--target sagemaker needs --role-arn (the role the pipeline's jobs run as)")
        self.session = aws_session(self.config)
        self.sagemaker = self.session.client("sagemaker")
        self.s3 = self.session.client("s3")
        self.config = with_bucket(self.config, self.session)

    def prepare(self) -> BuiltPipeline:
        """Our definition, built offline from the config."""
        return self.builder(self.config)

    def registry(self) -> Any:
        """The Model Registry of the account and region."""
        from pipelines.model_registry import SageMakerModelRegistry

        return SageMakerModelRegistry(self.session)

    def run(self, built: BuiltPipeline, overrides: dict[str, Any], progress: Progress) -> RunResult:
        """Upload code, upsert the pipeline, start an execution and (unless --no-wait) watch it."""
        self.upload_code(built)
        self.upsert(built)
        arn = self.start(built.name, overrides)
        execution_id = arn.rsplit("/", 1)[-1]
        result = RunResult("sagemaker", built.name, execution_id, arn, "Executing", parameters=dict(overrides))
        progress.update([], f"Started execution {arn}")
        if self.wait:
            self.watch(result, progress)
            if result.status == "Succeeded":
                self.collect_metrics(result, built.definition_dict)
        return result

    def upload_code(self, built: BuiltPipeline) -> None:
        """Put each processing script at its content-addressed S3 URI (KMS-encrypted when configured)."""
        extra: dict[str, str] = {}
        if self.config.kms_key_arn:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.config.kms_key_arn}
        for upload in built.uploads:
            bucket, key = split_uri(upload.s3_uri)
            with aws_call(f"s3:PutObject {upload.s3_uri}"):
                self.s3.put_object(Bucket=bucket, Key=key, Body=upload.local_path.read_bytes(), **extra)

    def upsert(self, built: BuiltPipeline) -> str:
        """Create the pipeline, or update it if it exists; returns its ARN."""
        common = {
            "PipelineName": built.name,
            "PipelineDefinition": built.definition,
            "PipelineDescription": built.description,
            "RoleArn": self.config.role_arn,
        }
        tags = [{"Key": k, "Value": v} for k, v in self.config.tags]
        if not self.exists(built.name):
            with aws_call("sagemaker:CreatePipeline"):
                return self.sagemaker.create_pipeline(**common, Tags=tags, ClientRequestToken=str(uuid.uuid4()))["PipelineArn"]
        with aws_call("sagemaker:UpdatePipeline"):
            arn = self.sagemaker.update_pipeline(**common)["PipelineArn"]
        if tags:
            with aws_call("sagemaker:AddTags"):
                self.sagemaker.add_tags(ResourceArn=arn, Tags=tags)
        return arn

    def exists(self, pipeline_name: str) -> bool:
        """True if a pipeline of that name exists."""
        try:
            with aws_call("sagemaker:DescribePipeline"):
                self.sagemaker.describe_pipeline(PipelineName=pipeline_name)
        except AwsError as exc:
            if error_code(exc) in ("ResourceNotFound", "ValidationException"):
                return False
            raise
        return True

    def start(self, pipeline_name: str, overrides: dict[str, Any]) -> str:
        """Start an execution with the overrides; returns the execution ARN."""
        extra: dict[str, Any] = {}
        if self.max_parallel_steps is not None:
            extra["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": self.max_parallel_steps}
        with aws_call("sagemaker:StartPipelineExecution"):
            response = self.sagemaker.start_pipeline_execution(
                PipelineName=pipeline_name,
                PipelineParameters=as_strings(overrides),
                ClientRequestToken=str(uuid.uuid4()),
                **extra,
            )
        return response["PipelineExecutionArn"]

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
            message = f"Execution {result.execution_id}: {result.status}"
            progress.update(result.steps, message if not steps_available else None)
            if result.status in TERMINAL_EXECUTION_STATUSES:
                break
            if self.timeout_seconds is not None and time.monotonic() - started > self.timeout_seconds:
                result.notes.append(f"stopped watching after {self.timeout_seconds:.0f}s; the execution is still {result.status}")
                return
            self.sleep(self.poll_seconds)
        failed = [s for s in result.steps if s.status == "Failed"]
        if failed:
            result.failed_step = failed[0].name
            result.failure_reason = failed[0].failure_reason or result.failure_reason

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
                documents, outputs = self.read_property_files(jobs[step["Name"]], files)
                for document in documents:
                    result.metrics.update(model_quality_metrics(document))
                result.evaluation = Location(join_uri(outputs[files[0]["OutputName"]], files[0]["FilePath"]))
                result.report = Location(join_uri(outputs[files[0]["OutputName"]], REPORT_FILE))
            except AwsError as exc:
                result.notes.append(f"metrics of step {step['Name']} unavailable: {exc}")

    def read_property_files(self, job_arn: str, files: list[dict[str, Any]]) -> tuple[list[Any], dict[str, str]]:
        """The parsed JSON of each PropertyFile written by one processing job, and the job's output URIs by name."""
        job_name = job_arn.rsplit("/", 1)[-1]
        with aws_call(f"sagemaker:DescribeProcessingJob {job_name}"):
            job = self.sagemaker.describe_processing_job(ProcessingJobName=job_name)
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
            except ValueError as exc:
                raise AwsError(f"{uri} is not JSON: {exc}") from None
        return documents, outputs


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
