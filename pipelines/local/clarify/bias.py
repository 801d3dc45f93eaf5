"""Bias metrics as Clarify computes them, with ``smclarify``: the pre-training metrics of a dataset (DATA_BIAS) and
the post-training metrics of a model's predictions (MODEL_BIAS), for every facet the analysis config names, in
``analysis.json``'s ``pre_training_bias_metrics`` and ``post_training_bias_metrics`` shapes."""

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
    return _metrics(frame, config, None)


def post_training(frame: pd.DataFrame, predicted: pd.Series, config: dict[str, Any]) -> dict[str, Any]:
    """``post_training_bias_metrics`` of the model's predicted labels against the dataset's labels."""
    return _metrics(frame, config, predicted)


def _metrics(frame: pd.DataFrame, config: dict[str, Any], predicted: pd.Series | None) -> dict[str, Any]:
    from smclarify.bias import report

    label = column(frame, config.get("label"), "label")
    positive = config.get("label_values_or_threshold")
    if not positive:
        raise AnalysisConfigError("label_values_or_threshold: the positive label values (or threshold) are required")
    group = config.get("group_variable")
    group_series = frame[column(frame, group, "group_variable")] if group is not None else None
    label_column = report.LabelColumn(label, frame[label], positive)
    stage, methods = (report.StageType.PRE_TRAINING, "pre_training_bias") if predicted is None else (
        report.StageType.POST_TRAINING, "post_training_bias")
    predicted_column = None if predicted is None else report.LabelColumn("predicted_label", predicted, positive)
    facets: dict[str, Any] = {}
    for index, facet in enumerate(config.get("facet") or []):
        name = column(frame, facet.get("name_or_index"), f"facet[{index}].name_or_index")
        features = frame.drop(columns=[label])
        facets[str(name)] = report.bias_report(features, report.FacetColumn(name, facet.get("value_or_threshold")),
                                               label_column, stage, predicted_label_column=predicted_column,
                                               metrics=_methods(config, methods), group_variable=group_series)
    if not facets:
        raise AnalysisConfigError("facet: name at least one facet (a sensitive feature) to measure bias on")
    return {"label": str(label), "label_value_or_threshold": ",".join(map(str, positive)), "facets": facets}


def predicted_labels(scores: list[float], config: dict[str, Any]) -> pd.Series:
    """The model's predicted labels: its scores over the config's ``probability_threshold`` (0.5 by default)
    are the first positive label value, the others 0, as Clarify labels a model's probabilities."""
    threshold = float(config.get("probability_threshold", 0.5))
    positive = (config.get("label_values_or_threshold") or [1])[0]
    return pd.Series([positive if score > threshold else 0 for score in scores], name="predicted_label")
