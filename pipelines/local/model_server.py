"""A model of the local store served on loopback for as long as a job needs it (a Clarify check asks it for
predictions): the hosting layer's predictor (the built-in XGBoost, or a custom image's ``serve`` in the job
runtime) behind the same WSGI app a local endpoint's server runs (``inference.server.serving_app``)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from inference.hosting import HostingError, predictor_for
from inference.server import serving_app
from pipelines.local import job_runtime
from pipelines.local.environments import Environments
from pipelines.local.loopback_server import LoopbackServer
from pipelines.local.model_records import read_model
from pipelines.local.store import Store


class ModelServingError(Exception):
    """The model cannot be served: it is not in the store, or its image or files cannot be loaded."""


@contextmanager
def serving(store: Store, model_name: str, image_programs: dict[str, str], runtime: job_runtime.Runtime,
            environments: Environments) -> Iterator[str]:
    """The URL of model ``model_name`` served on loopback, for the length of the ``with``."""
    record = read_model(store, model_name)
    if record is None:
        raise ModelServingError(f"there is no model {model_name!r} in the local store (a Model step creates it)")
    container = record.get("PrimaryContainer") or {}
    if not container.get("ModelDataUrl"):
        raise ModelServingError(f"model {model_name} has no ModelDataUrl to serve")
    try:
        predictor = predictor_for(container["Image"], store.path(container["ModelDataUrl"]), image_programs,
                                  runtime, environments)
    except HostingError as exc:
        raise ModelServingError(f"model {model_name}: {exc}") from None
    try:
        with LoopbackServer(serving_app(predictor, model_name, model_name), "LocalModelForJob") as server:
            yield server.url
    finally:
        predictor.close()
