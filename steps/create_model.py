"""CreateModel: a SageMaker Model for the batch transform."""

from __future__ import annotations

import logging
from typing import Any

from steps.context import StepContext

NAME = "CreateModel"


def build(ctx: StepContext, train: Any) -> Any:
    """The CreateModel ModelStep: the serving image with the trained artifacts, in the VPC if set."""
    from sagemaker.mlops.workflow import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    builder = ModelBuilder(
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        image_uri=ctx.training_image(),
        role_arn=ctx.role,
        sagemaker_session=ctx.session,
        log_level=logging.ERROR,  # its default, DEBUG, floods the console
        instance_type=ctx.config.transform_instance_type,
        network=ctx.networking(network_isolation=True),
    )
    return ModelStep(
        name=NAME,
        display_name="Create model",
        description="Create the SageMaker Model that the batch transform serves.",
        step_args=builder.build(),
        retry_policies=ctx.retry_policies()[:1],
    )
