"""Selective execution (``StartPipelineExecution``'s ``SelectiveExecutionConfig``): run only the selected steps of
a definition; the steps they depend on are not run again, their properties come from a reference execution.

As SageMaker checks it: 1 to 50 selected steps, all of the definition; every step on a path between two selected
steps is selected too; the reference execution (by default the latest of the pipeline) is one of the same
pipeline and ended Succeeded or Failed; and every step a selected step depends on that is not selected succeeded
in it. Steps that are not selected and that no selected step depends on are not run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

from pipelines.errors import ConfigError
from pipelines.local import executions
from pipelines.local.executions import ExecutionRecord, StepRecord
from pipelines.local.graph import Node
from pipelines.selection import Selection


def _downstream(nodes: dict[str, Node]) -> dict[str, set[str]]:
    """For each step, the steps that depend on it, directly or not (condition branches included)."""
    dependents: dict[str, set[str]] = {name: set() for name in nodes}
    for node in nodes.values():
        for dependency in _dependencies(node):
            if dependency in dependents:
                dependents[dependency].add(node.name)
    below: dict[str, set[str]] = {}
    for start in nodes:
        seen: set[str] = set()
        frontier = [start]
        while frontier:
            for follower in dependents[frontier.pop()] - seen:
                seen.add(follower)
                frontier.append(follower)
        below[start] = seen
    return below


def reused_steps(nodes: dict[str, Node], selection: Selection, store_root: Path,
                 pipeline_name: str) -> tuple[ExecutionRecord | None, list[StepRecord]]:
    """The reference execution and the records of the steps the selected ones depend on (reused, marked with
    the reference's id); ConfigError saying what SageMaker would refuse."""
    unknown = [name for name in selection.steps if name not in nodes]
    if unknown:
        raise ConfigError(f"--selective-steps names step(s) {', '.join(unknown)} that the definition does not have; "
                          f"its steps: {', '.join(nodes)}")
    selected = set(selection.steps)
    below = _downstream(nodes)
    for name in nodes:
        if name in selected:
            continue
        after = [s for s in selected if name in below[s]]
        before = [s for s in selected if s in below[name]]
        if after and before:
            raise ConfigError(f"--selective-steps: step {name} lies on a path from {after[0]} to {before[0]}; every "
                              "step on a path between two selected steps must be selected too")
    needed = sorted({dependency for name in selected for dependency in _dependencies(nodes[name])} - selected)
    if not needed:
        return None, []
    reference = _reference(store_root, pipeline_name, selection.reference)
    missing = [name for name in needed if (reference.step(name) is None or reference.step(name).status != "Succeeded")]
    if missing:
        raise ConfigError(f"--selective-steps: the selected steps depend on {', '.join(missing)}, which did not "
                          f"succeed in the reference execution {reference.execution_id}; select them too, or choose "
                          "another --reference-execution")
    return reference, [replace(reference.step(name), reused_from=reference.execution_id, unenforced=[]) for name in needed]


def _dependencies(node: Node) -> Iterable[str]:
    yield from node.depends_on
    if node.branch:
        yield node.branch[0]


def _reference(store_root: Path, pipeline_name: str, wanted: str | None) -> ExecutionRecord:
    if wanted:
        record = executions.load(store_root, wanted)
        # StartPipelineExecution documents SourcePipelineExecutionArn as "the ARN from a reference execution of
        # the current pipeline", and refuses another pipeline's execution (a ValidationException)
        if record.pipeline_name != pipeline_name:
            raise ConfigError(f"--reference-execution {record.execution_id} is an execution of "
                              f"{record.pipeline_name}, not of {pipeline_name}; a reference execution must be one of "
                              "the pipeline it runs steps of")
    else:
        ended = [r for r in executions.all_records(store_root) if r.pipeline_name == pipeline_name
                 and r.status in ("Succeeded", "Failed")]
        if not ended:
            raise ConfigError(f"--selective-steps: the selected steps depend on steps that are not selected, and the "
                              f"store has no finished execution of {pipeline_name} to take their outputs from; run it "
                              "whole first, or give --reference-execution ID")
        record = max(ended, key=lambda r: r.start_time)
    if record.status not in ("Succeeded", "Failed"):
        raise ConfigError(f"--reference-execution {record.execution_id} is {record.status}; a reference execution "
                          "must have ended Succeeded or Failed")
    return record
