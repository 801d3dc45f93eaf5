"""Pure evaluation of definition expressions: ``Get``, ``Std:Join``, ``Std:JsonGet``.

``resolve(value, ctx)`` walks any JSON value and replaces every expression by its
value. An unresolvable reference raises ExpressionError naming the path; it is never
silently turned into None or False.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pipelines.errors import ExpressionError

_SEGMENT = re.compile(r"([A-Za-z0-9_:]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


@dataclass(frozen=True)
class Context:
    """What expressions can see: parameters, execution variables, step properties, property files."""

    parameters: Mapping[str, Any]
    execution: Mapping[str, Any]
    steps: Mapping[str, Mapping[str, Any]]
    property_file: Callable[[str, str], Any] = field(default=lambda step, name: None)
    s3_object: Callable[[str], bytes | None] = field(default=lambda uri: None)  # an object's bytes, None if absent


def resolve(value: Any, ctx: Context) -> Any:
    """``value`` with every expression replaced by its value."""
    if isinstance(value, list):
        return [resolve(v, ctx) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        return get(value["Get"], ctx)
    if set(value) == {"Std:Join"}:
        return join(value["Std:Join"], ctx)
    if set(value) == {"Std:JsonGet"}:
        return json_get(value["Std:JsonGet"], ctx)
    return {k: resolve(v, ctx) for k, v in value.items()}


def parse_path(path: str) -> list[str | int]:
    """``a.b[0]['x']`` -> ['a', 'b', 0, 'x']."""
    parts: list[str | int] = []
    for chunk in path.split("."):
        for match in _SEGMENT.finditer(chunk):
            name, index, quoted, dquoted = match.groups()
            if index is not None:
                parts.append(int(index))
            else:
                parts.append(name if name is not None else (quoted if quoted is not None else dquoted))
        if not chunk or "".join(m.group(0) for m in _SEGMENT.finditer(chunk)) != chunk:
            raise ExpressionError(f"cannot parse path {path!r}")
    return parts


def walk(root: Any, parts: list[str | int], path: str) -> Any:
    """Follow ``parts`` into ``root``; a string key on a list picks the item whose *Name matches."""
    current = root
    for i, part in enumerate(parts):
        where = lambda: ".".join(str(p) for p in parts[: i + 1])  # noqa: E731
        if isinstance(current, list) and isinstance(part, str):
            matches = [item for item in current if isinstance(item, dict)
                       and any(k.endswith("Name") and v == part for k, v in item.items())]
            if not matches:
                raise ExpressionError(f"{path}: no item named {part!r} at {where()}")
            current = matches[0]
        elif isinstance(current, list) and isinstance(part, int):
            if part >= len(current):
                raise ExpressionError(f"{path}: index {part} out of range at {where()}")
            current = current[part]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise ExpressionError(f"{path}: nothing at {where()}")
    return current


def get(path: str, ctx: Context) -> Any:
    """Value of ``Parameters.X``, ``Execution.X`` or ``Steps.<name>.<property path>``."""
    root, _, rest = path.partition(".")
    if root == "Parameters":
        if rest not in ctx.parameters:
            raise ExpressionError(f"Get {path}: no parameter named {rest!r}")
        return ctx.parameters[rest]
    if root == "Execution":
        if rest not in ctx.execution:
            raise ExpressionError(f"Get {path}: unknown execution variable {rest!r}")
        return ctx.execution[rest]
    if root == "Steps":
        step, _, prop = rest.partition(".")
        if step not in ctx.steps:
            raise ExpressionError(f"Get {path}: step {step!r} has not run (or does not exist)")
        if prop.startswith("PropertyFiles."):
            return {"PropertyFileStep": step, "PropertyFileName": prop.split(".", 1)[1]}
        return walk(ctx.steps[step], parse_path(prop), f"Get {path}")
    raise ExpressionError(f"Get {path}: unknown root {root!r} (expected Parameters, Execution or Steps)")


def to_text(value: Any) -> str:
    """How Std:Join renders a value."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def join(spec: Mapping[str, Any], ctx: Context) -> str:
    """``Std:Join``: the resolved values as text, joined with ``On``."""
    return str(spec.get("On", "")).join(to_text(resolve(v, ctx)) for v in spec.get("Values", []))


def json_get(spec: Mapping[str, Any], ctx: Context) -> Any:
    """``Std:JsonGet``: a value, by JSON path, from a step's property file or from a JSON object in S3
    (``S3Uri``, as the SDK's ``JsonGet(s3_uri=...)`` writes it)."""
    path = spec.get("Path", "")
    if "S3Uri" in spec:
        uri = resolve(spec["S3Uri"], ctx)
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise ExpressionError(f"Std:JsonGet {path}: S3Uri resolved to {uri!r}, not an s3:// URI")
        data = ctx.s3_object(uri)
        if data is None:
            raise ExpressionError(f"Std:JsonGet {path}: no object at {uri}")
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ExpressionError(f"Std:JsonGet {path}: {uri} is not JSON: {exc}") from None
        return walk(document, parse_path(path), f"Std:JsonGet {uri} {path}")
    reference = resolve(spec.get("PropertyFile"), ctx)
    if not isinstance(reference, dict) or "PropertyFileStep" not in reference:
        raise ExpressionError(f"Std:JsonGet {path}: PropertyFile must be a Get of Steps.<step>.PropertyFiles.<name>")
    step, name = reference["PropertyFileStep"], reference["PropertyFileName"]
    document = ctx.property_file(step, name)
    if document is None:
        raise ExpressionError(f"Std:JsonGet: step {step!r} has no property file {name!r}")
    return walk(document, parse_path(path), f"Std:JsonGet {step}.{name} {path}")
