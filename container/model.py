"""The model the image writes and serves: an XGBoost Booster plus its calibration.

``/opt/ml/model`` holds ``xgboost-model`` (the Booster, XGBoost's own format: any XGBoost tool loads
it, uncalibrated), ``calibration.json`` and ``model.json`` (feature count, hyperparameters, metrics).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from container import calibration

BOOSTER_FILE = "xgboost-model"
CALIBRATION_FILE = "calibration.json"
METADATA_FILE = "model.json"


@dataclass
class CalibratedModel:
    """A trained booster and the calibration that turns its scores into conversion probabilities."""

    booster: Any
    calibration: dict[str, Any]
    features: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, one per row."""
        import xgboost as xgb

        matrix = xgb.DMatrix(features, missing=np.nan)
        return calibration.apply(self.calibration, self.booster.predict(matrix),
                                 self.booster.predict(matrix, output_margin=True))

    def save(self, directory: Path, metadata: dict[str, Any]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / f"{BOOSTER_FILE}.ubj"))
        (directory / f"{BOOSTER_FILE}.ubj").rename(directory / BOOSTER_FILE)
        (directory / CALIBRATION_FILE).write_text(json.dumps(self.calibration))
        (directory / METADATA_FILE).write_text(json.dumps({**metadata, "features": self.features}, indent=2))


def check(directory: Path) -> None:
    """ValueError naming the first file of a model that is missing or not JSON. It does not touch XGBoost,
    so a server's master process can call it before it forks workers (OpenMP does not survive a fork)."""
    for name in (BOOSTER_FILE, CALIBRATION_FILE, METADATA_FILE):
        if not (directory / name).is_file():
            raise ValueError(f"{directory / name} is missing: this is not a model this image wrote")
    for name in (CALIBRATION_FILE, METADATA_FILE):
        try:
            json.loads((directory / name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{directory / name} is not JSON: {exc}") from None


def load(directory: Path) -> CalibratedModel:
    """The model in ``directory``; ValueError naming the missing or unreadable file."""
    import xgboost as xgb

    check(directory)
    booster = xgb.Booster()
    with warnings.catch_warnings():  # the file name has no extension (SageMaker's convention); it is UBJSON
        warnings.simplefilter("ignore")
        booster.load_model(str(directory / BOOSTER_FILE))
    metadata = json.loads((directory / METADATA_FILE).read_text())
    return CalibratedModel(booster, json.loads((directory / CALIBRATION_FILE).read_text()), int(metadata["features"]))
