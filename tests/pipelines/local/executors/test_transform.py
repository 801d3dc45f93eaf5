"""The batch transform executor: splitting, packing, filters, joins and output naming, on a real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.local.executors import transform
from pipelines.local.executors.base import StepFailed, StepRun
from pipelines.local.expressions import Context
from pipelines.local.store import Store
from tests.inference.test_xgboost_csv import model_archive

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    (tmp_path / "m").mkdir()
    store.put_file(model_archive(tmp_path / "m"), "s3://bkt/model/model.tar.gz")
    (store.root / "models").mkdir(parents=True)
    (store.root / "models" / "m1.json").write_text(json.dumps(
        {"ModelName": "m1", "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": "s3://bkt/model/model.tar.gz"}}))
    # label-first rows: the label is the first column, three features follow
    store.put_bytes(b"1,2,0,0\n0,-2,0,0\n1,3,1,1\n", "s3://bkt/in/part-a.csv")
    store.put_bytes(b"0,-1,5,5\n", "s3://bkt/in/sub/part-b.csv")
    return store


def run_transform(store: Store, tmp_path: Path, log: list[str], **overrides) -> None:
    arguments = {
        "ModelName": "m1",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/in"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bkt/out", "AssembleWith": "Line", "Accept": "text/csv"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6,
        "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    }
    arguments.update(overrides)
    job_dir = tmp_path / "job"
    job_dir.mkdir(exist_ok=True)
    run = StepRun("Score", {"Name": "Score", "Type": "Transform"}, arguments, Context({}, {}, {}), "exec1", "p",
                  store, job_dir, None, log.append)
    transform.execute(run)


def lines(store: Store, uri: str) -> list[list[str]]:
    return [line.split(",") for line in store.path(uri).read_text().splitlines()]


def test_label_and_score_per_input_line_with_key_dot_out(store, tmp_path):
    log: list[str] = []
    run_transform(store, tmp_path, log)
    a = lines(store, "s3://bkt/out/part-a.csv.out")
    assert [row[0] for row in a] == ["1", "0", "1"] and all(len(row) == 2 for row in a)
    assert float(a[0][1]) > 0.8 and float(a[1][1]) < 0.2
    assert len(lines(store, "s3://bkt/out/sub/part-b.csv.out")) == 1
    assert log == ["transformed 4 records from 2 objects"]


def test_single_record_gives_the_same_scores_as_multi_record(store, tmp_path):
    run_transform(store, tmp_path, [])
    multi = lines(store, "s3://bkt/out/part-a.csv.out")
    run_transform(store, tmp_path, [], BatchStrategy="SingleRecord")
    assert lines(store, "s3://bkt/out/part-a.csv.out") == multi


def test_without_join_only_the_prediction_is_written(store, tmp_path):
    run_transform(store, tmp_path, [], DataProcessing={"InputFilter": "$[1:]"})
    assert all(len(row) == 1 for row in lines(store, "s3://bkt/out/part-a.csv.out"))


def test_a_record_over_max_payload_fails_like_the_service(store, tmp_path):
    store.put_bytes(b"1," + b"0," * 600_000 + b"0\n", "s3://bkt/in/huge.csv")
    with pytest.raises(StepFailed, match="huge.csv: a record of .* bytes exceeds MaxPayloadInMB"):
        run_transform(store, tmp_path, [], MaxPayloadInMB=1)


def test_filters_that_leave_the_wrong_width_surface_the_containers_error(store, tmp_path):
    with pytest.raises(StepFailed, match="ClientError: in/part-a.csv: the model container answered HTTP 400"):
        run_transform(store, tmp_path, [], DataProcessing={"InputFilter": "$", "JoinSource": "Input"})


def test_missing_model_is_named(store, tmp_path):
    with pytest.raises(StepFailed, match='Could not find model "nope"'):
        run_transform(store, tmp_path, [], ModelName="nope")


def test_packing_keeps_whole_records_under_the_limit():
    batches = list(transform.batches(["a" * 10, "b" * 10, "c" * 10], "MultiRecord", 25, "k"))
    assert batches == [["a" * 10, "b" * 10], ["c" * 10]]
    assert len(list(transform.batches(["x"] * 5, "SingleRecord", 1000, "k"))) == 5
