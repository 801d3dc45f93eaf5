"""The one place where botocore's exceptions become this package's errors."""

from __future__ import annotations

import contextlib
from typing import Iterator

from pipelines.errors import AwsError, MissingCredentialsError


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
        error = exc.response.get("Error", {})
        raise AwsError(f"{operation} failed: {error.get('Code', 'Error')}: {error.get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise AwsError(f"{operation} failed: {exc}") from exc


def error_code(exc: BaseException) -> str | None:
    """The AWS error code behind an AwsError raised by ``aws_call``, if any."""
    from botocore.exceptions import ClientError

    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return cause.response.get("Error", {}).get("Code")
    return None
