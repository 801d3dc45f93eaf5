"""The container's CSV serving rules, on a real trained booster."""

from __future__ import annotations

import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from inference.xgboost_csv import MAX_PAYLOAD_BYTES, InvocationError, invoke, load_model


def model_archive(directory: Path, features: int = 3) -> Path:
    """A model.tar.gz holding ``xgboost-model`` trained on a simple rule (label = first feature > 0)."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=(400, features))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(x, label=(x[:, 0] > 0)), 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster.save_model(str(directory / "xgboost-model"))
    archive = directory / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(directory / "xgboost-model", arcname="xgboost-model")
    return archive


@pytest.fixture(scope="module")
def boosters(tmp_path_factory):
    return load_model(model_archive(tmp_path_factory.mktemp("model")))


def test_one_score_per_row_and_missing_values(boosters):
    lines = invoke(boosters, b"2,0,0\n-2,0,0\n,1,1\n").decode().splitlines()
    scores = [float(s) for s in lines]
    assert len(scores) == 3 and scores[0] > 0.8 and scores[1] < 0.2 and 0 < scores[2] < 1


@pytest.mark.parametrize("body, content_type, accept, status", [
    (b"1,2,3\n1,2\n", "text/csv", "text/csv", 415),
    (b"1,x,3\n", "text/csv", "text/csv", 415),
    (b"\xff\xfe,1,2\n", "text/csv", "text/csv", 415),
    (b"1,2,3\n", "application/json", "text/csv", 415),
    (b"1,2,3\n", "text/csv", "application/json", 406),
    (b"  \n", "text/csv", "text/csv", 204),
    (b"1,2,3,4,5\n", "text/csv", "text/csv", 400),
])
def test_refusals_carry_the_containers_status(boosters, body, content_type, accept, status):
    with pytest.raises(InvocationError) as caught:
        invoke(boosters, body, content_type, accept)
    assert caught.value.status == status


def test_payload_over_6_mib_is_413(boosters):
    body = b"1,2,3\n" * (MAX_PAYLOAD_BYTES // 6 + 1)
    with pytest.raises(InvocationError, match="HTTP 413"):
        invoke(boosters, body)


def test_an_archive_without_a_model_is_an_error(tmp_path):
    archive = tmp_path / "empty.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    with pytest.raises(InvocationError, match="no model file in empty.tar.gz"):
        load_model(archive)
