"""What an expression stands for: the type of a ``Get`` of a parameter, an execution variable or a step property
(resolved against the step type's Describe* response shape), of ``Std:Join`` and ``Std:JsonGet``."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Union

from pipelines.local.graph import walk_steps

EXPRESSION_KEYS = ("Get", "Std:Join", "Std:JsonGet")
EXECUTION_VARIABLES = ("PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "PipelineArn",
                       "StartDateTime", "CurrentDateTime", "PipelineExecutionDisplayName")
PARAMETER_TYPES = {"String": "string", "Integer": "integer", "Float": "float", "Boolean": "boolean"}
# the Describe* operation whose response holds a step type's properties
DESCRIBE_OPERATIONS = {"Processing": "DescribeProcessingJob", "Training": "DescribeTrainingJob",
                       "Transform": "DescribeTransformJob", "Model": "DescribeModel",
                       "RegisterModel": "DescribeModelPackage"}
SCALAR_TYPES = {"string": "string", "timestamp": "string", "integer": "integer", "long": "integer",
                "float": "float", "double": "float", "boolean": "boolean"}
_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")

ValueType = Union[str, Any]  # "string" | "integer" | "float" | "boolean" | "any" | "property-file" | a botocore Shape


class ReferenceProblem(Exception):
    """An expression that refers to something that does not exist, or is malformed."""


@lru_cache(maxsize=1)
def service_model() -> Any:
    """botocore's SageMaker service model (loaded once)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def is_expression(value: Any) -> bool:
    """True for a ``{"Get": ...}``, ``{"Std:Join": ...}`` or ``{"Std:JsonGet": ...}`` value."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def shape_type(shape: Any) -> ValueType:
    """A botocore shape as a value type: a scalar name, or the shape itself for structures, lists and maps."""
    return SCALAR_TYPES.get(shape.type_name, shape)


class References:
    """Types the expressions of one definition."""

    def __init__(self, definition: dict[str, Any]):
        declared = [p for p in definition.get("Parameters", []) if isinstance(p, dict)]
        self.parameters = {p.get("Name"): p.get("Type") for p in declared}
        self.defaults = {p.get("Name"): p.get("DefaultValue") for p in declared}
        self.steps = {step.get("Name"): step for step, _ in walk_steps(definition.get("Steps", []))
                      if isinstance(step, dict)}

    def parameter_default(self, expression: dict[str, Any]) -> Any:
        """The default value of the parameter a ``Get Parameters.X`` names, if it is one and has a default."""
        reference = expression.get("Get")
        if isinstance(reference, str) and reference.startswith("Parameters."):
            return self.defaults.get(reference.split(".", 1)[1])
        return None

    def type_of(self, expression: dict[str, Any]) -> ValueType:
        """The type ``expression`` produces; ReferenceProblem if it refers to nothing or is malformed."""
        (key, body), = expression.items()
        if key == "Std:Join":
            if not isinstance(body, dict) or not isinstance(body.get("On"), str) or not isinstance(body.get("Values"), list):
                raise ReferenceProblem("Std:Join needs {\"On\": string, \"Values\": [...]}")
            for value in body["Values"]:
                if is_expression(value):
                    self.type_of(value)
            return "string"
        if key == "Std:JsonGet":
            if not isinstance(body, dict) or not isinstance(body.get("Path"), str) or (
                    ("PropertyFile" in body) == ("S3Uri" in body)):
                raise ReferenceProblem("Std:JsonGet needs {\"PropertyFile\": ..., \"Path\": string} or "
                                       "{\"S3Uri\": ..., \"Path\": string}")
            if "S3Uri" in body:  # a JSON object in S3, as the SDK writes a function step's return value
                uri = body["S3Uri"]
                if is_expression(uri):
                    self.type_of(uri)
                elif not isinstance(uri, str):
                    raise ReferenceProblem(f"Std:JsonGet.S3Uri must be a string or an expression; got {uri!r}")
                return "any"
            source = body["PropertyFile"]
            reference = source.get("Get") if isinstance(source, dict) else source
            if not isinstance(reference, str) or self._get(reference) != "property-file":
                raise ReferenceProblem(f"Std:JsonGet.PropertyFile must be a step's property file "
                                       f"(Steps.STEP.PropertyFiles.NAME); got {reference!r}")
            return "any"
        if not isinstance(body, str):
            raise ReferenceProblem(f"Get must name a parameter, an execution variable or a step property; got {body!r}")
        return self._get(body)

    def _get(self, reference: str) -> ValueType:
        head, _, rest = reference.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise ReferenceProblem(f"Get {reference}: no parameter {rest!r} is declared "
                                       f"(parameters: {', '.join(sorted(map(str, self.parameters))) or 'none'})")
            return PARAMETER_TYPES.get(self.parameters[rest], "any")
        if head == "Execution":
            if rest not in EXECUTION_VARIABLES:
                raise ReferenceProblem(f"Get {reference}: no execution variable {rest!r} "
                                       f"(known: {', '.join(EXECUTION_VARIABLES)})")
            return "string"
        if head == "Steps":
            step_name, _, path = rest.partition(".")
            if step_name not in self.steps:
                raise ReferenceProblem(f"Get {reference}: no step named {step_name!r}")
            return self._property(self.steps[step_name], path, reference)
        raise ReferenceProblem(f"Get {reference}: must start with Parameters., Execution. or Steps.")

    def _property(self, step: dict[str, Any], path: str, reference: str) -> ValueType:
        kind = step.get("Type")
        if path.startswith("PropertyFiles."):
            name = path.split(".", 1)[1]
            declared = [f.get("PropertyFileName") for f in step.get("PropertyFiles", []) if isinstance(f, dict)]
            if name not in declared:
                raise ReferenceProblem(f"Get {reference}: step {step.get('Name')!r} declares no property file {name!r} "
                                       f"(declared: {', '.join(map(str, declared)) or 'none'})")
            return "property-file"
        if kind == "Condition":
            if path != "Outcome":
                raise ReferenceProblem(f"Get {reference}: a Condition step's only property is Outcome")
            return "boolean"
        if kind not in DESCRIBE_OPERATIONS:
            return "any"  # step types whose properties are not described by a Describe* shape
        shape = service_model().operation_model(DESCRIBE_OPERATIONS[kind]).output_shape
        for member, key in _tokens(path, reference):
            if member is not None:
                if shape.type_name != "structure" or member not in shape.members:
                    raise ReferenceProblem(f"Get {reference}: {member!r} is not a property of a {kind} step "
                                           f"({DESCRIBE_OPERATIONS[kind]} has no such field here)")
                shape = shape.members[member]
            elif shape.type_name == "list":
                shape = shape.member
            elif shape.type_name == "map":
                shape = shape.value
            else:
                raise ReferenceProblem(f"Get {reference}: [{key}] indexes something that is not a list or a map")
        return shape_type(shape)


def _tokens(path: str, reference: str) -> list[tuple[str | None, str | None]]:
    """(member, None) or (None, index) for each part of a property path like ``A.B['x'].C``."""
    tokens, position = [], 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match or match.end() == position:
            raise ReferenceProblem(f"Get {reference}: cannot read the property path at {path[position:]!r}")
        member, single, double, number = match.groups()
        tokens.append((member, None) if member is not None else (None, single or double or number))
        position = match.end()
    if not tokens:
        raise ReferenceProblem(f"Get {reference}: names a step but no property")
    return tokens
