"""A model of the local store served on loopback for as long as a job needs it (a Clarify check asks it for
predictions): the hosting layer's predictor (the built-in XGBoost, or a custom image's ``serve`` in the job
runtime) behind ``POST /invocations``, the container's own contract."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from inference.hosting import MAX_PAYLOAD_BYTES, HostingError, InvocationError, Predictor, predictor_for
from pipelines.local import job_runtime
from pipelines.local.environments import Environments
from pipelines.local.loopback_server import LoopbackServer
from pipelines.local.model_records import read_model
from pipelines.local.store import Store

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class ModelServingError(Exception):
    """The model cannot be served: it is not in the store, or its image or files cannot be loaded."""


def _app(predictor: Predictor) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/invocations" or environ.get("REQUEST_METHOD") != "POST":
            start("404 Not Found", [("Content-Type", "text/plain")])
            return [b"POST /invocations"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_PAYLOAD_BYTES:
            start("413 Payload Too Large", [("Content-Type", "text/plain")])
            return [f"request body of {length} bytes exceeds {MAX_PAYLOAD_BYTES} bytes".encode()]
        body = environ["wsgi.input"].read(length)
        try:
            answer = predictor.invoke(body, environ.get("CONTENT_TYPE") or "text/csv",
                                      environ.get("HTTP_ACCEPT") or "text/csv")
        except InvocationError as exc:
            start(f"{exc.status} Error", [("Content-Type", "text/plain")])
            return [str(exc).encode()]
        start("200 OK", [("Content-Type", "text/csv"), ("Content-Length", str(len(answer)))])
        return [answer]
    return app


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
        with LoopbackServer(_app(predictor), "LocalModelForJob") as server:
            yield server.url
    finally:
        predictor.close()
