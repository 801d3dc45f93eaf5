"""Model quality, as Model Monitor's analyzer computes it: the metrics of predictions against ground truth for
binary classification, multiclass classification and regression (``statistics.json``, each metric with its
standard deviation over five 80 % samples once there are 200 rows), the suggested ``constraints.json`` (each
metric may not get worse than the baseline's value) and the violations of data checked against it."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from sklearn import metrics as sk

MIN_ROWS_FOR_DEVIATION = 200
SAMPLES, SAMPLE_SHARE = 5, 0.8
PROBLEMS = {"BinaryClassification": "binary_classification", "MulticlassClassification":
            "multiclass_classification", "Regression": "regression"}
LOWER_IS_BETTER = {"mae", "mse", "rmse", "false_positive_rate", "false_negative_rate"}


class ModelQualityError(Exception):
    """The model-quality settings or data cannot be used as given; says what to fix."""


def _fbeta(beta: float) -> Callable[[np.ndarray, np.ndarray], float]:
    return lambda truth, predicted: sk.fbeta_score(truth, predicted, beta=beta, zero_division=0)


def _binary(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None) -> dict[str, float]:
    def rate(numerator: int, denominator: int) -> float:
        return numerator / denominator if denominator else 0.0

    tn, fp, fn, tp = sk.confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    constant = np.full_like(truth, 1 if truth.mean() >= 0.5 else 0)
    found = {"recall": rate(tp, tp + fn), "precision": rate(tp, tp + fp), "accuracy": rate(tp + tn, len(truth)),
             "true_positive_rate": rate(tp, tp + fn), "true_negative_rate": rate(tn, tn + fp),
             "false_positive_rate": rate(fp, fp + tn), "false_negative_rate": rate(fn, fn + tp),
             "recall_best_constant_classifier": sk.recall_score(truth, constant, zero_division=0),
             "precision_best_constant_classifier": sk.precision_score(truth, constant, zero_division=0),
             "accuracy_best_constant_classifier": sk.accuracy_score(truth, constant)}
    for name, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        found[name] = _fbeta(beta)(truth, predicted)
        found[f"{name}_best_constant_classifier"] = _fbeta(beta)(truth, constant)
    if scores is not None and len(set(truth.tolist())) == 2:
        found["auc"] = sk.roc_auc_score(truth, scores)
    return found


def _multiclass(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None) -> dict[str, float]:
    values, counts = np.unique(truth, return_counts=True)
    constant = np.full_like(truth, values[np.argmax(counts)])
    found = {}
    for suffix, guess in (("", predicted), ("_best_constant_classifier", constant)):
        found[f"accuracy{suffix}"] = sk.accuracy_score(truth, guess)
        found[f"weighted_recall{suffix}"] = sk.recall_score(truth, guess, average="weighted", zero_division=0)
        found[f"weighted_precision{suffix}"] = sk.precision_score(truth, guess, average="weighted", zero_division=0)
        for name, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
            found[f"weighted_{name}{suffix}"] = sk.fbeta_score(truth, guess, beta=beta, average="weighted",
                                                               zero_division=0)
    return found


def _regression(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None) -> dict[str, float]:
    mse = sk.mean_squared_error(truth, predicted)
    return {"mae": sk.mean_absolute_error(truth, predicted), "mse": mse, "rmse": float(np.sqrt(mse)),
            "r2": sk.r2_score(truth, predicted)}


COMPUTE = {"BinaryClassification": _binary, "MulticlassClassification": _multiclass, "Regression": _regression}


def statistics(problem: str, truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None,
               seed: int = 0) -> dict[str, Any]:
    """``statistics.json`` of predictions: every metric of the problem type as ``{value, standard_deviation}``,
    with the confusion matrix (classification) and the ROC and precision-recall curves (binary, with scores)."""
    compute = COMPUTE[problem]
    values = compute(truth, predicted, scores)
    deviations: dict[str, list[float]] = {name: [] for name in values}
    if len(truth) >= MIN_ROWS_FOR_DEVIATION:
        generator = np.random.default_rng(seed)
        for _ in range(SAMPLES):
            rows = generator.choice(len(truth), int(len(truth) * SAMPLE_SHARE), replace=False)
            sample = compute(truth[rows], predicted[rows], scores[rows] if scores is not None else None)
            for name in values:
                if name in sample:
                    deviations[name].append(sample[name])
    section: dict[str, Any] = {name: {"value": float(value), "standard_deviation": float(np.std(deviations[name]))
                                      if deviations[name] else "NaN"} for name, value in values.items()}
    if problem != "Regression":
        labels = sorted(set(truth.tolist()) | set(predicted.tolist()))
        matrix = sk.confusion_matrix(truth, predicted, labels=labels)
        section["confusion_matrix"] = {_label(a): {_label(b): int(matrix[i][j]) for j, b in enumerate(labels)}
                                       for i, a in enumerate(labels)}
    if problem == "BinaryClassification" and scores is not None and "auc" in values:
        fpr, tpr, _ = sk.roc_curve(truth, scores)
        precision, recall, _ = sk.precision_recall_curve(truth, scores)
        section["receiver_operating_characteristic_curve"] = {"false_positive_rates": _curve(fpr),
                                                              "true_positive_rates": _curve(tpr)}
        section["precision_recall_curve"] = {"precisions": _curve(precision), "recalls": _curve(recall)}
    return {"version": 0.0, "dataset": {"item_count": int(len(truth))}, f"{PROBLEMS[problem]}_metrics": section}


def _label(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _curve(points: np.ndarray, most: int = 100) -> list[float]:
    """At most ``most`` points of a curve, evenly spread (the analyzer keeps a summary, not every threshold)."""
    if len(points) > most:
        points = points[np.linspace(0, len(points) - 1, most).astype(int)]
    return [float(x) for x in points]


def constraints(statistics_json: dict[str, Any]) -> dict[str, Any]:
    """The suggested ``constraints.json``: no metric may get worse than its baseline value."""
    key = next(k for k in statistics_json if k.endswith("_metrics"))
    problem = key.removesuffix("_metrics")
    suggested = {name: {"threshold": entry["value"], "comparison_operator":
                        "GreaterThanThreshold" if name in LOWER_IS_BETTER else "LessThanThreshold"}
                 for name, entry in statistics_json[key].items()
                 if isinstance(entry, dict) and "value" in entry and "best_constant" not in name}
    return {"version": 0.0, f"{problem}_constraints": suggested}


def violations(statistics_json: dict[str, Any], baseline_constraints: dict[str, Any]) -> list[dict[str, str]]:
    """The metrics that break a baseline's thresholds."""
    key = next(k for k in statistics_json if k.endswith("_metrics"))
    expected = baseline_constraints.get(key.removesuffix("_metrics") + "_constraints")
    if expected is None:
        raise ModelQualityError(f"the baseline constraints have no {key.removesuffix('_metrics')}_constraints: "
                                "they were suggested for another problem type")
    found = []
    for name, rule in sorted(expected.items()):
        entry = statistics_json[key].get(name)
        if not isinstance(entry, dict):
            continue
        value, threshold, operator = entry["value"], float(rule["threshold"]), rule.get("comparison_operator")
        broken = {"LessThanThreshold": value < threshold, "GreaterThanThreshold": value > threshold,
                  "LessThanOrEqualToThreshold": value <= threshold,
                  "GreaterThanOrEqualToThreshold": value >= threshold}.get(operator)
        if broken is None:
            raise ModelQualityError(f"constraint {name}: comparison_operator {operator!r} is not one the analyzer "
                                    "knows")
        if broken:
            found.append({"metric_name": name, "constraint_check_type": operator,
                          "description": f"Metric {name} with {value:.6g} was {operator} {threshold:.6g}"})
    return found
