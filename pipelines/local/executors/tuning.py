"""Tuning: a hyperparameter tuning job run locally (``CreateHyperParameterTuningJob``): training jobs with
hyperparameters drawn from ``ParameterRanges`` by the job's ``Strategy``, each run by the training executor,
scored by the objective metric, and reported as SageMaker reports them (``TrainingJobSummaries`` best first,
which is what the SDK's ``get_top_model_s3_uri`` indexes, and ``BestTrainingJob``).

The strategies draw with Optuna (``optuna``): ``Bayesian`` with its TPE sampler (a Bayesian optimiser, not
SageMaker's), ``Random`` and ``Hyperband`` with its random sampler (Hyperband's early stopping of trials is not
done: each runs to its end), ``Grid`` as every combination of the categorical ranges, in order.

Before any training job, the arguments are checked as the definition validator checks them (the request's shape,
SageMaker's limits on training jobs, parallel jobs, searched hyperparameters and grid sizes, the ranges' rules):
a Tuning step that asks for a billion training jobs fails at once with a client error naming the field and the limit.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from pipelines.errors import DefinitionInvalidError
from pipelines.local.executors import training
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.validation.step_arguments import arguments_problems

TOP_SUMMARIES = 50  # SageMaker Pipelines keeps the 50 best training jobs in TrainingJobSummaries
# what a trial's CreateTrainingJob request does not take from the TrainingJobDefinition
_DEFINITION_ONLY = {"DefinitionName", "TuningObjective", "HyperParameterRanges", "StaticHyperParameters",
                    "HyperParameterTuningResourceConfig"}


@dataclass(frozen=True)
class Objective:
    """What the tuning job optimises: ``MetricName``, maximised or minimised."""

    metric: str
    maximize: bool


@dataclass
class Trial:
    """One training job of the tuning job."""

    number: int
    job_name: str
    hyperparameters: dict[str, str]
    status: str = "InProgress"
    objective: float | None = None
    failure: str | None = None
    properties: dict[str, Any] | None = None


def execute(run: StepRun) -> StepOutcome:
    """Run the tuning job: its training jobs (at most MaxParallelTrainingJobs at once, bounded by this machine's
    cores), then its properties."""
    import optuna

    args = run.arguments
    refused = arguments_problems(run.name, "Tuning", args)
    if refused:  # what CreateHyperParameterTuningJob refuses: the engine reports it as a client error
        raise DefinitionInvalidError("; ".join(str(problem) for problem in refused))
    if args.get("WarmStartConfig"):
        raise StepFailed("ClientError: WarmStartConfig: warm start (reusing the results of earlier tuning jobs) is "
                         "not run locally; remove it to tune from scratch here")
    config = args["HyperParameterTuningJobConfig"]
    definition = args.get("TrainingJobDefinition")
    if definition is None:
        raise StepFailed("ClientError: TrainingJobDefinitions (several training definitions) are not run locally; "
                         "give one TrainingJobDefinition")
    strategy = config["Strategy"]
    objective = objective_of(config, definition)
    space = search_space(config.get("ParameterRanges") or definition.get("HyperParameterRanges") or {})
    limits = config["ResourceLimits"]
    # checked above: a grid of at most 750 combinations, any other search's MaxNumberOfTrainingJobs within its limit
    total = math.prod(len(d.choices) for d in space.values()) if strategy == "Grid" else \
        limits["MaxNumberOfTrainingJobs"]
    parallel = max(1, min(limits["MaxParallelTrainingJobs"], os.cpu_count() or 1, total))
    report_unenforced(run, config, strategy, limits, parallel)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if objective.maximize else "minimize",
                                sampler=sampler(strategy, space, config.get("RandomSeed")))
    if strategy == "Grid":
        for combination in itertools.product(*(d.choices for d in space.values())):
            study.enqueue_trial(dict(zip(space, combination)))
    tuning_name = tuning_job_name(run)
    run.log(f"tuning job {tuning_name}: {strategy} search of {', '.join(space)} for {objective.metric} "
            f"({'maximize' if objective.maximize else 'minimize'}), {total} training jobs, {parallel} at a time")
    trials: list[Trial] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        running: dict[Future, tuple[Any, Trial]] = {}
        while len(trials) < total or running:
            while len(trials) < total and len(running) < parallel and not run.stopping.is_set():
                asked = study.ask(space)
                trial = Trial(len(trials) + 1, f"{tuning_name}-{len(trials) + 1:03d}-"
                              f"{hashlib.sha256(f'{tuning_name}/{len(trials)}'.encode()).hexdigest()[:8]}",
                              {name: _text(value) for name, value in asked.params.items()})
                trials.append(trial)
                running[pool.submit(train, run, definition, trial, objective, lock)] = (asked, trial)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                asked, trial = running.pop(future)
                future.result()
                if trial.objective is None:
                    study.tell(asked, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(asked, trial.objective)
    return outcome(run, tuning_name, trials, objective, config, definition)


def objective_of(config: dict[str, Any], definition: dict[str, Any]) -> Objective:
    """The tuning objective; StepFailed if it is missing or malformed."""
    given = config.get("HyperParameterTuningJobObjective") or definition.get("TuningObjective") or {}
    if given.get("Type") not in ("Maximize", "Minimize") or not isinstance(given.get("MetricName"), str):
        raise StepFailed("ClientError: HyperParameterTuningJobConfig.HyperParameterTuningJobObjective needs a Type "
                         "(Maximize or Minimize) and a MetricName")
    return Objective(given["MetricName"], given["Type"] == "Maximize")


def search_space(ranges: dict[str, Any]) -> dict[str, Any]:
    """The ranges (checked before: numbers in order, fitting their scaling) as Optuna distributions (a
    reverse-logarithmic range is drawn as 1 - x on a log scale, and mapped back when the trial's hyperparameters are
    written); StepFailed if there is none to draw here."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space: dict[str, Any] = {}
    for entry in ranges.get("IntegerParameterRanges") or []:
        space[entry["Name"]] = IntDistribution(int(entry["MinValue"]), int(entry["MaxValue"]),
                                               log=entry.get("ScalingType") == "Logarithmic")
    for entry in ranges.get("ContinuousParameterRanges") or []:
        low, high, scaling = float(entry["MinValue"]), float(entry["MaxValue"]), entry.get("ScalingType")
        if scaling == "ReverseLogarithmic":
            space[f"{REVERSED}{entry['Name']}"] = FloatDistribution(1 - high, 1 - low, log=True)
        else:
            space[entry["Name"]] = FloatDistribution(low, high, log=scaling == "Logarithmic")
    for entry in ranges.get("CategoricalParameterRanges") or []:
        space[entry["Name"]] = CategoricalDistribution(entry["Values"])
    if ranges.get("AutoParameters"):
        raise StepFailed("ClientError: ParameterRanges.AutoParameters (ranges SageMaker chooses) are not run locally; "
                         "give the ranges")
    if not space:
        raise StepFailed("ClientError: HyperParameterTuningJobConfig.ParameterRanges: no range to tune")
    return space


REVERSED = "reversed:"  # the name under which a reverse-logarithmic range's 1 - x is drawn


def sampler(strategy: str, space: dict[str, Any], seed: Any) -> Any:
    """The Optuna sampler of ``strategy`` (seeded by ``RandomSeed`` when given)."""
    import optuna

    seed = seed if seed is not None else 0
    if strategy == "Bayesian":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, len(space) + 1)))
    return optuna.samplers.RandomSampler(seed=seed)  # Grid: every combination is enqueued before the first ask


def _text(value: Any) -> str:
    """A drawn value as a hyperparameter (SageMaker passes every hyperparameter as a string)."""
    return str(value) if not isinstance(value, float) else repr(value)


def tuning_job_name(run: StepRun) -> str:
    """The tuning job's name: at most 32 characters (SageMaker's limit), stable for the execution and step."""
    suffix = run.job_name.rsplit("-", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9-]", "", run.name)[:32 - len(suffix) - 1].strip("-") or "tuning"
    return f"{stem}-{suffix}"


def report_unenforced(run: StepRun, config: dict[str, Any], strategy: str, limits: dict[str, Any],
                      parallel: int) -> None:
    where = "HyperParameterTuningJobConfig"
    if strategy == "Bayesian":
        run.report(f"{where}.Strategy = Bayesian: drawn by Optuna's TPE sampler, a Bayesian optimiser that is not "
                   "SageMaker's: the hyperparameters tried differ")
    if strategy == "Hyperband":
        run.report(f"{where}.Strategy = Hyperband: trials are drawn at random and each runs to its end (Hyperband's "
                   "early stopping is not done locally)")
    if config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        run.report(f"{where}.TrainingJobEarlyStoppingType = {config['TrainingJobEarlyStoppingType']}: trials are not "
                   "stopped early locally")
    if limits["MaxParallelTrainingJobs"] > parallel:
        run.report(f"{where}.ResourceLimits.MaxParallelTrainingJobs = {limits['MaxParallelTrainingJobs']}: at most "
                   f"{parallel} at a time here (this machine's cores)")
    for key in ("TuningJobCompletionCriteria", "StrategyConfig"):
        if config.get(key):
            run.report(f"{where}.{key}: not applied locally (every training job of the limit runs)")
    if limits.get("MaxRuntimeInSeconds"):
        run.report(f"{where}.ResourceLimits.MaxRuntimeInSeconds: not applied locally (each training job keeps its "
                   "own StoppingCondition)")


def train(run: StepRun, definition: dict[str, Any], trial: Trial, objective: Objective, lock: threading.Lock) -> None:
    """Run one training job with the trial's hyperparameters; record its status and objective."""
    hyperparameters = {name.removeprefix(REVERSED): (_text(1 - float(value)) if name.startswith(REVERSED) else value)
                       for name, value in trial.hyperparameters.items()}
    trial.hyperparameters = hyperparameters
    arguments = {key: value for key, value in definition.items() if key not in _DEFINITION_ONLY}
    arguments["HyperParameters"] = {**(definition.get("StaticHyperParameters") or {}), **hyperparameters}
    job_dir = run.job_dir / "trials" / f"{trial.number:03d}"
    job_dir.mkdir(parents=True)

    def log(line: str) -> None:
        with lock:
            run.log(f"[{trial.job_name[-12:]}] {line}")

    trial_run = replace(run, name=f"{run.name}-{trial.number:03d}", definition={**run.definition, "Type": "Training"},
                        arguments=arguments, job_dir=job_dir, log=log, given_job_name=trial.job_name)
    log(f"training with {', '.join(f'{k}={v}' for k, v in sorted(hyperparameters.items()))}")
    try:
        outcome = training.execute(trial_run)
    except StepFailed as exc:
        trial.status, trial.failure = "Failed", str(exc)
        log(f"failed: {exc}")
        return
    trial.status, trial.properties = "Completed", outcome.properties
    metrics = {m["MetricName"]: m["Value"] for m in outcome.properties.get("FinalMetricDataList", [])}
    trial.objective = metrics.get(objective.metric)
    log(f"{objective.metric} = {trial.objective}" if trial.objective is not None else
        f"completed without the objective metric {objective.metric} (its metrics: {', '.join(metrics) or 'none'})")


def summary(trial: Trial, tuning_name: str, objective: Objective, run: StepRun) -> dict[str, Any]:
    """A trial as ListTrainingJobsForHyperParameterTuningJob describes it (HyperParameterTrainingJobSummary)."""
    entry: dict[str, Any] = {
        "TrainingJobName": trial.job_name,
        "TrainingJobArn": replace(run, given_job_name=trial.job_name).job_arn("training-job"),
        "TuningJobName": tuning_name,
        "TrainingJobStatus": trial.status,
        "TunedHyperParameters": dict(trial.hyperparameters),
        "ObjectiveStatus": "Succeeded" if trial.objective is not None else "Failed",
    }
    if trial.objective is not None:
        entry["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": "Maximize" if objective.maximize else "Minimize", "MetricName": objective.metric,
            "Value": trial.objective}
    if trial.failure:
        entry["FailureReason"] = trial.failure
    return entry


def outcome(run: StepRun, tuning_name: str, trials: list[Trial], objective: Objective, config: dict[str, Any],
            definition: dict[str, Any]) -> StepOutcome:
    """The tuning job's properties; StepFailed if no training job gave the objective."""
    scored = [t for t in trials if t.objective is not None]
    if not scored:
        first = next((t.failure for t in trials if t.failure), None)
        raise StepFailed(f"ClientError: no training job of tuning job {tuning_name} reported {objective.metric}"
                         + (f"; the first failed: {first}" if first else ""))
    ranked = sorted(scored, key=lambda t: t.objective if not objective.maximize else -t.objective)  # type: ignore
    rest = [t for t in trials if t.objective is None]
    summaries = [summary(t, tuning_name, objective, run) for t in ranked + rest]
    run.log(f"best training job {ranked[0].job_name}: {objective.metric} = {ranked[0].objective} with "
            f"{', '.join(f'{k}={v}' for k, v in sorted(ranked[0].hyperparameters.items()))}")
    counters = {"Completed": sum(t.status == "Completed" for t in trials), "InProgress": 0, "RetryableError": 0,
                "NonRetryableError": sum(t.status == "Failed" for t in trials), "Stopped": 0}
    properties = {
        **run.arguments,
        "HyperParameterTuningJobName": tuning_name,
        "HyperParameterTuningJobArn": replace(run, given_job_name=tuning_name).job_arn("hyper-parameter-tuning-job"),
        "HyperParameterTuningJobStatus": "Completed",
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": definition,
        "TrainingJobStatusCounters": counters,
        "ObjectiveStatusCounters": {"Succeeded": len(scored), "Pending": 0, "Failed": len(trials) - len(scored)},
        "BestTrainingJob": summaries[0],
        "TrainingJobSummaries": summaries[:TOP_SUMMARIES],
    }
    return StepOutcome(properties=properties)
