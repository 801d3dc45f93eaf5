"""The S3 endpoint job programs use: boto3 (client and s3transfer, as the AWS CLI uses it) against the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipelines.local.s3_endpoint import S3Endpoint
from pipelines.local.store import Store


@pytest.fixture
def endpoint(tmp_path: Path):
    store = Store(tmp_path / "store")
    store.put_bytes(b"a,b\n1,2\n", "s3://bkt/data/part-0.csv")
    store.put_bytes(b"x" * 10, "s3://bkt/data/sub/part-1.csv")
    store.put_bytes(b"top", "s3://bkt/readme.txt")
    with S3Endpoint(store, "eu-west-1") as running:
        yield running, store


def client(endpoint: S3Endpoint, **config):
    env = endpoint.job_environment()
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        config=Config(**config))


def test_objects_round_trip_through_the_store(endpoint) -> None:
    running, store = endpoint
    s3 = client(running)
    assert s3.get_object(Bucket="bkt", Key="data/part-0.csv")["Body"].read() == b"a,b\n1,2\n"
    assert s3.get_object(Bucket="bkt", Key="data/part-0.csv", Range="bytes=2-4")["Body"].read() == b"b\n1"
    assert s3.get_object(Bucket="bkt", Key="data/part-0.csv", Range="bytes=-2")["Body"].read() == b"2\n"
    assert s3.head_object(Bucket="bkt", Key="readme.txt")["ContentLength"] == 3
    s3.put_object(Bucket="out-bkt", Key="results/é x.json", Body=b'{"ok": 1}')
    assert store.path("s3://out-bkt/results/é x.json").read_bytes() == b'{"ok": 1}'
    s3.copy_object(Bucket="bkt", Key="copy/readme.txt", CopySource={"Bucket": "bkt", "Key": "readme.txt"})
    assert store.path("s3://bkt/copy/readme.txt").read_bytes() == b"top"
    s3.delete_object(Bucket="bkt", Key="copy/readme.txt")
    assert not store.path("s3://bkt/copy").exists()
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="bkt", Key="nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["bkt", "out-bkt"]
    s3.head_bucket(Bucket="bkt")
    assert s3.get_bucket_location(Bucket="bkt")["LocationConstraint"] == "eu-west-1"


def test_listings_with_prefixes_delimiters_and_pages(endpoint) -> None:
    running, _ = endpoint
    s3 = client(running)
    listed = s3.list_objects_v2(Bucket="bkt", Prefix="data/", Delimiter="/")
    assert [c["Key"] for c in listed["Contents"]] == ["data/part-0.csv"]
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["data/sub/"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="bkt", PaginationConfig={"PageSize": 1})
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == [
        "data/part-0.csv", "data/sub/part-1.csv", "readme.txt"]
    assert [o["Key"] for o in s3.list_objects(Bucket="bkt", Prefix="data/s")["Contents"]] == ["data/sub/part-1.csv"]
    s3.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "readme.txt"}, {"Key": "data/sub/part-1.csv"}]})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["data/part-0.csv"]


def test_multipart_transfers_as_the_aws_cli_makes_them(endpoint, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    running, store = endpoint
    s3 = client(running)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024 + 123))
    small_parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(big), "bkt", "big/object.bin", Config=small_parts)
    assert store.path("s3://bkt/big/object.bin").read_bytes() == big.read_bytes()
    s3.copy({"Bucket": "bkt", "Key": "big/object.bin"}, "bkt", "big/copy.bin", Config=small_parts)
    assert store.path("s3://bkt/big/copy.bin").read_bytes() == big.read_bytes()
    back = tmp_path / "back.bin"
    s3.download_file("bkt", "big/copy.bin", str(back), Config=small_parts)
    assert back.read_bytes() == big.read_bytes()
    assert not list((store.root / "s3-uploads").iterdir())


def test_the_store_containment_rules_hold(endpoint) -> None:
    running, store = endpoint
    (store.s3_root / "bkt" / "link").symlink_to("/etc")
    s3 = client(running)
    for key in ("link/passwd", "data/../../../etc/passwd"):
        with pytest.raises(ClientError) as refused:
            s3.get_object(Bucket="bkt", Key=key)
        assert refused.value.response["Error"]["Code"] in ("InvalidArgument", "NoSuchKey")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="bkt", Key="a/./b", Body=b"x")
    assert "segment" in refused.value.response["Error"]["Message"]
    assert not (store.s3_root / "bkt" / "a").exists()


def test_other_aws_services_get_one_clear_error(endpoint) -> None:
    running, _ = endpoint
    env = running.job_environment()
    sagemaker = boto3.client("sagemaker", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="eu-west-1",
                             aws_access_key_id="a", aws_secret_access_key="b")
    with pytest.raises(ClientError) as refused:
        sagemaker.list_training_jobs()
    assert "serves only S3" in str(refused.value)


def test_a_program_reaches_it_from_its_environment_alone(endpoint) -> None:
    running, _ = endpoint
    code = ("import boto3; s3 = boto3.client('s3'); "
            "print(s3.get_object(Bucket='bkt', Key='readme.txt')['Body'].read().decode())")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | running.job_environment()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "top", done.stderr


def test_every_status_line_carries_its_own_reason_phrase(endpoint) -> None:
    import http.client
    from urllib.parse import urlsplit

    running, _ = endpoint
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(running.url).port, timeout=10)
    try:
        connection.request("POST", "/")
        response = connection.getresponse()
        response.read()
        assert (response.status, response.reason) == (405, "Method Not Allowed")
    finally:
        connection.close()
