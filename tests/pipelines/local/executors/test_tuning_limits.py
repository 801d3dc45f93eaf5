"""A Tuning step that asks for more than SageMaker runs, or whose ranges are malformed, is refused at the door:
by ``validate`` (and so by ``run``) before anything is written, and by the engine itself (``--no-validate``, or a
parameter that only has its value once the execution starts) before any training job of it runs; each time in one
line naming the step, the field and the limit."""

from __future__ import annotations

import copy
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from pipelines.local.store import Store
from pipelines.validation import validate
from tests.pipelines.local.executors.test_tuning import GRID, RANGES, tuning_definition

REPO = Path(__file__).resolve().parents[4]
CONFIG = "Arguments.HyperParameterTuningJobConfig"
ENGINE_SECONDS = 60  # a refused step ends at once; an unrefused one keeps launching training jobs


def config(arguments: dict) -> dict:
    return arguments["HyperParameterTuningJobConfig"]


def limits(arguments: dict) -> dict:
    return config(arguments)["ResourceLimits"]


def ranges(arguments: dict) -> dict:
    return config(arguments)["ParameterRanges"]


def grid(arguments: dict, new_ranges: dict) -> None:
    config(arguments).update(Strategy="Grid", ParameterRanges=new_ranges)
    limits(arguments).pop("MaxNumberOfTrainingJobs")


Change = Callable[[dict], Any]
HOSTILE: list[tuple[str, Change, str, str]] = [
    ("a billion training jobs", lambda a: limits(a).update(MaxNumberOfTrainingJobs=1_000_000_000),
     "ResourceLimits.MaxNumberOfTrainingJobs", "must be <= 10000 for a Random search"),
    ("751 Bayesian training jobs", lambda a: (config(a).update(Strategy="Bayesian"),
                                              limits(a).update(MaxNumberOfTrainingJobs=751)),
     "ResourceLimits.MaxNumberOfTrainingJobs", "must be <= 750 for a Bayesian search"),
    ("101 parallel training jobs", lambda a: limits(a).update(MaxParallelTrainingJobs=101),
     "ResourceLimits.MaxParallelTrainingJobs", "must be <= 100"),
    ("no parallel training job", lambda a: limits(a).update(MaxParallelTrainingJobs=0),
     "ResourceLimits.MaxParallelTrainingJobs", "must be >= 1 (got 0)"),
    ("a grid of 64 million combinations", lambda a: grid(a, {"CategoricalParameterRanges": [
        {"Name": f"h{i}", "Values": [str(v) for v in range(20)]} for i in range(6)]}),
     "ParameterRanges.CategoricalParameterRanges", "64,000,000 combinations"),
    ("a grid whose job count is not its size", lambda a: (grid(a, GRID), limits(a).update(MaxNumberOfTrainingJobs=9)),
     "ResourceLimits.MaxNumberOfTrainingJobs", "must equal the grid's 4 combinations"),
    ("a grid over an integer range", lambda a: grid(a, {**GRID, "IntegerParameterRanges": RANGES["IntegerParameterRanges"]}),
     "ParameterRanges.IntegerParameterRanges", "a Grid search takes categorical ranges only"),
    ("a categorical range without Name", lambda a: ranges(a).update(CategoricalParameterRanges=[{"Values": ["a", "b"]}]),
     "ParameterRanges.CategoricalParameterRanges[0].Name", "is required"),
    ("a Name that is not a string", lambda a: ranges(a)["IntegerParameterRanges"][0].update(Name=7),
     "ParameterRanges.IntegerParameterRanges[0].Name", "must be a string (got 7)"),
    ("two ranges of one name", lambda a: ranges(a)["ContinuousParameterRanges"][0].update(Name="max_depth"),
     "ParameterRanges.ContinuousParameterRanges[0].Name", "'max_depth' is the name of another range too"),
    ("a count as a string", lambda a: limits(a).update(MaxNumberOfTrainingJobs="5"),
     "ResourceLimits.MaxNumberOfTrainingJobs", "must be a whole number (got '5')"),
    ("a count that is no number", lambda a: limits(a).update(MaxParallelTrainingJobs="two"),
     "ResourceLimits.MaxParallelTrainingJobs", "must be a whole number (got 'two')"),
    ("a count as a bool", lambda a: limits(a).update(MaxNumberOfTrainingJobs=True),
     "ResourceLimits.MaxNumberOfTrainingJobs", "must be a whole number (got True)"),
    ("a count as a float", lambda a: limits(a).update(MaxNumberOfTrainingJobs=2.5),
     "ResourceLimits.MaxNumberOfTrainingJobs", "must be a whole number (got 2.5)"),
    ("a negative count", lambda a: limits(a).update(MaxNumberOfTrainingJobs=-3),
     "ResourceLimits.MaxNumberOfTrainingJobs", "must be >= 1 (got -3)"),
    ("a range of 31 values", lambda a: ranges(a).update(CategoricalParameterRanges=[
        {"Name": "booster", "Values": [f"v{i}" for i in range(31)]}]),
     "ParameterRanges.CategoricalParameterRanges[0].Values", "must have at most 30 items (got 31)"),
    ("31 hyperparameters", lambda a: config(a).update(ParameterRanges={"ContinuousParameterRanges": [
        {"Name": f"c{i}", "MinValue": "0", "MaxValue": "1"} for i in range(16)], "IntegerParameterRanges": [
        {"Name": f"i{i}", "MinValue": "0", "MaxValue": "1"} for i in range(15)]}),
     "ParameterRanges", "searches 31 hyperparameters; SageMaker searches at most 30"),
    ("MinValue above MaxValue", lambda a: ranges(a)["IntegerParameterRanges"][0].update(MinValue="5", MaxValue="1"),
     "ParameterRanges.IntegerParameterRanges[0].MinValue", "must not be above MaxValue (got 5 > 1)"),
    ("MinValue that is not a number", lambda a: ranges(a)["ContinuousParameterRanges"][0].update(MinValue="nan"),
     "ParameterRanges.ContinuousParameterRanges[0].MinValue", "must be a number written as a string (got 'nan')"),
    ("MaxValue that is not a whole number", lambda a: ranges(a)["IntegerParameterRanges"][0].update(MaxValue="4.5"),
     "ParameterRanges.IntegerParameterRanges[0].MaxValue", "must be a whole number written as a string (got '4.5')"),
    ("a ScalingType not allowed", lambda a: ranges(a)["ContinuousParameterRanges"][0].update(ScalingType="Exponential"),
     "ParameterRanges.ContinuousParameterRanges[0].ScalingType",
     "must be one of Auto, Linear, Logarithmic, ReverseLogarithmic (got 'Exponential')"),
    ("a logarithmic range from 0", lambda a: ranges(a)["ContinuousParameterRanges"][0].update(MinValue="0"),
     "ParameterRanges.ContinuousParameterRanges[0].ScalingType", "Logarithmic needs MinValue above 0 (got 0)"),
    ("an unknown strategy", lambda a: config(a).update(Strategy="Exhaustive"),
     "Strategy", "must be one of Bayesian, Random, Hyperband, Grid (got 'Exhaustive')"),
    ("a random seed that is text", lambda a: config(a).update(RandomSeed="seven"),
     "RandomSeed", "must be a whole number (got 'seven')"),
]
CASES = [pytest.param(name, change, field, says, id=name) for name, change, field, says in HOSTILE]


def hostile(change: Change) -> dict:
    definition = copy.deepcopy(tuning_definition("Random", RANGES, 4))
    change(definition["Steps"][0]["Arguments"])
    return definition


def _bounded() -> None:
    """A refused step needs little memory: an unrefused grid of millions would take the machine's."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


# runs each (definition, overrides) on the engine alone, each in its own store, and says how its Tune step ended
RUNNER = """
import json, sys
from pathlib import Path
from tests.pipelines.local.helpers import engine
for index, (name, (definition, overrides)) in enumerate(json.loads(Path(sys.argv[1]).read_text()).items()):
    store = Path(sys.argv[2]) / str(index)
    record = engine(store)[0].run(definition, 'p', overrides)
    step = record.step('Tune')
    print(json.dumps({'case': name, 'store': str(store), 'execution_id': record.execution_id, 'status': step.status,
                      'failure_reason': step.failure_reason, 'attempts': step.attempts}), flush=True)
"""


def run_engine(tmp_path: Path, runs: dict[str, tuple[dict, dict]]) -> dict[str, dict]:
    """The Tune step's record of each run the engine alone (no validation) ended within ENGINE_SECONDS, in a child
    process stopped with every job it started after that."""
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs))
    child = subprocess.Popen([sys.executable, "-c", RUNNER, str(path), str(tmp_path / "stores")], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=_bounded)
    try:
        out, err = child.communicate(timeout=ENGINE_SECONDS)
        assert child.returncode == 0, err
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
    return {record["case"]: record for record in map(json.loads, out.splitlines())}


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> dict[str, dict]:
    """Every hostile case run on the engine alone, in one child process."""
    runs = {name: (hostile(change), {}) for name, change, _, _ in HOSTILE}
    return run_engine(tmp_path_factory.mktemp("engine"), runs)


def ended(records: dict[str, dict], case: str) -> dict:
    if case not in records:
        pytest.fail(f"no end within {ENGINE_SECONDS} s: this tuning job, or one run before it, was not refused")
    return records[case]


def assert_no_training_job_ran(record: dict) -> None:
    store = Store(Path(record["store"]))
    assert not (store.job_dir(record["execution_id"], "Tune") / "trials").exists()
    assert not store.path("s3://bkt/tuning").exists()  # no training job's output either


@pytest.mark.parametrize("case, change, field, says", CASES)
def test_validate_names_the_step_the_field_and_the_limit(case, change, field, says):
    problems = [str(p) for p in validate(hostile(change))]
    assert any(p.startswith(f"Step 'Tune': {CONFIG}.{field}: ") and says in p for p in problems), problems


@pytest.mark.parametrize("case, change, field, says", CASES)
def test_the_engine_alone_refuses_it_before_any_training_job(refused, case, change, field, says):
    record = ended(refused, case)
    reason = record["failure_reason"] or ""
    assert record["status"] == "Failed" and record["attempts"] == 1, record
    assert reason.startswith("ClientError: Step 'Tune': ") and f"{CONFIG}.{field}: " in reason and says in reason, \
        reason
    assert "\n" not in reason
    assert_no_training_job_ran(record)


def test_a_limit_a_parameter_sets_is_checked_once_the_execution_has_its_value(tmp_path):
    definition = tuning_definition("Random", RANGES, 4)
    definition["Parameters"] = [{"Name": "MaxJobs", "Type": "Integer", "DefaultValue": 4}]
    limits(definition["Steps"][0]["Arguments"]).update(MaxNumberOfTrainingJobs={"Get": "Parameters.MaxJobs"})
    assert validate(definition) == []  # the default is within the limit
    record = ended(run_engine(tmp_path, {"override": (definition, {"MaxJobs": 1_000_000_000})}), "override")
    assert record["failure_reason"] == (
        f"ClientError: Step 'Tune': {CONFIG}.ResourceLimits.MaxNumberOfTrainingJobs: must be <= 10000 for a Random "
        "search (SageMaker's most training jobs per tuning job; got 1000000000)")
    assert_no_training_job_ran(record)


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_the_cli_refuses_it_in_one_line_and_writes_nothing(tmp_path):
    path = tmp_path / "tune.json"
    path.write_text(json.dumps(hostile(lambda a: limits(a).update(MaxNumberOfTrainingJobs=1_000_000_000))))
    line = (f"Step 'Tune': {CONFIG}.ResourceLimits.MaxNumberOfTrainingJobs: must be <= 10000 for a Random search "
            "(SageMaker's most training jobs per tuning job; got 1000000000)")
    checked = cli("validate", "--definition", str(path))
    assert (checked.returncode, checked.stderr) == (2, f"error: {line}\n")
    ran = cli("--definition", str(path), "--store", str(tmp_path / "store"))
    assert ran.returncode == 2 and f"  {line}" in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("strategy, ranges_, jobs", [("Random", RANGES, 10_000), ("Bayesian", RANGES, 750),
                                                      ("Grid", GRID, 4), ("Grid", GRID, None)])
def test_what_sagemaker_allows_is_not_refused(strategy, ranges_, jobs):
    definition = tuning_definition(strategy, copy.deepcopy(ranges_), jobs)
    limits(definition["Steps"][0]["Arguments"]).update(MaxParallelTrainingJobs=100)
    assert [str(p) for p in validate(definition)] == []
