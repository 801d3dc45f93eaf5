"""RegisterModel: a new model package version in the local registry."""

from __future__ import annotations

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
        )
    except ValueError as exc:
        raise StepFailed(f"ClientError: {exc}") from None
    run.log(f"registered {package['ModelPackageGroupName']} version {package['ModelPackageVersion']} "
            f"({package['ModelApprovalStatus']})")
    return StepOutcome(properties=package)
