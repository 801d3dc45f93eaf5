"""Multipart uploads raced as job programs race them: completion, aborts and parts of one upload at once."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipelines.local.s3_endpoint import S3Endpoint
from pipelines.local.store import Store

OLD, NEW, FIRST = b"o" * (64 << 10), b"n" * (64 << 10), b"f" * (512 << 10)


@pytest.fixture
def endpoint(tmp_path: Path):
    store = Store(tmp_path / "store")
    store.put_bytes(b"x", "s3://bkt/other")
    with S3Endpoint(store, "us-east-1") as running:
        yield running, store


def _client(running: S3Endpoint) -> Any:
    """A client that never retries: a 500 must reach the test, not be hidden by a retry that then succeeds."""
    return boto3.client("s3", endpoint_url=running.url, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="y", config=Config(read_timeout=10, retries={"total_max_attempts": 1}))


def _answer(call: Callable[[], Any]) -> tuple[int, str]:
    """(HTTP status, "ok" or the S3 error code) of one call."""
    try:
        answer = call()
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]
    return answer["ResponseMetadata"]["HTTPStatusCode"], "ok"


def _multipart_etag(*parts: bytes) -> str:
    return '"' + hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f'-{len(parts)}"'


def _leftovers(store: Store) -> list[str]:
    uploads = store.upload_dir("x").parent
    return sorted(p.relative_to(uploads).as_posix() for p in uploads.rglob("*")) if uploads.exists() else []


def test_completion_aborts_and_a_part_racing_end_as_one_s3_order_would(endpoint) -> None:
    running, store = endpoint
    with S3Endpoint(store, "us-east-1") as beside:  # another run's endpoint over the same store
        _race(running, beside, store)


def _race(running: S3Endpoint, beside: S3Endpoint, store: Store) -> None:
    setup, own, other = _client(running), [_client(running) for _ in range(4)], _client(beside)
    for attempt in range(30):
        racers = own if attempt % 2 else own[:2] + [other] + own[3:]  # every other round, one abort comes from beside
        key = f"race/{attempt}"
        upload = setup.create_multipart_upload(Bucket="bkt", Key=key)["UploadId"]
        parts = [{"PartNumber": n, "ETag": setup.upload_part(Bucket="bkt", Key=key, UploadId=upload, PartNumber=n,
                                                             Body=body)["ETag"]} for n, body in ((1, FIRST), (2, OLD))]
        calls = {
            "complete": lambda s3: s3.complete_multipart_upload(Bucket="bkt", Key=key, UploadId=upload,
                                                                MultipartUpload={"Parts": parts}),
            "abort": lambda s3: s3.abort_multipart_upload(Bucket="bkt", Key=key, UploadId=upload),
            "abort again": lambda s3: s3.abort_multipart_upload(Bucket="bkt", Key=key, UploadId=upload),
            "part 2 anew": lambda s3: s3.upload_part(Bucket="bkt", Key=key, UploadId=upload, PartNumber=2, Body=NEW),
        }
        start, answers = threading.Barrier(len(calls)), {}

        def race(name: str, s3: Any) -> None:
            start.wait()
            answers[name] = _answer(lambda: calls[name](s3))

        threads = [threading.Thread(target=race, args=item) for item in zip(calls, racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(answers) == len(calls), (attempt, "no answer within 30 s", answers)
        codes = {name: code for name, (_, code) in answers.items()}
        assert all(status < 500 for status, _ in answers.values()), (attempt, answers)
        assert codes["complete"] in ("ok", "NoSuchUpload", "InvalidPart"), (attempt, answers)
        assert {codes["abort"], codes["abort again"], codes["part 2 anew"]} <= {"ok", "NoSuchUpload"}, answers
        # in any order S3 could have taken them, exactly one completion or abort ends the upload
        assert [codes["complete"], codes["abort"], codes["abort again"]].count("ok") == 1, (attempt, answers)
        # the new part 2 came before the completion (its ETag no longer matches), or after it (the upload is gone)
        if codes["complete"] == "InvalidPart":
            assert codes["part 2 anew"] == "ok", (attempt, answers)
        stored = store.path(f"s3://bkt/{key}")
        if codes["complete"] == "ok":
            assert codes["part 2 anew"] == "NoSuchUpload", (attempt, answers)
            assert stored.read_bytes() == FIRST + OLD, attempt  # never part of the new part 2, never half of it
            assert setup.head_object(Bucket="bkt", Key=key)["ContentLength"] == len(FIRST + OLD)
        else:
            assert not stored.exists(), (attempt, answers)
        assert _leftovers(store) == [], (attempt, answers)


def test_an_ended_upload_answers_no_such_upload_to_everything(endpoint) -> None:
    running, store = endpoint
    s3 = _client(running)
    upload = s3.create_multipart_upload(Bucket="bkt", Key="done")["UploadId"]
    etag = s3.upload_part(Bucket="bkt", Key="done", UploadId=upload, PartNumber=1, Body=b"whole")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    assert s3.complete_multipart_upload(Bucket="bkt", Key="done", UploadId=upload,
                                        MultipartUpload=parts)["ETag"] == _multipart_etag(b"whole")
    after_completion = [
        _answer(lambda: s3.abort_multipart_upload(Bucket="bkt", Key="done", UploadId=upload)),
        _answer(lambda: s3.complete_multipart_upload(Bucket="bkt", Key="done", UploadId=upload, MultipartUpload=parts)),
        _answer(lambda: s3.upload_part(Bucket="bkt", Key="done", UploadId=upload, PartNumber=1, Body=b"late")),
    ]
    assert after_completion == [(404, "NoSuchUpload")] * 3
    assert s3.get_object(Bucket="bkt", Key="done")["Body"].read() == b"whole"

    upload = s3.create_multipart_upload(Bucket="bkt", Key="dropped")["UploadId"]
    s3.upload_part(Bucket="bkt", Key="dropped", UploadId=upload, PartNumber=1, Body=b"gone")
    assert _answer(lambda: s3.abort_multipart_upload(Bucket="bkt", Key="dropped", UploadId=upload)) == (204, "ok")
    after_abort = [
        _answer(lambda: s3.abort_multipart_upload(Bucket="bkt", Key="dropped", UploadId=upload)),
        _answer(lambda: s3.complete_multipart_upload(Bucket="bkt", Key="dropped", UploadId=upload,
                                                     MultipartUpload=parts)),
        _answer(lambda: s3.upload_part(Bucket="bkt", Key="dropped", UploadId=upload, PartNumber=2, Body=b"late")),
    ]
    assert after_abort == [(404, "NoSuchUpload")] * 3
    assert not store.path("s3://bkt/dropped").exists() and _leftovers(store) == []


def test_a_failed_completion_leaves_the_upload_to_finish(endpoint) -> None:
    running, store = endpoint
    s3 = _client(running)
    upload = s3.create_multipart_upload(Bucket="bkt", Key="retry")["UploadId"]
    etag = s3.upload_part(Bucket="bkt", Key="retry", UploadId=upload, PartNumber=1, Body=b"one")["ETag"]
    wrong = {"Parts": [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]}
    assert _answer(lambda: s3.complete_multipart_upload(Bucket="bkt", Key="retry", UploadId=upload,
                                                        MultipartUpload=wrong)) == (400, "InvalidPart")
    assert not store.path("s3://bkt/retry").exists()
    s3.complete_multipart_upload(Bucket="bkt", Key="retry", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert store.path("s3://bkt/retry").read_bytes() == b"one" and _leftovers(store) == []
