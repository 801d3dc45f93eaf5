"""The job program of a local ClarifyCheck step: ``python3 -m pipelines.local.clarify.analysis``, in the
Clarify environment (``requirements.txt``). It reads ``/opt/ml/processing/input/config/analysis_config.json``
and the dataset below ``/opt/ml/processing/input/data`` (CSV: with ``headers`` from the config the files have
no header row, as Clarify reads them), writes ``analysis.json`` to ``/opt/ml/processing/output`` and, when
``baseline_constraints`` names a previous ``analysis.json``, ``constraint_violations.json``. A model's predictions
come from ``model_url`` (the step's model, served on loopback by the engine), asked in CSV batches under the
endpoint's 6 MB limit. A config or dataset it cannot use exits 1 with the reason as its last line."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

import numpy as np

from pipelines.local.clarify import bias, drift, explain

CONFIG = Path("/opt/ml/processing/input/config/analysis_config.json")
DATA = Path("/opt/ml/processing/input/data")
OUTPUT = Path("/opt/ml/processing/output")
ROWS_PER_REQUEST = 1000
SECTIONS = {"pre_training_bias": "pre_training_bias_metrics", "post_training_bias": "post_training_bias_metrics"}


def dataset(folder: Path, config: dict[str, Any]) -> pd.DataFrame:
    """The dataset the config describes (CSV only locally)."""
    kind = config.get("dataset_type", "text/csv")
    if kind != "text/csv":
        raise bias.AnalysisConfigError(f"dataset_type {kind!r}: the local Clarify job reads text/csv datasets")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > 0)
    if not files:
        raise bias.AnalysisConfigError(f"the dataset folder {folder} holds no data")
    headers = config.get("headers")
    frames = [pd.read_csv(path, header=None if headers else 0, skipinitialspace=True) for path in files]
    frame = pd.concat(frames, ignore_index=True)
    if headers:
        if len(headers) != frame.shape[1]:
            raise bias.AnalysisConfigError(f"headers: {len(headers)} names for a dataset of {frame.shape[1]} columns")
        frame.columns = headers
    # smclarify works on NumPy's object columns; pandas 3 reads text as its own string type
    text = frame.select_dtypes(include=["string", "object"]).columns
    return frame.astype({name: object for name in text})


def analyze(environment: Mapping[str, str], config_path: Path = CONFIG, data: Path = DATA,
            output: Path = OUTPUT) -> int:
    """Write analysis.json (and the violations against a baseline); the number of violations."""
    config = json.loads(config_path.read_text())
    methods = config.get("methods", {})
    unknown = sorted(set(methods) - set(SECTIONS) - {"shap", "report"})
    if unknown:
        raise bias.AnalysisConfigError(f"methods: {', '.join(unknown)}: the local Clarify job computes "
                                       "pre_training_bias, post_training_bias and shap")
    frame = dataset(data, config)
    output.mkdir(parents=True, exist_ok=True)
    analysis: dict[str, Any] = {"version": "1.0"}
    if "pre_training_bias" in methods:
        analysis["pre_training_bias_metrics"] = bias.pre_training(frame, config)
    if "post_training_bias" in methods:
        label = bias.column(frame, config.get("label"), "label")
        scores = predictions(frame.drop(columns=[label]), environment.get("model_url", ""))
        analysis["post_training_bias_metrics"] = bias.post_training(frame, bias.predicted_labels(scores, config),
                                                                    config)
    if "shap" in methods:
        label = config.get("label")
        features = frame.drop(columns=[bias.column(frame, label, "label")]) if label is not None else frame
        url = environment.get("model_url", "")
        analysis["explanations"], local_values = explain.explanations(
            features, lambda rows: np.asarray(predictions(pd.DataFrame(rows), url)), config)
        if methods["shap"].get("save_local_shap_values"):
            (output / "explanations_shap").mkdir(parents=True, exist_ok=True)
            pd.DataFrame(local_values, columns=features.columns).to_csv(output / "explanations_shap" / "out.csv",
                                                                      index=False)
    (output / "analysis.json").write_text(json.dumps(analysis, indent=2))
    baseline_path = environment.get("baseline_constraints")
    if not baseline_path:
        print("analysis.json written")
        return 0
    baseline = json.loads(Path(baseline_path).read_text())
    found = [violation for section in SECTIONS.values() if section in analysis
             for violation in drift.violations(analysis, baseline, section)] + explain.violations(analysis, baseline)
    (output / "constraint_violations.json").write_text(json.dumps({"version": "1.0", "violations": found}, indent=2))
    print(f"analysis.json written; {len(found)} violation(s) of the baseline")
    return len(found)


def predictions(features: pd.DataFrame, url: str) -> list[float]:
    """The model's score for every row, asked of the model server in CSV batches."""
    if not url:
        raise bias.AnalysisConfigError("a model check needs the model's predictions, and no model is served to it")
    scores: list[float] = []
    for start in range(0, len(features), ROWS_PER_REQUEST):
        body = features.iloc[start:start + ROWS_PER_REQUEST].to_csv(header=False, index=False).encode()
        request = urllib.request.Request(f"{url}/invocations", data=body, method="POST",
                                         headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            lines = answer.read().decode().split()
        scores += [float(line.split(",")[0]) for line in lines]
    if len(scores) != len(features):
        raise bias.AnalysisConfigError(f"the model answered {len(scores)} scores for {len(features)} rows")
    return scores


def main() -> int:
    try:
        analyze(os.environ)
    except (bias.AnalysisConfigError, OSError, ValueError) as exc:
        print(f"ClientError: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
