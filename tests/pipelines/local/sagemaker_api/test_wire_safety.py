"""The local SageMaker API refuses what it must, in AWS's error shapes and before touching the store: unsigned
and wrongly signed requests, hostile names, huge bodies, wrong targets and malformed requests."""

from __future__ import annotations

import http.client
import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from pipelines.local.sagemaker_api.signing import verify
from pipelines.local.sagemaker_api.errors import SignatureError


def raw(api, body: bytes, headers: dict[str, str], path: str = "/", method: str = "POST") -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one request sent as given."""
    connection = http.client.HTTPConnection("127.0.0.1", int(api.url.rsplit(":", 1)[1]), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        connection.close()


def signed(api, target: str, body: bytes, secret: str | None = None, path: str = "/") -> dict[str, str]:
    """Headers of a request signed as boto3 signs it (with another secret if given)."""
    request = AWSRequest(method="POST", url=api.url + path, data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(api.key.access_key_id, secret or api.key.secret_access_key), "sagemaker",
              "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_unsigned_and_wrongly_signed_requests_are_refused(world):
    api = world[3]
    body = b"{}"
    status, headers, answer = raw(api, body, {"X-Amz-Target": "SageMaker.ListEndpoints"})
    assert (status, answer["__type"]) == (403, "MissingAuthenticationTokenException")
    assert {k.lower(): v for k, v in headers.items()}["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    stranger = boto3.client("sagemaker", endpoint_url=api.url, region_name="us-east-1", aws_access_key_id="AKIDOTHER",
                            aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as refused:
        stranger.list_endpoints()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    status, _, answer = raw(api, body, signed(api, "SageMaker.ListEndpoints", body, secret="guessed"))
    assert (status, answer["__type"]) == (403, "InvalidSignatureException")
    headers = signed(api, "SageMaker.ListEndpoints", body)
    status, _, answer = raw(api, b'{"MaxResults": 5}', headers)  # the body changed after signing
    assert (status, answer["__type"]) == (403, "InvalidSignatureException")
    assert raw(api, body, headers)[0] == 200


def test_a_signature_older_than_fifteen_minutes_is_refused(world):
    api = world[3]
    headers = signed(api, "SageMaker.ListEndpoints", b"{}")
    environ = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()
               if k.lower() not in ("content-type",)}
    environ.update(CONTENT_TYPE=headers["Content-Type"], REQUEST_METHOD="POST", PATH_INFO="/",
                   HTTP_HOST=api.url.removeprefix("http://"))
    verify(environ, b"{}", api.key)
    with pytest.raises(SignatureError, match="Signature expired"):
        verify(environ, b"{}", api.key, now=datetime.now(timezone.utc) + timedelta(minutes=16))


def test_hostile_names_are_refused_by_the_service_model_before_any_path_is_built(world):
    store, _, _, _, sagemaker, _ = world
    unchecked = boto3.client("sagemaker", endpoint_url=world[3].url, region_name="us-east-1",
                             aws_access_key_id=world[3].key.access_key_id,
                             aws_secret_access_key=world[3].key.secret_access_key,
                             config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    for name in ("../../etc/passwd", "a/b", "x" * 64, "", "a\x00b", "-leading"):
        for call, member in ((unchecked.describe_endpoint, "EndpointName"), (unchecked.delete_model, "ModelName"),
                             (unchecked.describe_endpoint_config, "EndpointConfigName")):
            with pytest.raises(ClientError) as refused:
                call(**{member: name})
            assert refused.value.response["Error"]["Code"] == "ValidationException"
            message = refused.value.response["Error"]["Message"]
            assert "validation error" in message and f"detected: {member}: " in message
    assert not (store.root.parent / "etc").exists()
    body = json.dumps({"ModelName": 7, "PrimaryContainer": "image", "Bogus": True}).encode()
    status, _, answer = raw(world[3], body, signed(world[3], "SageMaker.CreateModel", body))
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert answer["message"].startswith("3 validation errors detected") and "ModelName: must be a string" in \
        answer["message"] and "Bogus: is not a field of CreateModelInput" in answer["message"]


def test_wrong_targets_methods_and_bodies_get_one_clear_error(world):
    api = world[3]
    status, _, answer = raw(api, b"{}", signed(api, "SageMaker.CreateTrainingJob", b"{}"))
    assert (status, answer["__type"]) == (400, "UnknownOperationException")
    assert answer["message"].startswith("CreateTrainingJob has no local form; the local SageMaker API answers")
    status, _, answer = raw(api, b"{}", signed(api, "SageMaker.MakeCoffee", b"{}"))
    assert answer["message"].startswith("MakeCoffee is not a SageMaker operation")
    status, _, answer = raw(api, b"{}", signed(api, "DynamoDB_20120810.GetItem", b"{}"))
    assert (status, answer["__type"]) == (400, "UnknownOperationException") and "is not a SageMaker request" in \
        answer["message"]
    status, _, answer = raw(api, b"[1, 2", signed(api, "SageMaker.ListEndpoints", b"[1, 2"))
    assert (status, answer["__type"]) == (400, "SerializationException")
    status, _, answer = raw(api, b"[1]", signed(api, "SageMaker.ListEndpoints", b"[1]"))
    assert answer["message"] == "the request body is a JSON list, not an object"
    large = json.dumps({"NameContains": "x" * (2 << 20)}).encode()
    status, _, answer = raw(api, large, signed(api, "SageMaker.ListEndpoints", large))
    assert status == 413 and "1048576 at most" in answer["message"]
    huge = b" " * (17 << 20)
    try:  # waitress refuses a body over its limit without reading it: a 413, or the connection closed under it
        assert raw(api, huge, {"X-Amz-Target": "SageMaker.ListEndpoints"})[0] == 413
    except ConnectionError:
        pass
    assert raw(api, b"{}", signed(api, "SageMaker.ListEndpoints", b"{}"))[0] == 200
