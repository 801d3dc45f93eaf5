"""What a SageMaker training container finds on every instance: the /opt/ml folders, the three
``/opt/ml/input/config`` files with every key the platform writes, and the platform's environment."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any


GROUP = "homogeneousCluster"  # SageMaker's name for the instance group of a job without InstanceGroups
NETWORK_INTERFACE = "lo"  # local hosts talk over loopback (eth0 on SageMaker)
def training_environment(job_name: str, job_arn: str) -> dict[str, str]:
    """The variables the platform sets in a training container."""
    return {"TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": job_arn}


def resource_config(arguments: dict[str, Any], current_host: str, hosts: list[str]) -> dict[str, Any]:
    """``resourceconfig.json`` as SageMaker writes it for a homogeneous cluster."""
    instance_type = arguments.get("ResourceConfig", {}).get("InstanceType", "ml.m5.large")
    return {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": GROUP,
        "hosts": hosts,
        "instance_groups": [{"instance_group_name": GROUP, "instance_type": instance_type, "hosts": hosts}],
        "network_interface_name": NETWORK_INTERFACE,
    }


def input_data_config(arguments: dict[str, Any]) -> dict[str, Any]:
    """``inputdataconfig.json``: each channel's content type, input mode, distribution and record wrapping."""
    mode = arguments.get("AlgorithmSpecification", {}).get("TrainingInputMode", "File")
    config = {}
    for channel in arguments.get("InputDataConfig", []):
        entry = {"TrainingInputMode": channel.get("InputMode", mode),
                 "S3DistributionType": channel.get("DataSource", {}).get("S3DataSource", {}).get(
                     "S3DataDistributionType", "FullyReplicated"),
                 "RecordWrapperType": channel.get("RecordWrapperType", "None")}
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


def write_training_config(root: Path, arguments: dict[str, Any], current_host: str, hosts: list[str]) -> None:
    """Lay out one host's /opt/ml (under ``root``): config files and the folders a job writes to."""
    opt_ml = root / "opt" / "ml"
    config_dir = opt_ml / "input" / "config"
    for directory in (config_dir, opt_ml / "model", opt_ml / "output" / "data", opt_ml / "checkpoints",
                      opt_ml / "code"):
        directory.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(arguments.get("HyperParameters", {})))
    (config_dir / "inputdataconfig.json").write_text(json.dumps(input_data_config(arguments)))
    (config_dir / "resourceconfig.json").write_text(json.dumps(resource_config(arguments, current_host, hosts)))


SDK_V3_DRIVERS = "opt/ml/input/data/sm_drivers"
SDK_V3_INSTALLER = Path(SDK_V3_DRIVERS) / "scripts" / "install_requirements.py"
SDK_V3_SCRIPT = Path(SDK_V3_DRIVERS) / "sm_train.sh"
_INSTALL_CALL = re.compile(r"install_requirements\.py[ \t]+(\S+)")
_WORKING_DIR = re.compile(r"^cd[ \t]+(\S+)[ \t]*$", re.M)
INSTALLED_NOTE = "print('requirements: installed by the local engine into this job\\'s environment before it started')\n"


def sdk_v3_requirements(root: Path) -> Path | None:
    """The requirements file SDK v3's ``sm_train.sh`` installs (where it is in ``root``), if it installs one
    that the job was given."""
    script = root / SDK_V3_SCRIPT
    if not (root / SDK_V3_INSTALLER).is_file() or not script.is_file():
        return None
    text = script.read_text(errors="replace")
    call, cd = _INSTALL_CALL.search(text), _WORKING_DIR.search(text)
    if call is None:
        return None
    container = posixpath.normpath(posixpath.join(cd.group(1) if cd else "/", call.group(1)))
    if not container.startswith("/opt/ml/"):
        return None
    found = root / container.lstrip("/")
    return found if found.is_file() else None


def take_over_requirement_installer(root: Path) -> None:
    """SDK v3's ``sm_train.sh`` pip-installs its requirements in the job; locally the engine installs them into
    the job's environment first (the job's interpreter and its libraries are read-only), so its installer
    only says so."""
    (root / SDK_V3_INSTALLER).write_text(INSTALLED_NOTE)


FUNCTION_STEP_DEPENDENCIES = "opt/ml/input/data/pre_exec_script_and_dependencies"
DEPENDENCY_SETTINGS = "--dependency_settings"


def function_step_dependencies(root: Path, command: list[str]) -> tuple[Path | None, list[str]]:
    """A function step's (``@step``) dependency file, where the job was given it in ``root``, and its command
    with the bootstrap told to install nothing (the engine installs the file into the job's environment
    first: the job's interpreter and libraries are read-only). (None, command) for any other job."""
    if DEPENDENCY_SETTINGS not in command[:-1]:
        return None, command
    index = command.index(DEPENDENCY_SETTINGS) + 1
    try:
        settings = json.loads(command[index])
    except (TypeError, ValueError):
        return None, command
    name = settings.get("dependency_file") if isinstance(settings, dict) else None
    found = root / FUNCTION_STEP_DEPENDENCIES / name if isinstance(name, str) and "/" not in name else None
    if found is None or not found.is_file():
        return None, command
    return found, [*command[:index], json.dumps({**settings, "dependency_file": None}), *command[index + 1:]]


def function_step_pre_execution(root: Path) -> Path | None:
    """A function step's ``pre_exec.sh`` (its ``pre_execution_commands`` or script), where the job was given it
    in ``root``; the engine runs it into the job's environment first, and takes it from the job (the bootstrap
    then finds nothing to run, as for a step without one)."""
    found = root / FUNCTION_STEP_DEPENDENCIES / "pre_exec.sh"
    return found if found.is_file() else None


def _argument(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command[:-1] else None


def is_function_step(command: list[str]) -> bool:
    """True for a function step's (``@step``) job: its bootstrap is told the client's Python or SDK version."""
    return any(_argument(command, flag) is not None
               for flag in ("--client_python_version", "--client_sagemaker_pysdk_version"))


def function_step_python_mismatch(command: list[str], python: str) -> str | None:
    """Why a function step (``@step``) cannot run with Python ``python``, or None: its pickles need the
    client's Python minor version."""
    client_python = _argument(command, "--client_python_version")
    if client_python and client_python.split(".")[:2] != python.split(".")[:2]:
        return (f"the function was pickled with Python {client_python} (--client_python_version) and the local "
                f"engine runs it with Python {python}: build the pipeline with Python "
                f"{'.'.join(python.split('.')[:2])}, as SageMaker also needs the image's Python to match")
    return None


def function_step_sdk_mismatch(command: list[str], sdk: str | None, core: str | None, environment: str) -> str | None:
    """Why a function step cannot run in its job's ``environment`` (what it is, for the message), whose SageMaker
    Python SDK is ``sdk`` and ``sagemaker-core`` is ``core`` (None: not installed), or None. The job runs the
    SDK's ``invoke_function`` and its pickles name modules of the client's SDK major version; SDK v3's job
    needs only its core (``sagemaker.core``, in ``sagemaker-core`` 2 and later)."""
    client_sdk = _argument(command, "--client_sagemaker_pysdk_version")
    if not client_sdk:
        return None
    major = client_sdk.split(".")[0]
    add = (f"list sagemaker=={client_sdk} in the step's dependencies (SDK v2 from 2.256 adds sagemaker>=2.256,<3 "
           "itself)")
    if sdk is not None:
        found_major, found = sdk.split(".")[0], f"SDK {sdk}"
    elif core is not None and core.split(".")[0].isdigit() and int(core.split(".")[0]) >= 2:
        found_major, found = "3", f"sagemaker-core {core}, SDK v3's core"
    else:
        return (f"the pipeline was built with SageMaker Python SDK {client_sdk} (--client_sagemaker_pysdk_version) "
                f"and the job's environment ({environment}) has no SageMaker Python SDK, which runs the function "
                f"in the job, so on SageMaker the job fails too: {add}, or use an image that ships SDK {major}")
    if found_major != major:
        return (f"the pipeline was built with SageMaker Python SDK {client_sdk} (--client_sagemaker_pysdk_version) "
                f"and the job's environment ({environment}) has {found}: its pickles name modules of SDK {major}; "
                f"{add}, or build the pipeline with that SDK")
    return None
