"""The image's train program under SageMaker's training contract: real files, a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from container.model import load
from tests.container.helpers import leads, ml_dir, run_container

OVERFITTING = {"num_round": "150", "max_depth": "8", "eta": "0.3", "seed": "3"}


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((probabilities - labels) ** 2))


def calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean score - conversion rate| per score decile, weighted by size."""
    order = np.argsort(probabilities)
    return float(sum(len(chunk) * abs(probabilities[chunk].mean() - labels[chunk].mean())
                     for chunk in np.array_split(order, bins)) / len(labels))


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrated_scores_are_closer_to_conversion_rates_than_raw_ones(tmp_path, method) -> None:
    import xgboost as xgb

    ml = ml_dir(tmp_path / "ml", {**OVERFITTING, "calibration": method})
    done = run_container("train", ml)
    assert done.returncode == 0, done.stderr
    model = load(ml / "model")
    test = leads(4000, 9)
    calibrated = model.predict(test[:, 1:])
    raw = model.booster.predict(xgb.DMatrix(test[:, 1:]))
    assert brier(test[:, 0], calibrated) < brier(test[:, 0], raw)
    assert calibration_error(test[:, 0], calibrated) < calibration_error(test[:, 0], raw)
    metadata = json.loads((ml / "model" / "model.json").read_text())
    assert metadata["metrics"]["validation:brier"] < metadata["metrics"]["validation:brier_uncalibrated"]
    assert f"validation:brier={metadata['metrics']['validation:brier']:.6f}" in done.stdout


def test_monotone_constraints_hold_for_every_lead(tmp_path) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "60", "max_depth": "5", "monotone_constraints": "(1,-1,0,0)",
                                  "calibration": "isotonic"})
    assert run_container("train", ml).returncode == 0
    model = load(ml / "model")
    grid = np.linspace(-3, 3, 41)
    for lead in leads(30, 4)[:, 1:]:
        rising = np.tile(lead, (len(grid), 1))
        rising[:, 0] = grid
        falling = np.tile(lead, (len(grid), 1))
        falling[:, 1] = grid
        assert np.all(np.diff(model.predict(rising)) >= -1e-12)
        assert np.all(np.diff(model.predict(falling)) <= 1e-12)


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"num_round": "ten"}, "hyperparameter num_round: 'ten' is not an integer"),
    ({"num_round": "10", "learning_rate": "0.1"}, "unknown hyperparameter 'learning_rate'"),
    ({"num_round": "10", "calibration": "beta"}, "hyperparameter calibration: 'beta' must be one of isotonic, platt, none"),
    ({"num_round": "10", "monotone_constraints": "(1,0)"}, "monotone_constraints gives 2 values; the data has 4 features"),
    ({"num_round": "10", "eta": "0"}, "hyperparameter eta: '0' must be in (0, 1]"),
    ({"max_depth": "3"}, "hyperparameter num_round is required"),
])
def test_a_failing_train_writes_its_reason_to_the_failure_file(tmp_path, hyperparameters, reason) -> None:
    ml = ml_dir(tmp_path / "ml", hyperparameters, train_rows=200, validation_rows=100)
    done = run_container("train", ml)
    assert done.returncode == 2
    assert reason in (ml / "output" / "failure").read_text()
    assert "Traceback" not in done.stderr
    assert not (ml / "model" / "xgboost-model").exists()


def test_calibration_needs_the_validation_channel(tmp_path) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "10"}, channels=("train",))
    assert run_container("train", ml).returncode == 2
    assert "fitted on the validation channel, which is missing" in (ml / "output" / "failure").read_text()
    ml = ml_dir(tmp_path / "ml2", {"num_round": "10", "calibration": "none"}, channels=("train",))
    assert run_container("train", ml).returncode == 0


def test_a_folder_that_is_not_laid_out_is_one_line(tmp_path) -> None:
    done = run_container("train", tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --ml-dir") and len(done.stderr.strip().splitlines()) == 1


def _config(name: str, text: str):
    def write(ml: Path) -> None:
        (ml / "input" / "config" / name).write_text(text)
    return write


def _label_only(ml: Path) -> None:
    for channel in ("train", "validation"):
        (ml / "input" / "data" / channel / f"{channel}.csv").write_text("1\n0\n" * 50)


@pytest.mark.parametrize("damage, reason", [
    (_config("hyperparameters.json", '["num_round", "10"]'), "hyperparameters.json is not a JSON object"),
    (_config("inputdataconfig.json", '"train"'), "inputdataconfig.json is not a JSON object"),
    (_config("resourceconfig.json", '{"current_host": "algo-1", "hosts": []}'), "hosts must be a non-empty list"),
    (_config("resourceconfig.json", '{"current_host": "algo-1", "hosts": "algo-1"}'), "hosts must be a non-empty list"),
    (_config("hyperparameters.json", '{"num_round": "10", "seed": "' + "9" * 40 + '"}'),
     "hyperparameter seed: '" + "9" * 40 + "' must be from 0 to 9223372036854775807"),
    (_config("hyperparameters.json", '{"num_round": "99999999999"}'), "num_round: '99999999999' must be from 1 to"),
    (_label_only, "channel train: the data has only 1 column(s); it needs the 0/1 label and at least one feature"),
])
def test_a_damaged_job_is_one_reason_never_a_traceback(tmp_path, damage, reason) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "10"}, train_rows=200, validation_rows=100)
    damage(ml)
    done = run_container("train", ml)
    assert done.returncode == 2, done.stderr
    assert reason in (ml / "output" / "failure").read_text()
    assert "Traceback" not in done.stderr
