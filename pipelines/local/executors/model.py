"""Model: record the model (image, artifacts, network settings) in the store; expose ModelName.

A container given as ``ModelPackageName`` is resolved from the local registry, as CreateModel
resolves it from the Model Registry: the package's image and model data, and only for an Approved
version.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.errors import RegistryBusyError, RegistryError
from pipelines.local import safe_files
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun


def execute(run: StepRun) -> StepOutcome:
    """Write ``<store>/models/<ModelName>.json`` atomically."""
    name = run.job_name
    arguments = dict(run.arguments)
    if "PrimaryContainer" in arguments:
        arguments["PrimaryContainer"] = resolve_package(run, arguments["PrimaryContainer"])
    record = {**arguments, "ModelName": name,
              "ModelArn": f"arn:aws:sagemaker:local:000000000000:model/{name.lower()}"}
    safe_files.write_text(run.store.root, run.store.model_path(name), json.dumps(record, indent=2))
    return StepOutcome(properties=record)


def resolve_package(run: StepRun, container: dict[str, Any]) -> dict[str, Any]:
    """The container with a ModelPackageName replaced by the package's image and model data."""
    arn = container.get("ModelPackageName")
    if arn is None:
        return container
    try:
        package = run.registry.describe_arn(arn)
    except KeyError:
        raise StepFailed(f"ClientError: PrimaryContainer.ModelPackageName: model package {arn!r} is not in the "
                         "local registry") from None
    except RegistryBusyError:
        raise  # Step.THROTTLING: retried as the step's policies say
    except RegistryError as exc:
        raise StepFailed(f"ClientError: {exc}") from None
    if package["ModelApprovalStatus"] != "Approved":
        raise StepFailed(f"ClientError: model package {arn} is {package['ModelApprovalStatus']}; a model is created "
                         "only from an Approved version")
    packaged = package["InferenceSpecification"]["Containers"][0]
    run.log(f"model package {package['ModelPackageGroupName']} version {package['ModelPackageVersion']}: "
            f"{packaged['Image']} with {packaged['ModelDataUrl']}")
    resolved = {k: v for k, v in container.items() if k != "ModelPackageName"}
    return {**resolved, "Image": packaged["Image"], "ModelDataUrl": packaged["ModelDataUrl"],
            "Environment": {**packaged.get("Environment", {}), **container.get("Environment", {})},
            "ModelPackageName": arn}
