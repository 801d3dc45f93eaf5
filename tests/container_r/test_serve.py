"""The R image's serve program under SageMaker's inference contract, in the job runtime, real HTTP on loopback:
its answers, and each refusal with the status (and words) of our Python image's serve for the same request."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.container.helpers import REPO, leads, ml_dir, request, run_container
from tests.container_r.helpers import csv_rows, free_port, r_predict, serving, train
from tests.sandboxing import needs_bubblewrap, needs_r

pytestmark = [needs_r, needs_bubblewrap]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The R image's serve and our Python image's, each on a model of its own trained on the same data: (R port,
    Python port, the R model's folder)."""
    root = tmp_path_factory.mktemp("serve")
    r_ml = ml_dir(root / "r", {"num_round": "30", "max_depth": "4"})
    python_ml = ml_dir(root / "python", {"num_round": "30", "max_depth": "4"})
    assert train(r_ml).returncode == 0
    assert run_container("train", python_ml).returncode == 0
    with serving(r_ml, "r") as r_port, serving(python_ml, "xgboost") as python_port:
        yield r_port, python_port, r_ml / "model"


def test_ping_and_execution_parameters(servers) -> None:
    r_port, _, _ = servers
    assert request(r_port, "GET", "/ping") == (200, b"")
    status, body = request(r_port, "GET", "/execution-parameters")
    assert status == 200
    # one R process answers one request at a time
    assert json.loads(body) == {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


@pytest.mark.parametrize("count", [1, 500])
def test_invocations_answer_one_probability_per_row(servers, count) -> None:
    r_port, _, model = servers
    features = leads(count, 11)[:, 1:]
    status, body = request(r_port, "POST", "/invocations", csv_rows(features), Content_Type="text/csv",
                           Accept="text/csv")
    assert status == 200
    scores = np.array([float(line) for line in body.decode().splitlines()])
    assert len(scores) == count and np.all((scores >= 0) & (scores <= 1))
    assert np.allclose(scores, r_predict(model, features), atol=1e-6)


ROW = csv_rows(leads(1, 12)[:, 1:])
TOO_BIG = b"0.1,0.2,0.3,0.4\n" * (6 * 1024 * 1024 // 16 + 1)
# (name, body, headers): requests each image must refuse alike
REFUSED = [
    ("too large", TOO_BIG, {"Content-Type": "text/csv"}),
    ("wrong content type", ROW, {"Content-Type": "application/json"}),
    ("no content type", ROW, {}),
    ("not acceptable", ROW, {"Content-Type": "text/csv", "Accept": "application/json"}),
    ("too narrow", b"0.1,0.2\n", {"Content-Type": "text/csv"}),
    ("the label left in", b"1,0.1,0.2,0.3,0.4\n", {"Content-Type": "text/csv"}),
    ("a short second row", b"0.1,0.2,0.3,0.4\n0.1,0.2,0.3\n", {"Content-Type": "text/csv"}),
    ("a million columns", b",".join([b"1"] * 1_000_000) + b"\n", {"Content-Type": "text/csv"}),
    ("infinite", b"0.1,0.2,0.3,inf\n", {"Content-Type": "text/csv"}),
    ("beyond float32", b"0.1,0.2,0.3,1e400\n", {"Content-Type": "text/csv"}),
    ("empty", b"", {"Content-Type": "text/csv"}),
    ("too narrow and not UTF-8", b"0.1,\xff\xfe\n", {"Content-Type": "text/csv"}),  # the width is checked first
    ("too narrow with a NUL", b"0.1,0\x00.2\n", {"Content-Type": "text/csv"}),
]


@pytest.mark.parametrize("name, body, headers", REFUSED, ids=[name for name, _, _ in REFUSED])
def test_each_refusal_is_the_python_images(servers, name, body, headers) -> None:
    r_port, python_port, _ = servers
    answered = request(r_port, "POST", "/invocations", body, **headers)
    assert answered == request(python_port, "POST", "/invocations", body, **headers)
    assert answered[0] in (204, 400, 406, 413, 415)


def test_non_numeric_csv_is_415_as_the_python_images(servers) -> None:
    r_port, python_port, _ = servers
    for body in (b"a,b,c,d\n", b"0.1,0\x00.2,0.3,0.4\n", b"0.1,\xff\xfe,0.3,0.4\n"):
        r_status, r_body = request(r_port, "POST", "/invocations", body, Content_Type="text/csv")
        python_status, python_body = request(python_port, "POST", "/invocations", body, Content_Type="text/csv")
        assert r_status == python_status == 415, (body, r_body, python_body)
        assert r_body.startswith(b"the body is not headerless numeric CSV: ")  # then R's reason, not pandas'
    assert request(r_port, "POST", "/invocations", b"a,b,c,d\n", Content_Type="text/csv")[1] == (
        b"the body is not headerless numeric CSV: row 1: 'a' is not a number")


def test_the_exact_words_of_a_width_refusal(servers) -> None:
    r_port, _, _ = servers
    assert request(r_port, "POST", "/invocations", b"0.1,0.2\n", Content_Type="text/csv") == (
        400, b"row 1: expected 4 features, got 2 (send the features only, in the order the model was trained on)")
    status, body = request(r_port, "POST", "/invocations", TOO_BIG, Content_Type="text/csv")
    assert (status, body) == (413, b"the body is over 6291456 bytes, the limit")


def test_odd_but_valid_bodies_are_scored_as_by_the_python_image(servers) -> None:
    r_port, _, model = servers
    rows = csv_rows(leads(3, 13)[:, 1:])
    plain = request(r_port, "POST", "/invocations", rows, Content_Type="text/csv; charset=utf-8")
    assert plain[0] == 200 and len(plain[1].splitlines()) == 3
    assert request(r_port, "POST", "/invocations", rows.replace(b"\n", b"\r\n") + b"\n \n",
                   Content_Type="text/csv") == plain  # CRLF lines and a blank one
    connection = http.client.HTTPConnection("127.0.0.1", r_port, timeout=30)
    connection.request("POST", "/invocations", body=iter([rows[:9], rows[9:]]), headers={"Content-Type": "text/csv"},
                       encode_chunked=True)
    response = connection.getresponse()
    assert (response.status, response.read()) == plain  # a chunked body
    connection.close()
    status, body = request(r_port, "POST", "/invocations", b"0.1,,0.3,nan\n", Content_Type="text/csv")
    assert status == 200 and 0 <= float(body) <= 1  # missing values, as gbm's missing branch scores them


def test_other_routes_are_404_and_no_request_stops_the_server(servers) -> None:
    r_port, _, _ = servers
    assert request(r_port, "GET", "/invocations") == (404, b"no route GET /invocations")
    assert request(r_port, "POST", "/ping")[0] == 404
    assert request(r_port, "GET", "/nothing")[0] == 404
    for _ in range(3):
        request(r_port, "POST", "/invocations", b"\x00" * 1000, Content_Type="text/csv")
        request(r_port, "POST", "/invocations", TOO_BIG, Content_Type="text/csv")
    assert request(r_port, "GET", "/ping") == (200, b"")


@pytest.mark.parametrize("damage, message", [
    (lambda model: (model / "model.json").write_text("[]"), "model.json has no positive whole 'features' count"),
    (lambda model: (model / "model.json").write_text('{"features": "4"}'), "no positive whole 'features' count"),
    (lambda model: (model / "model.json").write_text("{"), "model.json is not JSON"),
    (lambda model: (model / "model.rds").write_bytes(b"\x00garbage"), "model.rds is not an R object file"),
    (lambda model: (model / "model.rds").unlink(), "model.rds is missing: this is not a model this image wrote"),
])
def test_a_damaged_model_is_one_line_and_exit_1(tmp_path, damage, message) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "5"}, train_rows=300, validation_rows=200)
    assert train(ml).returncode == 0
    damage(ml / "model")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run([sys.executable, "-m", "pipelines.container", "serve", "--image", "r", "--ml-dir", str(ml),
                           "--port", str(free_port())], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("serve: cannot load the model: ")
    assert "Error in" not in done.stderr
