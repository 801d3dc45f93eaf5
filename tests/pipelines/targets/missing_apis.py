"""What moto's SageMaker lacks for executions: ListPipelineExecutionSteps and RetryPipelineExecution, and
execution statuses other than Succeeded. Added to moto's SageMaker responses as JSON bodies, which botocore
parses as it parses the service's, so the code under test sees real shapes through any boto3 client."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from moto.sagemaker.responses import SageMakerResponse


def epoch(text: str) -> float:
    """An ISO time as the epoch seconds the JSON protocol carries."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


class MissingSageMakerApis:
    """Steps and statuses per execution ARN; every RetryPipelineExecution request is kept in ``retried``."""

    def __init__(self) -> None:
        self.steps: dict[str, list[dict[str, Any]]] = {}
        self.status: dict[str, tuple[str, str | None]] = {}
        self.retried: list[dict[str, Any]] = []
        self.after_retry: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def install(self, monkeypatch: Any) -> None:
        """Answer in moto's SageMaker, whichever client asks (the CLI creates its own)."""
        apis, describe = self, SageMakerResponse.describe_pipeline_execution

        def list_pipeline_execution_steps(response: SageMakerResponse) -> str:
            return json.dumps({"PipelineExecutionSteps": apis.steps.get(json.loads(response.body)["PipelineExecutionArn"], [])})

        def retry_pipeline_execution(response: SageMakerResponse) -> str:
            request = json.loads(response.body)
            arn = request["PipelineExecutionArn"]
            apis.retried.append(request)
            status, apis.steps[arn] = apis.after_retry[arn]
            apis.status[arn] = (status, None)
            return json.dumps({"PipelineExecutionArn": arn})

        def describe_pipeline_execution(response: SageMakerResponse) -> Any:
            arn = json.loads(response.body)["PipelineExecutionArn"]
            if arn not in apis.status:
                return describe(response)
            status, reason = apis.status[arn]
            answer = {"PipelineArn": arn.split("/execution/")[0], "PipelineExecutionArn": arn,
                      "PipelineExecutionStatus": status, "CreationTime": epoch("2026-11-26T10:00:00"),
                      "LastModifiedTime": epoch("2026-11-26T10:05:00")}
            return json.dumps({**answer, **({"FailureReason": reason} if reason else {})})

        for method in (list_pipeline_execution_steps, retry_pipeline_execution, describe_pipeline_execution):
            monkeypatch.setattr(SageMakerResponse, method.__name__, method, raising=False)
