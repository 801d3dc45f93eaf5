"""The image's serve program under SageMaker's inference contract: real HTTP on loopback."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from container.model import load
from tests.container.helpers import REPO, leads, ml_dir, request, run_container


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ml = ml_dir(tmp_path_factory.mktemp("serve") / "ml", {"num_round": "30", "max_depth": "4"})
    assert run_container("train", ml).returncode == 0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([sys.executable, "-m", "pipelines.container", "serve", "--ml-dir", str(ml),
                                "--port", str(port)], cwd=REPO, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    said: list[str] = []  # what a script started in the background waits for: the line saying where it listens
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(line.startswith(f"serving at http://127.0.0.1:{port} (")
                                                  for line in said):
        if select.select([process.stdout], [], [], 1)[0]:
            said.append(process.stdout.readline().decode())
            if not said[-1] and process.poll() is not None:
                break
    if not any(line.startswith(f"serving at http://127.0.0.1:{port} (") for line in said):
        process.kill()
        pytest.fail(f"serve did not say it was up: {''.join(said)}")
    assert request(port, "GET", "/ping")[0] == 200  # up when it says so
    yield port, load(ml / "model")
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) is not None


def csv_rows(rows: np.ndarray) -> bytes:
    return ("\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n").encode()


def test_ping_and_execution_parameters(served) -> None:
    port, _ = served
    assert request(port, "GET", "/ping")[0] == 200
    status, body = request(port, "GET", "/execution-parameters")
    assert status == 200
    assert json.loads(body) == {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


@pytest.mark.parametrize("count", [1, 500])
def test_invocations_answer_one_calibrated_probability_per_line(served, count) -> None:
    port, model = served
    features = leads(count, 11)[:, 1:]
    status, body = request(port, "POST", "/invocations", csv_rows(features), Content_Type="text/csv", Accept="text/csv")
    assert status == 200
    scores = np.array([float(line) for line in body.decode().splitlines()])
    assert len(scores) == count
    assert np.allclose(scores, model.predict(features.astype(np.float32)), atol=1e-6)
    assert np.all((scores >= 0) & (scores <= 1))


def test_refusals_are_the_built_in_containers(served) -> None:
    port, _ = served
    row = csv_rows(leads(1, 12)[:, 1:])
    too_big = b"0.1,0.2,0.3,0.4\n" * (6 * 1024 * 1024 // 16 + 1)
    assert request(port, "POST", "/invocations", too_big, Content_Type="text/csv")[0] == 413
    assert request(port, "POST", "/invocations", row, Content_Type="application/json")[0] == 415
    assert request(port, "POST", "/invocations", b"a,b,c,d\n", Content_Type="text/csv")[0] == 415
    assert request(port, "POST", "/invocations", row, Content_Type="text/csv", Accept="application/json")[0] == 406
    status, body = request(port, "POST", "/invocations", b"0.1,0.2\n", Content_Type="text/csv")
    assert (status, body) == (400, b"row 1: expected 4 features, got 2 (send the features only, in the order the "
                                   b"model was trained on)")
    assert request(port, "POST", "/invocations", b"", Content_Type="text/csv")[0] == 204
    status, body = request(port, "POST", "/invocations", b"1,0.1,0.2,0.3,0.4\n", Content_Type="text/csv")
    assert status == 400 and b"expected 4 features, got 5 (is the label column still in?" in body


def test_the_same_rules_as_the_built_in_path_for_odd_bodies(served) -> None:
    port, model = served
    rows = csv_rows(leads(3, 13)[:, 1:])
    plain = request(port, "POST", "/invocations", rows, Content_Type="text/csv")
    assert plain[0] == 200 and len(plain[1].splitlines()) == 3
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/invocations", body=iter([rows[:9], rows[9:]]), headers={"Content-Type": "text/csv"},
                       encode_chunked=True)
    response = connection.getresponse()
    assert (response.status, response.read()) == plain  # a chunked body used to be answered 204, unscored
    connection.close()
    status, body = request(port, "POST", "/invocations", b"0.1,0.2,0.3,0.4\n0.1,0.2,0.3\n", Content_Type="text/csv")
    assert status == 400 and body.startswith(b"row 2: expected 4 features, got 3 (")  # used to be padded with NaN
    for value in (b"inf", b"1e400", b"-inf"):
        status, body = request(port, "POST", "/invocations", b"0.1,0.2,0.3,%s\n" % value, Content_Type="text/csv")
        assert (status, body) == (400, b"row 1 has a value that is infinite or beyond the float32 range")
    status, body = request(port, "POST", "/invocations", b",".join([b"1"] * 1_000_000) + b"\n", Content_Type="text/csv")
    assert status == 400 and body.startswith(b"row 1: expected 4 features, got 1000000 (")


@pytest.mark.parametrize("damage, message", [
    (lambda model: (model / "model.json").write_text("[]"), "model.json has no positive whole 'features' count"),
    (lambda model: (model / "model.json").write_text('{"features": "4"}'), "no positive whole 'features' count"),
    (lambda model: (model / "calibration.json").write_text('{"method": "platt", "a": "x"}'),
     "calibration.json: platt calibration needs numbers 'a' and 'b'"),
    (lambda model: (model / "calibration.json").write_text('{"method": "magic"}'), "calibration.json: not a calibration"),
    (lambda model: (model / "xgboost-model").write_bytes(b"\x00garbage"), "xgboost-model is not a booster XGBoost can load"),
])
def test_a_damaged_model_is_one_line_before_any_worker_boots(tmp_path, damage, message) -> None:
    import shutil

    ml = ml_dir(tmp_path / "ml", {"num_round": "5"}, train_rows=300, validation_rows=200)
    assert run_container("train", ml).returncode == 0
    damage(ml / "model")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([sys.executable, "-m", "pipelines.container", "serve", "--ml-dir", str(ml), "--port",
                             str(free_port())], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr
    shutil.rmtree(ml)
