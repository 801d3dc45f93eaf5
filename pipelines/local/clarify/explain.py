"""Explainability as Clarify computes it: SHAP's Kernel explainer over the model's predictions, with the
config's ``baseline`` rows (else k-means centres of the data, ``num_clusters``), ``num_samples`` and ``use_logit``,
every row explained and the values aggregated per feature (``agg_method``: ``mean_abs``, ``median`` or
``mean_sq``) into ``analysis.json``'s ``explanations.kernel_shap``; and feature-attribution drift, the nDCG of a
new ranking of the features against a baseline's."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from pipelines.local.clarify.bias import AnalysisConfigError

LABEL = "label0"  # Clarify's name for a model's only output
DEFAULT_CLUSTERS = 10
NDCG_THRESHOLD = 0.9  # Clarify's: a ranking this far from the baseline's is feature-attribution drift
AGGREGATE = {"mean_abs": lambda v: np.mean(np.abs(v), axis=0), "median": lambda v: np.median(v, axis=0),
             "mean_sq": lambda v: np.mean(np.square(v), axis=0)}


def explanations(features: pd.DataFrame, predict: Callable[[np.ndarray], np.ndarray],
                 config: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """(``explanations`` of analysis.json, every row's SHAP values)."""
    import shap

    settings = config.get("methods", {}).get("shap", {})
    agg = settings.get("agg_method", "mean_abs")
    if agg not in AGGREGATE:
        raise AnalysisConfigError(f"methods.shap.agg_method {agg!r} must be one of {', '.join(AGGREGATE)}")
    data = features.to_numpy(dtype=float)
    baseline = settings.get("baseline")
    if isinstance(baseline, str):
        raise AnalysisConfigError("methods.shap.baseline: an S3 URI of baseline rows has no local form; give the "
                                  "rows in the config")
    background = (np.asarray(baseline, dtype=float) if baseline
                  else shap.kmeans(data, min(int(settings.get("num_clusters") or DEFAULT_CLUSTERS), len(data))))
    np.random.seed(int(settings.get("seed", 0)))
    explainer = shap.KernelExplainer(predict, background, link="logit" if settings.get("use_logit") else "identity")
    values = np.asarray(explainer.shap_values(data, nsamples=settings.get("num_samples") or "auto", silent=True))
    global_values = AGGREGATE[agg](values)
    expected = float(np.ravel(explainer.expected_value)[0])
    return ({"kernel_shap": {LABEL: {"global_shap_values": {str(name): float(value) for name, value in
                                                            zip(features.columns, global_values)},
                                     "expected_value": expected}}}, values)


def ndcg(now: dict[str, float], baseline: dict[str, float]) -> float:
    """How closely the features ranked by ``now`` follow their ranking by ``baseline`` (1: the same order), the
    baseline's values as the relevance of each feature."""
    relevance = {name: abs(value) for name, value in baseline.items()}
    ranked = sorted(now, key=lambda name: -abs(now[name]))
    ideal = sorted(relevance.values(), reverse=True)
    gain = sum(relevance.get(name, 0.0) / np.log2(rank + 2) for rank, name in enumerate(ranked))
    best = sum(value / np.log2(rank + 2) for rank, value in enumerate(ideal))
    return float(gain / best) if best else 1.0


def violations(analysis: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``feature_attribution_drift_check`` violation per label whose ranking drifted from the baseline's."""
    found = []
    now = analysis.get("explanations", {}).get("kernel_shap", {})
    before = baseline.get("explanations", {}).get("kernel_shap", {})
    for label, entry in sorted(now.items()):
        if label not in before:
            continue
        score = ndcg(entry["global_shap_values"], before[label]["global_shap_values"])
        if score < NDCG_THRESHOLD:
            found.append({"label": label, "metric_name": "shap", "constraint_check_type":
                          "feature_attribution_drift_check", "description": f"Feature attribution drift {score:.4g} "
                          f"is below the threshold {NDCG_THRESHOLD} (nDCG of the features' ranking against the "
                          "baseline's)"})
    return found
