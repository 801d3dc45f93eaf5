"""Lambda: the step's function run as a local Python handler (``local_lambdas``: function ARN or name ->
``MODULE:FUNCTION``), with the event SageMaker sends it (the step's resolved ``Arguments``) and the outputs it
declares (``OutputParameters``) read from the top-level keys of what the handler returns.

The handler runs as a job program in the job runtime: it sees its own folder read-only (as a function sees
``/var/task``), the step's job folder as ``/opt/ml``, and the store through the run's S3 endpoint; nothing else
of this machine. It may run for 10 minutes, the longest a Lambda step's function may run.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipelines.local import job_runtime, safe_files
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun, run_program
from pipelines.local.graph import Node

RUNTIME_MODULE = "pipelines.local.lambda_runtime"
TIMEOUT_SECONDS = 600  # a Lambda step's function runs at most 10 minutes (the Lambda class's timeout: 120 s to 600 s)
OUTPUT_TYPES = ("String", "Integer", "Boolean", "Float")
_HANDLER = re.compile(r"(?P<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[^:]+\.py)"
                      r":(?P<function>[A-Za-z_][A-Za-z0-9_]*)")
_FLAG = "--local-lambda 'ARN=MODULE:FUNCTION' (config local_lambdas)"


def function_name(arn: str) -> str:
    """The function's name in ``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`` (else ``arn`` itself)."""
    parts = arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" else arn


def handler_for(arn: str, lambdas: Mapping[str, str]) -> str | None:
    """The local handler mapped to the function: by its ARN, else by its name."""
    return lambdas.get(arn) or lambdas.get(function_name(arn))


def handler_problems(nodes: Iterable[Node], lambdas: Mapping[str, str]) -> str | None:
    """One line naming every Lambda step whose function has no local handler (and the flag that maps one), or
    whose handler names no file or module here; None if every one can be started."""
    missing, broken = [], []
    for node in nodes:
        arn = node.definition.get("FunctionArn")
        if node.definition.get("Type") != "Lambda":
            continue
        handler = handler_for(arn, lambdas) if isinstance(arn, str) else None
        if handler is None:
            missing.append(f"step {node.name!r}: FunctionArn {arn!r}")
            continue
        try:
            locate(handler)
        except StepFailed as exc:
            broken.append(f"step {node.name!r}: {str(exc).removeprefix('ClientError: ')}")
    if missing:
        return f"no local handler is mapped to the Lambda function of {'; '.join(missing)}: set {_FLAG}"
    return "; ".join(broken) or None


def execute(run: StepRun) -> StepOutcome:
    """Invoke the mapped handler with the step's arguments; the outputs it declares become its properties."""
    arn = run.definition.get("FunctionArn")
    if not isinstance(arn, str) or not arn:
        raise StepFailed("ClientError: FunctionArn: a Lambda step needs the function's ARN")
    handler = handler_for(arn, run.lambdas)
    if handler is None:
        raise StepFailed(f"ClientError: FunctionArn {arn}: no local handler is mapped to it: set {_FLAG}")
    folder, module, function = locate(handler)
    opt_ml = run.job_dir / "root" / "opt" / "ml"
    (opt_ml / "input").mkdir(parents=True)
    (opt_ml / "output").mkdir()
    try:
        (opt_ml / "input" / "event.json").write_text(json.dumps(run.arguments))
    except (TypeError, ValueError) as exc:
        raise StepFailed(f"ClientError: Arguments: the event is not JSON ({exc})") from None
    run.report(f"FunctionArn = {arn}: the function runs as the local handler {handler} with this interpreter; "
               "its runtime, memory, role, layers and its own timeout are not used (it may run "
               f"{TIMEOUT_SECONDS // 60} minutes, a Lambda step's longest)")
    run.log(f"invoking {arn} with the local handler {handler}")
    environment = {"AWS_LAMBDA_FUNCTION_NAME": function_name(arn), "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                   "LAMBDA_TASK_ROOT": str(folder)}
    command = job_runtime.engine_module_command(RUNTIME_MODULE, "--arn", arn, "--folder", str(folder), "--module",
                                                module, "--function", function, "--timeout", str(TIMEOUT_SECONDS))
    spec = job_runtime.JobSpec(command, opt_ml, run.job_dir, environment, workdir=str(folder),
                               image_files=((folder, str(folder)),), engine_code=True)
    job = run_program(_bounded(run), spec, "Lambda")
    failure = opt_ml / "output" / "failure"
    if job.exit_code != 0:
        written = safe_files.optional_text(opt_ml, failure)
        raise StepFailed(f"ClientError: the Lambda function {arn} failed: "
                         f"{written.strip() if written is not None else job.last_line}")
    result = json.loads(safe_files.read_bytes(opt_ml, opt_ml / "output" / "result.json"))
    outputs = output_parameters(run.definition.get("OutputParameters") or [], result, arn, run)
    return StepOutcome(properties={"FunctionArn": arn, "OutputParameters": outputs})


def _bounded(run: StepRun) -> StepRun:
    """The run with the function's time limit as its job's ``MaxRuntimeInSeconds``."""
    return replace(run, arguments={**run.arguments, "StoppingCondition": {"MaxRuntimeInSeconds": TIMEOUT_SECONDS}})


def locate(handler: str) -> tuple[Path, str, str]:
    """(folder, module, function) of ``MODULE:FUNCTION`` (a module of the current directory) or
    ``path/to/file.py:FUNCTION``; StepFailed if it names nothing there."""
    found = _HANDLER.fullmatch(handler)
    if found is None:
        raise StepFailed(f"ClientError: local handler {handler!r}: write it as MODULE:FUNCTION or path/to/file.py:FUNCTION")
    module, function = found.group("module"), found.group("function")
    if module.endswith(".py"):
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise StepFailed(f"ClientError: local handler {handler!r}: no file {path}")
        return path.parent, path.stem, function
    folder = Path.cwd().resolve()
    top = folder / module.split(".")[0]
    if not (top.is_dir() or top.with_name(top.name + ".py").is_file()):
        raise StepFailed(f"ClientError: local handler {handler!r}: no module {module.split('.')[0]} in {folder}")
    return folder, module, function


def declared_outputs(declared: list[Any]) -> dict[str, str]:
    """A step's ``OutputParameters``: each name and its ``OutputType`` (``String`` when not given); StepFailed
    for an entry that lacks either."""
    kinds: dict[str, str] = {}
    for entry in declared:
        name, kind = (entry.get("OutputName"), entry.get("OutputType", "String")) if isinstance(entry, dict) \
            else (None, None)
        if not isinstance(name, str) or kind not in OUTPUT_TYPES:
            raise StepFailed(f"ClientError: OutputParameters: each needs an OutputName and an OutputType of "
                             f"{', '.join(OUTPUT_TYPES)}; got {entry!r}")
        kinds[name] = kind
    return kinds


def output_parameters(declared: list[Any], result: Any, arn: str, run: StepRun) -> dict[str, Any]:
    """The declared outputs from the top-level keys of what the function returned, typed by ``OutputType``
    (nested values become their JSON text, as SageMaker treats them)."""
    if declared and not isinstance(result, dict):
        raise StepFailed(f"ClientError: the Lambda function {arn} returned {type(result).__name__}, not an object "
                         "whose keys are its OutputParameters")
    outputs: dict[str, Any] = {}
    for name, kind in declared_outputs(declared).items():
        if name not in result:
            run.log(f"the function returned no {name!r}; a reference to Steps.{run.name}.OutputParameters['{name}'] "
                    "fails")
            continue
        outputs[name] = typed(result[name], kind, f"OutputParameters['{name}']")
    return outputs


def typed(value: Any, kind: str, where: str) -> Any:
    """``value`` as an output parameter of ``kind``; StepFailed naming ``where`` if it is not one."""
    text = json.dumps(value) if isinstance(value, (dict, list)) else value
    try:
        if kind == "String":
            return text if isinstance(text, str) else json.dumps(text)
        if kind == "Boolean":
            if isinstance(text, bool):
                return text
            if str(text).lower() in ("true", "false"):
                return str(text).lower() == "true"
            raise ValueError
        if kind == "Integer":
            if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
                raise ValueError
            return int(text)
        return float(text)
    except (TypeError, ValueError):
        raise StepFailed(f"ClientError: {where}: {value!r} is not of OutputType {kind}") from None
