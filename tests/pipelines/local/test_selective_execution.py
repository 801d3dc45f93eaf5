"""Selective execution (``--selective-steps``): only the selected steps run, the steps they depend on are taken
from the reference execution, and what SageMaker refuses is refused before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from pipelines.selection import Selection
from tests.pipelines.local.helpers import engine
from tests.sandboxing import needs_container_paths

REPO = Path(__file__).resolve().parents[3]
ARN = "arn:aws:lambda:us-east-1:111122223333:function:times-ten"
HANDLER = '''
def handle(event, context):
    if event["n"] < 0:
        raise ValueError("negative")
    return {"v": event["n"] * 10}
'''


def chain() -> dict:
    """A -> B -> C -> D, each a Lambda step fed the one before it; A is fed the parameter N."""
    def step(name: str, given: object) -> dict:
        return {"Name": name, "Type": "Lambda", "FunctionArn": ARN, "Arguments": {"n": given},
                "OutputParameters": [{"OutputName": "v", "OutputType": "Integer"}]}

    steps = [step("A", {"Get": "Parameters.N"})]
    for before, name in zip("ABC", "BCD"):
        steps.append(step(name, {"Get": f"Steps.{before}.OutputParameters['v']"}))
    return {"Version": "2020-12-01", "Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 1}],
            "Steps": steps}


@pytest.fixture
def local(tmp_path):
    (tmp_path / "handlers.py").write_text(HANDLER)
    run, _ = engine(tmp_path / "store", lambdas={ARN: f"{tmp_path / 'handlers.py'}:handle"})
    return run


def outputs(record) -> dict:
    return {s.name: s.properties.get("OutputParameters", {}).get("v") for s in record.steps}


@needs_container_paths
def test_only_the_selected_steps_run_on_the_reference_executions_outputs(local):
    first = local.run(chain(), "chain", {"N": 1})
    assert first.status == "Succeeded" and outputs(first) == {"A": 1 * 10, "B": 100, "C": 1000, "D": 10000}
    selective = local.run(chain(), "chain", {"N": 7}, Selection(("B", "C")))
    assert selective.status == "Succeeded"
    assert outputs(selective) == {"A": 10, "B": 100, "C": 1000}  # A (reused) kept N=1's output; D did not run
    assert selective.step("A").reused_from == first.execution_id and selective.step("B").reused_from is None
    assert selective.selected_steps == ["B", "C"] and selective.reference_execution == first.execution_id


@needs_container_paths
def test_a_dependency_that_did_not_succeed_in_the_reference_is_refused(local):
    failed = local.run(chain(), "chain", {"N": -1})  # A fails, so B, C, D never run
    assert failed.status == "Failed"
    with pytest.raises(ConfigError, match=f"the selected steps depend on A, which did not succeed in the reference "
                                          f"execution {failed.execution_id}; select them too"):
        local.run(chain(), "chain", {}, Selection(("B",)))
    again = local.run(chain(), "chain", {"N": 2}, Selection(("A", "B")))  # A selected: no reference needed
    assert again.status == "Succeeded" and outputs(again) == {"A": 20, "B": 200}


@needs_container_paths
def test_a_retry_of_a_selective_execution_runs_only_what_it_selected(local, tmp_path):
    local.run(chain(), "chain", {"N": 1})
    (tmp_path / "handlers.py").write_text("def handle(event, context):\n    raise RuntimeError('broken')\n")
    broken = local.run(chain(), "chain", {}, Selection(("B",)))
    assert broken.status == "Failed" and broken.step("C") is None
    (tmp_path / "handlers.py").write_text(HANDLER)
    retried = local.retry(broken.execution_id)
    assert retried.status == "Succeeded" and outputs(retried) == {"A": 10, "B": 100}  # C and D still not run


@pytest.mark.parametrize("selection, says", [
    (Selection(("A", "C")), "step B lies on a path from A to C; every step on a path between two selected steps"),
    (Selection(("Nope",)), "--selective-steps names step(s) Nope that the definition does not have"),
    (Selection(("B",)), "the store has no finished execution of chain to take their outputs from"),
    (Selection(("B",), "nosuchexecution"), "no execution 'nosuchexecution' in the store"),
])
def test_what_sagemaker_refuses_is_refused_before_anything_runs(tmp_path, selection, says):
    (tmp_path / "handlers.py").write_text(HANDLER)
    run, _ = engine(tmp_path / "store", lambdas={ARN: f"{tmp_path / 'handlers.py'}:handle"})
    with pytest.raises(Exception) as refused:
        run.run(chain(), "chain", {}, selection)
    assert says in str(refused.value)
    assert not (tmp_path / "store" / "executions").exists()


def test_the_flags_are_checked_as_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "--store", str(tmp_path / "store"),
                             "--reference-execution", "abc"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --reference-execution needs --selective-steps (the steps to run)"


def ended_elsewhere(store: Path, pipeline: str) -> str:
    """A Succeeded execution of another pipeline in the store, whose step A succeeded (its id)."""
    from pipelines.local.executions import ExecutionRecord, StepRecord, new_execution_id, now

    record = ExecutionRecord(new_execution_id(), pipeline, "Succeeded", {"N": 1}, now(), now(),
                             steps=[StepRecord("A", "Lambda", "Succeeded", now(), now(),
                                               properties={"OutputParameters": {"v": 10}})])
    record.save(store)
    return record.execution_id


def test_a_reference_execution_of_another_pipeline_is_refused_naming_both(tmp_path):
    (tmp_path / "handlers.py").write_text(HANDLER)
    run, _ = engine(tmp_path / "store", lambdas={ARN: f"{tmp_path / 'handlers.py'}:handle"})
    other = ended_elsewhere(tmp_path / "store", "other-pipeline")
    with pytest.raises(ConfigError, match=f"--reference-execution {other} is an execution of other-pipeline, not of "
                                          "chain"):
        run.run(chain(), "chain", {}, Selection(("B",), other))
    assert [p.parent.name for p in (tmp_path / "store" / "executions").glob("*/execution.json")] == [other]


def test_the_cli_and_the_studios_launcher_refuse_a_reference_execution_of_another_pipeline(tmp_path):
    from pipelines.config import PipelineConfig, local_config
    from pipelines.local import launcher

    store = tmp_path / "store"
    other = ended_elsewhere(store, "other-pipeline")
    (tmp_path / "handlers.py").write_text(HANDLER)
    definition = tmp_path / "chain.json"
    definition.write_text(json.dumps(chain()))
    result = subprocess.run([sys.executable, "-m", "pipelines.run", "--definition", str(definition), "--store",
                             str(store), "--mlflow-tracking-uri", "off", "--local-lambda",
                             f"{ARN}={tmp_path / 'handlers.py'}:handle", "--selective-steps", "B",
                             "--reference-execution", other], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"--reference-execution {other} is an execution of other-pipeline, not of chain" in result.stderr
    config = local_config(PipelineConfig(mlflow_tracking_uri="off",
                                         local_lambdas=((ARN, f"{tmp_path / 'handlers.py'}:handle"),)))
    with pytest.raises(ConfigError, match=f"--reference-execution {other} is an execution of other-pipeline, not "
                                          "of chain"):
        launcher.start(store, config, chain(), "chain", {}, Selection(("B",), other))
    assert [p.parent.name for p in (store / "executions").glob("*/execution.json")] == [other]
