"""``--parameter Name=Value`` overrides, checked against the definition's declared parameters."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from pipelines.errors import DefinitionError, ParameterError

_BOOLEANS = {"true": True, "false": False}


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """Split ``Name=Value`` strings; a later assignment of the same name wins."""
    parsed: dict[str, str] = {}
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--parameter {item!r} must be Name=Value")
        parsed[name.strip()] = value
    return parsed


def coerce(declared: Mapping[str, Any], name: str, raw: str) -> Any:
    """``raw`` converted to the declared parameter's type; ParameterError if it does not fit."""
    spec = declared[name]
    kind = spec["Type"]
    try:
        if kind == "Integer":
            value: Any = int(raw.strip())
        elif kind == "Float":
            value = float(raw.strip())
            if not math.isfinite(value):
                raise ValueError
        elif kind == "Boolean":
            value = _BOOLEANS[raw.strip().lower()]
        else:
            value = raw
    except (ValueError, KeyError):
        raise ParameterError(f"parameter {name} is {kind}; {raw!r} is not a valid {kind.lower()}") from None
    enum = spec.get("EnumValues")
    if enum and value not in enum:
        raise ParameterError(f"parameter {name} must be one of {', '.join(map(str, enum))}; got {raw!r}")
    return value


def declared_parameters(definition: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The definition's parameters by name; DefinitionError if ``Parameters`` is not a list of named objects."""
    parameters = definition.get("Parameters", [])
    if not isinstance(parameters, list) or not all(isinstance(p, dict) and isinstance(p.get("Name"), str)
                                                   for p in parameters):
        raise DefinitionError("must be a list of objects, each with a Name", field="Parameters")
    return {p["Name"]: p for p in parameters}


def resolve(definition: Mapping[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """Typed override values for the parameters named in ``assignments``."""
    declared = declared_parameters(definition)
    overrides = {}
    for name, raw in parse_assignments(assignments).items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "(none)"
            raise ParameterError(f"unknown parameter {name!r}; this pipeline's parameters are: {known}")
        overrides[name] = coerce(declared, name, raw)
    return overrides


def as_strings(overrides: Mapping[str, Any]) -> list[dict[str, str]]:
    """Overrides in StartPipelineExecution's ``PipelineParameters`` form."""
    def text(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)

    return [{"Name": k, "Value": text(v)} for k, v in overrides.items()]
