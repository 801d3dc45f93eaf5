"""Every field of the requests the local engine's step types send (botocore's ``Create*`` input shapes), and what a
local run does with it: honoured (or refused, when it cannot be) by the step's executor, or accepted without being
enforced, with the reason the report gives.

A rule is a field path (list items and map keys dropped: ``ProcessingInputs.S3Input.S3Uri``) mapped to ``HONOURED``,
to a reason, or to ``(reason, values)``: a reason for every value but ``values`` (what the executor does anyway).
The most specific rule of a path applies. ``tests/pipelines/local/test_request_fields.py`` checks that every field of
the installed botocore's shapes has one, so a field a new SageMaker release adds is never silently ignored: until
it is classified here, it is reported as not read at all.
"""

from __future__ import annotations

from typing import Any, Union

HONOURED = None
Rule = Union[None, str, tuple[str, frozenset]]

# the request each step type's Arguments are (the definition validator reads the same shapes)
OPERATIONS = {"Processing": "CreateProcessingJob", "Training": "CreateTrainingJob", "Transform": "CreateTransformJob",
              "Model": "CreateModel", "RegisterModel": "CreateModelPackage", "Tuning": "CreateHyperParameterTuningJob",
              "QualityCheck": "CreateProcessingJob", "ClarifyCheck": "CreateProcessingJob"}
NETWORK_ISOLATION = "network isolation"  # decided by the job runtime (see pipelines.local.unenforced)

ROLE = "IAM role: jobs run as the local user"
TAGS = "resource tags"
EXPERIMENTS = "SageMaker Experiments tracking"
INSTANCE_TYPE = "instance type: jobs use this machine's CPUs and memory"
VOLUME_SIZE = "volume size: jobs use this machine's disk"
VOLUME_KMS = "KMS encryption of the job volume: job directories are plain files"
OUTPUT_KMS = "KMS encryption of outputs: the store is plain files"
VPC = "VPC subnets and security groups: jobs use this machine's network"
TRAFFIC = "inter-container traffic encryption: workers talk over plain loopback"
STAGED_AS_FILES = "input mode: the data is staged as files before the program starts, as in File mode"


def _quiet(reason: str, *values: Any) -> tuple[str, frozenset]:
    return reason, frozenset(values)


# what a Training step's request has and a tuning job's training definition does not
TRAINING_JOB_ONLY = ("TrainingJobName", "HyperParameters", "AlgorithmSpecification.EnableSageMakerMetricsTimeSeries",
                     "AlgorithmSpecification.TrainingImageConfig", "Tags", "DebugHookConfig", "DebugRuleConfigurations",
                     "TensorBoardOutputConfig", "ExperimentConfig", "ProfilerConfig", "ProfilerRuleConfigurations",
                     "RemoteDebugConfig", "InfraCheckConfig", "SessionChainingConfig", "ServerlessJobConfig",
                     "MlflowConfig", "ModelPackageConfig")


def _training_job(prefix: str = "") -> dict[str, Rule]:
    """A training job's fields (a Training step, or a tuning job's TrainingJobDefinition under ``prefix``)."""
    rules: dict[str, Rule] = {
        "TrainingJobName": HONOURED,  # the engine names every job as SageMaker Pipelines does
        "HyperParameters": HONOURED,
        "AlgorithmSpecification": HONOURED,  # the image is reported by the executor as its environment differs
        "AlgorithmSpecification.TrainingInputMode": _quiet(STAGED_AS_FILES, "File"),
        "AlgorithmSpecification.EnableSageMakerMetricsTimeSeries": "metrics time series: FinalMetricDataList only",
        "AlgorithmSpecification.TrainingImageConfig": "private registry access: no image is pulled",
        "RoleArn": ROLE,
        "InputDataConfig": HONOURED,  # channels, S3Prefix data, distribution, content type (others refused)
        "InputDataConfig.DataSource.S3DataSource.AttributeNames": "augmented manifest attributes",
        "InputDataConfig.DataSource.S3DataSource.InstanceGroupNames": "instance groups",
        "InputDataConfig.DataSource.S3DataSource.ModelAccessConfig": "model access (EULA) configuration",
        "InputDataConfig.DataSource.S3DataSource.HubAccessConfig": "SageMaker hub content access",
        "InputDataConfig.CompressionType": _quiet("channel compression: the objects are staged as stored", "None"),
        "InputDataConfig.RecordWrapperType": _quiet("RecordIO wrapping of records", "None"),
        "InputDataConfig.InputMode": _quiet(STAGED_AS_FILES, "File"),
        "InputDataConfig.ShuffleConfig": "shuffling of the channel's objects",
        "OutputDataConfig": HONOURED,
        "OutputDataConfig.KmsKeyId": OUTPUT_KMS,
        "OutputDataConfig.CompressionType": _quiet("model compression: the model is published as model.tar.gz",
                                                   "GZIP"),
        "ResourceConfig.InstanceCount": HONOURED,
        "ResourceConfig.InstanceType": INSTANCE_TYPE,
        "ResourceConfig.VolumeSizeInGB": VOLUME_SIZE,
        "ResourceConfig.VolumeKmsKeyId": VOLUME_KMS,
        "ResourceConfig.KeepAlivePeriodInSeconds": "warm pools: every job starts fresh",
        "ResourceConfig.InstanceGroups": "heterogeneous clusters: the job runs InstanceCount hosts of one kind",
        "ResourceConfig.TrainingPlanArn": "training plans (reserved capacity)",
        "ResourceConfig.InstancePlacementConfig": "instance placement",
        "ResourceConfig.InstancePreferences": "instance preferences",
        "ResourceConfig.SelectedInstanceType": INSTANCE_TYPE,
        "ResourceConfig.SelectedInstanceCount": "selected instance count",
        "VpcConfig": VPC,
        "StoppingCondition.MaxRuntimeInSeconds": HONOURED,
        "StoppingCondition.MaxWaitTimeInSeconds": "spot wait time",
        "StoppingCondition.MaxPendingTimeInSeconds": "pending time: jobs start at once",
        "Tags": TAGS,
        "EnableNetworkIsolation": NETWORK_ISOLATION,
        "EnableInterContainerTrafficEncryption": TRAFFIC,
        "EnableManagedSpotTraining": "managed spot training",
        "CheckpointConfig": "checkpoint upload to S3",
        "DebugHookConfig": "SageMaker Debugger",
        "DebugRuleConfigurations": "SageMaker Debugger rules",
        "TensorBoardOutputConfig": "TensorBoard output upload",
        "ExperimentConfig": EXPERIMENTS,
        "ProfilerConfig": "SageMaker Profiler",
        "ProfilerRuleConfigurations": "SageMaker Profiler rules",
        "Environment": HONOURED,
        "RetryStrategy": "job restarts (RetryStrategy): a failed job is not restarted; the step's retry policies apply",
        "RemoteDebugConfig": "remote debugging of the job",
        "InfraCheckConfig": "infrastructure health checks",
        "SessionChainingConfig": "session tag chaining",
        "ServerlessJobConfig": "serverless model customization",
        "MlflowConfig": "MLflow tracking of the job",
        "ModelPackageConfig": "registration of the job's model package",
    }
    if prefix:  # a tuning job's training definition: its own fields
        rules.update({"DefinitionName": HONOURED, "TuningObjective": HONOURED, "HyperParameterRanges": HONOURED,
                      "StaticHyperParameters": HONOURED, "HyperParameterTuningResourceConfig":
                      "tuning instance configuration: every training job runs on this machine"})
        for name in TRAINING_JOB_ONLY:
            del rules[name]
    return {f"{prefix}{path}": rule for path, rule in rules.items()}


RULES: dict[str, dict[str, Rule]] = {
    "Processing": {
        "ProcessingJobName": HONOURED,
        "ProcessingInputs": HONOURED,  # S3 inputs staged; dataset definitions refused
        "ProcessingInputs.AppManaged": _quiet("app-managed inputs", False),
        "ProcessingInputs.S3Input.S3InputMode": _quiet(STAGED_AS_FILES, "File"),
        "ProcessingInputs.S3Input.S3CompressionType": _quiet("input compression: the objects are staged as stored",
                                                             "None"),
        "ProcessingOutputConfig": HONOURED,
        "ProcessingOutputConfig.KmsKeyId": OUTPUT_KMS,
        "ProcessingOutputConfig.Outputs.AppManaged": _quiet("app-managed outputs", False),
        "ProcessingOutputConfig.Outputs.S3Output.S3UploadMode": _quiet(
            "continuous upload: outputs are published when the job ends", "EndOfJob"),
        "ProcessingOutputConfig.Outputs.FeatureStoreOutput": "Feature Store output: not ingested locally",
        "ProcessingResources.ClusterConfig.InstanceCount": HONOURED,
        "ProcessingResources.ClusterConfig.InstanceType": INSTANCE_TYPE,
        "ProcessingResources.ClusterConfig.VolumeSizeInGB": VOLUME_SIZE,
        "ProcessingResources.ClusterConfig.VolumeKmsKeyId": VOLUME_KMS,
        "ProcessingResources.ClusterConfig.InstancePreferences": "instance preferences",
        "ProcessingResources.ClusterConfig.SelectedInstanceType": INSTANCE_TYPE,
        "ProcessingResources.ClusterConfig.SelectedInstanceCount": "selected instance count",
        "StoppingCondition": HONOURED,
        "AppSpecification": HONOURED,  # the image is reported by the executor as its environment differs
        "Environment": HONOURED,
        "NetworkConfig.EnableNetworkIsolation": NETWORK_ISOLATION,
        "NetworkConfig.EnableInterContainerTrafficEncryption": TRAFFIC,
        "NetworkConfig.VpcConfig": VPC,
        "RoleArn": ROLE,
        "Tags": TAGS,
        "ExperimentConfig": EXPERIMENTS,
    },
    "Training": _training_job(),
    "Transform": {
        "TransformJobName": HONOURED,
        "ModelName": HONOURED,
        "MaxConcurrentTransforms": "concurrent transform requests: requests are sent one at a time",
        "ModelClientConfig": "invocation timeouts and retries of batch transform",
        "MaxPayloadInMB": HONOURED,
        "BatchStrategy": HONOURED,
        "Environment": "the transform job's Environment: not passed to the model's serve program",
        "TransformInput": HONOURED,
        "TransformOutput": HONOURED,
        "TransformOutput.KmsKeyId": OUTPUT_KMS,
        "DataCaptureConfig": "data capture of batch transform",
        "TransformResources.InstanceType": INSTANCE_TYPE,
        "TransformResources.InstanceCount": _quiet("instance count: one local host transforms every object", 1),
        "TransformResources.VolumeKmsKeyId": VOLUME_KMS,
        "TransformResources.TransformAmiVersion": "the instances' AMI",
        "DataProcessing": HONOURED,
        "Tags": TAGS,
        "ExperimentConfig": EXPERIMENTS,
    },
    "Model": {
        "ModelName": HONOURED,
        "PrimaryContainer": HONOURED,
        "PrimaryContainer.ContainerHostname": "container host name",
        "PrimaryContainer.ImageConfig": "private registry access: no image is pulled",
        "PrimaryContainer.Mode": _quiet("multi-model hosting", "SingleModel"),
        "PrimaryContainer.ModelDataSource": "uncompressed model data sources: the model is served from ModelDataUrl",
        "PrimaryContainer.AdditionalModelDataSources": "additional model data sources",
        "PrimaryContainer.Environment": "the serving container's Environment: recorded, not passed to a local serve "
                                        "program",
        "PrimaryContainer.ModelPackageName": HONOURED,
        "PrimaryContainer.InferenceSpecificationName": "the model package's named inference specification",
        "PrimaryContainer.MultiModelConfig": "multi-model hosting",
        "PrimaryContainer.ContainerMetricsConfig": "per-container metrics",
        "Containers": "inference pipelines (several containers): only PrimaryContainer is served",
        "InferenceExecutionConfig": "inference pipeline execution mode",
        "ExecutionRoleArn": ROLE,
        "Tags": TAGS,
        "VpcConfig": VPC,
        "EnableNetworkIsolation": NETWORK_ISOLATION,
    },
    # a model package is recorded in the local registry as given; what SageMaker would run for it is not run
    "RegisterModel": {
        "": HONOURED,
        "ValidationSpecification": "model package validation jobs are not run",
        "SecurityConfig": OUTPUT_KMS,
        "Tags": TAGS,
    },
    "Tuning": {
        "HyperParameterTuningJobName": HONOURED,
        "HyperParameterTuningJobConfig": HONOURED,  # what the tuning executor does not do, it reports itself
        "TrainingJobDefinitions": HONOURED,  # refused (one definition only)
        "WarmStartConfig": HONOURED,  # refused
        "Tags": TAGS,
        "Autotune": "Autotune: SageMaker's choice of tuning settings",
        **_training_job("TrainingJobDefinition."),
    },
}

RULES["QualityCheck"] = RULES["ClarifyCheck"] = RULES["Processing"]  # their Arguments are the processing job they run


def rule_for(step_type: str, path: str) -> tuple[bool, Rule]:
    """(found, rule) of the most specific rule for a field ``path`` of ``step_type``'s request."""
    rules = RULES.get(step_type, {})
    parts = path.split(".") if path else []
    for end in range(len(parts), -1, -1):
        prefix = ".".join(parts[:end])
        if prefix in rules:
            return True, rules[prefix]
    return False, None


def has_narrower_rules(step_type: str, path: str) -> bool:
    """True if some rule is more specific than ``path`` (its fields must be looked at one by one)."""
    start = f"{path}." if path else ""
    return any(key.startswith(start) and key != path for key in RULES.get(step_type, {}))
