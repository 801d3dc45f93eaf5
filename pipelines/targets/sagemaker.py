"""Run the pipeline on Amazon SageMaker: upload code, upsert, start, watch."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from pipelines.aws import aws_call, error_code
from pipelines.config import PipelineConfig
from pipelines.errors import AwsError, ConfigError
from pipelines.lead_scoring import BuiltPipeline, build
from pipelines.overrides import as_strings
from pipelines.progress import Progress
from pipelines.results import RunResult
from pipelines.s3uri import split_uri
from pipelines.selection import Selection
from pipelines.aws import aws_session
from pipelines.targets.sagemaker_executions import SageMakerExecutions


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
    selection: Selection | None = None  # selective execution: the steps to run, and the reference execution

    def __post_init__(self) -> None:
        if not self.config.role_arn:
            raise ConfigError("--target sagemaker needs --role-arn (the role the pipeline's jobs run as)")
        self.session = aws_session(self.config)
        self.executions = SageMakerExecutions(self.session, self.poll_seconds, self.timeout_seconds, self.sleep)
        self.sagemaker = self.executions.sagemaker
        self.s3 = self.executions.s3
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
        if self.selection is not None:
            extra["SelectiveExecutionConfig"] = self.selective_config(pipeline_name)
        with aws_call("sagemaker:StartPipelineExecution"):
            response = self.sagemaker.start_pipeline_execution(
                PipelineName=pipeline_name,
                PipelineParameters=as_strings(overrides),
                ClientRequestToken=str(uuid.uuid4()),
                **extra,
            )
        return response["PipelineExecutionArn"]

    def selective_config(self, pipeline_name: str) -> dict[str, Any]:
        """``SelectiveExecutionConfig`` of the selection: its steps, and the reference execution's ARN (an id is
        completed with the pipeline's ARN; none given: the latest execution that ended, as the SDK chooses)."""
        assert self.selection is not None
        config: dict[str, Any] = {"SelectedSteps": [{"StepName": name} for name in self.selection.steps]}
        reference = self.selection.reference
        if reference and not reference.startswith("arn:"):
            with aws_call("sagemaker:DescribePipeline"):
                pipeline_arn = self.sagemaker.describe_pipeline(PipelineName=pipeline_name)["PipelineArn"]
            reference = f"{pipeline_arn}/execution/{reference}"
        if not reference:
            with aws_call("sagemaker:ListPipelineExecutions"):
                listed = self.sagemaker.list_pipeline_executions(PipelineName=pipeline_name, SortBy="CreationTime",
                                                                 SortOrder="Descending", MaxResults=50)
            ended = [e for e in listed.get("PipelineExecutionSummaries", [])
                     if e.get("PipelineExecutionStatus") in ("Succeeded", "Failed")]
            reference = ended[0]["PipelineExecutionArn"] if ended else None
        if reference:
            config["SourcePipelineExecutionArn"] = reference
        return config

    def watch(self, result: RunResult, progress: Progress) -> None:
        """Poll the execution until it ends or the timeout passes."""
        self.executions.watch(result, progress)

    def collect_metrics(self, result: RunResult, definition: dict[str, Any]) -> None:
        """The evaluation metrics and report locations of a finished execution."""
        self.executions.collect_metrics(result, definition)
