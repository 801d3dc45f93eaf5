"""What a tuning job (``CreateHyperParameterTuningJob``) may ask for beyond its request shape: SageMaker's documented
limits on training jobs, parallel training jobs, searched hyperparameters and grid sizes, and the rules of its
ranges (numbers written as strings, MinValue <= MaxValue, what each ScalingType needs, one name per range).

Values of the wrong type, and expressions, are left alone here: the shape check reports the first, and the second
are checked once the execution has resolved them (the tuning executor checks its resolved arguments the same way).
A grid's size is the product of its ranges' value counts: the combinations are never enumerated.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pipelines.validation.problems import Problem

# SageMaker's limits for automatic model tuning, "Resource Limits for Automatic Model Tuning"
# (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html): 750 training jobs per
# tuning job for every strategy, a grid's "either specified explicitly or inferred from the search space"; only
# Random's can be raised, to 10,000, the most any account runs
MOST_TRAINING_JOBS = {"Bayesian": 750, "Random": 10_000, "Hyperband": 750, "Grid": 750}
MOST_PARALLEL_TRAINING_JOBS = 100  # the same page: 10 by default, raised to 100 at most
MOST_SEARCHED_HYPERPARAMETERS = 30  # the same page: "Number of hyperparameters that can be searched"
RANGE_KINDS = ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
CONFIG = "Arguments.HyperParameterTuningJobConfig"
# MinValue and MaxValue are strings (botocore's ParameterValue) holding a number
_WHOLE = re.compile(r"[-+]?\d{1,256}")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def limit_problems(step: str | None, arguments: dict[str, Any]) -> list[Problem]:
    """Every limit or range rule of a Tuning step's Arguments that SageMaker would refuse."""
    config = arguments.get("HyperParameterTuningJobConfig")
    if not isinstance(config, dict):
        return []
    found: list[Problem] = []
    strategy = config.get("Strategy")
    definition = arguments.get("TrainingJobDefinition")
    ranges, where = config.get("ParameterRanges"), f"{CONFIG}.ParameterRanges"
    if not ranges and isinstance(definition, dict) and definition.get("HyperParameterRanges"):  # as the executor
        ranges, where = definition["HyperParameterRanges"], "Arguments.TrainingJobDefinition.HyperParameterRanges"
    combinations = _ranges(step, ranges, where, strategy, found) if isinstance(ranges, dict) else None
    limits = config.get("ResourceLimits")
    if isinstance(limits, dict):
        _limits(step, limits, strategy, combinations, f"{where}.CategoricalParameterRanges", found)
    return found


def _ranges(step: str | None, ranges: dict[str, Any], where: str, strategy: Any, found: list[Problem]) -> int | None:
    """Check every range; the number of grid combinations (None without categorical ranges, or if a count is
    not known before the run)."""
    names: set[str] = set()
    searched, counts = 0, []
    for kind in RANGE_KINDS:
        entries = ranges.get(kind)
        if not isinstance(entries, list):
            continue
        searched += len(entries)
        if strategy == "Grid" and entries and kind != "CategoricalParameterRanges":
            found.append(Problem(step, f"{where}.{kind}", "a Grid search takes categorical ranges only (SageMaker's "
                                 "grid search tries every combination of categorical values)", "shape"))
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            at = f"{where}.{kind}[{index}]"
            name = entry.get("Name")
            if isinstance(name, str):
                if name in names:
                    found.append(Problem(step, f"{at}.Name", f"{name!r} is the name of another range too", "shape"))
                names.add(name)
            if kind == "CategoricalParameterRanges":
                values = entry.get("Values")
                counts.append(len(values) if isinstance(values, list) else None)
            else:
                _bounds(step, entry, at, kind == "IntegerParameterRanges", found)
    if searched > MOST_SEARCHED_HYPERPARAMETERS:
        found.append(Problem(step, where, f"searches {searched} hyperparameters; SageMaker searches at most "
                             f"{MOST_SEARCHED_HYPERPARAMETERS}", "limit"))
    return None if not counts or None in counts else math.prod(counts)


def _bounds(step: str | None, entry: dict[str, Any], at: str, whole: bool, found: list[Problem]) -> None:
    """An integer or continuous range: numbers, in order, that fit its ScalingType."""
    low, high = (_number(step, entry.get(key), f"{at}.{key}", whole, found) for key in ("MinValue", "MaxValue"))
    if low is None or high is None:
        return
    scaling = entry.get("ScalingType", "Auto")
    if low > high:
        found.append(Problem(step, f"{at}.MinValue", f"must not be above MaxValue (got {entry['MinValue']} > "
                             f"{entry['MaxValue']})", "shape"))
    elif scaling == "Logarithmic" and low <= 0:
        found.append(Problem(step, f"{at}.ScalingType", f"Logarithmic needs MinValue above 0 (got "
                             f"{entry['MinValue']})", "shape"))
    elif scaling == "ReverseLogarithmic" and whole:  # botocore's IntegerParameterRange lists Auto, Linear, Log only
        found.append(Problem(step, f"{at}.ScalingType", "ReverseLogarithmic is for continuous ranges only", "shape"))
    elif scaling == "ReverseLogarithmic" and not (0 <= low and high < 1):
        found.append(Problem(step, f"{at}.ScalingType", f"ReverseLogarithmic needs a range within 0 <= x < 1 (got "
                             f"{entry['MinValue']} to {entry['MaxValue']})", "shape"))


def _number(step: str | None, value: Any, path: str, whole: bool, found: list[Problem]) -> int | float | None:
    """The number a MinValue or MaxValue string holds; None (reported) if it holds none."""
    if not isinstance(value, str):
        return None  # missing, of another type or an expression: not this module's to report
    if whole and _WHOLE.fullmatch(value):
        return int(value)
    if not whole and _NUMBER.fullmatch(value) and math.isfinite(float(value)):
        return float(value)
    kind = "whole number" if whole else "number"
    found.append(Problem(step, path, f"must be a {kind} written as a string (got {value[:40]!r})", "shape"))
    return None


def _limits(step: str | None, limits: dict[str, Any], strategy: Any, combinations: int | None, grid_field: str,
            found: list[Problem]) -> None:
    """The counts against SageMaker's limits; a grid's count against its size."""
    where = f"{CONFIG}.ResourceLimits"
    jobs, parallel = (_count(limits.get(key)) for key in ("MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs"))
    if parallel is not None and parallel > MOST_PARALLEL_TRAINING_JOBS:
        found.append(Problem(step, f"{where}.MaxParallelTrainingJobs", f"must be <= {MOST_PARALLEL_TRAINING_JOBS} "
                             f"(SageMaker's most parallel training jobs per tuning job; got {parallel})", "limit"))
    if strategy == "Grid":
        most = MOST_TRAINING_JOBS["Grid"]
        if combinations is not None and combinations > most:
            found.append(Problem(step, grid_field, f"a Grid search of {combinations:,} combinations (the product of "
                                 f"the ranges' value counts); SageMaker runs at most {most} training jobs per tuning "
                                 "job", "limit"))
        elif combinations is not None and jobs is not None and jobs != combinations:
            found.append(Problem(step, f"{where}.MaxNumberOfTrainingJobs", f"must equal the grid's {combinations} "
                                 f"combinations, or be left out (got {jobs})", "shape"))
    elif isinstance(strategy, str) and strategy in MOST_TRAINING_JOBS:
        most = MOST_TRAINING_JOBS[strategy]
        if "MaxNumberOfTrainingJobs" not in limits:
            found.append(Problem(step, f"{where}.MaxNumberOfTrainingJobs", f"is required for a {strategy} search "
                                 "(a Grid search alone counts its training jobs)", "shape"))
        elif jobs is not None and jobs > most:
            found.append(Problem(step, f"{where}.MaxNumberOfTrainingJobs", f"must be <= {most} for a {strategy} "
                                 f"search (SageMaker's most training jobs per tuning job; got {jobs})", "limit"))


def _count(value: Any) -> int | None:
    """A whole number of jobs, or None (the shape check reports what else it is)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
