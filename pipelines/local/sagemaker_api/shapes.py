"""Requests and answers in SageMaker's shapes (botocore's service model): a request is checked against its input
shape (members, required members, types, enums, patterns, lengths and ranges) before anything is done, and an
answer keeps only the members of its output shape, with times as the JSON protocol carries them."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from pipelines.local.sagemaker_api.errors import ValidationError
from pipelines.validation.references import service_model
from pipelines.validation.step_arguments import request_problems

MAX_PROBLEMS_LISTED = 5
LOCAL_ARN = "arn:aws:sagemaker:local:"  # the local store's ARNs name the region "local"
# what "local" stands for while a request is checked: SageMaker's ARN patterns want a region of 9 to 16 characters
CHECKED_AS = "arn:aws:sagemaker:localstore:"


def check_request(operation: str, request: Any) -> dict[str, Any]:
    """``request`` if it fits the operation's input shape; ValidationError naming every member that does not."""
    problems = request_problems(operation, _as_checked(request))
    if problems:
        listed = "; ".join(f"{p.field.lstrip('.') or 'the request'}: {p.message}" for p in problems[:MAX_PROBLEMS_LISTED])
        more = len(problems) - MAX_PROBLEMS_LISTED
        raise ValidationError(f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: {listed}"
                              + (f" (and {more} more)" if more > 0 else ""))
    return request


def _as_checked(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(LOCAL_ARN, CHECKED_AS) if value.startswith(LOCAL_ARN) else value
    if isinstance(value, dict):
        return {key: _as_checked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_checked(item) for item in value]
    return value


def shaped_answer(operation: str, answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` with only the members of the operation's output shape (records keep more), None values dropped
    and times as seconds since the epoch."""
    shape = service_model().operation_model(operation).output_shape
    return _shaped(shape, answer) if shape is not None else {}


def _shaped(shape: Any, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":  # an empty structure is left out: SDK v3's models refuse one without its members
        kept = ((name, _shaped(shape.members[name], item)) for name, item in (value or {}).items()
                if name in shape.members and item is not None)
        return {name: item for name, item in kept
                if not (item == {} and shape.members[name].type_name == "structure")}
    if kind == "list":
        return [_shaped(shape.member, item) for item in value]
    if kind == "map":
        return {key: _shaped(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return epoch_seconds(value)
    return value


def epoch_seconds(value: Any) -> float:
    """An ISO 8601 time (as records keep them), a datetime or a number, as seconds since the epoch."""
    if isinstance(value, (int, float)):
        return float(value)
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def page(items: Sequence[dict[str, Any]], request: dict[str, Any], default_size: int = 100) -> tuple[list[Any], str | None]:
    """One page of ``items`` as ``MaxResults`` and ``NextToken`` ask, and the token of the next page (None: last)."""
    start = 0
    token = request.get("NextToken")
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except ValueError:
            raise ValidationError(f"NextToken {token[:40]!r} is not a token this API gave") from None
    size = request.get("MaxResults") or default_size
    following = start + size
    return list(items[start:following]), (base64.urlsafe_b64encode(f"offset:{following}".encode()).decode()
                                          if following < len(items) else None)


def filtered(items: list[dict[str, Any]], request: dict[str, Any], name_key: str,
             sort_keys: dict[str, Callable[[dict[str, Any]], Any]], default_sort: str,
             default_order: str = "Descending") -> list[dict[str, Any]]:
    """``items`` filtered by ``NameContains`` and the ``CreationTime``/``LastModifiedTime`` bounds a List request
    gives, sorted as its ``SortBy`` and ``SortOrder`` say."""
    contains = (request.get("NameContains") or "").lower()
    kept = [item for item in items if contains in item[name_key].lower()]
    for member, key, after in (("CreationTimeAfter", "CreationTime", True), ("CreationTimeBefore", "CreationTime", False),
                               ("LastModifiedTimeAfter", "LastModifiedTime", True),
                               ("LastModifiedTimeBefore", "LastModifiedTime", False)):
        if request.get(member) is not None:
            bound = epoch_seconds(request[member])
            kept = [item for item in kept if (epoch_seconds(item[key]) > bound) == after]
    key = sort_keys[request.get("SortBy") or default_sort]
    return sorted(kept, key=key, reverse=(request.get("SortOrder") or default_order) == "Descending")
