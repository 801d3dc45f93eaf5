"""The WSGI application of a local endpoint, run by gunicorn (as the built-in container runs its server).

It serves the model a local endpoint's ``endpoint.json`` names, through the hosting layer, on two
doors:

- the container's own contract: ``GET /ping``, ``GET /execution-parameters``, ``POST /invocations``
  (errors are the container's status codes: 413 over 6 MiB, 415 unparseable, 406 bad accept);
- SageMaker Runtime's wire protocol, ``POST /endpoints/{EndpointName}/invocations``, so boto3's
  ``sagemaker-runtime`` client with ``endpoint_url`` pointed here invokes it unchanged: a refused
  request is a ``ModelError`` (424) carrying the container's status, as the service reports it.

gunicorn loads the app once per worker, so a SIGHUP to the master (a version swap) starts workers
on the new ``endpoint.json`` while the old ones finish their requests.
"""

from __future__ import annotations

import atexit
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from inference.hosting import MAX_PAYLOAD_BYTES, InvocationError, Predictor, predictor_for

VARIANT = "AllTraffic"
RUNTIME_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
               406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type",
               424: "Failed Dependency", 500: "Internal Server Error"}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def create_app(endpoint_dir: str) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app serving the model named by ``<endpoint_dir>/endpoint.json``."""
    folder = Path(endpoint_dir)
    endpoint = json.loads((folder / "endpoint.json").read_text(encoding="utf-8"))
    predictor = predictor_for(endpoint["Image"], folder / endpoint["ModelFile"], endpoint.get("ImagePrograms"))
    atexit.register(predictor.close)  # a container's serve program and its files go with this worker
    # records written before endpoints served models other than registered versions have no ServedVersion
    version = str(endpoint.get("ServedVersion", endpoint.get("ModelPackageVersion")))
    return serving_app(predictor, endpoint["EndpointName"], version, endpoint.get("VariantName", VARIANT))


def serving_app(predictor: Predictor, name: str, version: str, variant: str = VARIANT
                ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app answering for ``predictor`` on both doors, as endpoint ``name`` serving ``version``."""

    def respond(start: StartResponse, status: int, body: bytes, content_type: str = "text/plain",
                extra: tuple[tuple[str, str], ...] = ()) -> list[bytes]:
        body = b"" if status == 204 else body
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))),
                   ("X-Local-Model-Version", version), *extra]
        start(f"{status} {STATUS_TEXT.get(status, 'Error')}", headers)
        return [body]

    def runtime_error(start: StartResponse, status: int, code: str, message: str, **fields: Any) -> list[bytes]:
        body = json.dumps({"Message": message, **fields}).encode()
        return respond(start, status, body, "application/json", (("x-amzn-ErrorType", code),))

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/ping":
            return respond(start, 200, b"")
        if path == "/execution-parameters":
            parameters = {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
            return respond(start, 200, json.dumps(parameters).encode(), "application/json")
        runtime = RUNTIME_PATH.fullmatch(path)
        if path != "/invocations" and not runtime:
            return respond(start, 404, f"no route for {path}".encode())
        if method != "POST":
            return respond(start, 405, b"invocations take POST")
        if runtime and runtime.group(1) != name:
            return runtime_error(start, 400, "ValidationError", f"Endpoint {runtime.group(1)} not found: this local "
                                 f"server serves endpoint {name}")
        body, length = _read_body(environ)
        if body is None:  # refused without parsing; the body was drained so the client reads the answer
            message = f"request body of {length} bytes exceeds {MAX_PAYLOAD_BYTES} bytes"
            if runtime:
                return runtime_error(start, 413, "ValidationError", message)
            return respond(start, 413, message.encode())
        content_type = environ.get("CONTENT_TYPE") or "text/csv"
        accept = environ.get("HTTP_ACCEPT") or "text/csv"
        try:
            result = predictor.invoke(body, content_type, accept)
        except InvocationError as exc:
            reason = str(exc).split(": ", 1)[-1]
            if runtime:
                return runtime_error(
                    start, 424, "ModelError", f'Received client error ({exc.status}) from primary with message "{reason}"',
                    OriginalStatusCode=exc.status, OriginalMessage=reason)
            return respond(start, exc.status, reason.encode())
        extra = (("x-Amzn-Invoked-Production-Variant", variant),) if runtime else ()
        return respond(start, 200, result, "text/csv", extra)

    return app


def _read_body(environ: dict[str, Any]) -> tuple[bytes | None, int]:
    """(body, its length), or (None, length) for a body over the limit, drained unparsed. A chunked body has
    no Content-Length: gunicorn gives it as a stream, and one byte past the limit tells whether it is over."""
    stream = environ["wsgi.input"]
    declared = int(environ.get("CONTENT_LENGTH") or MAX_PAYLOAD_BYTES + 1)
    body = stream.read(min(declared, MAX_PAYLOAD_BYTES + 1))
    if len(body) > MAX_PAYLOAD_BYTES:
        _drain(stream, max(declared, 16 * MAX_PAYLOAD_BYTES))
        return None, max(declared, len(body))
    return body, len(body)


def _drain(stream: Any, length: int, limit: int = 16 * MAX_PAYLOAD_BYTES) -> None:
    """Read and drop up to ``limit`` bytes of a refused body, in chunks."""
    remaining = min(length, limit)
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            return
        remaining -= len(chunk)
