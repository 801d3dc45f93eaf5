"""The step graph of a definition: every step (condition branches included) and what it waits for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from pipelines.errors import DefinitionError, UnsafePathError, UnsupportedStepTypeError

STEP_REFERENCE = re.compile(r'"Get":\s*"Steps\.([A-Za-z0-9_-]+)[.\[]')
STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")  # SageMaker's rule; step names also become folder names
# the longest suffix SDK v2 adds to the name given to a step collection (RegisterModel, ModelStep)
SDK_NAME_SUFFIX = "-RegisterModel"


def step_name_problem(name: object) -> str | None:
    """Why ``name`` is not a step name SageMaker takes, or None."""
    if isinstance(name, str) and STEP_NAME.fullmatch(name):
        return None
    if isinstance(name, str) and len(name) > 64 and re.fullmatch(r"[A-Za-z0-9\-_]+", name):
        return (f"step name {name[:40]!r}... is {len(name)} characters and SageMaker allows 64 at most: shorten it "
                f"(SDK v2 names a step collection's steps NAME{SDK_NAME_SUFFIX}, NAME-CreateModel, ..., so keep a "
                f"name given to RegisterModel or ModelStep to {64 - len(SDK_NAME_SUFFIX)} characters)")
    return (f"step name {name!r} must match {STEP_NAME.pattern} (letters, digits, '-' and '_', 64 at most), as "
            "SageMaker requires")


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


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every named step of a definition, condition branches included, in definition order."""
    return {step["Name"]: step for step, _ in walk_steps(definition.get("Steps", []))
            if isinstance(step, dict) and isinstance(step.get("Name"), str)}


def node_for(step: dict[str, Any], branch: tuple[str, bool] | None, depends_on: list[str]) -> Node:
    """A step's node: it waits for ``depends_on``, every step its arguments and its own fields ``Get`` (a check
    step's ``ModelName``, a supplied baseline), and the condition whose branch holds it."""
    arguments = step.get("Arguments")
    body = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")} if isinstance(arguments, dict) else {}
    fields = {k: v for k, v in step.items() if k not in ("Arguments", "Name", "DependsOn")}
    waits = set(depends_on) | set(STEP_REFERENCE.findall(json.dumps([body, fields], default=str)))
    if branch:
        waits.add(branch[0])
    waits.discard(step["Name"])
    return Node(step["Name"], step, waits, branch)


def build_graph(definition: dict[str, Any], supported: set[str]) -> dict[str, Node]:
    """Nodes by name, in definition order; DefinitionError for unknown types, references or cycles."""
    nodes: dict[str, Node] = {}
    unsupported: list[tuple[str, Any, tuple[str, bool] | None]] = []
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
        problem = step_name_problem(name)
        if problem:
            raise UnsafePathError(problem)
        if name in nodes:
            raise DefinitionError("the step name is used twice (names are unique across the whole definition, "
                                  "condition branches included)", step=name)
        if kind not in supported:
            unsupported.append((name, kind, branch))
        nodes[name] = node_for(step, branch, step.get("DependsOn", []))
    if unsupported:
        raise _unsupported(unsupported, supported)
    for node in nodes.values():
        unknown = node.depends_on - set(nodes)
        if unknown:
            raise DefinitionError(f"depends on unknown step(s) {', '.join(sorted(unknown))}", step=node.name,
                                  field="DependsOn")
    topological_order(nodes)
    return nodes


# what to do instead, for the step types SageMaker runs and the local engine does not
INSTEAD = {
    "EMR": "its cluster runs on SageMaker only; to run the work locally, write it as a Processing step (a "
           "PySparkProcessor) or run the pipeline with --target sagemaker",
    "AutoML": "Autopilot runs on SageMaker only; train locally with a Training step",
    "NotebookJob": "a notebook job runs on SageMaker only; run the notebook's code as a Processing step locally",
    "EMRServerless": "EMR Serverless runs on SageMaker only; write the work as a Processing step to run it locally",
}


def instead(kind: Any) -> str:
    """What to do instead of a step of ``kind`` the engine cannot run, in parentheses (empty if nothing is known)."""
    return f" ({INSTEAD[kind]})" if kind in INSTEAD else ""


def _unsupported(found: list[tuple[str, Any, tuple[str, bool] | None]], supported: set[str]) -> UnsupportedStepTypeError:
    """One error naming every step of a type the engine cannot run (all of them, branches included), and what
    to do instead."""
    def where(branch: tuple[str, bool] | None) -> str:
        return f" (in the {'if' if branch[1] else 'else'} branch of {branch[0]})" if branch else ""

    listed = "; ".join(f"step {name!r}: Type {kind!r}{where(branch)}{instead(kind)}" for name, kind, branch in found)
    in_branch = any(branch for _, _, branch in found)
    note = (" A definition is refused whole, even when such a step sits in a branch that may never be taken."
            if in_branch else "")
    first = found[0]
    if len(found) == 1 and not in_branch:
        return UnsupportedStepTypeError(f"Type {first[1]!r} is not supported by the local engine{instead(first[1])}; "
                                        f"supported types: {', '.join(sorted(supported))}", step=str(first[0]))
    return UnsupportedStepTypeError(f"the local engine does not support {listed}.{note} Supported types: "
                                    f"{', '.join(sorted(supported))}")


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
