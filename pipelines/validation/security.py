"""Security lint: encryption at rest and in transit, isolation, the VPC, no credential, S3 buckets allowed.

On by default for our pipelines (``SecurityRules.for_config``: KMS rules when a KMS key is configured,
the VPC rule when subnets are); opt-in for a definition written elsewhere (``SecurityRules()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.credentials import credential_kind, flatten
from pipelines.local.graph import walk_steps
from pipelines.validation.problems import Problem
from pipelines.validation.references import is_expression

# step type -> (volume KMS key path, output KMS key path) in its Arguments
KMS_FIELDS = {
    "Processing": ("ProcessingResources.ClusterConfig.VolumeKmsKeyId", "ProcessingOutputConfig.KmsKeyId"),
    "Training": ("ResourceConfig.VolumeKmsKeyId", "OutputDataConfig.KmsKeyId"),
    "Transform": ("TransformResources.VolumeKmsKeyId", "TransformOutput.KmsKeyId"),
}
ENCRYPTION_FIELDS = {"Processing": "NetworkConfig.EnableInterContainerTrafficEncryption",
                     "Training": "EnableInterContainerTrafficEncryption"}
VPC_FIELDS = {"Processing": "NetworkConfig.VpcConfig", "Training": "VpcConfig", "Model": "VpcConfig"}


@dataclass(frozen=True)
class SecurityRules:
    """Which security rules apply."""

    kms: bool = True
    inter_container_encryption: bool = True
    model_network_isolation: bool = False
    vpc: bool = False
    allowed_buckets: tuple[str, ...] = ()

    @classmethod
    def for_config(cls, config: PipelineConfig) -> "SecurityRules":
        """The rules our own pipelines are held to under ``config``."""
        return cls(kms=bool(config.kms_key_arn), model_network_isolation=True, vpc=config.uses_vpc,
                   allowed_buckets=config.allowed_buckets)


def check(definition: dict[str, Any], rules: SecurityRules) -> list[Problem]:
    """Problems of every step under ``rules``, and any credential-shaped value anywhere."""
    problems = [Problem(None, path, f"holds what looks like {kind}; credentials never go in a definition", "security")
                for path, value in flatten(definition) if (kind := credential_kind(value))]
    for step, _ in walk_steps(definition.get("Steps", [])):
        if isinstance(step, dict) and isinstance(step.get("Arguments"), dict):
            problems += _step(step.get("Name"), step.get("Type"), step["Arguments"], rules)
    return problems


def _step(name: str | None, kind: Any, arguments: dict[str, Any], rules: SecurityRules) -> list[Problem]:
    problems: list[Problem] = []

    def require(path: str, ok: Any, message: str) -> None:
        if not ok:
            problems.append(Problem(name, f"Arguments.{path}", message, "security"))

    if rules.kms and kind in KMS_FIELDS:
        volume, output = KMS_FIELDS[kind]
        require(volume, _get(arguments, volume), "no KMS key: the job's storage volume is not encrypted with your key")
        if kind != "Processing" or "ProcessingOutputConfig" in arguments:
            require(output, _get(arguments, output), "no KMS key: the job's output is written without your key")
    if rules.inter_container_encryption and kind in ENCRYPTION_FIELDS:
        field = ENCRYPTION_FIELDS[kind]
        require(field, _get(arguments, field) is True, "must be true: traffic between the job's instances is not "
                "encrypted")
    if rules.model_network_isolation and kind == "Model":
        require("EnableNetworkIsolation", arguments.get("EnableNetworkIsolation") is True,
                "must be true: the model container can reach the network")
    if rules.vpc and kind in VPC_FIELDS:
        require(VPC_FIELDS[kind], _get(arguments, VPC_FIELDS[kind]), "missing: the configuration puts jobs in a VPC")
    if rules.allowed_buckets:
        for path, bucket in _buckets(arguments, "Arguments"):
            if bucket not in rules.allowed_buckets:
                problems.append(Problem(name, path, f"bucket {bucket!r} is not one of the allowed buckets "
                                        f"({', '.join(rules.allowed_buckets)})", "security"))
    return problems


def _get(arguments: dict[str, Any], path: str) -> Any:
    value: Any = arguments
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _buckets(value: Any, path: str) -> list[tuple[str, str]]:
    """(path, bucket) of every literal s3:// URI, including the first literal of a Std:Join."""
    if isinstance(value, str) and value.startswith("s3://"):
        return [(path, value[5:].split("/", 1)[0])]
    if is_expression(value) and "Std:Join" in value:
        values = value["Std:Join"].get("Values", []) if isinstance(value["Std:Join"], dict) else []
        return _buckets(values[0], path) if values else []
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in _buckets(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [pair for index, item in enumerate(value) for pair in _buckets(item, f"{path}[{index}]")]
    return []
