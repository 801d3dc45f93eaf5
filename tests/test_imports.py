"""The project's modules import each other in no circle (at module level or inside a function), and no
library module imports the command line."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "steps", "processing", "inference", "container")
ENTRY_MODULES = {"pipelines.run", "pipelines.registry", "pipelines.deploy", "pipelines.get_definition",
                 "pipelines.container", "inference.invoke", "pipelines.studio.__main__"}  # the thin `python -m` forms users have


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_library_code_never_imports_the_command_line():
    graph = import_graph()
    offenders = [(name, sorted(t for t in targets if t.startswith("pipelines.cli")))
                 for name, targets in graph.items()
                 if not name.startswith("pipelines.cli") and name not in ENTRY_MODULES
                 and any(t.startswith("pipelines.cli") for t in targets)]
    assert offenders == []


def test_no_command_imports_another_command():
    graph = import_graph()
    commands = {name for name in graph if name.startswith("pipelines.cli.commands.")}
    assert [(name, sorted(graph[name] & commands)) for name in sorted(commands) if graph[name] & commands] == []
