"""The job program of a local QualityCheck step: Model Monitor's analyzer contract, read from the environment as
the analyzer reads it (``dataset_format``, ``dataset_source``, ``output_path``, ``analysis_type``,
``problem_type``, ``inference_attribute``, ``probability_attribute``, ``ground_truth_attribute``,
``probability_threshold_attribute``, and ``baseline_statistics`` / ``baseline_constraints`` when data is
checked against a baseline).

``python3 -m pipelines.local.monitoring.analyzer`` writes ``statistics.json`` and ``constraints.json`` (and
``constraint_violations.json`` when checking) to ``output_path``, and the processing job's exit message to
``/opt/ml/output/message`` (``Completed: ...`` or ``CompletedWithViolations: ...``). A dataset or setting it
cannot use exits 1 with the reason as its last line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from pipelines.local.monitoring import data_quality, model_quality
from pipelines.local.monitoring.datasets import DatasetError, chunks, parse_format

MESSAGE = Path("/opt/ml/output/message")


def analyze(environment: Mapping[str, str], message: Path = MESSAGE) -> int:
    """Baseline (and check) the dataset the environment names; the number of violations found."""
    source = Path(environment.get("dataset_source", "/opt/ml/processing/input/baseline_dataset_input"))
    output = Path(environment.get("output_path", "/opt/ml/processing/output"))
    dataset_format = parse_format(environment.get("dataset_format"))
    baseline = _baseline(environment)

    def read():  # every pass reads the files again: nothing of a large input is kept in memory
        return chunks(source, dataset_format)

    if environment.get("analysis_type", "DATA_QUALITY").upper() == "MODEL_QUALITY":
        statistics = _model_statistics(read, environment)
        suggested = model_quality.constraints(statistics)
        found = model_quality.violations(statistics, baseline[1]) if baseline else None
    else:
        rows, features = data_quality.profile(read, data_quality.edges_of(baseline[0]) if baseline else None)
        if rows == 0:
            raise DatasetError(f"dataset_source {source}: the data files hold no rows")
        statistics = data_quality.statistics(rows, features)
        suggested = data_quality.constraints(rows, features)
        found = data_quality.violations(rows, features, *baseline) if baseline else None
    output.mkdir(parents=True, exist_ok=True)
    _write(output / "statistics.json", statistics)
    _write(output / "constraints.json", suggested)
    if found is not None:
        _write(output / "constraint_violations.json", {"violations": found})
    text = (f"CompletedWithViolations: Job completed successfully with {len(found)} violations." if found
            else "Completed: Job completed successfully with no violations.")
    message.parent.mkdir(parents=True, exist_ok=True)
    message.write_text(text)
    print(text)
    return len(found or [])


def _baseline(environment: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    paths = environment.get("baseline_statistics"), environment.get("baseline_constraints")
    if not any(paths):
        return None
    loaded = []
    for name, path in zip(("baseline_statistics", "baseline_constraints"), paths):
        try:
            loaded.append(json.loads(Path(path).read_text()) if path else {})
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{name} {path}: {exc}") from None
    return loaded[0], loaded[1]


def _column(frame: pd.DataFrame, attribute: str | None, variable: str) -> pd.Series | None:
    if not attribute:
        return None
    name = f"_c{attribute}" if attribute.isdigit() else attribute
    if name not in frame.columns:
        raise DatasetError(f"{variable} {attribute!r} names no column of the dataset (columns: "
                           f"{', '.join(map(str, frame.columns[:20]))})")
    return frame[name]


def _model_statistics(read: Any, environment: Mapping[str, str]) -> dict[str, Any]:
    problem = environment.get("problem_type", "")
    if problem not in model_quality.COMPUTE:
        raise DatasetError(f"problem_type {problem!r} must be one of {', '.join(model_quality.COMPUTE)}")
    frame = pd.concat(list(read()), ignore_index=True)
    truth = _column(frame, environment.get("ground_truth_attribute"), "ground_truth_attribute")
    if truth is None:
        raise DatasetError("ground_truth_attribute is required for a model quality analysis")
    inference = _column(frame, environment.get("inference_attribute"), "inference_attribute")
    probability = _column(frame, environment.get("probability_attribute"), "probability_attribute")
    if inference is None and probability is None:
        raise DatasetError("inference_attribute or probability_attribute is required for a model quality analysis")
    scores = _numbers(probability, "probability_attribute") if probability is not None else None
    if problem == "MulticlassClassification":
        predicted = inference.astype(str).to_numpy()
        return model_quality.statistics(problem, truth.astype(str).to_numpy(), predicted, None)
    if problem == "Regression":
        return model_quality.statistics(problem, _numbers(truth, "ground_truth_attribute"),
                                        _numbers(inference if inference is not None else probability,
                                                 "inference_attribute"), None)
    threshold = float(environment.get("probability_threshold_attribute") or 0.5)
    predicted = _numbers(inference, "inference_attribute") if inference is not None else (scores >= threshold)
    return model_quality.statistics(problem, _numbers(truth, "ground_truth_attribute").astype(int),
                                    np.asarray(predicted).astype(int), scores)


def _numbers(column: pd.Series, variable: str) -> np.ndarray:
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.isna().any():
        row = int(numbers.isna().to_numpy().argmax())
        raise DatasetError(f"{variable}: row {row + 1} holds {column.iloc[row]!r}, not a number")
    return numbers.to_numpy(dtype=float)


def _write(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, allow_nan=False, default=str))


def main() -> int:
    try:
        analyze(os.environ)
    except (DatasetError, model_quality.ModelQualityError, ValueError) as exc:
        print(f"ClientError: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
