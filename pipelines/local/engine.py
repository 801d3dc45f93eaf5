"""The orchestrator: schedules steps as their dependencies finish, resolves their arguments,
consults the cache, dispatches each to its executor (retrying as its policies allow) and
records everything in the execution record.

Executors never reach into the engine: each gets a StepRun and returns a StepOutcome.
A step that fails is a result (Failed with its reason), not an exception; the execution then
starts no new steps, lets running ones finish and ends Failed, as on SageMaker.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from pipelines import next_steps
from pipelines.errors import ConfigError, DefinitionError, ExecutionError, ExecutionInterrupted
from pipelines.local import (caching, executions, job_runtime, retries, runnable_images, safe_files, selective,
                             unenforced)
from pipelines.local.dispatch import EXECUTORS, LAZY_ARGUMENTS
from pipelines.local.environments import Environments
from pipelines.local.executions import (
    ExecutionLock,
    ExecutionRecord,
    StepRecord,
    new_execution_id,
    now,
)
from pipelines.local.executors import lambda_step
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.local.expressions import Context, resolve
from pipelines.local.graph import Node, build_graph, topological_order
from pipelines.local.registry import Registry
from pipelines.local.package_index import IndexSettings, PackageIndexProxy
from pipelines.local.s3_endpoint import S3Endpoint
from pipelines.local.sagemaker_api import Caller, LocalSageMakerApi
from pipelines.local.store import Store
from pipelines.overrides import declared_parameters
from pipelines.selection import Selection
from pipelines.s3uri import check_uris

LOCAL_ARN = "arn:aws:sagemaker:local:000000000000:pipeline"
SIGNAL_CHECK_SECONDS = 0.5
SERVICE_MAX_PARALLEL_STEPS = 50  # SageMaker's default when no ParallelismConfiguration is given


def parameter_values(definition: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Definition defaults overridden by ``overrides``; every parameter must end up with a value."""
    values = {}
    for name, spec in declared_parameters(definition).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "DefaultValue" in spec:
            values[name] = spec["DefaultValue"]
        else:
            raise DefinitionError(f"parameter {name} has no default value; pass --parameter {name}=VALUE")
    return values


FAIL_STEP_EXECUTION_REASON = "Step failure: One or multiple steps failed."


@dataclass(frozen=True)
class RunOptions:
    """How the engine runs: caching, the parallelism bound, injected faults (for tests), and the local
    program standing in for each non-built-in training image."""

    cache: bool = True
    max_parallel_steps: int | None = None
    faults: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    image_programs: Mapping[str, str] = field(default_factory=dict)
    lambdas: Mapping[str, str] = field(default_factory=dict)  # Lambda function ARN or name -> MODULE:FUNCTION
    callback_timeout: float | None = None  # how long a Callback step waits for its token (None: no limit)
    region: str = "us-east-1"  # what job programs get as AWS_REGION
    api_delete_any: bool = False  # jobs may delete through the local SageMaker API what their execution did not create
    sleep: Callable[[float], None] = time.sleep
    retry_interval_scale: float = 1.0  # multiplies every retry wait (local only: quick demos and tests)
    runtime: job_runtime.Runtime = field(default_factory=job_runtime.automatic)  # starts every job program
    environments: Environments = field(default_factory=Environments)  # job requirements' environments (cached)
    package_index: IndexSettings = field(default_factory=IndexSettings)  # what jobs' pip installs from
    stop_reason: str = "stopped by request (Ctrl-C)"  # an interrupted execution's FailureReason


@dataclass
class _Execution:
    """The moving parts of one execution while it runs (touched by the scheduling thread only)."""

    record: ExecutionRecord
    nodes: dict[str, Node]
    variables: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    branches: dict[str, bool] = field(default_factory=dict)
    job_environment: dict[str, str] = field(default_factory=dict)
    read_object: Callable[[str], bytes | None] = lambda uri: None
    stopping: threading.Event = field(default_factory=threading.Event)  # set when the engine stops its steps

    def __post_init__(self) -> None:
        lookup = lambda step, name: self.files.get(step, {}).get(name)  # noqa: E731
        self.context = Context(self.record.parameters, self.variables, self.properties, lookup, self.read_object)
        # per-run values stay unresolved in cache keys, as on SageMaker
        masked = {name: f"{{Execution.{name}}}" for name in self.variables}
        self.cache_context = Context(self.record.parameters, masked, self.properties, lookup, self.read_object)


def runnable_graph(definition: dict[str, Any], options: "RunOptions | None" = None) -> dict[str, Node]:
    """The definition's step graph if the engine can run it with ``options``: every step of a type it has an
    executor for and with an image it can run (``runnable_images``), every Lambda step's function mapped to a local
    handler that exists; a usage error if --inject-fault names a step it does not have. Callers check this before
    they write anything, so that a refused definition leaves the store as it was."""
    options = options or RunOptions()
    nodes = build_graph(definition, set(EXECUTORS))
    refused = runnable_images.problems((node.definition for node in nodes.values()), options.image_programs)
    if refused:
        raise runnable_images.refusal_error(refused)
    unknown = sorted(set(options.faults) - set(nodes))
    if unknown:
        raise ConfigError(f"--inject-fault names step(s) {', '.join(unknown)} that the definition does not have; "
                          f"its steps: {', '.join(nodes)}")
    handlers = lambda_step.handler_problems(nodes.values(), options.lambdas)
    if handlers:
        raise ConfigError(handlers)
    return nodes


class LocalEngine:
    """Runs definitions against a store and a registry."""

    def __init__(self, store: Store, registry: Registry, log: Callable[[str, str], None],
                 on_change: Callable[[ExecutionRecord], None], options: RunOptions = RunOptions()):
        self.store = store
        self.registry = registry
        self.log = log
        self.on_change = on_change
        self.options = options
        self._save_lock = threading.Lock()
        self._warned: set[str] = set()
        self._save_error: OSError | None = None

    def run(self, definition: dict[str, Any], pipeline_name: str, overrides: dict[str, Any],
            selection: Selection | None = None, execution_id: str | None = None) -> ExecutionRecord:
        """Start a new execution of ``definition`` and run it to the end (only the selected steps, with a
        ``selection``: the steps they depend on are taken from the reference execution). ``execution_id`` is the
        id chosen by whoever started it in the background (default: a new one)."""
        nodes = self._graph(definition)
        record = ExecutionRecord(execution_id or new_execution_id(), pipeline_name, "Executing",
                                 parameter_values(definition, overrides), now())
        if selection is not None:
            reference, reused = selective.reused_steps(nodes, selection, self.store.root, pipeline_name)
            record.selected_steps = list(selection.steps)
            record.reference_execution = reference.execution_id if reference else None
            record.steps = reused
            for step in reused:
                self.log(step.name, f"reused from execution {step.reused_from} (not selected)")
        try:
            executions.save_definition(self.store.root, record.execution_id, definition)
        except OSError as exc:
            raise ExecutionError(f"cannot write to the store {self.store.root}: {exc.strerror or exc}") from None
        return self._drive(definition, nodes, record)

    def retry(self, execution_id: str) -> ExecutionRecord:
        """Re-run the failed and never-run steps of an execution, reusing its succeeded ones."""
        record = executions.load(self.store.root, execution_id)
        if record.status == "Succeeded":
            raise ExecutionError(f"execution {execution_id} succeeded; there is nothing to retry")
        if ExecutionLock(self.store.root, execution_id).is_held_elsewhere():
            raise ExecutionError(f"execution {execution_id} is still running in another process")
        definition = executions.load_definition(self.store.root, execution_id)
        nodes = self._graph(definition)
        for step in record.steps:
            if step.status != "Succeeded" and job_runtime.kill_leftovers(self.store.job_dir(execution_id, step.name)):
                self.log(step.name, "stopped the job program left running by the interrupted engine")
        record.history += [s for s in record.steps if s.status != "Succeeded"]  # `describe` shows every try
        record.steps = [s for s in record.steps if s.status == "Succeeded"]
        record.status, record.failure_reason, record.end_time = "Executing", None, None
        record.retries += 1
        return self._drive(definition, nodes, record)

    def _graph(self, definition: dict[str, Any]) -> dict[str, Node]:
        return runnable_graph(definition, self.options)

    # -- scheduling -------------------------------------------------------------------------

    def _drive(self, definition: dict[str, Any], nodes: dict[str, Node], record: ExecutionRecord) -> ExecutionRecord:
        try:
            lock = ExecutionLock(self.store.root, record.execution_id)
            acquired = lock.acquire()
        except OSError as exc:
            raise ExecutionError(f"cannot write to the store {self.store.root}: {exc.strerror or exc}") from None
        if not acquired:
            raise ExecutionError(f"execution {record.execution_id} is already running in another process")
        self._save_error = None
        try:
            run = self._prepare(record, nodes)
            self._save(record)
            if self.options.runtime.notice:
                self.log("engine", self.options.runtime.notice)
            caller = Caller(f"execution {record.execution_id}", self.options.api_delete_any)
            with S3Endpoint(self.store, self.options.region) as endpoint, LocalSageMakerApi(
                    self.store, self.registry, self.options.region, caller, self.options.image_programs,
                    lambda line: self.log("sagemaker-api", line)) as api, PackageIndexProxy(
                    self.options.package_index, self.options.environments.cache) as index:
                run.job_environment = {**index.job_environment(), **endpoint.job_environment(),
                                       **api.job_environment()}
                self._schedule(run, self._parallelism(definition))
            record.end_time = now()
            self._save(record)
        except KeyboardInterrupt:
            # Stopped, as the studio's Stop records it; `retry` resumes it from the steps that had not succeeded
            record.stop(self.options.stop_reason)
            self._save(record)
            raise ExecutionInterrupted(
                f"execution {record.execution_id} stopped; its succeeded steps are kept, and "
                f"`{next_steps.retry(record.execution_id, 'local', self.store.root)}` runs the rest",
                record.execution_id) from None
        finally:
            lock.release()
        if self._save_error is not None:
            # what is on disk is the last record that could be written: still Executing, so `retry` resumes it
            record.status = "Failed"
            record.failure_reason = (f"the execution record could not be written ({self._save_error}); free space "
                                     f"or make the store writable, then `retry {record.execution_id}`")
        return record

    def _prepare(self, record: ExecutionRecord, nodes: dict[str, Node]) -> _Execution:
        started = record.start_time
        arn = f"{LOCAL_ARN}/{record.pipeline_name.lower()}"
        variables = {
            "PipelineExecutionId": record.execution_id,
            "PipelineExecutionArn": f"{arn}/execution/{record.execution_id}",
            "PipelineName": record.pipeline_name,
            "PipelineArn": arn,
            "StartDateTime": started,
            "CurrentDateTime": started,
        }
        run = _Execution(record, nodes, variables, read_object=self._read_object)
        for step in record.steps:  # reused by a retry
            run.outcomes[step.name] = step.status
            run.properties[step.name] = step.properties
            run.files[step.name] = step.property_files
            if step.type == "Condition":
                run.branches[step.name] = step.properties.get("Outcome") in ("True", True)
        for name in nodes if record.selected_steps is not None else ():  # selective: the others do not run
            if name not in record.selected_steps and name not in run.outcomes:
                run.outcomes[name] = "NotRun"
        return run

    def _parallelism(self, definition: dict[str, Any]) -> int:
        configured = self.options.max_parallel_steps or definition.get("ParallelismConfiguration", {}).get(
            "MaxParallelExecutionSteps") or SERVICE_MAX_PARALLEL_STEPS
        return max(1, min(int(configured), os.cpu_count() or 1))

    def _schedule(self, run: _Execution, limit: int) -> None:
        pending = [name for name in topological_order(run.nodes) if name not in run.outcomes]
        running: dict[Future, tuple[StepRecord, Node]] = {}
        failed = False
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="step") as pool:
            # Ctrl-C may come while this thread starts a step as well as while it waits: either way the steps
            # already running are stopped (and see ``run.stopping``) before the pool is left
            try:
                while True:
                    progressed = True
                    while progressed and not failed and len(running) < limit:
                        progressed = False
                        for name in list(pending):
                            readiness = _readiness(run.nodes[name], run.outcomes, run.branches)
                            if readiness == "wait":
                                continue
                            pending.remove(name)
                            progressed = True
                            if readiness == "skip":
                                run.outcomes[name] = "NotRun"
                                continue
                            started = self._start(run, run.nodes[name], pool)
                            if isinstance(started, Future):
                                running[started] = (run.record.steps[-1], run.nodes[name])
                            else:
                                failed |= self._finish(run, run.nodes[name], run.record.steps[-1], started)
                            break  # re-check the limit and readiness after each start
                    if not running:
                        break
                    # a timeout, so that Ctrl-C is seen even when the kernel hands SIGINT to a step thread
                    # (the main thread would otherwise sleep in an uninterruptible lock until a step ends)
                    done, _ = wait(running, timeout=SIGNAL_CHECK_SECONDS, return_when=FIRST_COMPLETED)
                    for future in done:
                        step, node = running.pop(future)
                        failed |= self._finish(run, node, step, future.result())
            except BaseException:
                self._stop_job_programs(run, list(running))
                raise
        run.record.status = "Failed" if failed else "Succeeded"

    def _stop_job_programs(self, run: _Execution, futures: list[Future]) -> None:
        """Kill the programs of the steps still executing until their threads have returned.

        Job programs run in their own process groups, so they do not see the engine's Ctrl-C, and
        the thread pool would wait for them; a program may also be starting while this runs. Steps that
        wait for something else than a program (a Callback's token) see ``run.stopping``.
        """
        run.stopping.set()
        while True:
            for step in run.record.steps:
                if step.status == "Executing":
                    job_runtime.kill_leftovers(self.store.job_dir(run.record.execution_id, step.name))
            if all(future.done() for future in futures):
                return
            wait(futures, timeout=SIGNAL_CHECK_SECONDS)

    def _start(self, run: _Execution, node: Node, pool: ThreadPoolExecutor) -> Future | StepOutcome:
        """Record the step as Executing; return its finished outcome (cache hit, bad arguments) or its future."""
        definition = node.definition
        step = StepRecord(node.name, definition["Type"], "Executing", start_time=now())
        run.record.steps.append(step)
        self._save(run.record)
        try:
            raw = definition.get("Arguments", {})
            arguments = raw if definition["Type"] in LAZY_ARGUMENTS else resolve(raw, run.context)
            policies = retries.policies(definition)
            if definition["Type"] not in LAZY_ARGUMENTS:
                check_uris(arguments, node.name)
                step.unenforced = unenforced.settings(arguments, definition["Type"], self.options.runtime.notice)
            if caching.is_cacheable(definition):
                step.cache_key = caching.cache_key(definition["Type"], resolve(raw, run.cache_context))
                hit = self._cache_hit(run.record, step, caching.expire_after(definition)) if self.options.cache else None
                if hit is not None:
                    return hit
        except DefinitionError as exc:
            return StepOutcome({}, failure_reason=f"ClientError: {exc}")
        return pool.submit(self._attempts, run, node, step, arguments, policies)

    def _finish(self, run: _Execution, node: Node, step: StepRecord, outcome: StepOutcome) -> bool:
        """Record a step's outcome; True if it failed."""
        step.status, step.failure_reason, step.end_time = outcome.status, outcome.failure_reason, now()
        step.properties, step.property_files = outcome.properties, outcome.property_files
        run.outcomes[node.name] = outcome.status
        run.properties[node.name] = outcome.properties
        run.files[node.name] = outcome.property_files
        if outcome.branch is not None:
            run.branches[node.name] = outcome.branch
        if outcome.status == "Failed" and run.record.failure_reason is None:
            # a Fail step's message stays on the step; the execution says what SageMaker says
            run.record.failure_reason = (FAIL_STEP_EXECUTION_REASON if node.definition["Type"] == "Fail"
                                         else f"Step {node.name} failed: {outcome.failure_reason}")
        self._save(run.record)
        return outcome.status == "Failed"

    # -- one step ------------------------------------------------------------------------------

    def _cache_hit(self, record: ExecutionRecord, step: StepRecord, lifetime: timedelta | None) -> StepOutcome | None:
        candidates = ((other.execution_id, asdict(s)) for other in executions.all_records(self.store.root, self._warn_once)
                      if other.pipeline_name == record.pipeline_name and other.execution_id != record.execution_id
                      for s in other.steps if s.name == step.name and s.type == step.type)
        hit = caching.latest_hit(candidates, step.cache_key or "", lifetime, datetime.now(timezone.utc))
        if hit is None:
            return None
        source, cached = hit
        missing = [uri for uri in caching.output_uris(step.type, cached["properties"]) if not self.store.objects(uri)]
        if missing:
            self.log(step.name, f"cache entry from execution {source} ignored: its output {missing[0]} is gone")
            return None
        step.cache_hit_from = source
        # what its job said it did not enforce when it ran: a cache hit runs no job to say it again
        step.unenforced += [line for line in cached.get("unenforced", []) if line not in step.unenforced]
        self.log(step.name, f"cache hit: reusing the outputs of execution {source}")
        if step.name in self.options.faults:
            self.log(step.name, f"note: --inject-fault {step.name}=... does nothing here: the step is a cache hit, so "
                                "no attempt runs (--no-cache runs it)")
        return StepOutcome(cached["properties"], cached["property_files"])

    def _attempts(self, run: _Execution, node: Node, step: StepRecord, arguments: dict[str, Any],
                  policies: list[retries.RetryPolicy]) -> StepOutcome:
        """Run the step, retrying transient failures as its policies allow (in a worker thread)."""
        first = time.monotonic()
        while True:
            try:
                return self._attempt(run, node, step, arguments)
            except StepFailed as exc:
                return StepOutcome({}, failure_reason=str(exc))
            except DefinitionError as exc:
                return StepOutcome({}, failure_reason=f"ClientError: {exc}")
            except UnicodeError as exc:  # data that is not text is the input's fault: never retried
                return StepOutcome({}, failure_reason=f"ClientError: the step's input is not UTF-8 text ({exc})")
            except Exception as exc:  # noqa: BLE001 - every other failure is classified, retried or reported
                transient = retries.classify(step.type, exc)
                delay = retries.retry_delay(policies, transient.exception_type, step.attempts - 1,
                                            time.monotonic() - first)
                if delay is None:
                    suffix = f" (after {step.attempts} attempts)" if step.attempts > 1 else ""
                    return StepOutcome({}, failure_reason=f"{transient}{suffix}")
                wait_seconds = delay * self.options.retry_interval_scale
                scaled = f" (IntervalSeconds x {self.options.retry_interval_scale:g})" \
                    if self.options.retry_interval_scale != 1 else ""
                self.log(node.name, f"attempt {step.attempts} failed with {transient.exception_type} ({transient}); "
                                    f"retrying in {wait_seconds:g}s{scaled}")
                self.options.sleep(wait_seconds)
                step.attempts += 1
                self._save(run.record)

    def _attempt(self, run: _Execution, node: Node, step: StepRecord, arguments: dict[str, Any]) -> StepOutcome:
        fault = self.options.faults.get(node.name)
        if fault is not None and step.attempts <= fault[1]:
            raise retries.TransientStepError(fault[0], f"fault injected into attempt {step.attempts} (--inject-fault)")
        job_dir = self.store.job_dir(run.record.execution_id, node.name)
        job_runtime.kill_leftovers(job_dir)
        safe_files.remove_tree(self.store.root, job_dir)  # never through a link planted on the way
        safe_files.make_folders(self.store.root, job_dir)
        step_run = StepRun(node.name, node.definition, arguments, run.context, run.record.execution_id,
                           run.record.pipeline_name, self.store, job_dir, self.registry,
                           lambda line: self.log(node.name, line), self.options.image_programs, run.job_environment,
                           self.options.runtime, self.options.environments,
                           lambda line: None if line in step.unenforced else step.unenforced.append(line),
                           lambdas=self.options.lambdas, callback_timeout=self.options.callback_timeout,
                           stopping=run.stopping)
        return EXECUTORS[node.definition["Type"]](step_run)

    def _read_object(self, uri: str) -> bytes | None:
        """An object's bytes (for ``Std:JsonGet`` with an ``S3Uri``), None if there is none."""
        path = self.store.path(uri)
        return path.read_bytes() if path.is_file() else None

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.log("engine", f"warning: {message}")

    def _save(self, record: ExecutionRecord) -> None:
        """Persist the record; a store that cannot be written (disk full, read-only) is remembered, not fatal."""
        with self._save_lock:
            try:
                record.save(self.store.root)
                self._save_error = None
            except OSError as exc:
                if self._save_error is None:
                    self.log("engine", f"cannot write the execution record: {exc}")
                self._save_error = exc
            self.on_change(record)


def _readiness(node: Node, outcomes: dict[str, str], branches: dict[str, bool]) -> str:
    """'ready', 'wait' (a dependency has not finished) or 'skip' (its branch was not taken)."""
    if node.branch is not None:
        condition, wanted = node.branch
        if condition not in outcomes:
            return "wait"
        if outcomes[condition] != "Succeeded" or branches.get(condition) is not wanted:
            return "skip"
    for dependency in node.depends_on:
        if dependency not in outcomes:
            return "wait"
        if outcomes[dependency] != "Succeeded":
            return "skip"
    return "ready"
