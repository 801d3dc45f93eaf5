"""The R image's train program under SageMaker's training contract: real R in the job runtime, real files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipelines.local.executors.training import metric_values
from tests.container.helpers import leads, ml_dir, write_csv
from tests.container_r.helpers import CONTAINER_R, r_predict, train
from tests.sandboxing import needs_bubblewrap, needs_r

pytestmark = [needs_r, needs_bubblewrap]

# what a MetricDefinitions entry for the image reads from its log (the Python image's lines too)
METRICS = [{"Name": name, "Regex": rf"{name}=([0-9.]+)"}
           for name in ("validation:auc", "validation:brier_uncalibrated", "validation:brier")]


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = labels == 1
    return float((ranks[positives].sum() - positives.sum() * (positives.sum() + 1) / 2)
                 / (positives.sum() * (~positives).sum()))


def test_train_writes_the_model_and_the_metric_lines_and_stops_early(tmp_path) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "150", "max_depth": "6", "eta": "0.3", "early_stopping_rounds": "5",
                                  "seed": "3"})
    done = train(ml)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (ml / "model").iterdir()) == ["model.json", "model.rds"]
    metadata = json.loads((ml / "model" / "model.json").read_text())
    assert metadata["features"] == 4 and metadata["gbm_version"] == "2.1.8.1"
    assert 1 <= metadata["n_trees"] < 150 and "stopped early" in done.stdout  # an overfitting pace stops early
    metrics = metric_values(METRICS, done.stdout)
    assert metrics == pytest.approx(metadata["metrics"], abs=1e-6)
    assert metrics["validation:auc"] > 0.75
    assert metrics["validation:brier"] < metrics["validation:brier_uncalibrated"]  # calibrated (isotonic)
    test = leads(2000, 9)
    scores = r_predict(ml / "model", test[:, 1:])
    assert np.all((scores >= 0) & (scores <= 1)) and auc(test[:, 0], scores) > 0.75
    assert not (ml / "output" / "failure").exists()


def test_missing_values_are_trained_on_as_gbm_s_missing_branch(tmp_path) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "30", "max_depth": "3"}, train_rows=1500, validation_rows=800)
    for channel in ("train", "validation"):
        path = ml / "input" / "data" / channel / f"{channel}.csv"
        rows = [line.split(",") for line in path.read_text().splitlines()]
        for number, row in enumerate(rows):  # as the sample data has them: empty fields, and pandas' nan
            row[1 + number % 4] = "" if number % 3 == 0 else ("nan" if number % 3 == 1 else row[1 + number % 4])
        path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    done = train(ml)
    assert done.returncode == 0, done.stderr
    assert json.loads((ml / "model" / "model.json").read_text())["metrics"]["validation:auc"] > 0.7


def test_monotone_constraints_hold_for_every_lead(tmp_path) -> None:
    """With max_depth 1, the only depth at which gbm keeps them (deeper trees are refused, below)."""
    ml = ml_dir(tmp_path / "ml", {"num_round": "60", "max_depth": "1", "monotone_constraints": "(1,-1,0,0)",
                                  "calibration": "platt"}, train_rows=1500, validation_rows=800)
    assert train(ml).returncode == 0
    grid = np.linspace(-3, 3, 25)
    rows = []
    for lead in leads(10, 4)[:, 1:]:
        for column in (0, 1):
            varied = np.tile(lead, (len(grid), 1))
            varied[:, column] = grid
            rows.append(varied)
    scores = r_predict(ml / "model", np.vstack(rows)).reshape(-1, len(grid))
    assert np.all(np.diff(scores[0::2], axis=1) >= -1e-9)  # rising in the first feature
    assert np.all(np.diff(scores[1::2], axis=1) <= 1e-9)  # falling in the second


def test_isotonic_calibration_is_scikit_learns(tmp_path) -> None:
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(5)
    scores = np.round(rng.random(3000), 3)  # ties, as scores of few trees have
    labels = (rng.random(3000) < scores ** 2).astype(float)
    points = np.round(rng.random(200) * 1.2 - 0.1, 4)  # beyond both ends too
    code = (f'source("{CONTAINER_R}/calibration.R"); d <- as.matrix(utils::read.csv(file("stdin"), header = FALSE)); '
            'spec <- fit_calibration("isotonic", d[1:3000, 1], NULL, d[1:3000, 2]); '
            'cat(sprintf("%.9f\\n", apply_calibration(spec, d[3001:3200, 1], NULL)), sep = "")')
    table = np.vstack([np.column_stack([scores, labels]), np.column_stack([points, np.zeros(200)])])
    done = subprocess.run(["Rscript", "-e", code], input="\n".join(f"{a},{b}" for a, b in table).encode(),
                          capture_output=True, timeout=60, check=True)
    ours = np.array([float(v) for v in done.stdout.split()])
    theirs = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels).predict(points)
    assert np.allclose(ours, theirs, atol=1e-9)


@pytest.mark.parametrize("hyperparameters, reason", [
    ({"num_round": "10", "learning_rate": "0.1"}, "unknown hyperparameter 'learning_rate'; this image accepts "
                                                  "calibration, early_stopping_rounds, eta, max_depth"),
    ({"num_round": "ten"}, "hyperparameter num_round: 'ten' is not an integer"),
    ({"num_round": "10", "eta": "fast"}, "hyperparameter eta: 'fast' is not a number"),
    ({"num_round": "10", "eta": "0"}, "hyperparameter eta: '0' must be in (0, 1]"),
    ({"num_round": "99999999999"}, "hyperparameter num_round: '99999999999' must be from 1 to 2147483647"),
    ({"num_round": "10", "seed": "-1"}, "hyperparameter seed: '-1' must be from 0 to 2147483647"),
    ({"num_round": "10", "subsample": "1.5"}, "hyperparameter subsample: '1.5' must be in (0, 1]"),
    ({"num_round": "10", "calibration": "beta"}, "hyperparameter calibration: 'beta' must be one of isotonic, platt, "
                                                 "none"),
    ({"num_round": "10", "monotone_constraints": "(1,2)"}, "hyperparameter monotone_constraints: '(1,2)' must look "
                                                           "like (1,0,-1)"),
    ({"num_round": "10", "max_depth": "1", "monotone_constraints": "(1,0)"},
     "monotone_constraints gives 2 values; the data has 4 features"),
    ({"num_round": "10", "max_depth": "3", "monotone_constraints": "(1,0,0,0)"},
     "hyperparameter monotone_constraints: gbm holds them for every lead only with max_depth 1"),
    ({"num_round": "10", "min_child_weight": "5000"}, "channel train has 200 rows: gbm needs more than 10001 in each "
                                                      "subsample"),
    ({"max_depth": "3"}, "hyperparameter num_round is required"),
])
def test_a_refused_hyperparameter_is_the_failure_reason_and_exit_2(tmp_path, hyperparameters, reason) -> None:
    ml = ml_dir(tmp_path / "ml", hyperparameters, train_rows=200, validation_rows=100)
    done = train(ml)
    assert done.returncode == 2, done.stdout + done.stderr
    assert reason in (ml / "output" / "failure").read_text()
    assert done.stderr.strip().splitlines()[-1].startswith("training failed: ")
    assert "Error in" not in done.stderr and "Execution halted" not in done.stderr  # never R's own error text
    assert not (ml / "model" / "model.rds").exists()


def _config(name: str, text: str):
    def write(ml: Path) -> None:
        (ml / "input" / "config" / name).write_text(text)
    return write


def _data(channel: str, text: str):
    def write(ml: Path) -> None:
        (ml / "input" / "data" / channel / f"{channel}.csv").write_text(text)
    return write


def _bytes(channel: str, data: bytes):
    def write(ml: Path) -> None:
        (ml / "input" / "data" / channel / f"{channel}.csv").write_bytes(data)
    return write


def _narrower_validation(ml: Path) -> None:
    write_csv(ml / "input" / "data" / "validation" / "validation.csv", leads(100, 2)[:, :4])


def _no_train_channel(ml: Path) -> None:
    (ml / "input" / "config" / "inputdataconfig.json").write_text('{"validation": {"ContentType": "text/csv"}}')


@pytest.mark.parametrize("damage, reason", [
    (_narrower_validation, "channel validation has 3 features; train has 4"),
    (_no_train_channel, "the train channel is required; the job has validation"),
    (_data("train", ""), "channel train: its files hold no rows"),
    (_data("train", "1,0.5,0.1,0.2,0.3\n0,0.5,abc,0.2,0.3\n"), "channel train: train.csv is not numeric headerless "
                                                            "CSV: row 2: 'abc' is not a number"),
    (_data("train", "1,0.5,0.1,0.2,0.3\n0,0.5,0.2\n"), "channel train: train.csv row 2 has 3 fields where the data "
                                                      "has 5"),
    (_bytes("train", b"1,0.5,0.1,0.2,0.3\n0,0.5,\xff\xfe,0.2,0.3\n"), "channel train: train.csv is not numeric "
                                                                 "headerless CSV: it is not UTF-8 text"),
    (_bytes("validation", b"1,0.5,0.1,0.2,0.3\n0,0.5,\x00,0.2,0.3\n"), "channel validation: validation.csv is not "
                                                                     "numeric headerless CSV: it holds a NUL byte"),
    (_data("train", "1\n0\n" * 50), "channel train: the data has only 1 column(s); it needs the 0/1 label and at "
                                    "least one feature"),
    (_data("validation", "2,0.5,0.1,0.2,0.3\n"), "channel validation: the first column must be the 0/1 label on "
                                                 "every row"),
    (_config("hyperparameters.json", '["num_round", "10"]'), "hyperparameters.json is not a JSON object"),
    (_config("hyperparameters.json", '{"num_round": 10}'), "hyperparameter num_round: 10 must be a string"),
    (_config("inputdataconfig.json", '{"train": {}, "test": {}}'), "unknown channel(s) test; this image reads train "
                                                                   "and validation"),
    (_config("resourceconfig.json", '{"current_host": "algo-1", "hosts": []}'), "hosts must be a non-empty list"),
    (_config("resourceconfig.json", "{"), "resourceconfig.json is not JSON"),
])
def test_a_damaged_job_is_one_reason_never_r_s_error_text(tmp_path, damage, reason) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "10"}, train_rows=200, validation_rows=100)
    damage(ml)
    done = train(ml)
    assert done.returncode == 2, done.stdout + done.stderr
    assert reason in (ml / "output" / "failure").read_text()
    assert "Error in" not in done.stderr and "Execution halted" not in done.stderr


def test_calibration_needs_the_validation_channel(tmp_path) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "10"}, channels=("train",), train_rows=300)
    assert train(ml).returncode == 2
    assert "fitted on the validation channel, which is missing" in (ml / "output" / "failure").read_text()
    ml = ml_dir(tmp_path / "ml2", {"num_round": "10", "calibration": "none"}, channels=("train",), train_rows=300)
    done = train(ml)
    assert done.returncode == 0, done.stderr
    assert json.loads((ml / "model" / "model.json").read_text())["metrics"] == {}


def test_another_host_of_the_job_trains_nothing(tmp_path) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "10"}, train_rows=200, validation_rows=100)
    (ml / "input" / "config" / "resourceconfig.json").write_text('{"current_host": "algo-2", "hosts": ["algo-1", '
                                                                  '"algo-2"]}')
    done = train(ml)
    assert done.returncode == 0 and "algo-2: this image trains on the first host (algo-1) only" in done.stdout
    assert not (ml / "model" / "model.rds").exists()
