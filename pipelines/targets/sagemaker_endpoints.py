"""Endpoints on SageMaker: a Model from the model package, an EndpointConfig, the Endpoint (created or updated).

Every deploy makes a new Model and EndpointConfig named after the endpoint, the version and the time;
an existing endpoint is updated to the new config, which SageMaker does blue/green (the old fleet
serves until the new one is InService). The EndpointConfig carries the KMS key for the instances'
storage volumes and, with data capture on, for the captured requests and responses.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

from pipelines.aws import aws_call, error_code
from pipelines.config import PipelineConfig
from pipelines.errors import AwsError, ConfigError

VARIANT = "AllTraffic"
TERMINAL = ("InService", "Failed", "OutOfService")


class SageMakerEndpoints:
    """CreateModel / CreateEndpointConfig / CreateEndpoint or UpdateEndpoint, and their undoing."""

    def __init__(self, session: Any, config: PipelineConfig, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.sagemaker = session.client("sagemaker")
        self.sleep = sleep

    def deploy(self, name: str, package: dict[str, Any], instance_type: str, instance_count: int,
               data_capture_percent: int | None = None) -> dict[str, Any]:
        """Create or update endpoint ``name`` to serve ``package``; returns {Model, EndpointConfig, Action}."""
        if not self.config.role_arn:
            raise ConfigError("deploying on SageMaker needs --role-arn (the role the endpoint's model runs as)")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
        resource = f"{name[:40]}-v{package['ModelPackageVersion']}-{stamp}"[:63]
        model: dict[str, Any] = {"ModelName": resource, "ExecutionRoleArn": self.config.role_arn,
                                 "PrimaryContainer": {"ModelPackageName": package["ModelPackageArn"]},
                                 "Tags": self._tags()}
        if self.config.uses_vpc:
            model["VpcConfig"] = {"Subnets": list(self.config.subnets),
                                  "SecurityGroupIds": list(self.config.security_group_ids)}
        with aws_call("CreateModel"):
            self.sagemaker.create_model(**model)
        endpoint_config: dict[str, Any] = {
            "EndpointConfigName": resource,
            "ProductionVariants": [{"VariantName": VARIANT, "ModelName": resource, "InstanceType": instance_type,
                                    "InitialInstanceCount": instance_count, "InitialVariantWeight": 1.0}],
            "Tags": self._tags(),
        }
        if self.config.kms_key_arn:
            endpoint_config["KmsKeyId"] = self.config.kms_key_arn
        if data_capture_percent:
            endpoint_config["DataCaptureConfig"] = self._data_capture(name, data_capture_percent)
        with aws_call("CreateEndpointConfig"):
            self.sagemaker.create_endpoint_config(**endpoint_config)
        if self.exists(name):
            with aws_call("UpdateEndpoint"):
                self.sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=resource)
            action = "updated"
        else:
            with aws_call("CreateEndpoint"):
                self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=resource, Tags=self._tags())
            action = "created"
        return {"Model": resource, "EndpointConfig": resource, "Action": action}

    def _data_capture(self, name: str, percent: int) -> dict[str, Any]:
        capture: dict[str, Any] = {
            "EnableCapture": True, "InitialSamplingPercentage": percent,
            "DestinationS3Uri": f"{self.config.s3_prefix()}/data-capture/{name}",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
        if self.config.kms_key_arn:
            capture["KmsKeyId"] = self.config.kms_key_arn
        return capture

    def _tags(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.config.tags]

    def exists(self, name: str) -> bool:
        """True if endpoint ``name`` exists (in any status)."""
        try:
            self.describe(name)
            return True
        except AwsError as exc:
            if error_code(exc) == "ValidationException":
                return False
            raise

    def describe(self, name: str) -> dict[str, Any]:
        """DescribeEndpoint."""
        with aws_call("DescribeEndpoint"):
            return self.sagemaker.describe_endpoint(EndpointName=name)

    def wait(self, name: str, poll_seconds: float, on_status: Callable[[str, float], None],
             timeout_seconds: float | None = None) -> dict[str, Any]:
        """Poll until the endpoint is InService, Failed or OutOfService (or the timeout passes)."""
        started = time.monotonic()
        while True:
            endpoint = self.describe(name)
            elapsed = time.monotonic() - started
            on_status(endpoint["EndpointStatus"], elapsed)
            if endpoint["EndpointStatus"] in TERMINAL or (timeout_seconds is not None and elapsed >= timeout_seconds):
                return endpoint
            self.sleep(poll_seconds)

    def delete(self, name: str) -> dict[str, Any]:
        """Delete the endpoint, then its endpoint config and model (DeleteEndpoint leaves them behind)."""
        endpoint = self.describe(name)
        with aws_call("DescribeEndpointConfig"):
            config = self.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        with aws_call("DeleteEndpoint"):
            self.sagemaker.delete_endpoint(EndpointName=name)
        with aws_call("DeleteEndpointConfig"):
            self.sagemaker.delete_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        for variant in config["ProductionVariants"]:
            with aws_call("DeleteModel"):
                self.sagemaker.delete_model(ModelName=variant["ModelName"])
        return endpoint

    def list(self) -> list[dict[str, Any]]:
        """Every endpoint of the account and region (ListEndpoints), newest first."""
        with aws_call("ListEndpoints"):
            pages = self.sagemaker.get_paginator("list_endpoints").paginate(SortBy="CreationTime", SortOrder="Descending")
            return [e for page in pages for e in page["Endpoints"]]
