"""Probability calibration of XGBoost scores, fitted on the validation channel.

Isotonic regression maps scores to conversion rates with a monotone step function; Platt scaling fits
a logistic curve on the model's margin. Both are kept as plain numbers in ``calibration.json``:
``{"method": "isotonic", "x": [...], "y": [...]}`` (scores in, probabilities out, linear in between,
clipped at the ends) or ``{"method": "platt", "a": A, "b": B}`` (probability = 1 / (1 + exp(-(A * margin + B)))).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fit(method: str, scores: np.ndarray, margins: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The calibration ``method`` fitted on validation ``scores`` (or ``margins``) and their labels."""
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
        return {"method": "isotonic", "x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e6).fit(margins.reshape(-1, 1), labels)
        return {"method": "platt", "a": float(model.coef_[0][0]), "b": float(model.intercept_[0])}
    return {"method": "none"}


def apply(spec: dict[str, Any], scores: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """Calibrated probabilities for ``scores`` (isotonic) or ``margins`` (Platt); ``scores`` for none."""
    if spec["method"] == "isotonic":
        return np.interp(scores, spec["x"], spec["y"])
    if spec["method"] == "platt":
        return 1.0 / (1.0 + np.exp(-(spec["a"] * margins + spec["b"])))
    return scores


def check(spec: Any) -> None:
    """ValueError saying what is wrong with a calibration document, so that serving never fails on it later."""
    if not isinstance(spec, dict) or spec.get("method") not in ("isotonic", "platt", "none"):
        raise ValueError("not a calibration: an object whose 'method' is isotonic, platt or none")
    if spec["method"] == "isotonic":
        x, y = spec.get("x"), spec.get("y")
        if not (isinstance(x, list) and isinstance(y, list) and x and len(x) == len(y)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x + y)):
            raise ValueError("isotonic calibration needs 'x' and 'y': lists of numbers of the same length")
    if spec["method"] == "platt" and not all(
            isinstance(spec.get(k), (int, float)) and not isinstance(spec.get(k), bool) for k in ("a", "b")):
        raise ValueError("platt calibration needs numbers 'a' and 'b'")
