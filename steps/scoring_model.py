"""CreateScoringModel: a SageMaker Model from the Approved model package chosen by the ModelPackageArn parameter."""

from __future__ import annotations

from typing import Any

from steps.context import StepContext

NAME = "CreateScoringModel"


def build(ctx: StepContext) -> Any:
    """The CreateModel step: the package's image and artifacts, network isolation, the VPC when configured."""
    from steps.sdk_fixes import PackageModelStep

    request: dict[str, Any] = {
        "ExecutionRoleArn": ctx.role,
        "PrimaryContainer": {"ModelPackageName": ctx.params["ModelPackageArn"]},
        "EnableNetworkIsolation": True,
    }
    if ctx.config.uses_vpc:
        request["VpcConfig"] = {"Subnets": list(ctx.config.subnets),
                                "SecurityGroupIds": list(ctx.config.security_group_ids)}
    return PackageModelStep(
        name=NAME,
        request=request,
        display_name="Create scoring model",
        description="Create the SageMaker Model from the Approved model package version being scored with.",
        retry_policies=ctx.retry_policies()[:1],
    )
