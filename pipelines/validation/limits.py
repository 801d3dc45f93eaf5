"""Service limits a definition must respect: its size, parallelism and the transform payload budget."""

from __future__ import annotations

from typing import Any

from pipelines.local.graph import walk_steps
from pipelines.validation.problems import Problem
from pipelines.validation.references import service_model

MAX_PARALLEL_STEPS = 50  # SageMaker runs at most 50 steps of one execution at the same time
TRANSFORM_PAYLOAD_BUDGET_MB = 100  # MaxPayloadInMB x MaxConcurrentTransforms (CreateTransformJob)


def check(definition: dict[str, Any], text: str) -> list[Problem]:
    """Problems of size, parallelism and transform payloads."""
    problems: list[Problem] = []
    limit = service_model().operation_model("CreatePipeline").input_shape.members["PipelineDefinition"].metadata["max"]
    if len(text) > limit:
        problems.append(Problem(None, "", f"the definition is {len(text):,} characters; CreatePipeline takes at most "
                                f"{limit:,} inline (upload it to S3 and use PipelineDefinitionS3Location)", "limit"))
    parallelism = definition.get("ParallelismConfiguration", {})
    steps = parallelism.get("MaxParallelExecutionSteps") if isinstance(parallelism, dict) else None
    if isinstance(steps, int) and not 1 <= steps <= MAX_PARALLEL_STEPS:
        problems.append(Problem(None, "ParallelismConfiguration.MaxParallelExecutionSteps",
                                f"must be between 1 and {MAX_PARALLEL_STEPS} (got {steps})", "limit"))
    for step, _ in walk_steps(definition.get("Steps", [])):
        if isinstance(step, dict) and step.get("Type") == "Transform" and isinstance(step.get("Arguments"), dict):
            payload = step["Arguments"].get("MaxPayloadInMB", 6)
            concurrent = step["Arguments"].get("MaxConcurrentTransforms", 1)
            if isinstance(payload, int) and isinstance(concurrent, int) and payload * concurrent > TRANSFORM_PAYLOAD_BUDGET_MB:
                problems.append(Problem(step.get("Name"), "Arguments.MaxPayloadInMB",
                                        f"MaxPayloadInMB x MaxConcurrentTransforms must be <= "
                                        f"{TRANSFORM_PAYLOAD_BUDGET_MB} (got {payload} x {concurrent})", "limit"))
    return problems
