"""The step graph of a definition: every step (condition branches included) and what it waits for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from pipelines.errors import DefinitionError, UnsafePathError, UnsupportedStepTypeError

STEP_REFERENCE = re.compile(r'"Get":\s*"Steps\.([A-Za-z0-9_-]+)[.\[]')
STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")  # SageMaker's rule; step names also become folder names


@dataclass
class Node:
    """One step: its definition, the steps it depends on, and the branch it belongs to (if any)."""

    name: str
    definition: dict[str, Any]
    depends_on: set[str] = field(default_factory=set)
    branch: tuple[str, bool] | None = None  # (condition step, outcome that runs it)


def walk_steps(steps: list[dict[str, Any]], branch: tuple[str, bool] | None = None
               ) -> Iterator[tuple[dict[str, Any], tuple[str, bool] | None]]:
    """Every step of a definition's ``Steps``, condition branches included, with the branch it sits in."""
    for step in steps if isinstance(steps, list) else []:
        yield step, branch
        arguments = step.get("Arguments") if isinstance(step, dict) else None
        if isinstance(arguments, dict) and step.get("Type") == "Condition":
            yield from walk_steps(arguments.get("IfSteps", []), (step.get("Name"), True))
            yield from walk_steps(arguments.get("ElseSteps", []), (step.get("Name"), False))


def node_for(step: dict[str, Any], branch: tuple[str, bool] | None, depends_on: list[str]) -> Node:
    """A step's node: it waits for ``depends_on``, every step its arguments ``Get``, and the condition whose
    branch holds it."""
    arguments = step.get("Arguments")
    body = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")} if isinstance(arguments, dict) else {}
    waits = set(depends_on) | set(STEP_REFERENCE.findall(json.dumps(body)))
    if branch:
        waits.add(branch[0])
    waits.discard(step["Name"])
    return Node(step["Name"], step, waits, branch)


def build_graph(definition: dict[str, Any], supported: set[str]) -> dict[str, Node]:
    """Nodes by name, in definition order; DefinitionError for unknown types, references or cycles."""
    nodes: dict[str, Node] = {}
    if not isinstance(definition.get("Steps"), list):
        raise DefinitionError("must be a list of steps", field="Steps")
    for step, branch in walk_steps(definition.get("Steps", [])):
        if not isinstance(step, dict) or not isinstance(step.get("Arguments", {}), dict) or \
                not isinstance(step.get("DependsOn", []), list):
            raise DefinitionError("every step must be an object with an Arguments object and a DependsOn list",
                                  field="Steps")
        name, kind = step.get("Name"), step.get("Type")
        if kind == "Condition" and not all(isinstance(step.get("Arguments", {}).get(branch_key, []), list)
                                           for branch_key in ("IfSteps", "ElseSteps")):
            raise DefinitionError("IfSteps and ElseSteps must be lists of steps", step=str(name), field="Arguments")
        if not name:
            raise DefinitionError("a step has no Name")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            raise UnsafePathError(f"step name {name!r} must match ^[A-Za-z0-9\\-_]{{1,64}}$ (letters, digits, '-' and "
                                  "'_', 64 at most), as SageMaker requires")
        if name in nodes:
            raise DefinitionError("the step name is used twice (names are unique across the whole definition, "
                                  "condition branches included)", step=name)
        if kind not in supported:
            raise UnsupportedStepTypeError(
                f"Type {kind!r} is not supported by the local engine; supported types: {', '.join(sorted(supported))}",
                step=name)
        nodes[name] = node_for(step, branch, step.get("DependsOn", []))
    for node in nodes.values():
        unknown = node.depends_on - set(nodes)
        if unknown:
            raise DefinitionError(f"depends on unknown step(s) {', '.join(sorted(unknown))}", step=node.name,
                                  field="DependsOn")
    topological_order(nodes)
    return nodes


def topological_order(nodes: dict[str, Node]) -> list[str]:
    """Step names so that each comes after its dependencies (definition order among equals)."""
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise DefinitionError("the steps' dependencies form a cycle", step=name)
        visiting.add(name)
        for dependency in sorted(nodes[name].depends_on, key=list(nodes).index):
            visit(dependency)
        visiting.discard(name)
        done.add(name)
        order.append(name)

    for name in nodes:
        visit(name)
    return order
