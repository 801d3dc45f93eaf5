"""The one place where botocore's exceptions become this package's errors."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, Iterator

from pipelines.errors import AwsError, AwsNotFoundError, MissingCredentialsError

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig


def aws_session(config: PipelineConfig) -> Any:
    """A boto3 session for the configured region; MissingCredentialsError when no credentials are found."""
    import boto3

    session = boto3.Session(region_name=config.region)
    if session.get_credentials() is None:
        raise MissingCredentialsError(
            "no AWS credentials found; configure them the standard way (AWS_PROFILE, SSO, "
            "instance or container role), never in this package's config"
        )
    return session


@contextlib.contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Map botocore exceptions raised inside the block onto AwsError naming ``operation``."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        yield
    except NoCredentialsError:
        raise MissingCredentialsError(
            f"{operation}: no AWS credentials found; configure them the standard way "
            "(AWS_PROFILE, SSO, instance or container role), never in this package's config"
        ) from None
    except NoRegionError:
        raise AwsError(f"{operation}: no AWS region; pass --region") from None
    except ClientError as exc:
        error = type_of_failure(exc.response)
        raise error(f"{operation} failed: {_one_line_reason(exc.response)}") from exc
    except BotoCoreError as exc:
        raise AwsError(f"{operation} failed: {exc}") from exc


NOT_FOUND_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "404"}


def type_of_failure(response: dict) -> type[AwsError]:
    """AwsNotFoundError for an error that says the resource does not exist (SageMaker says so with a
    ValidationException "... does not exist" or "Could not find ..."), else AwsError."""
    error = response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in NOT_FOUND_CODES or (code == "ValidationException" and re.search(r"does not exist|[Cc]ould not find",
                                                                               message)):
        return AwsNotFoundError
    return AwsError


def _one_line_reason(response: dict) -> str:
    """``Code: Message`` of an AWS error; an HTML error page (a proxy's, or an endpoint lacking the API) becomes
    its title and status instead of the page itself."""
    error = response.get("Error", {})
    code, message = str(error.get("Code", "Error")), str(error.get("Message", ""))
    if re.search(r"<(!doctype|html)\b", message, re.IGNORECASE):
        title = re.search(r"<title>(.*?)</title>", message, re.IGNORECASE | re.DOTALL)
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", code)
        page = " ".join(title.group(1).split()) if title else "no title"
        return f"HTTP {status} answered with an HTML page ({page}), not an AWS error: the endpoint may not offer this API"
    return " ".join(f"{code}: {message}".split())


def error_code(exc: BaseException) -> str | None:
    """The AWS error code behind an AwsError raised by ``aws_call``, if any."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return cause.response.get("Error", {}).get("Code")
    return None
