"""Bias metrics as Clarify computes them, with ``smclarify``: the pre-training metrics of a dataset (DATA_BIAS),
for every facet the analysis config names, in ``analysis.json``'s ``pre_training_bias_metrics`` shape."""

from __future__ import annotations

from typing import Any

import pandas as pd


class AnalysisConfigError(Exception):
    """The analysis config asks for something the dataset does not have; says which field."""


def column(frame: pd.DataFrame, name_or_index: Any, field: str) -> str:
    """The name of the column a config field names (by header, or by position in a dataset without one)."""
    if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
        if not 0 <= name_or_index < frame.shape[1]:
            raise AnalysisConfigError(f"{field}: column {name_or_index} is beyond the dataset's {frame.shape[1]}")
        return frame.columns[name_or_index]
    if name_or_index not in frame.columns:
        raise AnalysisConfigError(f"{field}: {name_or_index!r} is not a column of the dataset (headers: "
                                  f"{', '.join(map(str, frame.columns[:20]))})")
    return name_or_index


def _methods(config: dict[str, Any], stage: str) -> list[str]:
    chosen = config.get("methods", {}).get(stage, {}).get("methods", "all")
    return ["all"] if chosen == "all" else list(chosen)


def pre_training(frame: pd.DataFrame, config: dict[str, Any]) -> dict[str, Any]:
    """``pre_training_bias_metrics`` of the dataset: per facet, per facet value, every metric asked for."""
    from smclarify.bias import report

    label = column(frame, config.get("label"), "label")
    positive = config.get("label_values_or_threshold")
    if not positive:
        raise AnalysisConfigError("label_values_or_threshold: the positive label values (or threshold) are required")
    group = config.get("group_variable")
    group_series = frame[column(frame, group, "group_variable")] if group is not None else None
    label_column = report.LabelColumn(label, frame[label], positive)
    facets: dict[str, Any] = {}
    for index, facet in enumerate(config.get("facet") or []):
        name = column(frame, facet.get("name_or_index"), f"facet[{index}].name_or_index")
        features = frame.drop(columns=[label])
        facets[str(name)] = report.bias_report(features, report.FacetColumn(name, facet.get("value_or_threshold")),
                                               label_column, report.StageType.PRE_TRAINING,
                                               metrics=_methods(config, "pre_training_bias"),
                                               group_variable=group_series)
    if not facets:
        raise AnalysisConfigError("facet: name at least one facet (a sensitive feature) to measure bias on")
    return {"label": str(label), "label_value_or_threshold": ",".join(map(str, positive)), "facets": facets}
