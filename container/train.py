"""``train``: XGBoost on the train channel, early stopping and calibration on the validation channel.

Data: headerless CSV, label (0/1) in the first column, as the pipeline's PrepareData writes it. On any
error the reason goes to ``/opt/ml/output/failure`` (SageMaker's FailureReason) and the exit code is 1
(2 for a problem with the job's configuration or data).
"""

from __future__ import annotations

import json
import sys
import traceback

import numpy as np

from container import calibration, paths
from container.hyperparameters import HyperparameterError, Hyperparameters, parse
from container.model import CalibratedModel
from container.tracking import log_training


class TrainingInputError(ValueError):
    """The job's configuration or data cannot be used (exit code 2)."""


def read_json(name: str) -> dict:
    """A configuration file SageMaker writes, as the JSON object it always is; TrainingInputError otherwise."""
    path = paths.config_file(name)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainingInputError(f"{path} is missing (SageMaker writes it for every training job)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingInputError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TrainingInputError(f"{path} is not a JSON object (SageMaker writes an object of names and values)")
    return document


def first_host(resources: dict) -> str | None:
    """The host that trains (the first of ``hosts``), or None when this host is another one."""
    hosts = resources.get("hosts", ["algo-1"])
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
        raise TrainingInputError(f"{paths.config_file('resourceconfig.json')}: hosts must be a non-empty list of "
                                 f"host names; got {hosts!r}")
    first = sorted(hosts)[0]
    return first if resources.get("current_host", first) == first else None


def read_channel(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of a channel's CSV files."""
    import pandas as pd

    directory = paths.channel(name)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")) if directory.is_dir() else []
    if not files:
        raise TrainingInputError(f"channel {name}: no files in {directory}")
    frames = []
    for path in files:
        try:
            frames.append(pd.read_csv(path, header=None, dtype=np.float32))
        except ValueError as exc:
            raise TrainingInputError(f"channel {name}: {path.name} is not numeric headerless CSV: {exc}") from None
    data = pd.concat(frames, ignore_index=True).to_numpy()
    if data.shape[1] < 2:
        raise TrainingInputError(f"channel {name}: the data has only {data.shape[1]} column(s); it needs the 0/1 label "
                                 "and at least one feature")
    labels = data[:, 0]
    if np.isnan(labels).any() or not np.isin(labels, (0.0, 1.0)).all():
        raise TrainingInputError(f"channel {name}: the first column must be the 0/1 label on every row")
    return data[:, 1:], labels


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties counted half), by ranks."""
    from scipy.stats import rankdata

    positives = labels == 1
    count_pos, count_neg = positives.sum(), (~positives).sum()
    if count_pos == 0 or count_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - count_pos * (count_pos + 1) / 2) / (count_pos * count_neg))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((probabilities - labels) ** 2))


def fit(hp: Hyperparameters, train: tuple[np.ndarray, np.ndarray],
        validation: tuple[np.ndarray, np.ndarray] | None,
        history: dict | None = None) -> tuple[CalibratedModel, dict[str, float]]:
    """Train, stop early and calibrate; the model and its validation metrics. ``history`` receives each round's
    metrics, as xgboost's ``evals_result`` ({"train": {"auc": [...]}, "validation": {...}})."""
    import xgboost as xgb

    features = train[0].shape[1]
    if hp.monotone_constraints and len(hp.monotone_constraints) != features:
        raise HyperparameterError(f"hyperparameter monotone_constraints gives {len(hp.monotone_constraints)} values; "
                                  f"the data has {features} features")
    if validation is not None and validation[0].shape[1] != features:
        raise TrainingInputError(f"channel validation has {validation[0].shape[1]} features; train has {features}")
    if hp.calibration != "none" and validation is None:
        raise TrainingInputError(f"calibration {hp.calibration} is fitted on the validation channel, which is missing "
                                 "(or set the hyperparameter calibration to none)")
    params = {"objective": "binary:logistic", "eval_metric": "auc", "tree_method": "hist", "max_depth": hp.max_depth,
              "eta": hp.eta, "subsample": hp.subsample, "min_child_weight": hp.min_child_weight, "seed": hp.seed,
              "nthread": 0}
    if hp.monotone_constraints:
        params["monotone_constraints"] = "(" + ",".join(map(str, hp.monotone_constraints)) + ")"
    dtrain = xgb.DMatrix(train[0], label=train[1], missing=np.nan)
    evals = [(dtrain, "train")]
    dvalid = None
    if validation is not None:
        dvalid = xgb.DMatrix(validation[0], label=validation[1], missing=np.nan)
        evals.append((dvalid, "validation"))
    booster = xgb.train(params, dtrain, num_boost_round=hp.num_round, evals=evals, verbose_eval=10,
                        evals_result=history if history is not None else {},
                        early_stopping_rounds=hp.early_stopping_rounds if dvalid is not None else None)
    if hp.early_stopping_rounds and dvalid is not None and booster.best_iteration + 1 < booster.num_boosted_rounds():
        booster = booster[: booster.best_iteration + 1]
    metrics: dict[str, float] = {}
    spec: dict = {"method": "none"}
    if dvalid is not None:
        scores, margins = booster.predict(dvalid), booster.predict(dvalid, output_margin=True)
        spec = calibration.fit(hp.calibration, scores, margins, validation[1])
        calibrated = calibration.apply(spec, scores, margins)
        metrics = {"validation:auc": auc(validation[1], calibrated), "validation:brier_uncalibrated":
                   brier(validation[1], scores), "validation:brier": brier(validation[1], calibrated)}
    return CalibratedModel(booster, spec, features), metrics


def main() -> int:
    """Train as SageMaker runs ``IMAGE train``; the exit code says how it ended."""
    try:
        hp = parse(read_json("hyperparameters.json"))
        channels = read_json("inputdataconfig.json")
        resources = read_json("resourceconfig.json")
        if "train" not in channels:
            raise TrainingInputError(f"the train channel is required; the job has {', '.join(sorted(channels)) or 'none'}")
        unknown = sorted(set(channels) - {"train", "validation"})
        if unknown:
            raise TrainingInputError(f"unknown channel(s) {', '.join(unknown)}; this image reads train and validation")
        if first_host(resources) is None:
            print(f"{resources['current_host']}: this image trains on the first host "
                  f"({sorted(resources['hosts'])[0]}) only; nothing to do")
            return 0
        history: dict = {}
        model, metrics = fit(hp, read_channel("train"),
                             read_channel("validation") if "validation" in channels else None, history)
        model.save(paths.model_dir(), {"hyperparameters": hp.__dict__, "metrics": metrics})
        for name, value in metrics.items():
            print(f"{name}={value:.6f}")
        log_training(hp.__dict__, history, metrics)
        return 0
    except (HyperparameterError, TrainingInputError) as exc:
        return fail(str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - every failure must reach /opt/ml/output/failure
        traceback.print_exc()
        return fail(f"{type(exc).__name__}: {exc}", 1)


def fail(reason: str, code: int) -> int:
    """Write SageMaker's failure file, say why on stderr, return the exit code."""
    failure = paths.failure_file()
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(reason)
    print(f"training failed: {reason}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
