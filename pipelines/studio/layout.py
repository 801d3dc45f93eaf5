"""The graph of a definition as the studio draws it: steps placed in layers by networkx, edges of three kinds.

Edges: ``data`` (a step's arguments ``Get`` another's properties), ``depends`` (``DependsOn``) and
``branch`` (a condition to the steps of its if or else list, labelled ``true`` / ``false``). Steps sit
in topological generations, top to bottom, as Studio draws them; within a layer networkx's
multipartite layout spreads them, in the order that keeps each near the steps it follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from pipelines.local.graph import STEP_REFERENCE, walk_steps

NODE_WIDTH, NODE_HEIGHT = 230, 58
LAYER_GAP, NODE_GAP = 54, 36
MARGIN = 24


@dataclass(frozen=True)
class PlacedStep:
    """A step with its box: top-left corner in pixels."""

    name: str
    type: str
    x: float
    y: float
    branch: tuple[str, bool] | None


@dataclass(frozen=True)
class Edge:
    """From one step to another, with its kind and (for a branch) its label."""

    source: str
    target: str
    kind: str
    label: str = ""
    path: str = ""  # the SVG path, from the bottom of the source to the top of the target


@dataclass
class Layout:
    """Placed steps, edges and the drawing's size."""

    steps: list[PlacedStep] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: float = 0
    height: float = 0


def edges_of(definition: dict[str, Any]) -> list[Edge]:
    """Every edge of the definition (a data reference and a DependsOn on the same pair is drawn as data)."""
    found: dict[tuple[str, str], Edge] = {}
    names = {step["Name"] for step, _ in walk_steps(definition.get("Steps", []))
             if isinstance(step, dict) and isinstance(step.get("Name"), str)}
    for step, branch in walk_steps(definition.get("Steps", [])):
        if not isinstance(step, dict) or step.get("Name") not in names:
            continue
        name = step["Name"]
        if branch:
            found[(branch[0], name)] = Edge(branch[0], name, "branch", "true" if branch[1] else "false")
        arguments = step.get("Arguments") if isinstance(step.get("Arguments"), dict) else {}
        body = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
        for source in set(STEP_REFERENCE.findall(json.dumps(body))) & names - {name}:
            found.setdefault((source, name), Edge(source, name, "data"))
        for source in step.get("DependsOn", []) if isinstance(step.get("DependsOn"), list) else []:
            if source in names and source != name:
                found.setdefault((source, name), Edge(source, name, "depends"))
    return list(found.values())


def layout(definition: dict[str, Any]) -> Layout:
    """Where each step of the definition is drawn, and the edges between them."""
    steps = [(step, branch) for step, branch in walk_steps(definition.get("Steps", []))
             if isinstance(step, dict) and isinstance(step.get("Name"), str)]
    edges = edges_of(definition)
    graph = nx.DiGraph()
    graph.add_nodes_from(step["Name"] for step, _ in steps)
    graph.add_edges_from((edge.source, edge.target) for edge in edges)
    if not nx.is_directed_acyclic_graph(graph):  # the engine refuses such a definition; draw it in one row
        generations = [list(graph.nodes)]
    else:
        generations = [list(layer) for layer in nx.topological_generations(graph)]
    order: dict[str, float] = {}
    for depth, layer in enumerate(generations):
        # follow the order of the steps each one comes after, so that edges cross as little as they can
        layer.sort(key=lambda n: (sum(order[p] for p in graph.predecessors(n)) / max(1, graph.in_degree(n)), n))
        for index, name in enumerate(layer):
            order[name] = index
    row_of = {name: depth for depth, layer in enumerate(generations) for name in layer}
    # each layer given as a list: networkx spreads its nodes in that order, centred on the widest layer
    placed = nx.multipartite_layout(nx.empty_graph(list(row_of)),
                                    subset_key=dict(enumerate(generations)), align="horizontal") if row_of else {}
    widest = max((len(layer) for layer in generations), default=1)
    width = widest * NODE_WIDTH + (widest - 1) * NODE_GAP + 2 * MARGIN
    height = len(generations) * NODE_HEIGHT + max(0, len(generations) - 1) * LAYER_GAP + 2 * MARGIN
    xs = [float(x) for x, _ in placed.values()]
    low, span = (min(xs), max(xs) - min(xs)) if xs else (0.0, 0.0)
    kinds = {step["Name"]: (str(step.get("Type", "")), branch) for step, branch in steps}
    result = Layout(width=width, height=height)
    for name, (x, _) in placed.items():
        left = MARGIN + (float(x) - low) / span * (width - 2 * MARGIN - NODE_WIDTH) if span else (width - NODE_WIDTH) / 2
        result.steps.append(PlacedStep(name, kinds[name][0], round(left, 1),
                                       MARGIN + row_of[name] * (NODE_HEIGHT + LAYER_GAP), kinds[name][1]))
    boxes = {step.name: step for step in result.steps}
    result.edges = [Edge(e.source, e.target, e.kind, e.label, _path(boxes[e.source], boxes[e.target]))
                    for e in edges]
    return result


def _path(source: PlacedStep, target: PlacedStep) -> str:
    """A curve from the middle of the source's bottom to the middle of the target's top."""
    x1, y1 = source.x + NODE_WIDTH / 2, source.y + NODE_HEIGHT
    x2, y2 = target.x + NODE_WIDTH / 2, target.y
    bend = max(24.0, (y2 - y1) / 2)
    return f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2 - 4:.1f}"
