"""What a step's definition asks for that the local engine accepts but cannot honour.

Nothing is ignored silently: every such setting found in a step's resolved arguments is
reported, per step, at the end of a local run and in the execution record.
"""

from __future__ import annotations

from typing import Any, Iterator


# argument key -> why it is not enforced locally
SETTINGS: dict[str, str] = {
    "RoleArn": "IAM role: jobs run as the local user",
    "ExecutionRoleArn": "IAM role: jobs run as the local user",
    "KmsKeyId": "KMS encryption of outputs: the store is plain files",
    "VolumeKmsKeyId": "KMS encryption of the job volume: job directories are plain files",
    "VpcConfig": "VPC subnets and security groups: jobs use this machine's network",
    "EnableNetworkIsolation": "network isolation: without the job sandbox, jobs can reach this machine's network",
    "EnableInterContainerTrafficEncryption": "inter-container traffic encryption: workers talk over plain loopback",
    "InstanceType": "instance type: jobs use this machine's CPUs and memory",
    "VolumeSizeInGB": "volume size: jobs use this machine's disk",
    "EnableManagedSpotTraining": "managed spot training",
    "MaxWaitTimeInSeconds": "spot wait time",
    "CheckpointConfig": "checkpoint upload to S3",
    "Tags": "resource tags",
    "ExperimentConfig": "SageMaker Experiments tracking",
    "ProfilerConfig": "SageMaker Profiler",
    "DebugHookConfig": "SageMaker Debugger",
    "ModelClientConfig": "invocation timeouts and retries of batch transform",
    "MaxConcurrentTransforms": "concurrent transform requests: records are sent one request at a time",
}
_NOT_WORTH_REPORTING = (None, "", False, [], {})
# what every job program of a local run may do that SageMaker would check
JOB_PROGRAMS = ("S3 permissions: job programs reach the store through a local S3 endpoint that checks no signature, "
                "IAM policy or bucket policy")
RUNS_PROGRAMS = {"Processing", "Training"}
# steps whose programs the job runtime starts (a Transform's model may be a serve program)
STARTS_PROGRAMS = RUNS_PROGRAMS | {"Transform"}
# with the job sandbox, a job's network isolation is a private network shared by its hosts only
ISOLATED_STEPS = RUNS_PROGRAMS
SERVING_NETWORK = ("network isolation of serving containers: an image's local serve program listens on this "
                   "machine's loopback, where the engine reaches it, and is not kept from the rest of the network "
                   "(the built-in XGBoost image's models are served by the engine itself)")


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            if key in SETTINGS:
                yield key, here, item
            else:
                yield from _walk(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def settings(arguments: dict[str, Any], step_type: str = "", not_isolated: str | None = None) -> list[str]:
    """One line per setting in ``arguments`` that a local run does not enforce (and, for steps that run
    programs, the permissions their S3 calls skip). ``not_isolated`` is the job runtime's reason when jobs
    run without the sandbox (None: they run in it, and their network isolation is enforced)."""
    found = [JOB_PROGRAMS] if step_type in RUNS_PROGRAMS else []
    if not_isolated and step_type in STARTS_PROGRAMS:
        found.append(not_isolated)
    for key, path, value in _walk(arguments, ""):
        if value in _NOT_WORTH_REPORTING:
            continue
        if key == "EnableNetworkIsolation" and not not_isolated:
            if step_type in ISOLATED_STEPS:
                continue
            found.append(f"{path} = {value}: {SERVING_NETWORK}")
            continue
        shown = value if isinstance(value, (str, int, float, bool)) else "set"
        found.append(f"{path} = {shown}: {SETTINGS[key]}")
    return found
