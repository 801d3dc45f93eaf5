"""Building SageMaker SDK v3 objects without touching AWS.

The SDK reads two environment variables while it is imported and used
(``AWS_DEFAULT_REGION`` at import, ``SAGEMAKER_VALIDATE_ROLE`` when a ModelTrainer is
constructed), sends telemetry unless opted out, and looks up (or creates) a default
bucket. ``offline_session`` neutralises all of that so that a definition can be built
with no credentials and no network; any AWS call the SDK still attempts raises
``OfflineCallError`` instead of leaving the machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import TYPE_CHECKING, Any, Iterator

from pipelines.errors import OfflineCallError

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig

_SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@contextlib.contextmanager
def sdk_environment(region: str) -> Iterator[None]:
    """Set what the SDK reads from the environment, for the duration of a build only."""
    wanted = {"AWS_DEFAULT_REGION": region, "SAGEMAKER_VALIDATE_ROLE": "false"}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    quiet_sdk_loggers()
    try:
        with warnings.catch_warnings(), _config_validated_once():
            warnings.simplefilter("ignore")
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _config_validated_once() -> Iterator[None]:
    """Validate our SDK config once instead of at each of the SDK's ~80 lookups during a build.

    sagemaker 3.27 runs ``jsonschema.validate`` (schema check included) on every config lookup,
    which is most of a build's time (about 4 s of 6). Any other config is still validated each time.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.validate_sagemaker_config
    original(_SDK_CONFIG)

    def validate(sagemaker_config: dict | None = None) -> None:
        if sagemaker_config is not _SDK_CONFIG:
            original(sagemaker_config)

    SageMakerConfig.validate_sagemaker_config = staticmethod(validate)  # type: ignore[method-assign]
    try:
        yield
    finally:
        SageMakerConfig.validate_sagemaker_config = staticmethod(original)  # type: ignore[method-assign]


def quiet_sdk_loggers() -> None:
    """The SDK logs INFO/DEBUG chatter on its own handlers; keep only its errors."""
    for name in ["sagemaker", *logging.root.manager.loggerDict]:
        if name.startswith("sagemaker"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _refuse_call(event_name: str, **_: Any) -> None:
    operation = event_name.split(".")[-1]
    service = event_name.split(".")[1] if event_name.count(".") >= 2 else "aws"
    raise OfflineCallError(
        f"the SageMaker SDK tried to call {service}:{operation} while building the definition offline; "
        "this is a bug in the step builders (every S3 location must be given explicitly)"
    )


def offline_session(region: str, bucket: str) -> Any:
    """A PipelineSession that never calls AWS: fixed default bucket, no telemetry, calls refused."""
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class _OfflinePipelineSession(PipelineSession):
        def default_bucket(self) -> str:  # the SDK would otherwise HeadBucket/CreateBucket
            return bucket

    boto_session = boto3.Session(region_name=region)
    boto_session.events.register("before-call", _refuse_call)
    return _OfflinePipelineSession(boto_session=boto_session, default_bucket=bucket, sagemaker_config=_SDK_CONFIG)


def mlflow_config(config: PipelineConfig, pipeline_name: str) -> Any:
    """The definition's ``MlflowConfig``: SageMaker managed MLflow tracking of the executions, when a tracking
    server is configured (its experiment: the configured one, else the pipeline's name); None otherwise."""
    if not config.mlflow_resource_arn:
        return None
    from sagemaker.core.shapes.shapes import MlflowConfig

    return MlflowConfig(mlflow_resource_arn=config.mlflow_resource_arn,
                        mlflow_experiment_name=config.mlflow_experiment_name or pipeline_name)
