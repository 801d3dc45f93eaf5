"""What every step builder needs: config, SDK session, parameters and shared job settings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig

PROCESSING_DIR = Path(__file__).resolve().parent.parent / "processing"
# what a job whose image lacks them installs to log to SageMaker managed MLflow (our image has them built in)
TRACKING_REQUIREMENTS = Path(__file__).resolve().parent.parent / "container" / "requirements-tracking.txt"
SKLEARN_VERSION = "1.2-1"
TRANSFORM_MAX_PAYLOAD_MB = 6  # a transform request at most as large as an endpoint's


@dataclass(frozen=True)
class CodeUpload:
    """A local file the pipeline needs in S3 before it runs (content-addressed, so deterministic)."""

    local_path: Path
    s3_uri: str


@dataclass
class StepContext:
    """Shared inputs of the step builders for one pipeline build."""

    config: PipelineConfig
    session: Any
    params: dict[str, Any]
    uploads: list[CodeUpload] = field(default_factory=list)

    @property
    def role(self) -> str:
        """The IAM role every job runs as."""
        assert self.config.role_arn, "role_arn is checked before the build starts"
        return self.config.role_arn

    def code_uri(self, script_name: str) -> str:
        """S3 URI of a processing script, at a path derived from its content; registers the upload."""
        local = PROCESSING_DIR / script_name
        digest = hashlib.sha256(local.read_bytes()).hexdigest()[:16]
        uri = f"{self.config.s3_prefix()}/code/{digest}/{script_name}"
        if all(u.s3_uri != uri for u in self.uploads):
            self.uploads.append(CodeUpload(local, uri))
        return uri

    def output_uri(self, step_name: str, output_name: str) -> Any:
        """Per-execution S3 location of a step output: prefix/<execution id>/<step>/<output>."""
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        return Join(on="/", values=[self.config.s3_prefix(), ExecutionVariables.PIPELINE_EXECUTION_ID, step_name, output_name])

    def image_uri(self, framework: str, version: str) -> str:
        """ECR URI of a SageMaker-provided image in the configured region."""
        from sagemaker.core import image_uris

        return image_uris.retrieve(framework, self.config.region, version=version)

    def training_image(self) -> str:
        """The built-in XGBoost image, or the custom image when training_mode is 'custom'."""
        if self.config.training_mode == "custom":
            assert self.config.training_image
            return self.config.training_image
        return self.image_uri("xgboost", self.config.xgboost_version)

    def network_config(self) -> Any:
        """Processing NetworkConfig: inter-container encryption always, the VPC when configured."""
        from sagemaker.core.network import NetworkConfig

        return NetworkConfig(
            encrypt_inter_container_traffic=True,
            subnets=list(self.config.subnets) or None,
            security_group_ids=list(self.config.security_group_ids) or None,
        )

    def networking(self, network_isolation: bool = False) -> Any:
        """Training/Model Networking: inter-container encryption always, the VPC when configured."""
        from sagemaker.core.training.configs import Networking

        return Networking(
            subnets=list(self.config.subnets) or None,
            security_group_ids=list(self.config.security_group_ids) or None,
            enable_inter_container_traffic_encryption=True,
            enable_network_isolation=network_isolation,
        )

    def cache_config(self) -> Any:
        """Step caching as configured."""
        from sagemaker.mlops.workflow import CacheConfig

        return CacheConfig(enable_caching=self.config.enable_caching, expire_after=self.config.cache_expire_after)

    def retry_policies(self) -> list[Any]:
        """Retries for capacity/internal errors of the job, and for throttling of the service."""
        from sagemaker.mlops.workflow import (
            SageMakerJobExceptionTypeEnum,
            SageMakerJobStepRetryPolicy,
            StepExceptionTypeEnum,
            StepRetryPolicy,
        )

        return [
            StepRetryPolicy(
                exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
                interval_seconds=10, backoff_rate=2.0, max_attempts=5,
            ),
            SageMakerJobStepRetryPolicy(
                exception_types=[
                    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                    SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                ],
                interval_seconds=60, backoff_rate=2.0, max_attempts=3,
            ),
        ]

    def model_builder(self, train_step: Any, instance_type: str, network: Any = None) -> Any:
        """A ModelBuilder serving the trained artifacts with the training image, as the pipeline role."""
        import logging

        from sagemaker.serve.model_builder import ModelBuilder

        return ModelBuilder(
            s3_model_data_url=train_step.properties.ModelArtifacts.S3ModelArtifacts,
            image_uri=self.training_image(),
            role_arn=self.role,
            sagemaker_session=self.session,
            log_level=logging.ERROR,  # its default, DEBUG, floods the console
            instance_type=instance_type,
            network=network,
        )

    def transformer(self, model_name: Any, instance_type: Any, output_path: Any) -> Any:
        """A Transformer packing lines up to 6 MB, CSV out, KMS on volume and output."""
        from sagemaker.core.transformer import Transformer

        return Transformer(
            model_name=model_name,
            instance_count=1,
            instance_type=instance_type,
            strategy="MultiRecord",
            assemble_with="Line",
            accept="text/csv",
            max_payload=TRANSFORM_MAX_PAYLOAD_MB,
            output_path=output_path,
            output_kms_key=self.config.kms_key_arn,
            volume_kms_key=self.config.kms_key_arn,
            sagemaker_session=self.session,
        )

    def mlflow_run(self, step_name: str) -> dict[str, Any] | None:
        """Where a job logs to SageMaker managed MLflow: the server's ARN, the experiment, and a run named after
        the execution and the step; None without a tracking server."""
        if not self.config.mlflow_resource_arn:
            return None
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        return {"MlflowResourceArn": self.config.mlflow_resource_arn,
                "MlflowExperimentName": self.config.mlflow_experiment_name or self.config.pipeline_name,
                "MlflowRunName": Join(on="-", values=[ExecutionVariables.PIPELINE_EXECUTION_ID, step_name])}

    def mlflow_environment(self, step_name: str, install: bool = False) -> dict[str, Any]:
        """The environment a job program of ours logs to MLflow with (processing/evaluate.py, our image's train):
        MLflow's own variables, the ARN as tracking URI (the sagemaker-mlflow plugin resolves it), and, with
        ``install`` (an image without them), the pinned packages to install first; empty without a server."""
        run = self.mlflow_run(step_name)
        if run is None:
            return {}
        from sagemaker.core.workflow.execution_variables import ExecutionVariables

        environment = {"MLFLOW_TRACKING_URI": run["MlflowResourceArn"],
                       "MLFLOW_EXPERIMENT_NAME": run["MlflowExperimentName"], "MLFLOW_RUN_NAME": run["MlflowRunName"],
                       "PIPELINE_EXECUTION_ID": ExecutionVariables.PIPELINE_EXECUTION_ID}
        if install:
            pinned = [line.strip() for line in TRACKING_REQUIREMENTS.read_text().splitlines()
                      if line.strip() and not line.startswith("#")]
            environment["MLFLOW_PIP_INSTALL"] = " ".join(pinned)
        return environment

    def processor(self, image_uri: str, base_job_name: str, environment: dict[str, Any] | None = None) -> Any:
        """A ScriptProcessor with the encryption, network and runtime limits every job gets."""
        from sagemaker.core.processing import ScriptProcessor

        return ScriptProcessor(
            role=self.role,
            image_uri=image_uri,
            command=["python3"],
            instance_count=1,
            instance_type=self.params["ProcessingInstanceType"],
            volume_kms_key=self.config.kms_key_arn,
            output_kms_key=self.config.kms_key_arn,
            max_runtime_in_seconds=self.config.max_runtime_seconds,
            base_job_name=f"{self.config.base_prefix.replace('/', '-')}-{base_job_name}",
            sagemaker_session=self.session,
            network_config=self.network_config(),
            env={"PYTHONUNBUFFERED": "1", **(environment or {})},
        )

    def processing_input(self, name: str, s3_uri: Any, local_path: str) -> Any:
        """A File-mode S3 prefix input of a processing job."""
        from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=s3_uri, local_path=local_path, s3_data_type="S3Prefix",
                s3_input_mode="File", s3_data_distribution_type="FullyReplicated",
            ),
        )

    def redshift_input(self, name: str, local_path: str) -> Any:
        """An input SageMaker fills by running the configured query on Redshift (CSV, gzip, KMS-encrypted).

        SageMaker unloads with temporary credentials for ``db_user`` obtained through the cluster
        role (redshift:GetClusterCredentials): no password or secret is involved.
        """
        from sagemaker.core.shapes import DatasetDefinition, ProcessingInput, RedshiftDatasetDefinition

        cfg = self.config
        return ProcessingInput(
            input_name=name,
            dataset_definition=DatasetDefinition(
                redshift_dataset_definition=RedshiftDatasetDefinition(
                    cluster_id=cfg.redshift_cluster_id, database=cfg.redshift_database, db_user=cfg.redshift_db_user,
                    query_string=cfg.redshift_query, cluster_role_arn=cfg.redshift_cluster_role_arn,
                    output_s3_uri=cfg.redshift_output_uri(), kms_key_id=cfg.kms_key_arn,
                    output_format="CSV", output_compression="GZIP",
                ),
                local_path=local_path, data_distribution_type="FullyReplicated", input_mode="File",
            ),
        )

    def processing_output(self, step_name: str, name: str, local_path: str) -> Any:
        """A processing output published at end of job under this execution's prefix."""
        from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=self.output_uri(step_name, name), local_path=local_path, s3_upload_mode="EndOfJob"
            ),
        )
