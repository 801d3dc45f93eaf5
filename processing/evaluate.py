"""Score the test split with the trained model (or read the scores a batch transform of it wrote, for a model
of any image) and write evaluation.json plus charts.

Runs inside a SageMaker processing job (the XGBoost image: xgboost, numpy, pandas,
matplotlib) and, unchanged, in the local engine. Output, under --output-dir:
  evaluation.json   SageMaker model quality format (binary_classification_metrics with
                    value/standard_deviation) plus lead_scoring_metrics (F1-best
                    threshold, lift and capture rate per decile)
  roc.png, precision_recall.png, lift.png, report.html
Every file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import pickle
import sys
import tempfile
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

BOOTSTRAP_SAMPLES = 100
LIB_DIR = "/opt/ml/processing/input/lib"  # where the Evaluate step ships archives.py beside this script
TRACKING_LIB_DIR = "/opt/ml/processing/input/lib-tracking"  # and mlflow_run.py
CURVE_POINTS = 101


class EvaluationError(Exception):
    """The model or the test data cannot be evaluated; the message says why."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", default="/opt/ml/processing/model")
    p.add_argument("--test-dir", default="/opt/ml/processing/test")
    p.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    p.add_argument("--predictions-dir", default="", help="label,score lines a batch transform of the test split "
                   "wrote (any model, any image): evaluated instead of scoring --test-dir with --model-dir")
    p.add_argument("--threshold", type=float, default=0.5, help="score above which a lead is predicted positive")
    p.add_argument("--seed", type=int, default=42, help="seed of the bootstrap for standard deviations")
    p.add_argument("--model-uri", default="", help="where the model evaluated is (named in the report)")
    p.add_argument("--training-job", default="", help="the training job that made it (named in the report)")
    p.add_argument("--test-uri", default="", help="where the test split is (named in the report)")
    p.add_argument("--source-revision", default="", help="the code's revision (named in the report)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- loading

def shipped_module(name: str):
    """A module of the project's ``processing`` package (the one archive extractor, the job's MLflow run):
    imported from the package here and in the engine, from the folder the Evaluate step ships it to when this
    file runs as a job's script."""
    import importlib

    try:
        return importlib.import_module("processing." + name)
    except ImportError:
        for folder in (LIB_DIR, TRACKING_LIB_DIR):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        return importlib.import_module(name)


def import_xgboost():
    """The xgboost module, imported without scikit-learn. xgboost imports scikit-learn when it is installed
    (it is, in the SKLearn image and locally) only for its scikit-learn estimator classes, which loading,
    evaluating, training and serving a Booster never use; that import is 1.4 s of the 2.4 s a job program
    spends importing xgboost and pandas on this 2-core machine. scikit-learn stays importable afterwards."""
    if "xgboost" not in sys.modules and "sklearn" not in sys.modules:
        sys.modules["sklearn"] = None  # makes xgboost's own `import sklearn` fail, as if it were absent
        try:
            import xgboost
        finally:
            del sys.modules["sklearn"]
    import xgboost
    return xgboost


def load_model(model_dir: str):
    """(Booster, calibration or None) in model_dir (model.tar.gz holding xgboost-model, or the file itself);
    the calibration is the ``calibration.json`` our own image (container/) writes beside its booster."""
    xgb = import_xgboost()

    archives = [f for f in sorted(os.listdir(model_dir)) if f.endswith(".tar.gz")]
    with tempfile.TemporaryDirectory(prefix="model-") as extract_dir:  # removed however loading ends
        if archives:
            archive = os.path.join(model_dir, archives[0])
            archives = shipped_module("archives")
            try:
                archives.extract(archive, extract_dir)
            except archives.ArchiveError as exc:
                raise EvaluationError(str(exc))
            search_dir = extract_dir
        else:
            search_dir = model_dir
        candidates = [os.path.join(root, f) for root, _, files in os.walk(search_dir) for f in sorted(files)
                      if not f.startswith(".")]
        if not candidates:
            raise EvaluationError("no model file found in %s" % model_dir)
        preferred = [c for c in candidates if os.path.basename(c) == "xgboost-model"] or candidates
        try:
            booster = load_booster_file(preferred[0])
        except (xgb.core.XGBoostError, pickle.UnpicklingError) as exc:
            raise EvaluationError("model file %s could not be loaded by XGBoost %s: %s"
                                  % (os.path.basename(preferred[0]), xgb.__version__, str(exc).splitlines()[0]))
        calibration = os.path.join(os.path.dirname(preferred[0]), "calibration.json")
        if not os.path.isfile(calibration):
            return booster, None
        try:
            with open(calibration, encoding="utf-8") as handle:
                return booster, json.load(handle)
        except (OSError, ValueError) as exc:
            raise EvaluationError("calibration.json beside %s is not readable: %s"
                                  % (os.path.basename(preferred[0]), exc))


def calibrated(spec, scores, margins):
    """Scores as the model serves them: with our image's calibration (the format container/calibration.py
    writes: isotonic thresholds, or Platt's a and b on the margin), else as XGBoost gives them. This script
    runs alone in the processing image, so it reads that format itself."""
    if not spec or spec.get("method") == "none":
        return scores
    if spec.get("method") == "isotonic":
        return np.interp(scores, spec["x"], spec["y"])
    if spec.get("method") == "platt":
        return 1.0 / (1.0 + np.exp(-(spec["a"] * margins + spec["b"])))
    raise EvaluationError("calibration.json: unknown method %r" % spec.get("method"))


class _PickledBooster:
    """Stands in for ``xgboost.core.Booster`` while a model file is unpickled: it takes the pickled state and
    nothing else, so a pickle that calls the class with arguments (``Booster(model_file=PATH)`` loads any file
    on the machine) fails instead of running."""

    def __setstate__(self, state):
        self.state = state


class _BoosterUnpickler(pickle.Unpickler):
    """Unpickles the state of an XGBoost Booster and nothing else: a model file is data, never code to run."""

    CLASSES = {("xgboost.core", "Booster"): _PickledBooster, ("builtins", "bytearray"): bytearray}

    def find_class(self, module, name):
        if (module, name) not in self.CLASSES:
            raise pickle.UnpicklingError("the pickled model refers to %s.%s; only an XGBoost Booster is accepted"
                                         % (module, name))
        return self.CLASSES[(module, name)]


_PLAIN = (type(None), bool, int, float, str)


def _booster_state(loaded):
    """The pickled Booster's state, checked: the serialised model as bytes, and plain attributes beside it."""
    state = getattr(loaded, "state", None) if isinstance(loaded, _PickledBooster) else None
    if not isinstance(state, dict) or not isinstance(state.get("handle"), (bytes, bytearray)):
        raise pickle.UnpicklingError("the pickled model is not an XGBoost Booster")
    for key, value in state.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if key != "handle" and (not isinstance(key, str) or not all(isinstance(v, _PLAIN) for v in values)):
            raise pickle.UnpicklingError("the pickled Booster holds an unexpected attribute %r" % (key,))
    return dict(state, handle=bytearray(state["handle"]))


def load_booster_file(path):
    """An ``xgboost-model`` file as the built-in images write it: a pickled Booster (images up to 1.2-2)
    or XGBoost's own format (1.3-1 and later); the container's serving tries pickle first too."""
    xgb = import_xgboost()

    with open(path, "rb") as handle:
        pickled = handle.read(1) == b"\x80"  # every pickle protocol >= 2 starts with PROTO
        if pickled:
            handle.seek(0)
            try:
                state = _booster_state(_BoosterUnpickler(handle).load())
            except (TypeError, ValueError, EOFError, AttributeError, IndexError, KeyError) as exc:
                raise pickle.UnpicklingError("the pickled model is not an XGBoost Booster (%s)" % exc) from None
            booster = xgb.Booster.__new__(xgb.Booster)
            booster.__setstate__(state)
            return booster
    booster = xgb.Booster()
    with warnings.catch_warnings():  # newer XGBoost warns that a file without extension is guessed
        warnings.simplefilter("ignore")
        booster.load_model(path)
    return booster


def load_test(test_dir: str) -> Tuple[np.ndarray, np.ndarray]:
    """Labels and features of the headerless, label-first test split."""
    data = _label_first_rows(test_dir, "the test split")
    return data[:, 0], data[:, 1:]


def load_predictions(predictions_dir: str) -> Tuple[np.ndarray, np.ndarray]:
    """Labels and scores from the ``label,score`` lines a batch transform of the test split wrote (its input's
    label joined to the model's answer), every file in name order."""
    data = _label_first_rows(predictions_dir, "the predictions")
    if data.shape[1] != 2:
        raise EvaluationError("the predictions in %s have %d columns; each line must be label,score (the "
                              "transform's JoinSource Input with OutputFilter $[0,-1])" % (predictions_dir, data.shape[1]))
    scores = data[:, 1]
    if not (np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()):
        raise EvaluationError("the predictions in %s have scores outside [0, 1]: the model must answer one "
                              "probability per row" % predictions_dir)
    return data[:, 0], scores


def _label_first_rows(folder: str, what: str) -> np.ndarray:
    """The headerless numeric CSV rows of every file in ``folder``; EvaluationError naming the file and line of a
    row that is not numbers, or if the labels are not 0 and 1 of both classes."""
    import pandas as pd

    files = [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if not f.startswith(".")]
    frames = []
    for path in (f for f in files if os.path.getsize(f) > 0):
        try:
            frame = pd.read_csv(path, header=None)
        except pd.errors.ParserError as exc:  # rows of different widths
            raise EvaluationError("%s: %s" % (path, str(exc).replace("C error: ", ""))) from None
        bad = frame.apply(pd.to_numeric, errors="coerce").isna() & frame.notna()
        if bad.to_numpy().any():
            raise EvaluationError("%s: line %d is not numbers" % (path, int(bad.any(axis=1).to_numpy().argmax()) + 1))
        frames.append(frame)
    if not frames:
        raise EvaluationError("%s in %s is empty" % (what, folder))
    data = pd.concat(frames, ignore_index=True).to_numpy(dtype=np.float64)
    labels = data[:, 0]
    if not np.isin(labels, (0.0, 1.0)).all():
        raise EvaluationError("%s has labels other than 0 and 1" % what)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise EvaluationError("%s has only label %d (%d rows): AUC and recall are undefined; "
                              "the data needs both classes" % (what, int(classes[0]), len(labels)))
    return data


# ---------------------------------------------------------------- metrics

class Ranking:
    """Scores sorted once, with their runs of ties, so the AUC of any row weighting (a bootstrap resample as
    counts of each row) needs no new sort."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray):
        self.order = np.argsort(scores, kind="mergesort")
        sorted_scores = scores[self.order]
        self.group = np.concatenate(([0], np.cumsum(np.diff(sorted_scores) != 0))).astype(np.int64)
        self.groups = int(self.group[-1]) + 1
        self.positive = (labels[self.order] == 1).astype(np.float64)

    def auc(self, weights: np.ndarray) -> float:
        """Area under the ROC curve: P(positive scored above negative) + half P(tie), rows weighted."""
        w = weights[self.order]
        positives = np.bincount(self.group, weights=w * self.positive, minlength=self.groups)
        negatives = np.bincount(self.group, weights=w * (1 - self.positive), minlength=self.groups)
        below = np.cumsum(negatives) - negatives
        return float(((positives * below).sum() + 0.5 * (positives * negatives).sum())
                     / (positives.sum() * negatives.sum()))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    return Ranking(labels, scores).auc(np.ones(len(labels)))


def log_loss(labels: np.ndarray, scores: np.ndarray, weights: Optional[np.ndarray] = None) -> float:
    p = np.clip(scores, 1e-15, 1 - 1e-15)
    return float(-np.average(labels * np.log(p) + (1 - labels) * np.log(1 - p), weights=weights))


def threshold_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float,
                      weights: Optional[np.ndarray] = None) -> Dict[str, float]:
    w = np.ones(len(labels)) if weights is None else weights
    predicted = scores >= threshold
    tp = float(np.sum(w[predicted & (labels == 1)]))
    fp = float(np.sum(w[predicted & (labels == 0)]))
    fn = float(np.sum(w[~predicted & (labels == 1)]))
    tn = float(np.sum(w[~predicted & (labels == 0)]))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / float(np.sum(w)), "precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def all_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float, weights: Optional[np.ndarray] = None,
                ranking: Optional[Ranking] = None) -> Dict[str, float]:
    w = np.ones(len(labels)) if weights is None else weights
    m = threshold_metrics(labels, scores, threshold, w)
    return {"auc": (ranking or Ranking(labels, scores)).auc(w), "accuracy": m["accuracy"],
            "precision": m["precision"], "recall": m["recall"], "f1": m["f1"], "log_loss": log_loss(labels, scores, w)}


def bootstrap_std(labels: np.ndarray, scores: np.ndarray, threshold: float, seed: int) -> Dict[str, float]:
    """Standard deviation of each metric over bootstrap resamples of the test set.

    A resample is the count of times each row was drawn: the metrics weight rows by it, which gives the
    values of the resampled arrays without building them or sorting again.
    """
    rng = np.random.RandomState(seed)
    ranking = Ranking(labels, scores)
    samples: Dict[str, List[float]] = {}
    n = len(labels)
    for _ in range(BOOTSTRAP_SAMPLES):
        counts = np.bincount(rng.randint(0, n, n), minlength=n).astype(np.float64)
        drawn_positives = counts[labels == 1].sum()
        if drawn_positives in (0, n):  # one class only: no AUC
            continue
        for name, value in all_metrics(labels, scores, threshold, counts, ranking).items():
            samples.setdefault(name, []).append(value)
    return {name: float(np.std(values)) for name, values in samples.items()}


def curves(labels: np.ndarray, scores: np.ndarray) -> Dict[str, List[float]]:
    """ROC and precision-recall curves at CURVE_POINTS score thresholds."""
    thresholds = np.quantile(scores, np.linspace(0, 1, CURVE_POINTS))[::-1]
    positives = labels.sum()
    negatives = len(labels) - positives
    fpr, tpr, precision, recall = [0.0], [0.0], [1.0], [0.0]
    for t in thresholds:
        predicted = scores >= t
        tp = float(np.sum(predicted & (labels == 1)))
        fp = float(np.sum(predicted & (labels == 0)))
        fpr.append(fp / negatives)
        tpr.append(tp / positives)
        precision.append(tp / (tp + fp) if tp + fp else 1.0)
        recall.append(tp / positives)
    fpr.append(1.0)
    tpr.append(1.0)
    return {"false_positive_rates": fpr, "true_positive_rates": tpr, "precisions": precision, "recalls": recall}


def best_f1(labels: np.ndarray, scores: np.ndarray) -> Dict[str, float]:
    """The score threshold that maximises F1, with its precision and recall."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_labels = labels[order]
    sorted_scores = scores[order]
    tp = np.cumsum(sorted_labels)
    predicted = np.arange(1, len(labels) + 1)
    # only cut between distinct scores
    last_of_run = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    precision = tp / predicted
    recall = tp / labels.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(last_of_run, f1, -1.0)
    i = int(np.argmax(f1))
    return {"threshold": float(sorted_scores[i]), "precision": float(precision[i]),
            "recall": float(recall[i]), "f1": float(f1[i])}


def deciles(labels: np.ndarray, scores: np.ndarray) -> List[Dict[str, float]]:
    """Lift and cumulative capture rate for each tenth of leads, best-scored first."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_labels = labels[order]
    base_rate = labels.mean()
    total_positives = labels.sum()
    edges = np.linspace(0, len(labels), 11).round().astype(int)
    rows = []
    for d in range(10):
        chunk = sorted_labels[edges[d]:edges[d + 1]]
        rate = float(chunk.mean()) if len(chunk) else 0.0
        rows.append({"decile": d + 1, "rows": int(len(chunk)), "positives": int(chunk.sum()),
                     "positive_rate": rate, "lift": rate / base_rate,
                     "cumulative_capture_rate": float(sorted_labels[:edges[d + 1]].sum() / total_positives)})
    return rows


def evaluate(labels: np.ndarray, scores: np.ndarray, threshold: float, seed: int) -> dict:
    """The whole evaluation.json document."""
    values = all_metrics(labels, scores, threshold)
    stds = bootstrap_std(labels, scores, threshold, seed)
    confusion = threshold_metrics(labels, scores, threshold)
    curve = curves(labels, scores)
    by_decile = deciles(labels, scores)
    metrics = {name: {"value": values[name], "standard_deviation": stds.get(name, 0.0)} for name in values}
    metrics["confusion_matrix"] = {
        "0": {"0": int(confusion["tn"]), "1": int(confusion["fp"])},
        "1": {"0": int(confusion["fn"]), "1": int(confusion["tp"])},
    }
    metrics["receiver_operating_characteristic_curve"] = {
        "false_positive_rates": curve["false_positive_rates"], "true_positive_rates": curve["true_positive_rates"]}
    metrics["precision_recall_curve"] = {"precisions": curve["precisions"], "recalls": curve["recalls"]}
    return {
        "binary_classification_metrics": metrics,
        "lead_scoring_metrics": {
            "test_auc_text": "%.4f" % values["auc"],  # for messages: a pipeline expression cannot format numbers
            "test_rows": int(len(labels)),
            "positive_rate": float(labels.mean()),
            "threshold": threshold,
            "f1_best_threshold": best_f1(labels, scores),
            "top_decile": {"lift": by_decile[0]["lift"], "capture_rate": by_decile[0]["cumulative_capture_rate"]},
            "deciles": by_decile,
        },
    }


# ---------------------------------------------------------------- report files

def _atomic_path(path: str) -> str:
    return os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))


def save_charts(report: dict, output_dir: str) -> List[str]:
    """ROC, precision-recall and lift charts as PNG files; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["binary_classification_metrics"]
    lead = report["lead_scoring_metrics"]
    roc = metrics["receiver_operating_characteristic_curve"]
    pr = metrics["precision_recall_curve"]
    charts = [
        ("roc.png", "ROC curve (AUC %.3f)" % metrics["auc"]["value"], "False positive rate", "True positive rate",
         roc["false_positive_rates"], roc["true_positive_rates"], [0, 1], [0, 1]),
        ("precision_recall.png", "Precision-recall curve", "Recall", "Precision",
         pr["recalls"], pr["precisions"], [0, 1], [lead["positive_rate"]] * 2),
    ]
    names = []
    for name, title, xlabel, ylabel, xs, ys, base_x, base_y in charts:
        fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
        ax.plot(xs, ys, color="#1f77b4", linewidth=2, label="model")
        ax.plot(base_x, base_y, color="grey", linestyle="--", linewidth=1, label="random")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="best")
        _save_figure(fig, os.path.join(output_dir, name))
        plt.close(fig)
        names.append(name)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.bar([d["decile"] for d in lead["deciles"]], [d["lift"] for d in lead["deciles"]], color="#1f77b4")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set(title="Lift by decile (top decile %.2fx)" % lead["top_decile"]["lift"], xlabel="Decile (best-scored first)",
           ylabel="Lift over base rate", xticks=range(1, 11))
    _save_figure(fig, os.path.join(output_dir, "lift.png"))
    plt.close(fig)
    return names + ["lift.png"]


def _save_figure(fig, path: str) -> None:
    tmp = _atomic_path(path)
    fig.savefig(tmp, format="png", bbox_inches="tight")
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    tmp = _atomic_path(path)
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def provenance_rows(provenance: dict) -> str:
    """The report's table of what it covers: the model, its training job, the test data, the code revision."""
    labels = (("model_uri", "Model artifact"), ("training_job", "Training job"), ("test_uri", "Test data"),
              ("source_revision", "Source revision"))
    return "".join("<tr><th>%s</th><td>%s</td></tr>" % (label, html.escape(provenance[key]))
                   for key, label in labels if provenance.get(key))


def html_report(report: dict, charts: List[str], provenance: Optional[dict] = None) -> str:
    """A one-page HTML report of the metrics and charts, and of what they cover (``provenance``)."""
    m = report["binary_classification_metrics"]
    lead = report["lead_scoring_metrics"]
    rows = "".join("<tr><td>%s</td><td>%.4f</td><td>%.4f</td></tr>" % (html.escape(k), m[k]["value"], m[k]["standard_deviation"])
                   for k in ("auc", "accuracy", "precision", "recall", "f1", "log_loss"))
    best = lead["f1_best_threshold"]
    decile_rows = "".join("<tr><td>%d</td><td>%d</td><td>%.2f%%</td><td>%.2f</td><td>%.1f%%</td></tr>" % (
        d["decile"], d["rows"], 100 * d["positive_rate"], d["lift"], 100 * d["cumulative_capture_rate"]) for d in lead["deciles"])
    images = "".join('<img src="%s" alt="%s">' % (html.escape(c), html.escape(c)) for c in charts)
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lead scoring model evaluation</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:32%%;margin-right:1%%}</style></head>
<body><h1>Lead scoring model evaluation</h1>
<table class="provenance">%s</table>
<p>The model is registered as a new version of its model package group if it passes the quality gate;
<code>model-registry describe</code> links each version to this report.</p>
<p>%d test leads, %.2f%% converted. Calling the top-scored 10%% of leads reaches %.1f%% of all conversions
(lift %.2fx over calling at random).</p>
<h2>Metrics (threshold %.2f; standard deviation from %d bootstrap resamples)</h2>
<table><tr><th>metric</th><th>value</th><th>std</th></tr>%s</table>
<p>Best-F1 threshold %.4f: precision %.4f, recall %.4f, F1 %.4f.</p>
<h2>Deciles</h2>
<table><tr><th>decile</th><th>leads</th><th>conversion</th><th>lift</th><th>cumulative capture</th></tr>%s</table>
<h2>Charts</h2>%s
</body></html>
""" % (provenance_rows(provenance or {}), lead["test_rows"], 100 * lead["positive_rate"], 100 * lead["top_decile"]["capture_rate"], lead["top_decile"]["lift"],
       lead["threshold"], BOOTSTRAP_SAMPLES, rows, best["threshold"], best["precision"], best["recall"], best["f1"],
       decile_rows, images)


def scored_by_the_model(model_dir: str, test_dir: str) -> Tuple[np.ndarray, np.ndarray]:
    """Labels of the test split and the XGBoost model's (calibrated) scores of its rows."""
    xgb = import_xgboost()

    booster, calibration = load_model(model_dir)
    labels, features = load_test(test_dir)
    expected = booster.num_features()
    if expected and features.shape[1] != expected:
        raise EvaluationError("the model expects %d features but the test split has %d" % (expected, features.shape[1]))
    matrix = xgb.DMatrix(features, missing=np.nan)
    scores = calibrated(calibration, booster.predict(matrix), booster.predict(matrix, output_margin=True))
    return labels, scores.astype(np.float64)


def run(args: argparse.Namespace) -> dict:
    """Evaluate the model on the test split (or the scores a transform of it wrote) and write every output file."""
    if args.predictions_dir:
        labels, scores = load_predictions(args.predictions_dir)
    else:
        labels, scores = scored_by_the_model(args.model_dir, args.test_dir)
    report = evaluate(labels, scores, args.threshold, args.seed)
    os.makedirs(args.output_dir, exist_ok=True)
    charts = save_charts(report, args.output_dir)
    provenance = {key: getattr(args, key) for key in ("model_uri", "training_job", "test_uri", "source_revision")}
    write_text(os.path.join(args.output_dir, "report.html"), html_report(report, charts, provenance))
    write_text(os.path.join(args.output_dir, "evaluation.json"), json.dumps(report, indent=2) + "\n")
    return report


def mlflow_metrics(report: dict) -> Dict[str, float]:
    """The report's numbers as MLflow metrics, named as the local engine's tracking names them."""
    found = {}
    for name, metric in report["binary_classification_metrics"].items():
        if isinstance(metric, dict) and "value" in metric:
            found["test_" + name] = float(metric["value"])
            if "standard_deviation" in metric:
                found["test_%s_std" % name] = float(metric["standard_deviation"])
    top = report["lead_scoring_metrics"]["top_decile"]
    found.update(top_decile_lift=float(top["lift"]), top_decile_capture_rate=float(top["capture_rate"]))
    return found


def log_to_mlflow(report: dict, output_dir: str, environ=os.environ) -> bool:
    """Log the test metrics and the report's files to the MLflow run the job's environment names (as the
    pipeline sets it for SageMaker managed MLflow); True if they were logged."""
    with shipped_module("mlflow_run").job_run("Evaluate", environ, "evaluation.json and the report are written "
                                              "as usual") as mlflow:
        if mlflow is None:
            return False
        mlflow.log_metrics(mlflow_metrics(report))
        mlflow.log_artifacts(output_dir, artifact_path="evaluation")
    return True


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except EvaluationError as exc:
        print("evaluate: %s" % exc, file=sys.stderr)
        return 1
    log_to_mlflow(report, args.output_dir)
    m = report["binary_classification_metrics"]
    lead = report["lead_scoring_metrics"]
    print("test AUC %.4f (std %.4f), F1 %.4f, top-decile lift %.2f, capture %.1f%%" % (
        m["auc"]["value"], m["auc"]["standard_deviation"], m["f1"]["value"], lead["top_decile"]["lift"],
        100 * lead["top_decile"]["capture_rate"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
