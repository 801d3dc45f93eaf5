"""The definition's graph and declarations: step names, DependsOn targets, cycles, parameters."""

from __future__ import annotations

import re
from typing import Any

from pipelines.errors import DefinitionError
from pipelines.local.graph import Node, node_for, step_name_problem, topological_order, walk_steps
from pipelines.validation.problems import Problem
from pipelines.validation.references import PARAMETER_TYPES, service_model

DEFAULT_TYPES = {"String": (str,), "Integer": (int,), "Float": (int, float), "Boolean": (bool,)}


def check(definition: dict[str, Any]) -> list[Problem]:
    """Problems of step names, dependencies and parameter declarations."""
    return _steps(definition) + _parameters(definition.get("Parameters", []))


def _steps(definition: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    nodes: dict[str, Node] = {}
    declared: dict[str, list[str]] = {}  # each step's DependsOn, when it is a list of names
    for index, (step, branch) in enumerate(walk_steps(definition["Steps"])):
        if not isinstance(step, dict):
            problems.append(Problem(None, f"Steps[{index}]", "a step must be an object", "graph"))
            continue
        name = step.get("Name")
        problem = step_name_problem(name)
        if problem:
            problems.append(Problem(None, f"Steps[{index}].Name", problem, "limit"))
            continue
        if name in nodes:
            problems.append(Problem(name, "Name", "the step name is used twice (names are unique across the whole "
                                    "definition, condition branches included)", "graph"))
            continue
        if not isinstance(step.get("Type"), str):
            problems.append(Problem(name, "Type", "is required", "graph"))
        depends_on = step.get("DependsOn", [])
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            problems.append(Problem(name, "DependsOn", "must be a list of step names", "graph"))
            depends_on = []
        declared[name] = depends_on
        nodes[name] = node_for(step, branch, depends_on)
    for node in nodes.values():
        for missing in sorted(set(declared[node.name]) - set(nodes)):
            problems.append(Problem(node.name, "DependsOn", f"no step named {missing!r}", "graph"))
        node.depends_on &= set(nodes)  # a Get of an unknown step is reported where it is used
    try:
        topological_order(nodes)
    except DefinitionError as exc:
        problems.append(Problem(exc.step, "DependsOn", "the steps' dependencies form a cycle", "graph"))
    return problems


def _parameters(parameters: Any) -> list[Problem]:
    if not isinstance(parameters, list):
        return [Problem(None, "Parameters", "must be a list", "graph")]
    name_shape = service_model().operation_model("StartPipelineExecution").input_shape.members[
        "PipelineParameters"].member.members["Name"]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, parameter in enumerate(parameters):
        where = f"Parameters[{index}]"
        if not isinstance(parameter, dict):
            problems.append(Problem(None, where, "a parameter must be an object", "graph"))
            continue
        name, kind = parameter.get("Name"), parameter.get("Type")
        if not isinstance(name, str) or not 1 <= len(name) <= name_shape.metadata["max"] or \
                not re.fullmatch(name_shape.metadata["pattern"], name):
            problems.append(Problem(None, f"{where}.Name", f"parameter name {name!r} must match "
                                    f"{name_shape.metadata['pattern']}, 1 to {name_shape.metadata['max']} characters",
                                    "limit"))
            continue
        if name in seen:
            problems.append(Problem(None, f"{where}.Name", f"parameter {name!r} is declared twice", "graph"))
        seen.add(name)
        if kind not in PARAMETER_TYPES:
            problems.append(Problem(None, f"{where}.Type", f"must be one of {', '.join(PARAMETER_TYPES)} (got {kind!r})",
                                    "graph"))
            continue
        default = parameter.get("DefaultValue")
        fits = default is None or (isinstance(default, DEFAULT_TYPES[kind]) and
                                   (kind == "Boolean" or not isinstance(default, bool)))
        if not fits:
            problems.append(Problem(None, f"{where}.DefaultValue", f"parameter {name} is {kind}; its default "
                                    f"{default!r} is not", "graph"))
        enum = parameter.get("EnumValues")
        if fits and enum is not None and default is not None and default not in enum:
            problems.append(Problem(None, f"{where}.DefaultValue", f"{default!r} is not one of its EnumValues "
                                    f"{', '.join(map(str, enum))}", "graph"))
    return problems
