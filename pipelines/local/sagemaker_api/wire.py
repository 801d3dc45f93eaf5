"""The wire side of the local SageMaker API (a WSGI application): every request is signed with the server's key;
``POST /`` with ``X-Amz-Target: SageMaker.<Operation>`` (JSON 1.1) is checked against the operation's input
shape and answered in its output shape; ``POST /endpoints/NAME/invocations`` is SageMaker Runtime's
InvokeEndpoint. Errors are AWS's error documents (``__type`` and ``message``), never a traceback."""

from __future__ import annotations

import json
import re
import secrets
from http import HTTPStatus
from typing import Any, Callable, Iterable

from pipelines.errors import PipelineError
from pipelines.local.endpoints import LocalEndpoints
from pipelines.local.sagemaker_api.errors import (ApiError, InternalFailure, PayloadTooLarge, SerializationError,
                                                  UnknownOperation)
from pipelines.local.sagemaker_api.hosting import Hosting
from pipelines.local.sagemaker_api.jobs import Jobs
from pipelines.local.sagemaker_api.registry_calls import RegistryCalls
from pipelines.local.sagemaker_api.runtime import invoke
from pipelines.local.sagemaker_api.shapes import check_request, shaped_answer
from pipelines.local.sagemaker_api.signing import ApiKey, verify
from pipelines.validation.references import service_model

JSON_TYPE = "application/x-amz-json-1.1"
MAX_REQUEST_BYTES = 1 << 20  # a control-plane request; InvokeEndpoint bodies have the runtime's own limit
MAX_BODY_BYTES = 16 << 20  # the most the server reads at all (an InvokeEndpoint over 6 MB is refused by name)
_INVOCATIONS = re.compile(r"/endpoints/([^/]+)/invocations")
_TARGET = re.compile(r"SageMaker\.([A-Za-z0-9]{1,100})")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Operation = Callable[[dict[str, Any]], dict[str, Any]]


def operations(hosting: Hosting, registry: RegistryCalls, jobs: Jobs) -> dict[str, Operation]:
    """Every operation the local API answers, by name."""
    return {
        "CreateModel": hosting.create_model, "DescribeModel": hosting.describe_model,
        "ListModels": hosting.list_models, "DeleteModel": hosting.delete_model,
        "CreateEndpointConfig": hosting.create_endpoint_config,
        "DescribeEndpointConfig": hosting.describe_endpoint_config,
        "DeleteEndpointConfig": hosting.delete_endpoint_config,
        "CreateEndpoint": hosting.create_endpoint, "DescribeEndpoint": hosting.describe_endpoint,
        "ListEndpoints": hosting.list_endpoints, "UpdateEndpoint": hosting.update_endpoint,
        "DeleteEndpoint": hosting.delete_endpoint,
        "ListModelPackageGroups": registry.list_model_package_groups,
        "ListModelPackages": registry.list_model_packages,
        "DescribeModelPackage": registry.describe_model_package, "UpdateModelPackage": registry.update_model_package,
        "DescribeTrainingJob": lambda request: jobs.describe_job("Training", request["TrainingJobName"]),
        "DescribeProcessingJob": lambda request: jobs.describe_job("Processing", request["ProcessingJobName"]),
        "DescribeTransformJob": lambda request: jobs.describe_job("Transform", request["TransformJobName"]),
        "DescribePipelineExecution": jobs.describe_pipeline_execution,
        "ListPipelineExecutionSteps": jobs.list_pipeline_execution_steps,
    }


class ApiApp:
    """The WSGI application of one local SageMaker API server."""

    def __init__(self, key: ApiKey, answers: dict[str, Operation], endpoints: LocalEndpoints,
                 log: Callable[[str], None] = lambda line: None):
        self.key, self.answers, self.endpoints, self.log = key, answers, endpoints, log

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        operation = "request"
        try:
            body = _body(environ)
            verify(environ, body, self.key)
            path = environ.get("PATH_INFO", "/")
            invocation = _INVOCATIONS.fullmatch(path)
            if invocation and environ.get("REQUEST_METHOD") == "POST":
                answer = invoke(self.endpoints, invocation.group(1), environ, body)
                return self._respond(start_response, answer.status, answer.headers, answer.body)
            operation = self._operation(environ, path)
            if len(body) > MAX_REQUEST_BYTES:
                raise PayloadTooLarge(f"the {operation} request has {len(body)} bytes; a request other than "
                                      f"InvokeEndpoint may have {MAX_REQUEST_BYTES} at most")
            answer = shaped_answer(operation, self.answers[operation](check_request(operation, _request(body))))
            return self._respond(start_response, 200, [("Content-Type", JSON_TYPE)], json.dumps(answer).encode())
        except ApiError as exc:
            error = exc
        except PipelineError as exc:  # the store refused a name or path, the registry is locked, ...
            error = ApiError(str(exc))
        except OSError as exc:  # a full disk, a file gone under a racing request
            error = InternalFailure(f"the local store could not do this: {exc}")
        self.log(f"{operation}: {error.code}: {error.message}")
        body = json.dumps({"__type": error.code, "message": error.message}).encode()
        return self._respond(start_response, error.status, [("Content-Type", JSON_TYPE),
                                                            ("x-amzn-ErrorType", error.code)], body)

    def _operation(self, environ: dict[str, Any], path: str) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        found = _TARGET.fullmatch(target)
        if environ.get("REQUEST_METHOD") != "POST" or path != "/" or found is None:
            raise UnknownOperation(f"{environ.get('REQUEST_METHOD')} {path[:100]} with X-Amz-Target "
                                   f"{target[:100]!r} is not a SageMaker request: the local SageMaker API answers "
                                   "POST / with X-Amz-Target: SageMaker.<Operation>, and InvokeEndpoint")
        operation = found.group(1)
        if operation not in self.answers:
            known = operation in service_model().operation_names
            raise UnknownOperation(
                f"{operation} " + ("has no local form" if known else "is not a SageMaker operation")
                + f"; the local SageMaker API answers {', '.join(sorted(self.answers))} and InvokeEndpoint "
                "(docs/local-api.md)")
        return operation

    @staticmethod
    def _respond(start_response: StartResponse, status: int, headers: list[tuple[str, str]],
                 body: bytes) -> list[bytes]:
        headers = [*headers, ("Content-Length", str(len(body))), ("x-amzn-RequestId", secrets.token_hex(16))]
        start_response(f"{status} {_phrase(status)}", headers)
        return [body]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"a request body of {length[:20]} bytes is refused: the local SageMaker API reads "
                              f"{MAX_BODY_BYTES} at most")
    return environ["wsgi.input"].read(int(length)) if int(length) else b""


def _request(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body or b"{}")
    except (ValueError, RecursionError) as exc:
        raise SerializationError(f"the request body is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise SerializationError(f"the request body is a JSON {type(request).__name__}, not an object")
    return request
