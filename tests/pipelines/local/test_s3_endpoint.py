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
    functions = boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="eu-west-1",
                             aws_access_key_id="a", aws_secret_access_key="b")
    with pytest.raises(ClientError) as refused:
        functions.list_functions()
    assert "serves only S3 and SageMaker" in str(refused.value) and "lambda API" in str(refused.value)


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


# -- hostile and unlucky keys and requests: every key round-trips or is refused with an S3 error naming it --

def _error(call) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"].get("Message", "")


@pytest.mark.parametrize("size", [0, 1, 5 * 1024 * 1024 + 1])
def test_puts_of_every_size_answer_at_once_with_and_without_expect(endpoint, size) -> None:
    import socket

    running, store = endpoint
    s3 = client(running, read_timeout=10, retries={"total_max_attempts": 1})
    s3.put_object(Bucket="bkt", Key=f"markers/{size}/_SUCCESS", Body=b"z" * size)  # boto3 sends Expect: 100-continue
    assert store.path(f"s3://bkt/markers/{size}/_SUCCESS").read_bytes() == b"z" * size
    port = int(running.url.rsplit(":", 1)[1])
    for expect in ("", "Expect: 100-continue\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(f"PUT /bkt/raw/{size} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n{expect}\r\n".encode())
            if expect and size:
                assert raw.recv(100).startswith(b"HTTP/1.1 100 Continue")
            raw.sendall(b"y" * size)
            assert raw.recv(100).startswith(b"HTTP/1.1 200 OK")
        assert store.path(f"s3://bkt/raw/{size}").read_bytes() == b"y" * size


def test_a_folder_marker_is_its_own_object_beside_the_keys_below_it(endpoint) -> None:
    running, store = endpoint
    s3 = client(running)
    s3.put_object(Bucket="bkt", Key="folder/", Body=b"")
    s3.put_object(Bucket="bkt", Key="folder/inside.txt", Body=b"in")
    assert s3.get_object(Bucket="bkt", Key="folder/")["Body"].read() == b""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="bkt", Prefix="folder")["Contents"]]
    assert keys == ["folder/", "folder/inside.txt"]
    s3.delete_object(Bucket="bkt", Key="folder/")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt", Prefix="folder")["Contents"]] == ["folder/inside.txt"]
    destination = Path(store.root) / "staged"
    store.put_bytes(b"", "s3://bkt/staged-in/empty/")
    store.put_bytes(b"", "s3://bkt/staged-in/")
    assert store.download_prefix("s3://bkt/staged-in/", destination) == 0
    assert sorted(p.relative_to(destination).as_posix() for p in destination.rglob("*")) == ["empty"]


def test_the_folder_marker_of_an_object_and_an_object_over_a_folder_are_refused_by_name(endpoint) -> None:
    running, store = endpoint
    s3 = client(running)
    # a folder marker over an object used to overwrite it
    status, code, message = _error(lambda: s3.put_object(Bucket="bkt", Key="readme.txt/", Body=b""))
    assert (status, code) == (409, "KeyConflict") and "'s3://bkt/readme.txt/'" in message
    assert store.path("s3://bkt/readme.txt").read_bytes() == b"top"  # untouched
    status, code, message = _error(lambda: s3.put_object(Bucket="bkt", Key="readme.txt/file", Body=b"x"))
    assert (status, code) == (409, "KeyConflict") and "holds 's3://bkt/readme.txt' as an object" in message
    status, code, message = _error(lambda: s3.put_object(Bucket="bkt", Key="data", Body=b"x"))
    assert (status, code) == (409, "KeyConflict") and "keys below 's3://bkt/data/'" in message
    assert _error(lambda: s3.copy_object(Bucket="bkt", Key="data/sub", CopySource="bkt/readme.txt"))[:2] == (
        409, "KeyConflict")
    assert [key for key, _ in store.objects("s3://bkt/")] == ["data/part-0.csv", "data/sub/part-1.csv", "readme.txt"]


@pytest.mark.parametrize("key, code, shown", [
    (".tmp-abc", "InvalidArgument", ".tmp-abc"),
    ("out/.tmp-1234-part.csv", "InvalidArgument", ".tmp-"),
    ("a/" + "n" * 240, "InvalidArgument", "longer than 237 bytes"),
    ("é" * 120 + "/x", "InvalidArgument", "longer than 237 bytes"),
    ("/".join(["k" * 200] * 6), "KeyTooLongError", "Your key is too long"),
])
def test_keys_the_store_cannot_hold_are_s3_errors(endpoint, key, code, shown) -> None:
    running, store = endpoint
    s3 = client(running)
    status, got, message = _error(lambda: s3.put_object(Bucket="bkt", Key=key, Body=b"x"))
    assert status == 400 and got == code and shown in message
    assert [k for k, _ in store.objects("s3://bkt/")] == ["data/part-0.csv", "data/sub/part-1.csv", "readme.txt"]
    assert _error(lambda: s3.get_object(Bucket="bkt", Key=key))[0] in (400, 404)


def test_keys_at_the_limits_round_trip(endpoint) -> None:
    running, _ = endpoint
    s3 = client(running)
    for key in ["a/" + "n" * 237, "/".join(["k" * 200] * 5), "tmp-/.tmp", "x.tmp-y"]:
        s3.put_object(Bucket="bkt", Key=key, Body=key.encode())
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == key.encode()
        assert key in [o["Key"] for o in s3.list_objects_v2(Bucket="bkt", Prefix=key[:3])["Contents"]]


def _raw(running: S3Endpoint, method: str, path: str, body: bytes, **headers: str) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", int(running.url.rsplit(":", 1)[1]), timeout=10)
    try:
        connection.request(method, path, body, {k.replace("_", "-"): v for k, v in headers.items()})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_bad_aws_chunked_size_and_a_bad_part_number_are_s3_errors(endpoint) -> None:
    running, store = endpoint
    body = b"zz;chunk-signature=0\r\nhello\r\n0\r\n\r\n"
    status, answer = _raw(running, "PUT", "/bkt/chunked", body, Content_Encoding="aws-chunked")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in answer and b"'zz'" in answer
    assert not store.path("s3://bkt/chunked").exists()
    s3 = client(running)
    upload = s3.create_multipart_upload(Bucket="bkt", Key="big")["UploadId"]
    etag = s3.upload_part(Bucket="bkt", Key="big", UploadId=upload, PartNumber=1, Body=b"p1")["ETag"]
    xml = f"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    status, answer = _raw(running, "POST", f"/bkt/big?uploadId={upload}", xml.encode())
    assert status == 400 and b"<Code>InvalidPart</Code>" in answer and b"'one'" in answer


def test_stopping_with_clients_connected_and_mid_request_is_quiet_and_prompt(tmp_path, capfd) -> None:
    import socket
    import threading
    import time

    store = Store(tmp_path / "store")
    store.put_bytes(b"x" * (1 << 20), "s3://bkt/big")
    for _ in range(10):
        running = S3Endpoint(store, "us-east-1")
        running.__enter__()
        port = int(running.url.rsplit(":", 1)[1])
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
        sockets[0].sendall(b"GET /bkt/big HTTP/1.1\r\nHost: x\r\n\r\n")  # a response being sent
        sockets[1].sendall(b"PUT /bkt/half HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")  # a body arriving
        sockets[2].sendall(b"GET /bkt/big HTT")  # headers arriving
        def listing() -> None:
            try:
                client(running, retries={"total_max_attempts": 1}).list_objects_v2(Bucket="bkt")
            except Exception:  # noqa: BLE001 - the endpoint may stop before or while it answers
                pass

        busy = [threading.Thread(target=listing)]
        busy[0].start()
        started = time.monotonic()
        running.__exit__(None, None, None)
        assert time.monotonic() - started < 6 and not running._thread.is_alive()
        busy[0].join(timeout=10)
        for raw in sockets:
            raw.close()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Exception" not in captured.err
    assert not store.path("s3://bkt/half").exists()
