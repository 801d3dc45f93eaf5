"""Each step's Arguments against the request shape of the API call the step makes (botocore's service model):
members, required members, types, enums, patterns, lengths and ranges; expressions typed by what they produce; and
a Tuning step's limits and range rules (``tuning_limits``)."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Any

from pipelines.local.graph import walk_steps
from pipelines.validation.tuning_limits import limit_problems
from pipelines.validation.problems import Problem
from pipelines.validation.references import (
    SCALAR_TYPES,
    ReferenceProblem,
    References,
    ValueType,
    is_expression,
    service_model,
)

# step type -> (API operation, request members the service fills in for a pipeline step)
STEP_OPERATIONS = {
    "Processing": ("CreateProcessingJob", {"ProcessingJobName"}),
    "Training": ("CreateTrainingJob", {"TrainingJobName"}),
    "Transform": ("CreateTransformJob", {"TransformJobName"}),
    "Model": ("CreateModel", {"ModelName"}),
    "RegisterModel": ("CreateModelPackage", set()),
    "Tuning": ("CreateHyperParameterTuningJob", {"HyperParameterTuningJobName"}),
    "QualityCheck": ("CreateProcessingJob", {"ProcessingJobName"}),
    "ClarifyCheck": ("CreateProcessingJob", {"ProcessingJobName"}),
}
CONDITION_TYPES = ("Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "In", "Not", "Or")
LONGEST_PATTERN_CHECKED = 4096  # botocore's patterns are checked on values up to this length (they can backtrack)


def check(definition: dict[str, Any], references: References) -> list[Problem]:
    """Problems in every step's Arguments (and in the expressions of every step, shaped or not)."""
    return [problem for step, _ in walk_steps(definition.get("Steps", [])) if isinstance(step, dict)
            for problem in arguments_problems(step.get("Name"), step.get("Type"), step.get("Arguments", {}), references)]


def arguments_problems(step: str | None, kind: Any, arguments: Any, references: References | None = None
                       ) -> list[Problem]:
    """Problems in one step's Arguments; ``references`` types their expressions (the tuning executor checks its
    resolved arguments, which have none, with this before any training job)."""
    checker = _Checker(references or References({}), step)
    if kind in STEP_OPERATIONS:
        operation, generated = STEP_OPERATIONS[kind]
        checker.value(service_model().operation_model(operation).input_shape, arguments, "Arguments", generated)
        if kind == "Training" and isinstance(arguments, dict):
            checker.training_instances(arguments.get("ResourceConfig"))
        if kind == "Tuning" and isinstance(arguments, dict):
            checker.problems += limit_problems(step, arguments)
    elif kind == "Condition":
        checker.conditions(arguments.get("Conditions"), "Arguments.Conditions")
    else:
        checker.expressions(arguments, "Arguments")
    return checker.problems


def request_problems(operation: str, request: Any) -> list[Problem]:
    """Problems in a request to ``operation`` as an API client sends it (botocore's input shape; timestamps as
    epoch seconds), each naming the member: what the local SageMaker API checks before it answers."""
    checker = _Checker(References({}), None, wire=True)
    checker.value(service_model().operation_model(operation).input_shape, request, "")
    return checker.problems


class _Checker:
    def __init__(self, references: References, step: str | None, wire: bool = False):
        self.references = references
        self.step = step
        self.wire = wire  # an API request: no expressions, timestamps as numbers
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.step, path, message, "shape"))

    def typed(self, expression: dict[str, Any], path: str) -> ValueType | None:
        try:
            return self.references.type_of(expression)
        except ReferenceProblem as exc:
            self.problems.append(Problem(self.step, path, str(exc), "graph"))
            return None

    def expressions(self, value: Any, path: str) -> None:
        """Type every expression inside ``value`` (reporting what they refer to that does not exist)."""
        if is_expression(value):
            self.typed(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key not in ("IfSteps", "ElseSteps"):
                    self.expressions(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.expressions(item, f"{path}[{index}]")

    def conditions(self, conditions: Any, path: str) -> None:
        if not isinstance(conditions, list) or not conditions:
            self.problem(path, "must be a non-empty list of conditions")
            return
        for index, condition in enumerate(conditions):
            where = f"{path}[{index}]"
            if not isinstance(condition, dict) or condition.get("Type") not in CONDITION_TYPES:
                kind = condition.get("Type") if isinstance(condition, dict) else condition
                self.problem(f"{where}.Type", f"must be one of {', '.join(CONDITION_TYPES)} (got {kind!r})")
                continue
            self.expressions(condition, where)

    def training_instances(self, resources: Any) -> None:
        """CreateTrainingJob: without InstanceGroups, one instance at least (the shape alone allows 0)."""
        if isinstance(resources, dict) and "InstanceGroups" not in resources:
            count = resources.get("InstanceCount")
            if isinstance(count, int) and not isinstance(count, bool) and count < 1:
                self.problem("Arguments.ResourceConfig.InstanceCount", f"must be >= 1 (got {count})")

    def value(self, shape: Any, value: Any, path: str, generated: frozenset[str] | set[str] = frozenset()) -> None:
        if is_expression(value) and not self.wire:
            produced = self.typed(value, path)
            if produced is not None and not _fits(shape, produced):
                self.problem(path, f"expects {_describe(shape)}, but the expression gives {_describe(produced)}")
            elif produced is not None and shape.type_name in SCALAR_TYPES:
                default = self.references.parameter_default(value)
                if default is not None:  # a parameter's default must fit where it is used
                    self.scalar(shape, default, f"{path} (default of {value['Get']})")
            return
        kind = shape.type_name
        if kind == "structure":
            self.structure(shape, value, path, generated)
        elif kind == "list":
            if not isinstance(value, list):
                self.problem(path, f"must be a list (got {_short(value)})")
                return
            self._bounds(shape, len(value), path, "items")
            for index, item in enumerate(value):
                self.value(shape.member, item, f"{path}[{index}]")
        elif kind == "map":
            if not isinstance(value, dict):
                self.problem(path, f"must be an object (got {_short(value)})")
                return
            self._bounds(shape, len(value), path, "entries")
            for key, item in value.items():
                self.value(shape.key, key, f"{path} key {key!r}")
                self.value(shape.value, item, f"{path}.{key}")
        else:
            self.scalar(shape, value, path)

    def structure(self, shape: Any, value: Any, path: str, generated: frozenset[str] | set[str]) -> None:
        if not isinstance(value, dict):
            self.problem(path, f"must be an object (got {_short(value)})")
            return
        for key, item in value.items():
            if key not in shape.members:
                self.problem(f"{path}.{key}", f"is not a field of {shape.name}")
            else:
                self.value(shape.members[key], item, f"{path}.{key}")
        for required in shape.required_members:
            if required not in value and required not in generated:
                self.problem(f"{path}.{required}", "is required")

    def scalar(self, shape: Any, value: Any, path: str) -> None:
        if self.wire and shape.type_name == "timestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                self.problem(path, f"must be a time in seconds since the epoch (got {_short(value)})")
            return
        kind = SCALAR_TYPES.get(shape.type_name)
        if kind == "string":
            if not isinstance(value, str):
                self.problem(path, f"must be a string (got {_short(value)})")
                return
            if shape.enum and value not in shape.enum:
                self.problem(path, _not_in_enum(shape, value))
            self._bounds(shape, len(value), path, "characters")
            pattern = _pattern(shape.metadata.get("pattern"))
            if pattern is not None and len(value) <= LONGEST_PATTERN_CHECKED and not pattern.fullmatch(value):
                self.problem(path, f"must match {shape.metadata['pattern']} (got {_short(value)})")
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(path, f"must be a whole number (got {_short(value)})")
            else:
                self._range(shape, value, path)
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.problem(path, f"must be a number (got {_short(value)})")
            else:
                self._range(shape, value, path)
        elif kind == "boolean" and not isinstance(value, bool):
            self.problem(path, f"must be true or false (got {_short(value)})")

    def _bounds(self, shape: Any, size: int, path: str, unit: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.problem(path, f"must have at least {low} {unit} (got {size})")
        if high is not None and size > high:
            self.problem(path, f"must have at most {high} {unit} (got {size})")

    def _range(self, shape: Any, value: float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.problem(path, f"must be >= {low} (got {value})")
        if high is not None and value > high:
            self.problem(path, f"must be <= {high} (got {value})")


@lru_cache(maxsize=None)
def _pattern(text: str | None) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text, re.DOTALL)
    except re.error:  # a Java-only construct: the service checks it
        return None


def _not_in_enum(shape: Any, value: str) -> str:
    if len(shape.enum) <= 12:
        return f"must be one of {', '.join(shape.enum)} (got {value!r})"
    close = difflib.get_close_matches(value, shape.enum, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"must be one of the {len(shape.enum)} {shape.name} values (got {value!r}){hint}"


def _fits(shape: Any, produced: ValueType) -> bool:
    if produced == "any":
        return True
    if isinstance(produced, str):
        wanted = SCALAR_TYPES.get(shape.type_name)
        return produced == wanted or (wanted == "float" and produced == "integer")
    return produced.name == shape.name


def _describe(kind: Any) -> str:
    if isinstance(kind, str):
        return {"property-file": "a property file", "integer": "an integer"}.get(kind, f"a {kind}")
    if kind.type_name in SCALAR_TYPES:
        return _describe(SCALAR_TYPES[kind.type_name])
    return f"a {kind.name} {kind.type_name}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
