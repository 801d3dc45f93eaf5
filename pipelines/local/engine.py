"""The orchestrator: orders steps, resolves their arguments, dispatches them, records results.

Executors never reach into the engine: each gets a StepRun and returns a StepOutcome.
A step that fails is a result (Failed with its reason), not an exception; the execution
then stops starting new steps and ends Failed, as on SageMaker.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from typing import Any, Callable

from pipelines.errors import DefinitionError
from pipelines.local.dispatch import EXECUTORS, LAZY_ARGUMENTS
from pipelines.local.executions import ExecutionRecord, StepRecord, new_execution_id, now
from pipelines.local.executors.base import StepFailed, StepRun
from pipelines.local.expressions import Context, resolve
from pipelines.local.graph import build_graph, topological_order
from pipelines.local.registry import Registry
from pipelines.local.store import Store

LOCAL_ARN = "arn:aws:sagemaker:local:000000000000:pipeline"


def parameter_values(definition: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Definition defaults overridden by ``overrides``; every parameter must end up with a value."""
    values = {}
    for spec in definition.get("Parameters", []):
        name = spec["Name"]
        if name in overrides:
            values[name] = overrides[name]
        elif "DefaultValue" in spec:
            values[name] = spec["DefaultValue"]
        else:
            raise DefinitionError(f"parameter {name} has no default value; pass --parameter {name}=VALUE")
    return values


class LocalEngine:
    """Runs one definition at a time against a store and a registry."""

    def __init__(self, store: Store, registry: Registry, log: Callable[[str, str], None],
                 on_change: Callable[[ExecutionRecord], None]):
        self.store = store
        self.registry = registry
        self.log = log
        self.on_change = on_change

    def run(self, definition: dict[str, Any], pipeline_name: str, overrides: dict[str, Any]) -> ExecutionRecord:
        """Execute the definition; returns the final execution record."""
        nodes = build_graph(definition, set(EXECUTORS))
        execution_id = new_execution_id()
        record = ExecutionRecord(execution_id, pipeline_name, "Executing",
                                 parameter_values(definition, overrides), now())
        started = datetime.now(timezone.utc)
        execution_vars = {
            "PipelineExecutionId": execution_id,
            "PipelineExecutionArn": f"{LOCAL_ARN}/{pipeline_name.lower()}/execution/{execution_id}",
            "PipelineName": pipeline_name,
            "PipelineArn": f"{LOCAL_ARN}/{pipeline_name.lower()}",
            "StartDateTime": started.isoformat(),
            "CurrentDateTime": started.isoformat(),
        }
        properties: dict[str, dict[str, Any]] = {}
        property_files: dict[str, dict[str, Any]] = {}
        outcomes: dict[str, str] = {}
        branches: dict[str, bool] = {}
        context = Context(record.parameters, execution_vars, properties,
                          lambda step, name: property_files.get(step, {}).get(name))
        self._save(record)
        for name in topological_order(nodes):
            node = nodes[name]
            if node.branch and branches.get(node.branch[0]) is not node.branch[1]:
                continue
            if any(outcomes.get(dep) != "Succeeded" for dep in node.depends_on):
                continue
            step = StepRecord(name, node.definition["Type"], "Executing", start_time=now())
            record.steps.append(step)
            self._save(record)
            outcome_status, reason, props, files, branch = self._execute(node.definition, context, record)
            step.status, step.failure_reason, step.end_time = outcome_status, reason, now()
            step.properties, step.property_files = props, files
            outcomes[name] = outcome_status
            properties[name] = props
            property_files[name] = files
            if branch is not None:
                branches[name] = branch
            self._save(record)
            if outcome_status == "Failed":
                record.status = "Failed"
                record.failure_reason = f"Step {name} failed: {reason}"
                break
        else:
            record.status = "Succeeded"
        record.end_time = now()
        self._save(record)
        return record

    def _execute(self, step: dict[str, Any], context: Context, record: ExecutionRecord
                 ) -> tuple[str, str | None, dict[str, Any], dict[str, Any], bool | None]:
        name = step["Name"]
        job_dir = self.store.root / "jobs" / record.execution_id / name
        shutil.rmtree(job_dir, ignore_errors=True)
        job_dir.mkdir(parents=True)
        try:
            arguments = step.get("Arguments", {}) if step["Type"] in LAZY_ARGUMENTS else resolve(step.get("Arguments", {}), context)
            run = StepRun(name, step, arguments, context, record.execution_id, record.pipeline_name, self.store,
                          job_dir, self.registry, lambda line: self.log(name, line))
            outcome = EXECUTORS[step["Type"]](run)
        except StepFailed as exc:
            return "Failed", str(exc), {}, {}, None
        except DefinitionError as exc:
            return "Failed", f"ClientError: {exc}", {}, {}, None
        return outcome.status, outcome.failure_reason, outcome.properties, outcome.property_files, outcome.branch

    def _save(self, record: ExecutionRecord) -> None:
        record.save(self.store.root)
        self.on_change(record)
