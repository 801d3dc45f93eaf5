"""A model file in an older image's format (XGBoost's binary format, which the engine's XGBoost no longer
reads) is served by reading it through the image's environment."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from inference.hosting import ModelLoadError, predictor_for
from pipelines.local.environments import Environments

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROWS = "0.1,0.9,0.3\n0.8,0.2,0.5\n"
# trained and saved (no extension: the binary format) by the image's XGBoost, as its algorithm writes it
TRAIN = """
import sys, numpy as np, xgboost as xgb
rng = np.random.default_rng(7)
x = rng.random((300, 3)); y = (x[:, 0] > 0.5).astype(float)
booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(x, label=y), 10)
booster.save_model(sys.argv[1])
rows = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.5]])
print(",".join(f"{p:.6f}" for p in booster.predict(xgb.DMatrix(rows))))
"""


@pytest.fixture(scope="module")
def old_model(tmp_path_factory) -> tuple[Path, list[float]]:
    folder = tmp_path_factory.mktemp("old-model")
    environment = Environments().for_image(IMAGE, print)
    done = subprocess.run([str(environment.root / "bin" / "python"), "-c", TRAIN, str(folder / "xgboost-model")],
                          capture_output=True, text=True, check=True)
    assert (folder / "xgboost-model").read_bytes()[:4] == b"binf"  # the format XGBoost 3.1 removed
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "xgboost-model", arcname="xgboost-model")
    return archive, [float(p) for p in done.stdout.strip().split(",")]


def test_an_old_format_model_is_served_with_the_predictions_of_the_image_that_wrote_it(old_model):
    archive, expected = old_model
    predictor = predictor_for(IMAGE, archive)
    try:
        served = [float(line) for line in predictor.invoke(ROWS.encode()).decode().split()]
    finally:
        predictor.close()
    assert served == pytest.approx(expected, abs=1e-6)


def test_with_image_libraries_off_an_old_format_model_is_one_clear_load_error(old_model):
    archive, _ = old_model
    with pytest.raises(ModelLoadError, match=r"^the model could not be loaded: xgboost-model is in XGBoost.s old binary "
                                             r"format, which the XGBoost here \(3\.\d+\.\d+\) no longer reads"):
        predictor_for(IMAGE, archive, environments=Environments(image_libraries="engine"))
