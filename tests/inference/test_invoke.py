"""invoke-endpoint: packing, ordering, retries against a real HTTP server, and runs against a real local endpoint."""

from __future__ import annotations

import gzip
import json
import math
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from inference.hosting import XGBoostPredictor
from inference.scoring import Scorer, Totals, invoker, runtime_client
from inference.payloads import PayloadError, local_sources, pack, rows
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.inference.test_xgboost_csv import model_archive

REPO = Path(__file__).resolve().parents[2]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def lead_rows(n: int) -> bytes:
    return "".join(f"L{i},{(i % 7) - 3},{i % 5},{i % 3 * 0.5}\n" for i in range(n)).encode()


def test_pack_fills_requests_with_whole_rows_and_keeps_ids_back(tmp_path):
    (tmp_path / "a.csv").write_bytes(lead_rows(1000))
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(lead_rows(500)))
    (tmp_path / ".hidden").write_bytes(b"junk\n")
    requests = list(pack(rows(local_sources(tmp_path)), id_columns=1, max_bytes=1000))
    assert sum(r.rows for r in requests) == 1500
    assert all(len(r.body) <= 1000 for r in requests)
    assert all(len(r.body) > 1000 - 20 for r in requests[:-1])  # each is filled up to the last whole row
    assert requests[0].ids[:2] == [b"L0", b"L1"] and requests[0].body.startswith(b"-3,0,0.0\n-2,1,0.5\n")
    assert all(r.body.endswith(b"\n") and r.body.count(b"\n") == r.rows for r in requests)
    assert requests[-1].first_row.startswith(str(tmp_path / "b.csv.gz") + " line ")


@pytest.mark.parametrize("content, id_columns, message", [
    (b"L1,1,2\nL2," + b"9" * 200 + b"\n", 1, "a.csv line 2: one row of 201 bytes is larger than a whole request"),
    (b"L1,1,2\nL2\n", 1, "a.csv line 2: 1 column(s), but --id-columns 1 leaves no feature to send"),
])
def test_a_row_that_cannot_be_sent_is_named(tmp_path, content, id_columns, message):
    (tmp_path / "a.csv").write_bytes(content)
    with pytest.raises(PayloadError, match=re.escape(message)):
        list(pack(rows(local_sources(tmp_path / "a.csv")), id_columns, max_bytes=100))


class FlakyModel(BaseHTTPRequestHandler):
    """SageMaker Runtime's wire protocol: answers 'failures' first (status, error code), then one score per row."""

    failures: list[tuple[int, str]] = []
    lock = threading.Lock()
    calls = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with FlakyModel.lock:
            FlakyModel.calls += 1
            failure = FlakyModel.failures.pop(0) if FlakyModel.failures else None
        if failure:
            status, code = failure
            payload = json.dumps({"Message": f"simulated {code}"}).encode()
            self.send_response(status)
            self.send_header("x-amzn-ErrorType", code)
        else:
            payload = b"".join(b"0.%d\n" % len(line) for line in body.splitlines())
            self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyModel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FlakyModel.calls = 0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def score_all(url: str, requests, max_retries: int = 8):
    written = []
    totals = Totals()
    sleeps: list[float] = []
    scorer = Scorer(invoker(runtime_client(boto3.Session(region_name="us-east-1"), url, 4), "leads"), 4, max_retries,
                    totals, lambda t: None, sleep=sleeps.append)
    scorer.run(requests, lambda request, scores: written.append((request.first_row, scores)))
    return scorer, totals, written, sleeps


def test_throttling_5xx_are_retried_with_backoff_and_results_stay_in_order(tmp_path, flaky):
    FlakyModel.failures = [(503, "ServiceUnavailable"), (429, "ThrottlingException"), (500, "InternalFailure")]
    (tmp_path / "a.csv").write_bytes(lead_rows(300))
    requests = list(pack(rows(local_sources(tmp_path)), 1, 300))
    scorer, totals, written, sleeps = score_all(flaky, requests)
    assert scorer.failure is None and totals.retries == 3 and len(sleeps) == 3
    assert all(0 <= s <= 20 for s in sleeps)
    assert [first for first, _ in written] == [r.first_row for r in requests]
    assert totals.rows == 300 and FlakyModel.calls == len(requests) + 3


def test_a_model_error_is_not_retried_and_names_the_first_row(tmp_path, flaky):
    FlakyModel.failures = [(424, "ModelError")]
    (tmp_path / "a.csv").write_bytes(lead_rows(10))
    scorer, totals, written, sleeps = score_all(flaky, pack(rows(local_sources(tmp_path)), 1, 10_000))
    assert sleeps == [] and written == []
    assert scorer.failure == f"the request starting at {tmp_path / 'a.csv'} line 1 failed: ModelError: simulated ModelError"


def test_retries_give_up_after_max_retries(tmp_path, flaky):
    FlakyModel.failures = [(503, "ServiceUnavailable")] * 3
    (tmp_path / "a.csv").write_bytes(lead_rows(10))
    scorer, _, _, sleeps = score_all(flaky, pack(rows(local_sources(tmp_path)), 1, 10_000), max_retries=2)
    assert len(sleeps) == 2 and "ServiceUnavailable" in scorer.failure


# -- against the real local endpoint -----------------------------------------------------------

def invoke_endpoint(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inference.invoke", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    """A store with an Approved 3-feature model served at the local endpoint 'leads'."""
    root = tmp_path_factory.mktemp("endpoint")
    store = root / "store"
    archive = model_archive(root)
    Store(store).put_file(archive, "s3://bkt/models/model.tar.gz")
    Registry(store / "registry.sqlite").register("Leads", "Approved", {"Containers": [
        {"Image": IMAGE, "ModelDataUrl": "s3://bkt/models/model.tar.gz"}]})
    deployed = subprocess.run([sys.executable, "-m", "pipelines.deploy", "deploy", "--group", "Leads", "--endpoint-name",
                               "leads", "--store", str(store)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stderr
    yield store, XGBoostPredictor(archive)
    subprocess.run([sys.executable, "-m", "pipelines.deploy", "undeploy", "leads", "--store", str(store)], cwd=REPO,
                   capture_output=True, timeout=60)


def test_scores_every_row_in_order_with_its_id(tmp_path, endpoint):
    store, predictor = endpoint
    data = lead_rows(5000)
    (tmp_path / "leads.csv.gz").write_bytes(gzip.compress(data))
    output = tmp_path / "out" / "scores.csv"
    result = invoke_endpoint("--endpoint-name", "leads", "--input", str(tmp_path / "leads.csv.gz"), "--output",
                             str(output), "--id-columns", "1", "--max-payload-bytes", "8000", "--concurrency", "4",
                             "--store", str(store))
    assert result.returncode == 0, result.stderr
    features = b"".join(line.split(b",", 1)[1] + b"\n" for line in data.splitlines())
    expected = predictor.invoke(features).decode().splitlines()
    got = output.read_text().splitlines()
    assert [line.split(",")[0] for line in got] == [f"L{i}" for i in range(5000)]
    assert [line.split(",")[1] for line in got] == expected
    summary = result.stdout.strip()
    assert summary.startswith("scored 5000 rows (5000 this run) in ") and "0 retries" in summary
    assert summary.splitlines()[-1].endswith(f" -m pipelines.run --pipeline batch-scoring --store {store}")  # Next:
    requests = int(summary.split(" in ")[1].split()[0])
    assert math.ceil(len(features) / 8000) <= requests <= math.ceil(len(features) / 8000) + 1  # requests are full
    assert not list(output.parent.glob("*.partial")) and not list(output.parent.glob("*.progress.json"))


def test_forgetting_id_columns_says_so_and_a_resume_with_other_settings_names_them(tmp_path, endpoint):
    store, _ = endpoint
    source = tmp_path / "leads.csv"
    source.write_bytes(lead_rows(50))  # each row starts with its lead id
    output = tmp_path / "scores.csv"
    argv = ("--endpoint-name", "leads", "--input", str(source), "--output", str(output), "--store", str(store))
    failed = invoke_endpoint(*argv)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "(if the rows start with lead ids, --id-columns N keeps them back from the model)" in failed.stderr
    assert failed.stderr.rstrip().endswith("no row was scored: fix the cause and run again")
    assert "--resume" not in failed.stderr  # nothing to resume
    refused = invoke_endpoint(*argv, "--id-columns", "1", "--resume")
    assert refused.returncode == 2 and "--id-columns 0 then, 1 now" in refused.stderr
    assert invoke_endpoint(*argv, "--id-columns", "1").returncode == 0 and len(output.read_text().splitlines()) == 50


def test_a_model_error_stops_the_run_and_resume_finishes_it_without_rescoring(tmp_path, endpoint):
    store, predictor = endpoint
    lines = lead_rows(3000).splitlines()
    bad = lines[2000]
    lines[2000] = b"L2000,x,y,z"[:len(bad)].ljust(len(bad), b"0")
    source = tmp_path / "leads.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    output = tmp_path / "scores.csv"
    argv = ("--endpoint-name", "leads", "--input", str(source), "--output", str(output), "--id-columns", "1",
            "--max-payload-bytes", "4000", "--concurrency", "2", "--store", str(store))
    failed = invoke_endpoint(*argv)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    message = failed.stderr.strip()
    assert "ModelError: Received client error (415)" in message and "rerun with --resume" in message
    first_row = int(message.split(" line ")[1].split()[0])
    assert first_row <= 2001 and not output.exists()
    scored = len((tmp_path / "scores.csv.partial").read_text().splitlines())
    assert 0 < scored < 2001
    lines[2000] = bad  # the cause fixed in place: the same input, byte for byte the same size
    source.write_bytes(b"\n".join(lines) + b"\n")
    resumed = invoke_endpoint(*argv, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"scored 3000 rows ({3000 - scored} this run)" in resumed.stdout
    got = output.read_text().splitlines()
    assert [line.split(",")[0] for line in got] == [f"L{i}" for i in range(3000)]
    features = b"".join(line.split(b",", 1)[1] + b"\n" for line in lines)
    assert [line.split(",")[1] for line in got] == predictor.invoke(features).decode().splitlines()


@pytest.mark.parametrize("argv, message", [
    (("--max-payload-bytes", "7000000"), "--max-payload-bytes must be between 1 and 6291456"),
    (("--concurrency", "0"), "--concurrency must be between 1 and 64"),
    (("--resume",), "--resume: there is no interrupted run to continue"),
])
def test_usage_errors_are_one_line(tmp_path, endpoint, argv, message):
    (tmp_path / "a.csv").write_bytes(lead_rows(3))
    result = invoke_endpoint("--endpoint-name", "leads", "--input", str(tmp_path / "a.csv"), "--output",
                             str(tmp_path / "o.csv"), "--store", str(endpoint[0]), *argv)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_an_unknown_endpoint_or_input_is_one_line(tmp_path, endpoint):
    missing = invoke_endpoint("--endpoint-name", "leads", "--input", str(tmp_path / "nope.csv"), "--output",
                              str(tmp_path / "o.csv"), "--store", str(endpoint[0]))
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such file or folder"
    (tmp_path / "a.csv").write_bytes(lead_rows(3))
    unknown = invoke_endpoint("--endpoint-name", "other", "--input", str(tmp_path / "a.csv"), "--output",
                              str(tmp_path / "o.csv"), "--store", str(endpoint[0]))
    assert unknown.returncode == 2 and 'Could not find endpoint "other"' in unknown.stderr  # not found: exit 2


def test_s3_prefixes_are_streamed_object_by_object(aws_credentials):
    from moto import mock_aws

    from inference.scoring import s3_sources

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="leads/part-0001.csv.gz", Body=gzip.compress(lead_rows(300)))
        s3.put_object(Bucket="bkt", Key="leads/part-0000.csv", Body=lead_rows(200))
        s3.put_object(Bucket="bkt", Key="leads/.keep", Body=b"")
        sources = s3_sources(s3, "s3://bkt/leads/")
        assert [s.name for s in sources] == ["s3://bkt/leads/part-0000.csv", "s3://bkt/leads/part-0001.csv.gz"]
        read = list(rows(sources))
    assert len(read) == 500 and read[0] == ("s3://bkt/leads/part-0000.csv line 1", b"L0,-3,0,0.0")
    assert read[200][0] == "s3://bkt/leads/part-0001.csv.gz line 1"


def test_an_answer_with_the_wrong_number_of_scores_stops_the_run(tmp_path):
    (tmp_path / "a.csv").write_bytes(lead_rows(10))
    scorer = Scorer(lambda body: b"0.5\n", 2, 3, Totals(), lambda t: None, sleep=lambda s: None)
    written: list = []
    scorer.run(pack(rows(local_sources(tmp_path)), 1, 10_000), lambda request, scores: written.append(scores))
    assert written == [] and scorer.failure.endswith("failed: 10 rows sent, 1 scores returned")


def _interrupted_run(argv: tuple[str, ...], progress: Path, after_rows: int, signum: int) -> subprocess.CompletedProcess:
    """Start invoke-endpoint, send ``signum`` once its progress record counts ``after_rows`` rows (or it ends)."""
    import os
    import time

    process = subprocess.Popen([sys.executable, "-m", "inference.invoke", *argv], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(progress.read_text())["rows"] >= after_rows:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    if process.poll() is None:
        os.kill(process.pid, signum)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_every_row_is_scored_exactly_once_in_order_whatever_interrupts_the_run(tmp_path, endpoint):
    import signal

    store, predictor = endpoint
    data = lead_rows(20_000)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    output = tmp_path / "scores.csv"
    progress = tmp_path / "scores.csv.progress.json"
    argv = ("--endpoint-name", "leads", "--input", str(source), "--output", str(output), "--id-columns", "1",
            "--max-payload-bytes", "1500", "--concurrency", "4", "--store", str(store))
    points = [(1, signal.SIGINT), (1500, signal.SIGKILL), (4000, signal.SIGTERM), (7000, signal.SIGKILL),
              (9000, signal.SIGINT), (12_000, signal.SIGKILL), (16_000, signal.SIGTERM)]
    said = []
    for number, (after_rows, signum) in enumerate(points):
        run = _interrupted_run(argv + (("--resume",) if number else ()), progress, after_rows, signum)
        assert "Traceback" not in run.stderr, run.stderr
        if signum != signal.SIGKILL and run.returncode != 0:
            assert run.returncode == 130 and "rerun with --resume to continue from row" in run.stderr
            said.append(run.stderr.strip().split(": ", 2)[1])
    assert {"SIGINT", "SIGTERM"} <= set(said)
    if not output.exists():
        finished = invoke_endpoint(*argv, "--resume")
        assert finished.returncode == 0, finished.stderr
    got = output.read_text().splitlines()
    assert [line.split(",")[0] for line in got] == [f"L{i}" for i in range(20_000)]
    features = b"".join(line.split(b",", 1)[1] + b"\n" for line in data.splitlines())
    assert [line.split(",")[1] for line in got] == predictor.invoke(features).decode().splitlines()


def _stopped_run(tmp_path: Path, store: Path, rows_count: int = 3000) -> tuple[tuple[str, ...], Path]:
    """A run stopped by a model error at row 2001, leaving a partial output and its progress record."""
    lines = lead_rows(rows_count).splitlines()
    lines[2000] = b"L2000,x,y,z"
    source = tmp_path / "leads.csv"
    source.write_bytes(b"\n".join(lines) + b"\n")
    argv = ("--endpoint-name", "leads", "--input", str(source), "--output", str(tmp_path / "scores.csv"),
            "--id-columns", "1", "--max-payload-bytes", "4000", "--concurrency", "2", "--store", str(store))
    assert invoke_endpoint(*argv).returncode == 1
    return argv, source


def test_resume_refuses_an_input_whose_scored_rows_changed_at_the_same_size(tmp_path, endpoint):
    argv, source = _stopped_run(tmp_path, endpoint[0])
    content = source.read_bytes()
    source.write_bytes(content.replace(b"L5,", b"L6,", 1).replace(b"L6,", b"L5,", 2)[:len(content)])
    changed = source.read_bytes()
    assert len(changed) == len(content) and changed != content
    resumed = invoke_endpoint(*argv, "--resume")
    assert resumed.returncode == 2 and "the first" in resumed.stderr and "rows of the input differ" in resumed.stderr
    assert resumed.stderr.count("\n") == 1


@pytest.mark.parametrize("edit", [
    lambda state: {**state, "rows": state["rows"] + 5},
    lambda state: {**state, "bytes": state["bytes"] - 3},
    lambda state: {**state, "rows": "12"},
    lambda state: {**state, "output_sha256": "0" * 64},
    lambda state: [state],
    lambda state: "not json {",
])
def test_resume_refuses_an_edited_or_corrupt_progress_record(tmp_path, endpoint, edit):
    argv, _ = _stopped_run(tmp_path, endpoint[0])
    progress = tmp_path / "scores.csv.progress.json"
    edited = edit(json.loads(progress.read_text()))
    progress.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    resumed = invoke_endpoint(*argv, "--resume")
    assert resumed.returncode == 2 and "start again without --resume" in resumed.stderr, resumed.stderr
    assert resumed.stderr.count("\n") == 1


def test_an_output_that_is_an_input_is_refused_before_anything_is_written(tmp_path, endpoint):
    data = lead_rows(50)
    (tmp_path / "in").mkdir()
    source = tmp_path / "in" / "leads.csv"
    source.write_bytes(data)
    (tmp_path / "in" / "o.csv.partial").write_bytes(data)  # an input that a run writing o.csv would overwrite
    (tmp_path / "in" / "x").mkdir()
    for output in (source, tmp_path / "in" / "x" / ".." / "leads.csv", tmp_path / "in" / "o.csv"):
        result = invoke_endpoint("--endpoint-name", "leads", "--input", str(tmp_path / "in"), "--output", str(output),
                                 "--store", str(endpoint[0]))
        assert result.returncode == 2 and "is an input file; write the scores elsewhere" in result.stderr
    assert source.read_bytes() == data and (tmp_path / "in" / "o.csv.partial").read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["leads.csv", "o.csv.partial", "x"]


def test_a_gzip_with_a_corrupt_deflate_stream_is_one_line(tmp_path, endpoint):
    compressed = bytearray(gzip.compress(lead_rows(5000)))
    compressed[200:260] = b"\xff" * 60
    (tmp_path / "leads.csv.gz").write_bytes(bytes(compressed))
    result = invoke_endpoint("--endpoint-name", "leads", "--input", str(tmp_path / "leads.csv.gz"), "--output",
                             str(tmp_path / "o.csv"), "--id-columns", "1", "--store", str(endpoint[0]))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "leads.csv.gz: not a readable gzip file" in result.stderr and result.stderr.count("\n") == 1


def test_ctrl_c_while_waiting_for_the_oldest_request_writes_nothing_after_it():
    """The oldest request is in flight and later ones are done when Ctrl-C comes: none of them may be written
    (the drop of the oldest one while later ones were written duplicated and lost rows on --resume)."""
    import os
    import signal

    from inference.payloads import Request

    release = threading.Event()

    def invoke(body: bytes) -> bytes:
        if body.startswith(b"oldest"):
            release.wait(30)
        return b"0.5\n" * body.count(b"\n")

    requests = [Request(first_row=f"r{i}", body=b"oldest\n" if i == 0 else b"1\n", ids=[b"id"]) for i in range(20)]
    written: list[str] = []
    scorer = Scorer(invoke, 2, 0, Totals(), lambda t: None, sleep=lambda s: None)
    interrupt = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    interrupt.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            scorer.run(iter(requests), lambda request, scores: written.append(request.first_row))
    finally:
        release.set()
        interrupt.join()
    assert written == []
