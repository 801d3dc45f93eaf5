"""What a version's quality and Clarify checks found, in a few words each, for the person who approves it: the
baselines and reports its ModelMetrics and DriftCheckBaselines name (Model Monitor's statistics and constraints,
Clarify's analysis), read through the registry of either target."""

from __future__ import annotations

import json
from typing import Any, Callable

# where a version names a check's file, and what to call it
CHECK_FILES = (
    ("ModelMetrics.ModelDataQuality.Statistics", "Data quality"),
    ("ModelMetrics.Bias.PreTrainingReport", "Data bias"),
    ("ModelMetrics.Bias.PostTrainingReport", "Model bias"),
    ("ModelMetrics.Explainability.Report", "Explainability"),
    ("DriftCheckBaselines.ModelDataQuality.Constraints", "Drift baseline: data quality"),
    ("DriftCheckBaselines.ModelQuality.Constraints", "Drift baseline: model quality"),
    ("DriftCheckBaselines.Bias.PreTrainingConstraints", "Drift baseline: data bias"),
    ("DriftCheckBaselines.Bias.PostTrainingConstraints", "Drift baseline: model bias"),
    ("DriftCheckBaselines.Explainability.Constraints", "Drift baseline: explainability"),
)
MOST_SHOWN = 5


def check_results(package: dict[str, Any], read_text: Callable[[str], str | None]) -> list[dict[str, str]]:
    """Each check file the version names: its title, URI and a one-line summary of what it holds."""
    found = []
    for path, title in CHECK_FILES:
        value: Any = package
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        uri = value.get("S3Uri") if isinstance(value, dict) else None
        if isinstance(uri, str) and uri:
            found.append({"title": title, "uri": uri, "summary": summarize(read_text(uri))})
    return found


def summarize(text: str | None) -> str:
    """One line saying what a Model Monitor or Clarify file holds."""
    try:
        content = json.loads(text) if text else None
    except ValueError:
        content = None
    if not isinstance(content, dict):
        return "unreadable (missing, or not JSON)"
    if "explanations" in content:
        return _explanations(content["explanations"])
    for section in ("post_training_bias_metrics", "pre_training_bias_metrics"):
        if section in content:
            return _bias(content[section])
    if "features" in content and "dataset" in content:
        return _statistics(content)
    if "features" in content:
        return f"constraints for {len(content['features'])} features"
    thresholds = next((v for k, v in content.items() if k.endswith("_constraints") and isinstance(v, dict)), None)
    if thresholds is not None:
        return "thresholds: " + ", ".join(f"{name} {rule.get('comparison_operator', '')} {_number(rule.get('threshold'))}"
                                          for name, rule in list(thresholds.items())[:MOST_SHOWN])
    metrics = next((v for k, v in content.items() if k.endswith("_metrics") and isinstance(v, dict)), None)
    if metrics is not None:
        return ", ".join(f"{name} {_number(entry.get('value'))}" for name, entry in list(metrics.items())
                         if isinstance(entry, dict) and "value" in entry)[:200]
    return "not a Model Monitor or Clarify file"


def _statistics(content: dict[str, Any]) -> str:
    features = content["features"]
    rows = content.get("dataset", {}).get("item_count", 0)
    incomplete = [f["name"] for f in features
                  if (f.get("numerical_statistics") or f.get("string_statistics") or {}).get("common", {}).get(
                      "num_missing")]
    return (f"{rows} rows, {len(features)} features ("
            + ", ".join(f"{f['name']}: {f.get('inferred_type')}" for f in features[:MOST_SHOWN])
            + (", ..." if len(features) > MOST_SHOWN else "") + ")"
            + (f"; missing values in {', '.join(incomplete[:MOST_SHOWN])}" if incomplete else "; no missing values"))


def _bias(section: dict[str, Any]) -> str:
    parts = []
    for facet, entries in section.get("facets", {}).items():
        for entry in entries:
            metrics = ", ".join(f"{m['name']} {_number(m.get('value'))}" for m in entry.get("metrics", [])
                                if isinstance(m.get("value"), (int, float)))
            parts.append(f"{facet} = {entry.get('value_or_threshold')}: {metrics}")
    return "; ".join(parts) or "no facet"


def _explanations(explanations: dict[str, Any]) -> str:
    for label, entry in explanations.get("kernel_shap", {}).items():
        values = entry.get("global_shap_values", {})
        top = sorted(values.items(), key=lambda item: -abs(item[1]))[:MOST_SHOWN]
        return "top features by SHAP: " + ", ".join(f"{name} {_number(value)}" for name, value in top)
    return "no SHAP values"


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
