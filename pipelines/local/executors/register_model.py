"""RegisterModel: a new model package version in the local registry."""

from __future__ import annotations

from pipelines.errors import ModelPackageError, RegistryBusyError, RegistryError
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun


def execute(run: StepRun) -> StepOutcome:
    """Register the model; its properties are DescribeModelPackage's fields."""
    args = run.arguments
    for field in ("ModelPackageGroupName", "InferenceSpecification"):
        if field not in args:
            raise StepFailed(f"ClientError: Arguments.{field} is required")
    try:
        package = run.registry.register(
            group=args["ModelPackageGroupName"],
            approval_status=args.get("ModelApprovalStatus", "PendingManualApproval"),
            inference_specification=args["InferenceSpecification"],
            model_metrics=args.get("ModelMetrics"),
            customer_metadata={k: str(v) for k, v in args.get("CustomerMetadataProperties", {}).items()},
            description=args.get("ModelPackageDescription"),
            source=(run.execution_id, run.name),
            drift_check_baselines=args.get("DriftCheckBaselines"),
        )
    except RegistryBusyError:
        raise  # transient: Step.THROTTLING, retried as the step's policies allow
    except (ValueError, RegistryError, ModelPackageError) as exc:
        raise StepFailed(f"ClientError: {exc}") from None
    reused = package.pop("Reused", None)
    what = f"{package['ModelPackageGroupName']} version {package['ModelPackageVersion']} " \
           f"({package['ModelApprovalStatus']})"
    if reused == "identical":
        run.log(f"the model package is the same as {what}: no new version registered (a changed model, metrics, "
                "description or metadata registers one)")
    else:
        run.log(f"{'found the version this step registered before: ' if reused else 'registered '}{what}")
    return StepOutcome(properties=package)
