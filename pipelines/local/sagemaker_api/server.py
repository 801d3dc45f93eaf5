"""The local SageMaker API server: one per local run (its job programs and Lambda handlers reach it through
``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``), or one for the user's own scripts
(``python -m pipelines.run api``), on a free loopback port, with a key of its own."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from pipelines.local.endpoints import LocalEndpoints
from pipelines.local.loopback_server import LoopbackServer
from pipelines.local.registry import Registry
from pipelines.local.sagemaker_api.hosting import Caller, Hosting
from pipelines.local.sagemaker_api.jobs import Jobs
from pipelines.local.sagemaker_api.registry_calls import RegistryCalls
from pipelines.local.sagemaker_api.signing import ApiKey
from pipelines.local.sagemaker_api.wire import MAX_BODY_BYTES, ApiApp, operations
from pipelines.local.store import Store


class LocalSageMakerApi(LoopbackServer):
    """SageMaker's and SageMaker Runtime's APIs over one store, on loopback, for as long as the ``with`` lasts
    (endpoints still being created when it ends are waited for; the endpoints themselves keep running)."""

    def __init__(self, store: Store, registry: Registry, region: str, caller: Caller,
                 image_programs: Mapping[str, str] | None = None, log: Callable[[str], None] = lambda line: None,
                 settle_seconds: float = 20.0, port: int = 0):
        self.region, self.key = region, ApiKey()
        endpoints = LocalEndpoints(store, image_programs=image_programs)
        self.hosting = Hosting(store, registry, endpoints, caller, log, settle_seconds)
        answers = operations(self.hosting, RegistryCalls(registry, f"{caller.creator} (local SageMaker API)", log),
                             Jobs(store.root))
        super().__init__(ApiApp(self.key, answers, endpoints, log), "LocalSageMakerApi", threads=8,
                         max_request_body_size=MAX_BODY_BYTES + 1, port=port)

    def __exit__(self, *exc_info: Any) -> None:
        self.hosting.wait()
        super().__exit__(*exc_info)

    def export_lines(self) -> list[str]:
        """The shell lines that point boto3 and the SDK in the user's own shell at this API."""
        return [f"export {name}={value}" for name, value in self.job_environment().items()]

    def job_environment(self) -> dict[str, str]:
        """What a job program needs to reach this API with boto3 (and the S3 endpoint, which checks no key)."""
        return {"AWS_ENDPOINT_URL_SAGEMAKER": self.url, "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.url,
                "AWS_ACCESS_KEY_ID": self.key.access_key_id, "AWS_SECRET_ACCESS_KEY": self.key.secret_access_key,
                "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
