"""The model the image writes and serves: an XGBoost Booster plus its calibration.

``/opt/ml/model`` holds ``xgboost-model`` (the Booster, XGBoost's own format: any XGBoost tool loads
it, uncalibrated), ``calibration.json`` and ``model.json`` (feature count, hyperparameters, metrics).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from container import calibration

BOOSTER_FILE = "xgboost-model"
CALIBRATION_FILE = "calibration.json"
METADATA_FILE = "model.json"


def width_problem(row: int, got: int, expected: int) -> str:
    """What is wrong with a request row of ``got`` fields for a model of ``expected`` features (every serving
    path says it alike): one more is most often the label column left in."""
    hint = " (is the label column still in? send the features only)" if got == expected + 1 else \
        " (send the features only, in the order the model was trained on)"
    return f"row {row}: expected {expected} features, got {got}{hint}"


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
    """ValueError naming the first file of a model that is missing, unreadable or not what this image writes.

    The server's master process calls it before it forks workers, so a bad model is one line instead of
    workers that fail to boot. It does not load XGBoost in this process (OpenMP does not survive a fork):
    the booster is loaded once in a child interpreter."""
    for name in (BOOSTER_FILE, CALIBRATION_FILE, METADATA_FILE):
        if not (directory / name).is_file():
            raise ValueError(f"{directory / name} is missing: this is not a model this image wrote")
    documents = {}
    for name in (CALIBRATION_FILE, METADATA_FILE):
        try:
            documents[name] = json.loads((directory / name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{directory / name} is not JSON: {exc}") from None
    features = documents[METADATA_FILE].get("features") if isinstance(documents[METADATA_FILE], dict) else None
    if type(features) is not int or features < 1:
        raise ValueError(f"{directory / METADATA_FILE} has no positive whole 'features' count")
    try:
        calibration.check(documents[CALIBRATION_FILE])
    except ValueError as exc:
        raise ValueError(f"{directory / CALIBRATION_FILE}: {exc}") from None
    loaded = subprocess.run([sys.executable, "-c", _LOAD_BOOSTER, str(directory / BOOSTER_FILE)],
                            capture_output=True, text=True)
    if loaded.returncode != 0:
        reason = (loaded.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ValueError(f"{directory / BOOSTER_FILE} is not a booster XGBoost can load: {reason}")


_LOAD_BOOSTER = """
import sys, warnings
import xgboost
warnings.simplefilter("ignore")
try:
    xgboost.Booster().load_model(sys.argv[1])
except Exception as exc:
    sys.exit(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
"""


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
