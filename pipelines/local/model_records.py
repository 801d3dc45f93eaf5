"""The models of a local store, ``<store>/models/<name>.json``: what a Model step and the local SageMaker API's
CreateModel write (the request, with the model's name, ARN, creation time and who created it), and the one way a
container given as a model package is resolved from the local registry, as CreateModel resolves it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from pipelines.errors import RegistryBusyError, RegistryError
from pipelines.local import safe_files
from pipelines.local.registry import LOCAL_ACCOUNT, Registry
from pipelines.local.store import Store

CREATOR = "LocalCreator"  # who created a model, endpoint config or endpoint: which of them a job may delete


class UnusablePackageError(Exception):
    """A container's ModelPackageName names no registered version, or one that is not Approved."""


def model_arn(name: str) -> str:
    """The ARN of local model ``name``."""
    return f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:model/{name.lower()}"


def resolved_container(registry: Registry, container: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The container with a ModelPackageName replaced by the package's image and model data, and the package
    (None when the container names none). UnusablePackageError for an unknown or unapproved version;
    RegistryBusyError when the registry stays locked."""
    arn = container.get("ModelPackageName")
    if arn is None:
        return container, None
    try:
        package = registry.describe_arn(arn)
    except KeyError:
        raise UnusablePackageError(f"PrimaryContainer.ModelPackageName: model package {arn!r} is not in the local "
                                   "registry") from None
    except RegistryBusyError:
        raise
    except RegistryError as exc:
        raise UnusablePackageError(str(exc)) from None
    if package["ModelApprovalStatus"] != "Approved":
        raise UnusablePackageError(f"model package {arn} is {package['ModelApprovalStatus']}; a model is created only "
                                   "from an Approved version")
    packaged = package["InferenceSpecification"]["Containers"][0]
    resolved = {k: v for k, v in container.items() if k != "ModelPackageName"}
    return {**resolved, "Image": packaged["Image"], "ModelDataUrl": packaged["ModelDataUrl"],
            "Environment": {**packaged.get("Environment", {}), **container.get("Environment", {})},
            "ModelPackageName": arn}, package


def save_model(store: Store, name: str, request: dict[str, Any], creator: str) -> dict[str, Any]:
    """Write the model's record atomically (replacing one of the same name); returns the record."""
    record = {**request, "ModelName": name, "ModelArn": model_arn(name),
              "CreationTime": datetime.now(timezone.utc).isoformat(), CREATOR: creator}
    safe_files.write_text(store.root, store.model_path(name), json.dumps(record, indent=2))
    return record


def read_model(store: Store, name: str) -> dict[str, Any] | None:
    """Model ``name``'s record, or None if the store has no such model (or only an unreadable record of it)."""
    try:
        record = json.loads(safe_files.read_bytes(store.root, store.model_path(name)))
    except (FileNotFoundError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def model_names(store: Store) -> list[str]:
    """The names of every model in the store, sorted."""
    folder = store.root / "models"
    return sorted(name.removesuffix(".json") for name, kind in safe_files.entries(store.root, folder)
                  if kind == "file" and name.endswith(".json"))


def delete_model(store: Store, name: str) -> None:
    """Remove model ``name``'s record."""
    safe_files.remove(store.root, store.model_path(name))
