"""Model: record the model (image, artifacts, network settings) in the store; expose ModelName."""

from __future__ import annotations

import json

from pipelines.atomic import write_text
from pipelines.local.executors.base import StepOutcome, StepRun


def execute(run: StepRun) -> StepOutcome:
    """Write ``<store>/models/<ModelName>.json`` atomically."""
    name = run.job_name
    record = {**run.arguments, "ModelName": name,
              "ModelArn": f"arn:aws:sagemaker:local:000000000000:model/{name.lower()}"}
    path = run.store.model_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=2))
    return StepOutcome(properties=record)
