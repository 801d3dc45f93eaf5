"""Script mode of the AWS framework training images (SKLearn, XGBoost framework, PyTorch, TensorFlow), as
SDK v2 estimators start it: the ``sagemaker_submit_directory`` archive unpacked in /opt/ml/code and
``sagemaker_program`` run there with this interpreter (and its ``requirements.txt`` installed, in an
environment derived from this interpreter's), the user's hyperparameters as ``--name value``
arguments and the ``SM_*`` environment, as the SageMaker training toolkit does."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from pipelines.errors import UnsafePathError
from processing.archives import ArchiveError, extract
from pipelines.local import training_contract as contract
from pipelines.local.environments import Environment
from pipelines.local.executors.base import StepFailed, StepRun, requirements_environment

PROGRAM = "sagemaker_program"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
CODE_DIR = "/opt/ml/code"


@dataclass(frozen=True)
class ScriptProgram:
    """What one host runs in script mode."""

    command: list[str]
    environment: dict[str, str]
    workdir: str
    python_env: Environment | None = None  # its image's environment, with its requirements.txt installed


def is_script_mode(hyperparameters: dict[str, Any]) -> bool:
    """True for a framework estimator's job (SDK v2 passes its entry point as hyperparameters)."""
    return PROGRAM in hyperparameters


def decoded(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameter values as the toolkit reads them: JSON where they parse as JSON, else the string."""
    values = {}
    for name, raw in hyperparameters.items():
        try:
            values[name] = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            values[name] = raw
    return values


def command_arguments(hyperparameters: dict[str, Any]) -> list[str]:
    """``--name value`` pairs in name order, as the toolkit builds them (``-n`` for one-letter names)."""
    arguments = []
    for name in sorted(hyperparameters):
        value = hyperparameters[name]
        arguments.append(f"--{name}" if len(name) > 1 else f"-{name}")
        if isinstance(value, dict):
            arguments.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            arguments.append("" if value is None else str(value))
    return arguments


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def program(run: StepRun, root: Path, raw_hyperparameters: dict[str, Any], channels: dict[str, Any],
            current_host: str, hosts: list[str], log: Callable[[str], None],
            base: Environment | None = None) -> ScriptProgram:
    """Unpack the submitted code into this host's /opt/ml/code and say how to start the entry point (with
    ``base``, the image's environment, or this interpreter's libraries; plus its requirements.txt)."""
    values = decoded(raw_hyperparameters)
    entry = str(values.get(PROGRAM, ""))
    code_dir = root / CODE_DIR.lstrip("/")
    submitted = values.get(SUBMIT_DIRECTORY)
    if isinstance(submitted, str) and submitted.startswith("s3://"):
        archive = run.store.path(submitted)
        if not archive.is_file():
            raise StepFailed(f"ClientError: HyperParameters.{SUBMIT_DIRECTORY}: no object at {submitted}")
        try:
            extract(archive, code_dir)
        except ArchiveError as exc:
            raise StepFailed(f"ClientError: HyperParameters.{SUBMIT_DIRECTORY}: {submitted} is not a usable "
                             f"source archive: {exc}") from None
    elif submitted is not None:
        raise StepFailed(f"ClientError: HyperParameters.{SUBMIT_DIRECTORY} is {submitted!r}; the local engine takes "
                         "the code from an s3:// archive in its store (the SDK uploads source_dir there)")
    if not entry or ".." in PurePosixPath(entry).parts or entry.startswith("/"):
        raise UnsafePathError(f"{entry!r} must name a file of the submitted code", field=f"HyperParameters.{PROGRAM}")
    if not (code_dir / entry).is_file():
        raise StepFailed(f"ClientError: HyperParameters.{PROGRAM}: {entry} is not in the submitted code")
    python_env = base
    if (code_dir / "requirements.txt").is_file():  # the toolkit pip-installs it before the entry point runs
        python_env = requirements_environment(run, code_dir / "requirements.txt", log, base=base)
    user = {k: v for k, v in values.items() if not k.startswith("sagemaker_")}
    arguments = command_arguments(user)
    if entry.endswith(".sh"):
        command = ["/bin/sh", "-c", shlex.join([f"./{entry}", *arguments])]
    else:
        command = ["python3", entry, *arguments]
    opt_ml = "/opt/ml"
    environment = {
        "SM_MODEL_DIR": f"{opt_ml}/model", "SM_INPUT_DIR": f"{opt_ml}/input",
        "SM_INPUT_CONFIG_DIR": f"{opt_ml}/input/config", "SM_OUTPUT_DIR": f"{opt_ml}/output",
        "SM_OUTPUT_DATA_DIR": f"{opt_ml}/output/data", "SM_OUTPUT_INTERMEDIATE_DIR": f"{opt_ml}/output/intermediate",
        "SM_CHANNELS": json.dumps(sorted(channels)), "SM_HPS": _env_value(user),
        "SM_USER_ARGS": _env_value(arguments), "SM_USER_ENTRY_POINT": entry,
        "SM_MODULE_NAME": entry.rsplit(".", 1)[0], "SM_MODULE_DIR": str(submitted or ""),
        "SM_CURRENT_HOST": current_host, "SM_HOSTS": _env_value(hosts),
        "SM_NETWORK_INTERFACE_NAME": "lo", "SM_NUM_CPUS": str(os.cpu_count() or 1), "SM_NUM_GPUS": "0",
        "SM_LOG_LEVEL": str(values.get("sagemaker_container_log_level", 20)),
        "SM_RESOURCE_CONFIG": json.dumps(contract.resource_config(run.arguments, current_host, hosts)),
        "SM_INPUT_DATA_CONFIG": json.dumps(contract.input_data_config(run.arguments)),
        "SM_FRAMEWORK_MODULE": "", "PYTHONUNBUFFERED": "1",
        **{f"SM_CHANNEL_{name.upper()}": f"{opt_ml}/input/data/{name}" for name in channels},
        **{f"SM_HP_{name.upper()}": _env_value(value) for name, value in user.items()},
    }
    environment["SM_TRAINING_ENV"] = json.dumps({
        "channel_input_dirs": {name: f"{opt_ml}/input/data/{name}" for name in channels},
        "current_host": current_host, "hosts": hosts, "hyperparameters": user, "job_name": run.job_name,
        "model_dir": f"{opt_ml}/model", "module_name": environment["SM_MODULE_NAME"], "user_entry_point": entry,
        "num_cpus": os.cpu_count() or 1, "num_gpus": 0, "output_data_dir": f"{opt_ml}/output/data"})
    return ScriptProgram(command, environment, CODE_DIR, python_env)
