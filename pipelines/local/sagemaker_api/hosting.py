"""Models, endpoint configurations and endpoints of the local SageMaker API. Their state is the store's: models
are the records Model steps write, endpoints are the local endpoints ``deploy-model`` and the studio serve (a
gunicorn server each), so what one creates the others see; endpoint configurations are records of their own.

CreateEndpoint and UpdateEndpoint answer once the endpoint is InService or Failed, or after ``settle_seconds``
(still Creating or Updating, finished in the background): SageMaker answers at once and takes minutes, a local
endpoint takes a second or two, and answering settled lets ``endpoint_in_service`` waiters (30 s between polls)
end at their first poll.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from pipelines.errors import EndpointError, PipelineError
from pipelines.local import safe_files
from pipelines.local.endpoints import LocalEndpoints, Served, endpoint_arn
from pipelines.local.model_records import (CREATOR, UnusablePackageError, delete_model, model_arn, model_names,
                                           read_model, resolved_container, save_model)
from pipelines.local.registry import LOCAL_ACCOUNT, Registry
from pipelines.local.sagemaker_api.errors import (AccessDenied, ResourceInUse, ResourceLimitExceeded,
                                                  ValidationError)
from pipelines.local.sagemaker_api.shapes import epoch_seconds, filtered, page
from pipelines.local.store import Store

MAX_ENDPOINTS = 10  # local endpoints in one store: each is a server with its own worker processes
MAX_INSTANCES = 4  # per endpoint: one worker process each, on this machine's cores
IN_PROGRESS = ("Creating", "Updating")
# members an endpoint configuration may set that a local endpoint does not enforce, and why
UNENFORCED_CONFIG = {"KmsKeyId": "the endpoint's storage is plain files", "DataCaptureConfig": "requests are not captured",
                     "VpcConfig": "the server listens on loopback", "Tags": "resource tags"}
NO_LOCAL_FORM = {"AsyncInferenceConfig": "asynchronous inference (InvokeEndpointAsync)",
                 "ShadowProductionVariants": "shadow variants", "ExplainerConfig": "SageMaker Clarify explainers"}


@dataclass(frozen=True)
class Caller:
    """Who calls the API: ``creator`` is recorded on what it creates; it deletes only what it created unless
    ``delete_any``."""

    creator: str
    delete_any: bool = False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _by_name(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda item: item[key].lower()


def _by_time(item: dict[str, Any]) -> float:
    return epoch_seconds(item["CreationTime"])


class Hosting:
    """CreateModel ... DeleteEndpoint over one store."""

    def __init__(self, store: Store, registry: Registry, endpoints: LocalEndpoints, caller: Caller,
                 log: Callable[[str], None] = lambda line: None, settle_seconds: float = 20.0):
        self.store, self.registry, self.endpoints, self.caller = store, registry, endpoints, caller
        self.log, self.settle_seconds = log, settle_seconds
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Thread] = {}

    # -- models -----------------------------------------------------------------------------------

    def create_model(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ModelName"]
        if read_model(self.store, name) is not None:
            raise ValidationError(f'Cannot create already existing model "{model_arn(name)}".')
        containers = request.get("Containers") or []
        if len(containers) > 1:
            raise ValidationError(f"Containers: an inference pipeline of {len(containers)} containers has no local "
                                  "form; a local model serves one container")
        container = request.get("PrimaryContainer") or (containers[0] if containers else None)
        if container is None:
            raise ValidationError("PrimaryContainer or Containers: a model needs its container")
        try:
            resolved, _ = resolved_container(self.registry, container)
        except UnusablePackageError as exc:
            raise ValidationError(str(exc)) from None
        data = resolved.get("ModelDataUrl")
        if data is not None and not safe_files.is_file(self.store.root, self.store.path(data)):
            raise ValidationError(f"Could not find model data at {data}.")
        stored = {key: value for key, value in request.items() if key != "Containers"}
        record = save_model(self.store, name, {**stored, "PrimaryContainer": resolved}, self.caller.creator)
        self.log(f"CreateModel {name}: {resolved.get('Image')} with {data}")
        return {"ModelArn": record["ModelArn"]}

    def describe_model(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._model(request["ModelName"])

    def list_models(self, request: dict[str, Any]) -> dict[str, Any]:
        models = [record for record in map(self._model, model_names(self.store))]
        listed, token = page(filtered(models, request, "ModelName", {"Name": _by_name("ModelName"),
                                                                       "CreationTime": _by_time}, "CreationTime"),
                             request)
        return {"Models": listed, "NextToken": token}

    def delete_model(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._model(request["ModelName"])
        self._may_delete(record, f"model {record['ModelName']}")
        delete_model(self.store, record["ModelName"])
        return {}

    def _model(self, name: str) -> dict[str, Any]:
        record = read_model(self.store, name)
        if record is None:
            raise ValidationError(f'Could not find model "{model_arn(name)}".')
        if "CreationTime" not in record:  # written before models recorded it
            record["CreationTime"] = self.store.model_path(name).stat().st_mtime
        return record

    # -- endpoint configurations ---------------------------------------------------------------------

    def create_endpoint_config(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        arn = f"arn:aws:sagemaker:local:{LOCAL_ACCOUNT}:endpoint-config/{name.lower()}"
        refused = [f"{member} ({why})" for member, why in NO_LOCAL_FORM.items() if request.get(member)]
        if refused:
            raise ValidationError(f"{', '.join(refused)}: no local form; a local endpoint answers InvokeEndpoint")
        variants = request["ProductionVariants"]
        if len(variants) > 1:
            raise ValidationError(f"ProductionVariants: {len(variants)} variants have no local form; a local endpoint "
                                  "serves one variant")
        self._model(variants[0]["ModelName"])
        count = variants[0].get("InitialInstanceCount") or 1
        if count > MAX_INSTANCES:
            raise ResourceLimitExceeded(f"ProductionVariants[0].InitialInstanceCount {count}: a local endpoint runs at "
                                        f"most {MAX_INSTANCES} instances (one server worker process each)")
        with self._lock:
            path = self.store.endpoint_config_path(name)
            if safe_files.kind(self.store.root, path) is not None:
                raise ValidationError(f'Cannot create already existing endpoint configuration "{arn}".')
            record = {**request, "EndpointConfigArn": arn, "CreationTime": _now(), CREATOR: self.caller.creator}
            safe_files.write_text(self.store.root, path, json.dumps(record, indent=2))
        for member, why in UNENFORCED_CONFIG.items():
            if request.get(member):
                self.log(f"CreateEndpointConfig {name}: {member} accepted, not enforced locally: {why}")
        if variants[0].get("InstanceType"):
            self.log(f"CreateEndpointConfig {name}: InstanceType {variants[0]['InstanceType']} accepted, not enforced locally: the "
                     "server uses this machine's CPUs")
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._config(request["EndpointConfigName"])

    def delete_endpoint_config(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._config(request["EndpointConfigName"])
        self._may_delete(record, f"endpoint configuration {record['EndpointConfigName']}")
        safe_files.remove(self.store.root, self.store.endpoint_config_path(record["EndpointConfigName"]))
        return {}

    def _config(self, name: str) -> dict[str, Any]:
        try:
            record = json.loads(safe_files.read_bytes(self.store.root, self.store.endpoint_config_path(name)))
        except FileNotFoundError:
            raise ValidationError(f'Could not find endpoint configuration "{name}".') from None
        except ValueError as exc:
            raise ValidationError(f"endpoint configuration {name}: its record is unreadable ({exc})") from None
        return record

    # -- endpoints ----------------------------------------------------------------------------------

    def create_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name, config_name = request["EndpointName"], request["EndpointConfigName"]
        served, count = self._served(self._config(config_name))
        with self._lock:
            existing = {record["EndpointName"] for record in self.endpoints.list()}
            if name in existing:
                raise ValidationError(f'Cannot create already existing endpoint "{endpoint_arn(name)}".')
            if len(existing) >= MAX_ENDPOINTS:
                raise ResourceLimitExceeded(f"the local store has {len(existing)} endpoints, the most this machine "
                                            f"serves at once ({MAX_ENDPOINTS}); delete one first")
            fields = {**served.labels, "EndpointConfigName": config_name, CREATOR: self.caller.creator}
            self.endpoints.begin(name, fields)
            self._in_background(name, lambda: self.endpoints.serve(name, served, count, fields),
                                lambda reason: self.endpoints.annotate(name, {"EndpointStatus": "Failed",
                                                                              "FailureReason": reason}))
        return {"EndpointArn": endpoint_arn(name)}

    def update_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name, config_name = request["EndpointName"], request["EndpointConfigName"]
        served, count = self._served(self._config(config_name))
        with self._lock:
            record = self._endpoint(name)
            if record["EndpointStatus"] != "InService":
                raise ValidationError(f'Cannot update in-progress endpoint "{endpoint_arn(name)}": it is '
                                      f"{record['EndpointStatus']}" if record["EndpointStatus"] in IN_PROGRESS else
                                      f'Cannot update endpoint "{endpoint_arn(name)}": it is {record["EndpointStatus"]}')
            fields = {**served.labels, "EndpointConfigName": config_name, CREATOR: record.get(CREATOR)}
            self.endpoints.annotate(name, {"EndpointStatus": "Updating", "FailureReason": None})
            # a failed update leaves the endpoint serving its old configuration, as SageMaker rolls back
            self._in_background(name, lambda: self.endpoints.serve(name, served, count, fields),
                                lambda reason: self.endpoints.annotate(name, {"EndpointStatus": "InService",
                                                                              "FailureReason": reason}))
        return {"EndpointArn": endpoint_arn(name)}

    def describe_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._endpoint(request["EndpointName"])
        if record["EndpointStatus"] not in ("InService", "Updating"):
            return record
        image, count = record.get("Image"), record.get("InstanceCount", 1)
        variant = {"VariantName": record.get("VariantName", "AllTraffic"), "CurrentWeight": 1.0, "DesiredWeight": 1.0,
                   "CurrentInstanceCount": count, "DesiredInstanceCount": count,
                   "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image}] if image else []}
        return {**record, "ProductionVariants": [variant]}

    def list_endpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        records = [record for record in self.endpoints.list()
                   if request.get("StatusEquals") in (None, record["EndpointStatus"])]
        listed, token = page(filtered(records, request, "EndpointName", {
            "Name": _by_name("EndpointName"), "CreationTime": _by_time, "Status": _by_name("EndpointStatus")},
            "CreationTime"), request)
        return {"Endpoints": listed, "NextToken": token}

    def delete_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["EndpointName"]
        with self._lock:
            record = self._endpoint(name)
            if name in self._pending and self._pending[name].is_alive():
                raise ResourceInUse(f"endpoint {name} is {record['EndpointStatus']}; delete it once it is InService "
                                    "or Failed")
            self._may_delete(record, f"endpoint {name}")
            self.endpoints.delete(name)
        return {}

    def wait(self) -> None:
        """Wait for the endpoints still being created or updated (the server is closing)."""
        for thread in list(self._pending.values()):
            thread.join()

    def _endpoint(self, name: str) -> dict[str, Any]:
        try:
            return self.endpoints.describe(name)
        except EndpointError:  # EndpointNotFoundError, or a record edited into nonsense
            raise ValidationError(f'Could not find endpoint "{endpoint_arn(name)}".') from None

    def _served(self, config: dict[str, Any]) -> tuple[Served, int]:
        """What an endpoint configuration serves, and on how many instances."""
        variant = config["ProductionVariants"][0]
        model = self._model(variant["ModelName"])
        container = model.get("PrimaryContainer") or {}
        if not container.get("ModelDataUrl"):
            raise ValidationError(f"model {model['ModelName']}: a local endpoint serves a container's ModelDataUrl; "
                                  "this model has none (ModelDataSource and models without data have no local form)")
        labels: dict[str, Any] = {"ModelName": model["ModelName"], "VariantName": variant["VariantName"]}
        if container.get("ModelPackageName"):
            try:
                package = self.registry.describe_arn(container["ModelPackageName"])
                labels.update({key: package[key] for key in ("ModelPackageArn", "ModelPackageGroupName",
                                                             "ModelPackageVersion")})
            except KeyError:
                pass  # the version was deleted since: the model still names its image and data
        served = Served(container["Image"], container["ModelDataUrl"], labels, model["ModelName"],
                        f"model {model['ModelName']}")
        return served, variant.get("InitialInstanceCount") or 1

    def _in_background(self, name: str, work: Callable[[], Any], failed: Callable[[str], Any]) -> None:
        def run() -> None:
            try:
                work()
            except (PipelineError, OSError) as exc:  # a model that does not load, a server that does not start
                self.log(f"endpoint {name}: {exc}")
                failed(str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc))

        thread = threading.Thread(target=run, name=f"endpoint-{name}", daemon=True)
        self._pending[name] = thread
        thread.start()
        thread.join(self.settle_seconds)

    def _may_delete(self, record: dict[str, Any], what: str) -> None:
        creator = record.get(CREATOR)
        if self.caller.delete_any or creator == self.caller.creator:
            return
        raise AccessDenied(f"{what} was created by {creator or 'deploy-model or the studio'}, not by "
                           f"{self.caller.creator}: a job deletes only what its own execution created (config "
                           "local_api_deletes: any lets jobs delete every endpoint, endpoint config and model)")

