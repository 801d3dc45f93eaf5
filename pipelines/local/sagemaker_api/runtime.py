"""SageMaker Runtime's InvokeEndpoint through the local SageMaker API: ``POST /endpoints/NAME/invocations`` is
passed to the endpoint's own server (which speaks the same protocol: the container's status codes become
``ModelError``), so ``sagemaker-runtime`` clients and SDK v3's ``Endpoint.invoke`` reach local endpoints at the
same address as the SageMaker API."""

from __future__ import annotations

import http.client
import json
from typing import Any

from inference.hosting import MAX_PAYLOAD_BYTES
from pipelines.local.endpoints import LocalEndpoints
from pipelines.errors import EndpointError

# request headers passed on to the endpoint's server, response headers passed back (botocore's runtime model)
REQUEST_HEADERS = {"CONTENT_TYPE": "Content-Type", "HTTP_ACCEPT": "Accept",
                   "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES": "X-Amzn-SageMaker-Custom-Attributes",
                   "HTTP_X_AMZN_SAGEMAKER_INFERENCE_ID": "X-Amzn-SageMaker-Inference-Id"}
RESPONSE_HEADERS = ("Content-Type", "x-Amzn-Invoked-Production-Variant", "X-Amzn-SageMaker-Custom-Attributes",
                    "x-amzn-ErrorType")
TIMEOUT_SECONDS = 60  # SageMaker's: a model must answer InvokeEndpoint within 60 s


class RuntimeAnswer:
    """An HTTP answer of the runtime: status, headers and body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status, self.headers, self.body = status, headers, body


def runtime_error(status: int, code: str, message: str) -> RuntimeAnswer:
    """An error as SageMaker Runtime answers it (rest-json: the code in ``x-amzn-ErrorType``)."""
    body = json.dumps({"Message": message}).encode()
    return RuntimeAnswer(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body)


def invoke(endpoints: LocalEndpoints, name: str, environ: dict[str, Any], body: bytes) -> RuntimeAnswer:
    """Pass one InvokeEndpoint request to endpoint ``name``'s server; its answer, or the runtime's error."""
    try:
        record = endpoints.describe(name)
    except EndpointError:
        return runtime_error(400, "ValidationError", f"Endpoint {name} of account 000000000000 not found.")
    if record.get("EndpointStatus") not in ("InService", "Updating") or record.get("Health") != "Healthy":
        return runtime_error(400, "ValidationError", f"Endpoint {name} is {record.get('EndpointStatus')} (its "
                             f"server: {record.get('Health')}); it answers once it is InService")
    if len(body) > MAX_PAYLOAD_BYTES:
        return runtime_error(413, "ValidationError", f"Request body of {len(body)} bytes exceeds the endpoint's "
                             f"limit of {MAX_PAYLOAD_BYTES} bytes (6 MB): score larger inputs with a batch transform")
    headers = {wire: environ[variable] for variable, wire in REQUEST_HEADERS.items() if environ.get(variable)}
    connection = http.client.HTTPConnection("127.0.0.1", int(record["Port"]), timeout=TIMEOUT_SECONDS)
    try:
        connection.request("POST", f"/endpoints/{name}/invocations", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        kept = [(header, response.getheader(header)) for header in RESPONSE_HEADERS if response.getheader(header)]
        return RuntimeAnswer(response.status, kept, answer)
    except OSError as exc:
        return runtime_error(424, "ModelError", f"Received server error from the endpoint's server: {exc}")
    finally:
        connection.close()
