"""Model: record the model (image, artifacts, network settings) in the store; expose ModelName.

A container given as ``ModelPackageName`` is resolved from the local registry, as CreateModel
resolves it from the Model Registry: the package's image and model data, and only for an Approved
version.
"""

from __future__ import annotations

from pipelines.local import model_records
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun


def execute(run: StepRun) -> StepOutcome:
    """Write ``<store>/models/<ModelName>.json`` atomically (created by this execution)."""
    name = run.job_name
    arguments = dict(run.arguments)
    if "PrimaryContainer" in arguments:
        try:
            arguments["PrimaryContainer"], package = model_records.resolved_container(run.registry,
                                                                                      arguments["PrimaryContainer"])
        except model_records.UnusablePackageError as exc:
            raise StepFailed(f"ClientError: {exc}") from None
        if package is not None:
            packaged = package["InferenceSpecification"]["Containers"][0]
            run.log(f"model package {package['ModelPackageGroupName']} version {package['ModelPackageVersion']}: "
                    f"{packaged['Image']} with {packaged['ModelDataUrl']}")
    model_records.save_model(run.store, name, arguments, f"execution {run.execution_id}")
    return StepOutcome(properties={**arguments, "ModelName": name, "ModelArn": model_records.model_arn(name)})
