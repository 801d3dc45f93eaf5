"""A local endpoint under hostile and unlucky clients: chunked bodies, slow clients, huge rows, odd names."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest

from pipelines.errors import ConfigError
from pipelines.local.endpoints import LocalEndpoints, check_endpoint_name
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.inference.test_xgboost_csv import model_archive
from tests.pipelines.test_deploy import GROUP, ROWS, deploy_model, server_processes, spec


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("endpoint")
    store = root / "store"
    Store(store).put_file(model_archive(root), "s3://bkt/models/model.tar.gz")
    Registry(store / "registry.sqlite").register(GROUP, "Approved", spec("s3://bkt/models/model.tar.gz"))
    deployed = deploy_model("deploy", "--endpoint-name", "leads", "--store", str(store))
    assert deployed.returncode == 0, deployed.stderr
    record = json.loads((store / "endpoints" / "leads" / "endpoint.json").read_text())
    yield store, record["Port"]
    deploy_model("undeploy", "leads", "--store", str(store))


def chunked_post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
        connection.request("POST", path, body=iter(pieces), headers={"Content-Type": "text/csv"}, encode_chunked=True)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "text/csv"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_chunked_body_is_scored_like_one_with_a_length(endpoint):
    _, port = endpoint
    plain = post(port, "/invocations", ROWS)
    assert plain[0] == 200 and len(plain[1].splitlines()) == 3
    assert chunked_post(port, "/invocations", ROWS) == plain
    assert chunked_post(port, "/endpoints/leads/invocations", ROWS) == plain
    status, body = chunked_post(port, "/invocations", b"1,2,3\n" * (1024 * 1024 + 1))
    assert status == 413 and b"exceeds 6291456 bytes" in body


def test_rows_of_the_wrong_width_say_how_many_features_the_model_takes(endpoint):
    _, port = endpoint
    status, body = post(port, "/invocations", b"1,2\n")  # XGBoost itself would score it, the third feature missing
    assert status == 400 and body.startswith(b"row 1: expected 3 features, got 2 (send the features only")
    status, body = post(port, "/invocations", b"1,0.5,2,3\n")  # the label left in front of the features
    assert status == 400 and body == b"row 1: expected 3 features, got 4 (is the label column still in? send the " \
                                     b"features only)"


def test_a_row_wider_than_the_model_is_refused_before_it_is_parsed(endpoint):
    _, port = endpoint
    status, body = post(port, "/invocations", b",".join([b"1"] * 1_000_000) + b"\n")
    assert status == 400 and body == (b"row 1: expected 3 features, got 1000000 (send the features only, in the order "
                                      b"the model was trained on)")
    status, body = post(port, "/invocations", b"1,2,3\n1,2\n")  # a short row is not padded with missing values
    assert status == 415 and b"row 2 has 2 columns, expected 3" in body
    for value in (b"inf", b"1e400"):
        assert post(port, "/invocations", b"1,2,%s\n" % value)[0] == 400


def test_slow_clients_cannot_starve_the_endpoint(endpoint):
    from inference.gunicorn_worker import READ_TIMEOUT_SECONDS, THREADS

    _, port = endpoint
    slow = []
    for number in range(THREADS - 2):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        if number % 2:
            raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n")  # half the headers
        else:
            raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n1,2,")  # a tenth of a body
        slow.append(raw)
    time.sleep(0.5)
    for _ in range(5):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/ping")
        assert connection.getresponse().status == 200
        connection.close()
        assert post(port, "/invocations", ROWS)[0] == 200
    # the server gives up on each of them at once, not one by one (a graceful close lingers 2 s in its loop)
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS + 5
    for number, raw in enumerate(slow):
        raw.settimeout(max(deadline - time.monotonic(), 0.1))
        try:
            answer = raw.recv(100)
        except TimeoutError:
            answer = b"(still open)"
        assert answer == b"", (number, answer)
        raw.close()
    log = (endpoint[0] / "endpoints" / "leads" / "server.log").read_text()
    assert "Traceback" not in log


@pytest.mark.parametrize("name", ["leads\n", "leads ", "-leads", "a" * 64, "le_ads", "lé"])
def test_endpoint_names_are_matched_whole(name):
    with pytest.raises(ConfigError, match="must match"):
        check_endpoint_name(name)


def test_undeploy_stops_the_server_it_recorded_and_nothing_else(tmp_path):
    store = tmp_path / "store"
    Store(store).put_file(model_archive(tmp_path), "s3://bkt/models/model.tar.gz")
    Registry(store / "registry.sqlite").register(GROUP, "Approved", spec("s3://bkt/models/model.tar.gz"))
    assert deploy_model("deploy", "--endpoint-name", "leads", "--store", str(store)).returncode == 0
    folder = store / "endpoints" / "leads"
    record = json.loads((folder / "endpoint.json").read_text())
    assert record["PidStarted"] and server_processes(folder)
    forged = {**record, "PidStarted": "1"}  # the same pid, another process's start time: not ours to stop
    assert LocalEndpoints(Store(store)).describe("leads")["Health"] == "Healthy"
    (folder / "endpoint.json").write_text(json.dumps(forged))
    assert LocalEndpoints(Store(store)).describe("leads")["Health"] == "Stopped"
    (folder / "endpoint.json").write_text(json.dumps(record))
    undeployed = deploy_model("undeploy", "leads", "--store", str(store))
    assert undeployed.returncode == 0, undeployed.stderr
    deadline = time.monotonic() + 10
    while server_processes(Path(str(folder))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_processes(folder) == []
