"""Data quality, as Model Monitor's analyzer computes it: a profile of every feature (inferred type,
completeness, numerical statistics with a 10-bucket distribution, string statistics with categorical counts),
the ``statistics.json`` and suggested ``constraints.json`` of a baseline, and the ``constraint_violations.json``
of data checked against one.

Read in two passes of chunks (counts and bounds, then the distribution), so any size of input fits. Where the
analyzer uses Deequ's KLL sketches, this computes exact bucket counts and writes no sketch (the step's
not-enforced report says so)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

BUCKETS = 10  # the analyzer's distribution buckets (not configurable there either)
MAX_DISTINCT = 10_000  # string values counted one by one; beyond, distinct_count is a lower bound
MAX_CATEGORICAL_BUCKETS = 1000
MAX_DOMAIN = 20  # a string feature with at most this many values gets a domain constraint
MONITORING_CONFIG = {"evaluate_constraints": "Enabled", "emit_metrics": "Enabled", "datatype_check_threshold": 1.0,
                     "domain_content_threshold": 1.0, "distribution_constraints": {
                         "perform_comparison": "Enabled", "comparison_threshold": 0.1, "comparison_method": "Robust",
                         "categorical_comparison_threshold": 0.1, "categorical_drift_method": "LInfinity"}}
_INTEGRAL = r"[+-]?\d+"

Chunks = Callable[[], Iterator[pd.DataFrame]]


@dataclass
class Feature:
    """What one pass (or two) over a column found."""

    name: str
    missing: int = 0
    integral: int = 0
    fractional: int = 0
    strings: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = np.inf
    high: float = -np.inf
    values: Counter = field(default_factory=Counter)
    counts: list[int] = field(default_factory=list)  # per bucket of ``edges``
    edges: list[float] = field(default_factory=list)

    @property
    def present(self) -> int:
        return self.integral + self.fractional + self.strings

    @property
    def numbers(self) -> int:
        return self.integral + self.fractional

    @property
    def inferred_type(self) -> str:
        if self.present == 0:
            return "Unknown"
        return "String" if self.strings else "Fractional" if self.fractional else "Integral"


def profile(read: Chunks, edges: dict[str, list[float]] | None = None) -> tuple[int, dict[str, Feature]]:
    """(row count, features by name) of a dataset; numeric distributions over ``edges`` where given (a
    baseline's buckets), else over 10 equal buckets between each feature's minimum and maximum."""
    rows, features = 0, {}
    for chunk in read():
        rows += len(chunk)
        for name in chunk.columns:
            _count(features.setdefault(name, Feature(name)), chunk[name])
    for feature in features.values():
        if feature.numbers:
            feature.edges = (edges or {}).get(feature.name) or _equal_edges(feature.low, feature.high)
            feature.counts = [0] * (len(feature.edges) - 1)
    if any(f.numbers for f in features.values()):
        for chunk in read():
            for feature in features.values():
                if feature.numbers and feature.name in chunk:
                    _bucket(feature, chunk[feature.name])
    return rows, features


def _count(feature: Feature, column: pd.Series) -> None:
    present = column.dropna().astype(str)
    feature.missing += len(column) - len(present)
    numbers = pd.to_numeric(present, errors="coerce")
    numeric = numbers.notna()
    integral = present[numeric].str.fullmatch(_INTEGRAL)
    feature.integral += int(integral.sum())
    feature.fractional += int(numeric.sum() - integral.sum())
    feature.strings += int((~numeric).sum())
    found = numbers[numeric].to_numpy(dtype=float)
    if found.size:
        feature.total += float(found.sum())
        feature.squares += float(np.square(found).sum())
        feature.low, feature.high = min(feature.low, float(found.min())), max(feature.high, float(found.max()))
    for value, count in present.value_counts().items():
        if value in feature.values or len(feature.values) < MAX_DISTINCT:
            feature.values[value] += int(count)


def _equal_edges(low: float, high: float) -> list[float]:
    if low == high:
        return [low, high]
    return [float(x) for x in np.linspace(low, high, BUCKETS + 1)]


def _bucket(feature: Feature, column: pd.Series) -> None:
    numbers = pd.to_numeric(column.dropna().astype(str), errors="coerce").dropna().to_numpy(dtype=float)
    # values beyond a baseline's range fall in its first or last bucket
    inner = np.asarray(feature.edges[1:-1], dtype=float)
    counts = np.bincount(np.searchsorted(inner, numbers, side="right"), minlength=len(feature.counts))
    feature.counts = [a + int(b) for a, b in zip(feature.counts, counts)]


def statistics(rows: int, features: dict[str, Feature]) -> dict[str, Any]:
    """``statistics.json`` of a profiled dataset."""
    return {"version": 0.0, "dataset": {"item_count": rows},
            "features": [_feature_statistics(f) for f in features.values()]}


def _feature_statistics(feature: Feature) -> dict[str, Any]:
    common = {"num_present": feature.present, "num_missing": feature.missing}
    kind = feature.inferred_type
    if kind in ("Integral", "Fractional"):
        mean = feature.total / feature.numbers
        variance = max(0.0, feature.squares / feature.numbers - mean * mean)
        buckets = [{"lower_bound": low, "upper_bound": high, "count": count}
                   for low, high, count in zip(feature.edges, feature.edges[1:], feature.counts)]
        return {"name": feature.name, "inferred_type": kind, "numerical_statistics": {
            "common": common, "mean": mean, "sum": feature.total, "std_dev": variance ** 0.5, "min": feature.low,
            "max": feature.high, "distribution": {"kll": {"buckets": buckets}}}}
    top = feature.values.most_common(MAX_CATEGORICAL_BUCKETS)
    return {"name": feature.name, "inferred_type": kind, "string_statistics": {
        "common": common, "distinct_count": float(len(feature.values)),
        "distribution": {"categorical": {"buckets": [{"value": value, "count": count} for value, count in top]}}}}


def constraints(rows: int, features: dict[str, Feature]) -> dict[str, Any]:
    """The ``constraints.json`` suggested for a profiled dataset."""
    suggested = []
    for feature in features.values():
        entry: dict[str, Any] = {"name": feature.name, "inferred_type": feature.inferred_type,
                                 "completeness": feature.present / rows if rows else 0.0}
        if feature.inferred_type in ("Integral", "Fractional"):
            entry["num_constraints"] = {"is_non_negative": feature.low >= 0}
        elif feature.inferred_type == "String" and len(feature.values) <= MAX_DOMAIN:
            entry["string_constraints"] = {"domains": sorted(feature.values)}
        suggested.append(entry)
    return {"version": 0.0, "features": suggested, "monitoring_config": MONITORING_CONFIG}


def violations(rows: int, features: dict[str, Feature], baseline_statistics: dict[str, Any],
               baseline_constraints: dict[str, Any]) -> list[dict[str, str]]:
    """What breaks the baseline's constraints: missing and extra columns, data types, completeness, values out
    of a domain, and distributions drifted from the baseline's further than its thresholds allow."""
    config = {**MONITORING_CONFIG, **baseline_constraints.get("monitoring_config", {})}
    if config.get("evaluate_constraints") == "Disabled":
        return []
    found: list[dict[str, str]] = []
    expected = {c["name"]: c for c in baseline_constraints.get("features", [])}
    statistics_of = {s["name"]: s for s in baseline_statistics.get("features", [])}
    for name in expected.keys() - features.keys():
        found.append(_violation(name, "missing_column_check", f"Baseline feature {name} is not in the data "
                                f"({len(features)} columns, the baseline has {len(expected)})"))
    for name in features.keys() - expected.keys():
        found.append(_violation(name, "extra_column_check", f"Feature {name} is not in the baseline "
                                f"({len(features)} columns, the baseline has {len(expected)})"))
    for name, constraint in expected.items():
        if name in features:
            found += _feature_violations(features[name], rows, constraint, statistics_of.get(name), config)
    return sorted(found, key=lambda v: (v["feature_name"], v["constraint_check_type"]))


def _feature_violations(feature: Feature, rows: int, constraint: dict[str, Any], baseline: dict[str, Any] | None,
                        config: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    kind = constraint.get("inferred_type")
    matching = {"Integral": feature.integral, "Fractional": feature.numbers}.get(kind, feature.present)
    share = matching / feature.present if feature.present else 1.0
    if share < float(config["datatype_check_threshold"]):
        found.append(_violation(feature.name, "data_type_check", f"Data type match requirement is not met: expected "
                                f"{kind} for {float(config['datatype_check_threshold']):.1%} of the values, found "
                                f"{share:.2%}"))
    completeness = feature.present / rows if rows else 1.0
    if "completeness" in constraint and completeness < float(constraint["completeness"]):
        found.append(_violation(feature.name, "completeness_check", f"Data completeness requirement is not met: "
                                f"expected >= {float(constraint['completeness']):.2%}, found {completeness:.2%}"))
    domain = constraint.get("string_constraints", {}).get("domains")
    if domain is not None and feature.present:
        allowed = set(domain)
        inside = sum(count for value, count in feature.values.items() if value in allowed) / feature.present
        if inside < float(config["domain_content_threshold"]):
            found.append(_violation(feature.name, "categorical_values_check", f"{1 - inside:.2%} of the values are "
                                    f"not in the baseline's domain of {len(domain)} values"))
    drift = config.get("distribution_constraints", {})
    if baseline is not None and drift.get("perform_comparison", "Enabled") == "Enabled":
        distance, threshold = _distance(feature, baseline, drift)
        if distance is not None and distance > threshold:
            found.append(_violation(feature.name, "baseline_drift_check", f"Baseline drift distance {distance:.4g} "
                                    f"exceeds the threshold {threshold:g}"))
    return found


def _distance(feature: Feature, baseline: dict[str, Any], drift: dict[str, Any]) -> tuple[float | None, float]:
    """The L-infinity distance between the baseline's distribution and the data's: of the cumulative bucket
    shares for numbers, of the value shares for strings."""
    numeric = baseline.get("numerical_statistics", {}).get("distribution", {}).get("kll", {}).get("buckets")
    if numeric and feature.counts:
        base = np.cumsum([b["count"] for b in numeric], dtype=float)
        now = np.cumsum(feature.counts, dtype=float)
        if base[-1] == 0 or now[-1] == 0 or len(base) != len(now):
            return None, 0.0
        return float(np.max(np.abs(base / base[-1] - now / now[-1]))), float(drift.get("comparison_threshold", 0.1))
    categorical = baseline.get("string_statistics", {}).get("distribution", {}).get("categorical", {}).get("buckets")
    if categorical and feature.present:
        total = sum(b["count"] for b in categorical) or 1
        base_share = {str(b["value"]): b["count"] / total for b in categorical}
        now_share = {value: count / feature.present for value, count in feature.values.items()}
        distance = max(abs(base_share.get(v, 0.0) - now_share.get(v, 0.0)) for v in base_share.keys() | now_share)
        return distance, float(drift.get("categorical_comparison_threshold", 0.1))
    return None, 0.0


def edges_of(baseline_statistics: dict[str, Any]) -> dict[str, list[float]]:
    """The bucket edges of every numeric feature of a baseline, so data is bucketed as the baseline was."""
    found = {}
    for feature in baseline_statistics.get("features", []):
        buckets = feature.get("numerical_statistics", {}).get("distribution", {}).get("kll", {}).get("buckets")
        if buckets:
            found[feature["name"]] = [buckets[0]["lower_bound"], *(b["upper_bound"] for b in buckets)]
    return found


def _violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}
