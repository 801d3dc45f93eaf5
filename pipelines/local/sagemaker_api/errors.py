"""The errors the local SageMaker API answers with, each carrying AWS's error code and HTTP status:

    ApiError                       (400) base: code, status, message
    ├── ValidationError            ValidationException: a member is wrong, or what it names does not exist
    ├── ResourceNotFound           ResourceNotFound: a job or pipeline execution the store does not hold
    ├── ResourceInUse              ResourceInUse: the endpoint is being created or updated
    ├── ResourceLimitExceeded      ResourceLimitExceeded: more local endpoints than this machine is allowed
    ├── SerializationError         SerializationException: the body is not a JSON object
    ├── UnknownOperation           UnknownOperationException: an operation with no local form
    ├── PayloadTooLarge            (413) the body is over the operation's limit
    ├── AccessDenied               (403) AccessDeniedException: a job deleting what it did not create
    ├── SignatureError             (403) MissingAuthenticationToken, UnrecognizedClient, InvalidSignature
    └── InternalFailure            (500) the store could not do it (a full disk, a file gone under a race)
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: ``code`` (botocore's ``Error.Code``), ``status`` and a message saying what to fix."""

    code = "ValidationException"
    status = 400

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ValidationError(ApiError):
    code = "ValidationException"


class ResourceNotFound(ApiError):
    code = "ResourceNotFound"


class ResourceInUse(ApiError):
    code = "ResourceInUse"


class ResourceLimitExceeded(ApiError):
    code = "ResourceLimitExceeded"


class SerializationError(ApiError):
    code = "SerializationException"


class UnknownOperation(ApiError):
    code = "UnknownOperationException"


class PayloadTooLarge(ApiError):
    code = "ValidationException"
    status = 413


class AccessDenied(ApiError):
    code = "AccessDeniedException"
    status = 403


class SignatureError(ApiError):
    code = "InvalidSignatureException"
    status = 403


class InternalFailure(ApiError):
    code = "InternalFailure"
    status = 500
