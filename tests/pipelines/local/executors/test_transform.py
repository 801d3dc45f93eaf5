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
from tests.sandboxing import needs_container_paths

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
    assert log[-1] == "transformed 4 records from 2 objects in 2 requests"


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


def settings(**arguments) -> transform.Settings:
    base = {"TransformInput": {"SplitType": "Line"}, "TransformOutput": {}}
    return transform.settings_of({**base, **arguments}, {})


def test_packing_keeps_whole_records_under_the_limit():
    multi = settings(BatchStrategy="MultiRecord", MaxPayloadInMB=1)
    assert list(transform.batches([600_000, 400_000, 500_000], multi, "k")) == [[0, 1], [2]]
    assert list(transform.batches([1] * 5, settings(BatchStrategy="SingleRecord"), "k")) == [[0], [1], [2], [3], [4]]
    # MaxPayloadInMB 0: no limit (the container reads a request of any size)
    assert list(transform.batches([50_000_000, 50_000_000], settings(MaxPayloadInMB=0), "k")) == [[0, 1]]


SDK_DEFAULTS = {  # a Transformer with no split_type, strategy, assemble_with, accept or filters
    "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/features"}},
                       "ContentType": "text/csv"},
    "TransformOutput": {"S3OutputPath": "s3://bkt/out"},
    "BatchStrategy": None, "MaxPayloadInMB": None, "DataProcessing": None,
}


def test_the_sdks_defaults_send_each_object_whole_and_write_the_response_as_it_came(store, tmp_path):
    store.put_bytes(b"2,0,0\n-2,0,0\n3,1,1\n-1,5,5\n", "s3://bkt/features/part-a.csv")
    log: list[str] = []
    run_transform(store, tmp_path, log, **SDK_DEFAULTS)
    out = store.path("s3://bkt/out/part-a.csv.out").read_bytes()
    scores = [float(line) for line in out.decode().splitlines()]
    assert len(scores) == 4 and scores[0] > 0.8 and scores[1] < 0.2
    assert "features/part-a.csv: 1 records in 1 requests -> part-a.csv.out" in " ".join(log)
    # line by line, the same scores
    run_transform(store, tmp_path, [], **{**SDK_DEFAULTS, "TransformInput": {
        **SDK_DEFAULTS["TransformInput"], "SplitType": "Line"}, "TransformOutput": {
        "S3OutputPath": "s3://bkt/lines", "AssembleWith": "Line"}})
    assert store.path("s3://bkt/lines/part-a.csv.out").read_bytes() == out


def test_joining_a_whole_object_to_its_many_predictions_is_refused_with_what_to_set(store, tmp_path):
    store.put_bytes(b"2,0,0\n-2,0,0\n", "s3://bkt/features/part-a.csv")
    with pytest.raises(StepFailed, match=r"1 records sent, 2 predictions returned: .*with SplitType None each object "
                                         r"is one record; set SplitType Line"):
        run_transform(store, tmp_path, [], **{**SDK_DEFAULTS, "DataProcessing": {"JoinSource": "Input"}})


def test_assemble_with_none_concatenates_the_outputs_as_they_are(store, tmp_path):
    run_transform(store, tmp_path, [], TransformOutput={"S3OutputPath": "s3://bkt/glued", "AssembleWith": "None"})
    run_transform(store, tmp_path, [])
    glued = store.path("s3://bkt/glued/part-a.csv.out").read_text()
    joined = store.path("s3://bkt/out/part-a.csv.out").read_text()
    assert "\n" not in glued and glued == "".join(joined.splitlines())  # records joined, nothing between


def test_gzip_input_is_decompressed_first_and_other_bytes_are_one_client_error(store, tmp_path):
    import gzip

    run_transform(store, tmp_path, [])
    plain = store.path("s3://bkt/out/part-a.csv.out").read_bytes()
    store.put_bytes(gzip.compress(b"1,2,0,0\n0,-2,0,0\n1,3,1,1\n"), "s3://bkt/zipped/part-a.csv.gz")
    zipped = {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/zipped"}},
              "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "Gzip"}
    run_transform(store, tmp_path, [], TransformInput=zipped)
    assert store.path("s3://bkt/out/part-a.csv.gz.out").read_bytes() == plain
    store.put_bytes(b"1,2,0,0\n", "s3://bkt/zipped/part-b.csv.gz")
    with pytest.raises(StepFailed, match="ClientError: zipped/part-b.csv.gz: TransformInput.CompressionType is Gzip "
                                         "and the object is not gzip data"):
        run_transform(store, tmp_path, [], TransformInput=zipped)


def test_a_manifest_data_source_is_refused_by_name(store, tmp_path):
    given = {"DataSource": {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://bkt/in/manifest"}}}
    with pytest.raises(StepFailed, match="S3DataType 'ManifestFile': only S3Prefix is supported locally"):
        run_transform(store, tmp_path, [], TransformInput=given)


@pytest.mark.parametrize("split_type", ["RecordIO", "TFRecord"])
def test_binary_record_formats_are_refused_by_name(store, tmp_path, split_type):
    given = {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/in"}},
             "SplitType": split_type}
    with pytest.raises(StepFailed, match=f"ClientError: TransformInput.SplitType '{split_type}': only None and Line"):
        run_transform(store, tmp_path, [], TransformInput=given)


def test_a_whole_object_over_max_payload_says_to_split_it(store, tmp_path):
    store.put_bytes(b"1,2,0,0\n" * 150_000, "s3://bkt/big/part.csv")
    given = {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/big"}}}
    with pytest.raises(StepFailed, match=r"big/part.csv: the object of 1200000 bytes exceeds MaxPayloadInMB \(1 MB\); "
                                         "set SplitType Line"):
        run_transform(store, tmp_path, [], TransformInput=given, MaxPayloadInMB=1, DataProcessing={})


class JsonLinesModel:
    """A container answering JSON Lines: one {"score": ...} per record it is sent (the sum of its numbers)."""

    execution_parameters: dict = {}

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        rows = [json.loads(line) for line in body.decode().splitlines()]
        return "".join(json.dumps({"score": sum(row["features"])}) + "\n" for row in rows).encode()

    def close(self) -> None:
        return None


def test_json_records_are_joined_as_the_service_joins_them():
    records = [b'{"id": "a", "features": [1, 2]}', b'{"id": "b", "features": [3, 4]}']
    joined = settings(TransformInput={"SplitType": "Line", "ContentType": "application/jsonlines"},
                      TransformOutput={"Accept": "application/jsonlines", "AssembleWith": "Line"},
                      DataProcessing={"JoinSource": "Input"})
    output, requests = transform.transform_object(JsonLinesModel(), joined, records, "k")
    assert requests == 1 and [json.loads(line) for line in output.splitlines()] == [
        {"id": "a", "features": [1, 2], "SageMakerOutput": {"score": 3}},
        {"id": "b", "features": [3, 4], "SageMakerOutput": {"score": 7}}]


def test_the_transform_has_a_job_log(store, tmp_path):
    run_transform(store, tmp_path, [])
    log = (tmp_path / "job" / "job.log").read_text()
    assert "in/part-a.csv: 3 records in 1 requests -> part-a.csv.out" in log
    assert "transformed 4 records from 2 objects in 2 requests" in log


TINY_SERVE = '''
import http.server, os, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(200 if self.path == "/ping" else 404)

    def do_POST(self):
        rows = self.rfile.read(int(self.headers["Content-Length"])).decode().splitlines()
        print(f"tiny serve: scoring {len(rows)} rows", flush=True)
        self._answer(200, "".join(f"{len(row)}\\n" for row in rows).encode())

    def log_message(self, *args):
        pass

assert sys.argv[1:] == ["serve"]
port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
print(f"tiny serve: listening on {port}", flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''


@needs_container_paths
def test_a_serve_programs_output_is_in_the_transform_job_log(store, tmp_path):
    program = tmp_path / "tiny_serve.py"
    program.write_text(TINY_SERVE)
    image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/tiny:1"
    (store.root / "models" / "m2.json").write_text(json.dumps(
        {"ModelName": "m2", "PrimaryContainer": {"Image": image, "ModelDataUrl": "s3://bkt/model/model.tar.gz"}}))
    arguments = {**SDK_DEFAULTS, "ModelName": "m2", "TransformInput": {
        **SDK_DEFAULTS["TransformInput"], "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                          "S3Uri": "s3://bkt/in"}}}}
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    run = StepRun("Score", {"Name": "Score", "Type": "Transform"}, arguments, Context({}, {}, {}), "exec1", "p",
                  store, job_dir, None, lambda line: None, image_programs={image: f"python3 {program}"})
    transform.execute(run)
    log = (job_dir / "job.log").read_text()
    assert "tiny serve: listening on" in log and "tiny serve: scoring 3 rows" in log  # part-a.csv, sent whole
    assert "transformed 2 records from 2 objects in 2 requests" in log  # SplitType None: an object is a record
    assert store.path("s3://bkt/out/part-a.csv.out").read_text() == "7\n8\n7\n"


@pytest.mark.parametrize("split_type", ["Line", "None"])
def test_gzip_data_without_compression_type_is_one_client_error_saying_so(store, tmp_path, split_type):
    import gzip

    store.put_bytes(gzip.compress(b"1,2,0,0\n0,-2,0,0\n"), "s3://bkt/zipped/part-a.csv.gz")
    zipped = {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/zipped"}},
              "ContentType": "text/csv", "SplitType": split_type}
    with pytest.raises(StepFailed, match=r"^ClientError: zipped/part-a.csv.gz is gzip data: set "
                                         r"TransformInput.CompressionType to Gzip"):
        run_transform(store, tmp_path, [], TransformInput=zipped)
