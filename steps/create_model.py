"""CreateModel: a SageMaker Model for the batch transform."""

from __future__ import annotations

from typing import Any

from steps.context import StepContext

NAME = "CreateModel"


def build(ctx: StepContext, train: Any) -> Any:
    """The CreateModel ModelStep: the serving image with the trained artifacts, in the VPC if set."""
    from sagemaker.mlops.workflow import ModelStep

    builder = ctx.model_builder(train, ctx.config.transform_instance_type, ctx.networking(network_isolation=True))
    return ModelStep(
        name=NAME,
        display_name="Create model",
        description="Create the SageMaker Model that the batch transform serves.",
        step_args=builder.build(),
        retry_policies=ctx.retry_policies()[:1],
    )
