"""The jobs and executions of local runs through the local SageMaker API: DescribeTrainingJob,
DescribeProcessingJob, DescribeTransformJob, DescribePipelineExecution and ListPipelineExecutionSteps, answered
from the execution records in the store (a job's name holds its execution's id, so one record is read)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipelines.errors import ExecutionError, UnsafePathError
from pipelines.local import executions
from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.executors.base import job_arn, job_name
from pipelines.local.sagemaker_api.errors import ResourceNotFound, ValidationError
from pipelines.local.sagemaker_api.shapes import epoch_seconds, page

_JOB_NAME = re.compile(r"pipelines-([a-zA-Z0-9]{12})-[A-Za-z0-9-]+")
_EXECUTION_ARN = re.compile(r"arn:aws:sagemaker:[^:]*:\d{12}:pipeline/[^/]+/execution/([a-z0-9]{12})")
# step type -> (job kind in ARNs, member prefix of its Describe* answer)
JOB_KINDS = {"Training": ("training-job", "Training"), "Processing": ("processing-job", "Processing"),
             "Transform": ("transform-job", "Transform")}
JOB_STATUS = {"Succeeded": "Completed", "Failed": "Failed", "Stopped": "Stopped"}  # anything else: InProgress


class Jobs:
    """Describe* of one store's jobs and executions."""

    def __init__(self, store_root: Path):
        self.store_root = store_root

    def describe_job(self, step_type: str, name: str) -> dict[str, Any]:
        """The job of a Training, Processing or Transform step, in its Describe* shape."""
        kind, prefix = JOB_KINDS[step_type]
        found = _JOB_NAME.fullmatch(name)
        record = self._record(found.group(1).lower()) if found else None
        # job names are case-insensitive, as SageMaker's: ARNs carry them in lower case
        step = next((s for s in record.steps if s.type == step_type
                     and job_name(record.execution_id, s.name).lower() == name.lower()), None) if record else None
        if record is None or step is None:
            raise ResourceNotFound(f"Requested resource not found: no {kind} {name!r} in the local store (local "
                                   "jobs are named pipelines-<execution id>-<step>-...; a tuning job's training "
                                   "jobs are not served)")
        status = JOB_STATUS.get(step.status, "InProgress")
        name = job_name(record.execution_id, step.name)
        described = {**step.properties, f"{prefix}JobName": name, f"{prefix}JobArn": job_arn(kind, name),
                     f"{prefix}JobStatus": status, "FailureReason": step.failure_reason,
                     "CreationTime": step.start_time, "LastModifiedTime": step.end_time or step.start_time,
                     f"{prefix}StartTime": step.start_time, f"{prefix}EndTime": step.end_time}
        if step_type == "Training":
            described.setdefault("SecondaryStatus", "Completed" if status == "Completed" else status)
            described.setdefault("ModelArtifacts", {"S3ModelArtifacts": ""})
        return described

    def describe_pipeline_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._execution(request["PipelineExecutionArn"])
        return {"PipelineArn": request["PipelineExecutionArn"].split("/execution/")[0],
                "PipelineExecutionArn": request["PipelineExecutionArn"],
                "PipelineExecutionDisplayName": record.execution_id,
                "PipelineExecutionStatus": record.status if record.status in (
                    "Executing", "Stopping", "Stopped", "Failed", "Succeeded") else "Executing",
                "FailureReason": executions.failure_of(record), "CreationTime": record.start_time,
                "LastModifiedTime": record.end_time or _latest(record)}

    def list_pipeline_execution_steps(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._execution(request["PipelineExecutionArn"])
        steps = sorted(record.steps, key=lambda s: s.start_time or "",
                       reverse=request.get("SortOrder", "Descending") == "Descending")
        pipeline_arn = request["PipelineExecutionArn"].split("/execution/")[0]
        listed, token = page([_step(record, s, pipeline_arn) for s in steps], request)
        return {"PipelineExecutionSteps": listed, "NextToken": token}

    def _execution(self, arn: str) -> ExecutionRecord:
        found = _EXECUTION_ARN.fullmatch(arn)
        if found is None:
            raise ValidationError(f"PipelineExecutionArn {arn!r} is not a pipeline execution's ARN "
                                  "(arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID)")
        record = self._record(found.group(1))
        if record is None:
            raise ResourceNotFound(f"Pipeline execution {arn} does not exist in the local store.")
        return record

    def _record(self, execution_id: str) -> ExecutionRecord | None:
        try:
            return executions.load(self.store_root, execution_id)
        except (ExecutionError, UnsafePathError):
            return None


def _latest(record: ExecutionRecord) -> str:
    times = [t for step in record.steps for t in (step.start_time, step.end_time) if t]
    return max(times, key=epoch_seconds) if times else record.start_time


def _step(record: ExecutionRecord, step: StepRecord, pipeline_arn: str) -> dict[str, Any]:
    """One step as ListPipelineExecutionSteps lists it, with the metadata of its type."""
    listed = {"StepName": step.name, "StepStatus": step.status if step.status != "NotRun" else "Starting",
              "StartTime": step.start_time, "EndTime": step.end_time, "FailureReason": step.failure_reason,
              "AttemptCount": step.attempts, "Metadata": _metadata(record, step)}
    if step.cache_hit_from:
        listed["CacheHitResult"] = {"SourcePipelineExecutionArn": f"{pipeline_arn}/execution/{step.cache_hit_from}"}
    return listed


def _metadata(record: ExecutionRecord, step: StepRecord) -> dict[str, Any]:
    properties = step.properties
    if step.type in JOB_KINDS:
        kind, prefix = JOB_KINDS[step.type]
        # a cache hit's job is the one of the execution it reused
        name = properties.get(f"{prefix}JobName") or job_name(record.execution_id, step.name)
        return {f"{prefix}Job": {"Arn": job_arn(kind, name)}}
    simple = {"Model": ("Model", "ModelArn"), "RegisterModel": ("RegisterModel", "ModelPackageArn"),
              "Tuning": ("TuningJob", "HyperParameterTuningJobArn")}
    if step.type in simple and properties.get(simple[step.type][1]):
        member, key = simple[step.type]
        return {member: {"Arn": properties[key]}}
    if step.type == "Condition" and "Outcome" in properties:
        return {"Condition": {"Outcome": str(properties["Outcome"]).capitalize()}}
    if step.type == "Lambda" and properties.get("FunctionArn"):
        outputs = [{"Name": key, "Value": str(value)} for key, value in properties.get("OutputParameters", {}).items()]
        return {"Lambda": {"Arn": properties["FunctionArn"], "OutputParameters": outputs}}
    if step.type == "Fail":
        return {"Fail": {"ErrorMessage": step.failure_reason or ""}}
    return {}

