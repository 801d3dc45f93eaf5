"""The secure environment's CloudFormation template: read (short-form tags and all), its parameters checked, and
rendered to plain JSON values, intrinsic functions resolved, so that its policies can be read, linted and reviewed
without an account.

Rendering resolves what the template uses: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``,
``Fn::If``, ``Fn::FindInMap``, ``Fn::GetAZs``, ``Fn::Equals``, ``Fn::Not`` and ``AWS::NoValue``. Resources that
do not exist yet are named as CloudFormation would name them (``STACK-LogicalId``), in the given account and region.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pipelines.errors import ConfigError

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "secure-environment.yaml"


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template at ``path`` as plain data, each short-form tag (``!Sub x``) in its long form
    (``{"Fn::Sub": x}``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that knows CloudFormation's tags."""

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Condition" if suffix == "Condition" else f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the template {path}: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader with CloudFormation's tags added
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ConfigError(f"{path}: not a CloudFormation template (no Resources)")
    return data


def parameter_values(template: Mapping[str, Any], given: Mapping[str, str],
                     previous: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every parameter's value: given, else the stack's ``previous`` one, else its default. ConfigError naming
    each unknown, missing or malformed parameter."""
    declared: dict[str, dict[str, Any]] = template.get("Parameters", {})
    check_given(template, given)
    values = {**{k: str(v["Default"]) for k, v in declared.items() if "Default" in v}, **(previous or {}),
              **given}
    missing = [name for name in declared if name not in values]
    if missing:
        raise ConfigError(f"the template needs {', '.join(f'--parameter {name}=...' for name in missing)}: "
                          + "; ".join(f"{name}: {declared[name].get('Description', '').strip()}" for name in missing))
    for name, spec in declared.items():
        _check_parameter(name, spec, values[name])
    return values


def check_given(template: Mapping[str, Any], given: Mapping[str, str]) -> None:
    """ConfigError naming a given parameter the template does not have, or a value it refuses."""
    declared: dict[str, dict[str, Any]] = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ConfigError(f"the template has no parameter {', '.join(unknown)}; its parameters: "
                          f"{', '.join(declared)}")
    for name, value in given.items():
        _check_parameter(name, declared[name], value)


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    items = value.split(",") if spec.get("Type") == "CommaDelimitedList" else [value]
    for item in items:
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, item):
            why = spec.get("ConstraintDescription") or f"must match {pattern}"
            raise ConfigError(f"--parameter {name}={value!r}: {why}")
        if "AllowedValues" in spec and item not in spec["AllowedValues"]:
            raise ConfigError(f"--parameter {name}={value!r}: must be one of {', '.join(spec['AllowedValues'])}")
        if spec.get("Type") == "Number":
            try:
                number = float(item)
            except ValueError:
                raise ConfigError(f"--parameter {name}={value!r}: must be a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise ConfigError(f"--parameter {name}={value!r}: must be at least {spec['MinValue']}")


@dataclass
class Rendering:
    """Resolves a template's intrinsic functions for one stack name, account, region and parameter values."""

    template: Mapping[str, Any]
    parameters: Mapping[str, str]
    stack_name: str = "lead-scoring-secure"
    account: str = "123456789012"
    region: str = "us-east-1"
    physical: Mapping[str, str] = field(default_factory=dict)  # logical id -> the stack's physical id, when known
    stack_id: str | None = None  # the stack's ARN, when it exists

    def __post_init__(self) -> None:
        declared = self.template.get("Parameters", {})
        self.values: dict[str, Any] = {
            name: value.split(",") if declared.get(name, {}).get("Type") == "CommaDelimitedList" else value
            for name, value in self.parameters.items()}
        self.values.update({"AWS::StackName": self.stack_name, "AWS::AccountId": self.account,
                            "AWS::Region": self.region, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                            "AWS::StackId": self.stack_id or f"arn:aws:cloudformation:{self.region}:{self.account}:"
                                                             f"stack/{self.stack_name}/00000000-0000-0000-0000-000000000000"})
        self.conditions = {name: bool(self.resolve(value))
                           for name, value in self.template.get("Conditions", {}).items()}

    def resources(self) -> dict[str, dict[str, Any]]:
        """Each resource the stack has under these parameters (its Condition true), with its Properties resolved."""
        return {logical: {**resource, "Properties": self.resolve(resource.get("Properties", {}))}
                for logical, resource in self.template["Resources"].items()
                if self.conditions.get(resource.get("Condition", ""), True)}

    def outputs(self) -> dict[str, str]:
        """The outputs the stack has under these parameters, resolved."""
        return {key: self.resolve(output["Value"]) for key, output in self.template.get("Outputs", {}).items()
                if self.conditions.get(output.get("Condition", ""), True)}

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its result (AWS::NoValue dropped)."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(name, argument)] = value.items()
            if name in _FUNCTIONS:
                return getattr(self, _FUNCTIONS[name])(argument)
        return {key: item for key, item in ((k, self.resolve(v)) for k, v in value.items()) if item is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.values:
            return self.values[name]
        return self.physical.get(name) or self._placeholder(name)

    def _getatt(self, argument: list[str]) -> str:
        logical, attribute = argument
        kind = self.template["Resources"][logical]["Type"]
        name = self._ref(logical)
        arns = {"AWS::IAM::Role": f"arn:aws:iam::{self.account}:role/{name}",
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
                "AWS::KMS::Key": f"arn:aws:kms:{self.region}:{self.account}:key/{name}"}
        if attribute != "Arn" or kind not in arns:
            raise ConfigError(f"rendering the template: Fn::GetAtt {logical}.{attribute} is not known here")
        return arns[kind]

    def _placeholder(self, logical: str) -> str:
        """The physical id CloudFormation would give a resource, in the shape of the real one."""
        kind = self.template["Resources"][logical]["Type"]
        name = f"{self.stack_name}-{logical}"
        if kind == "AWS::S3::Bucket":
            return name.lower()
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:aws:iam::{self.account}:policy/{name}"
        prefixes = {"AWS::EC2::VPC": "vpc", "AWS::EC2::Subnet": "subnet", "AWS::EC2::SecurityGroup": "sg",
                    "AWS::EC2::RouteTable": "rtb"}
        if kind in prefixes:
            return f"{prefixes[kind]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
        return name

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {name: self.resolve(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name:
                return str(self._getatt(name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)

    def _join(self, argument: list[Any]) -> str:
        separator, items = argument
        return separator.join(str(item) for item in self.resolve(items))

    def _select(self, argument: list[Any]) -> Any:
        index, items = argument
        return self.resolve(items)[int(index)]

    def _if(self, argument: list[Any]) -> Any:
        condition, if_true, if_false = argument
        return self.resolve(if_true if self.conditions[condition] else if_false)

    def _findinmap(self, argument: list[Any]) -> Any:
        mapping, key, attribute = (self.resolve(part) for part in argument)
        return self.template["Mappings"][mapping][key][attribute]

    def _getazs(self, argument: Any) -> list[str]:
        return [f"{self.region}{zone}" for zone in "abc"]

    def _equals(self, argument: list[Any]) -> bool:
        left, right = (self.resolve(part) for part in argument)
        return str(left) == str(right)

    def _not(self, argument: list[Any]) -> bool:
        return not self.resolve(argument[0])

    def _condition(self, name: str) -> bool:
        return self.conditions[name]


_NO_VALUE = object()
_FUNCTIONS = {"Ref": "_ref", "Condition": "_condition", **{f"Fn::{name}": f"_{name.lower()}" for name in (
    "GetAtt", "Sub", "Join", "Select", "If", "FindInMap", "GetAZs", "Equals", "Not")}}


def policies(resources: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every policy document of rendered resources, by ``LogicalId`` (a role's trust policy as
    ``LogicalId.AssumeRolePolicyDocument``)."""
    found: dict[str, dict[str, Any]] = {}
    for logical, resource in resources.items():
        properties = resource["Properties"]
        for key in ("PolicyDocument", "KeyPolicy"):
            if key in properties:
                found[logical] = properties[key]
        if "AssumeRolePolicyDocument" in properties:
            found[f"{logical}.AssumeRolePolicyDocument"] = properties["AssumeRolePolicyDocument"]
    return found
