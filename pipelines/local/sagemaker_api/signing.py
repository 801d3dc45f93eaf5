"""Who may call the local SageMaker API: requests signed (AWS Signature Version 4) with the key of this server.

A server makes a random access key and secret when it starts and gives them only to the job programs of its run
(or prints them for the user's shell), so another local user, or a web page the user opens, cannot drive it:
they cannot sign. The signature is recomputed with botocore's own SigV4 code over the headers the client says it
signed, and compared in constant time.
"""

from __future__ import annotations

import hmac
import re
import secrets
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pipelines.local.sagemaker_api.errors import SignatureError

SERVICE = "sagemaker"  # the signing name of both the SageMaker and SageMaker Runtime APIs
MAX_CLOCK_SKEW = timedelta(minutes=15)  # as AWS: a signature older or newer than this is refused
_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
                            r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*"
                            r"Signature=(?P<signature>[0-9a-f]{64})")


@dataclass(frozen=True)
class ApiKey:
    """The access key id and secret a server's callers sign with."""

    access_key_id: str = field(default_factory=lambda: "LOCAL" + secrets.token_hex(8).upper())
    secret_access_key: str = field(default_factory=lambda: secrets.token_urlsafe(30), repr=False)


def verify(environ: dict[str, Any], body: bytes, key: ApiKey, now: datetime | None = None) -> None:
    """Return if the request is signed with ``key``; SignatureError saying what is wrong otherwise."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    found = _AUTHORIZATION.fullmatch(environ.get("HTTP_AUTHORIZATION", "").strip())
    if found is None:
        raise SignatureError("Missing Authentication Token: sign requests with the key the local SageMaker API "
                             "printed (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)", "MissingAuthenticationTokenException")
    if not hmac.compare_digest(found["key"].encode(), key.access_key_id.encode()):
        raise SignatureError("The security token included in the request is invalid: this local SageMaker API "
                             "answers only the key it was started with", "UnrecognizedClientException")
    if found["service"] != SERVICE:
        raise SignatureError(f"Credential should be scoped to correct service: '{SERVICE}'")
    stamp = environ.get("HTTP_X_AMZ_DATE", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise SignatureError(f"X-Amz-Date {stamp[:40]!r} is not a SigV4 time (YYYYMMDDTHHMMSSZ)") from None
    if abs((now or datetime.now(timezone.utc)) - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError(f"Signature expired: {stamp} is more than 15 minutes from the server's time")
    headers = {}
    for name in found["headers"].split(";"):
        variable = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(
            name, "HTTP_" + name.upper().replace("-", "_"))
        if variable not in environ:
            raise SignatureError(f"the request signs a header {name!r} it does not send")
        headers[name] = environ[variable]
    path = urllib.parse.quote(environ.get("PATH_INFO", "/").encode("latin-1"), safe="/~")
    query = environ.get("QUERY_STRING", "")
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET"), data=body, headers=headers,
                         url=f"http://{headers.get('host', 'localhost')}{path}" + (f"?{query}" if query else ""))
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), SERVICE, found["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected.encode(), found["signature"].encode()):
        raise SignatureError("The request signature we calculated does not match the signature you provided: sign "
                             "with the secret key the local SageMaker API printed")
