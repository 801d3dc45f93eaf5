"""Bias drift, as Clarify's monitoring checks it: a metric violates its baseline when its value is further from
the value of no bias than the baseline's was (1 for disparate impact, 0 for every other metric)."""

from __future__ import annotations

import math
from typing import Any

NO_BIAS = {"DI": 1.0}
TOLERANCE = 1e-9


def violations(analysis: dict[str, Any], baseline: dict[str, Any], section: str) -> list[dict[str, Any]]:
    """The ``bias_drift_check`` violations of ``analysis``'s ``section`` against ``baseline``'s."""
    found = []
    now, before = analysis.get(section, {}).get("facets", {}), baseline.get(section, {}).get("facets", {})
    for facet, entries in sorted(now.items()):
        baseline_entries = {str(e.get("value_or_threshold")): e for e in before.get(facet, [])}
        for entry in entries:
            value_or_threshold = str(entry.get("value_or_threshold"))
            baseline_metrics = {m["name"]: m.get("value")
                                for m in baseline_entries.get(value_or_threshold, {}).get("metrics", [])}
            for metric in entry.get("metrics", []):
                name, value, limit = metric["name"], metric.get("value"), baseline_metrics.get(metric["name"])
                if not (_number(value) and _number(limit)):  # a metric that could not be computed: nothing to compare
                    continue
                ideal = NO_BIAS.get(name, 0.0)
                if abs(value - ideal) > abs(limit - ideal) + TOLERANCE:
                    found.append({"facet": facet, "facet_value": value_or_threshold, "metric_name": name,
                                  "constraint_check_type": "bias_drift_check",
                                  "description": f"Value {value:.6g} does not meet the constraint requirement: the "
                                                 f"baseline's {limit:.6g} is closer to {ideal:g}"})
    return found


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
