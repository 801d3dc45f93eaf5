"""Job programs behave as in their SageMaker containers: they start in ``/`` of a writable, throwaway root,
their hosts reach each other by name, and a network-isolated job still gets its inputs and its peers."""

from __future__ import annotations

import io
import json
import random
import tarfile
import uuid
from pathlib import Path

from pipelines.local.store import Store
from tests.pipelines.local.executors.test_job_contracts import CUSTOM_IMAGE, run, training_step
from tests.pipelines.local.helpers import definition, engine, script_step
from tests.sandboxing import needs_bubblewrap

pytestmark = needs_bubblewrap

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"

# a public example's evaluation script: the model is extracted to '..' and read from the working directory
EVALUATE = """
import json, pathlib, tarfile
with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
    tar.extractall("..")
model = open("xgboost-model").read()
pathlib.Path("/opt/ml/processing/evaluation/evaluation.json").write_text(json.dumps({"model": model}))
"""


def model_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"booster bytes"
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_script_that_extracts_to_its_parent_and_reads_its_working_directory_runs_as_on_sagemaker(tmp_path):
    store = Store(tmp_path / "store")
    store.put_bytes(model_archive(), "s3://bkt/model/model.tar.gz")
    step = script_step("Evaluate", EVALUATE)
    step["Arguments"]["ProcessingInputs"] = [{"InputName": "model", "S3Input": {
        "S3Uri": "s3://bkt/model", "LocalPath": "/opt/ml/processing/model", "S3DataType": "S3Prefix"}}]
    step["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"] = "/opt/ml/processing/evaluation"
    record = engine(tmp_path / "store")[0].run(definition(step), "p", {})
    assert record.status == "Succeeded", record.failure_reason
    written = json.loads(store.path(f"s3://bkt/runs/{record.execution_id}/Evaluate/evaluation.json").read_text())
    assert written == {"model": "booster bytes"}
    assert not list(tmp_path.rglob("xgboost-model"))  # extracted into the job's root, gone with it


def test_scratch_files_written_to_the_root_work_and_vanish_with_the_job(tmp_path):
    name = f"/scratch-{uuid.uuid4().hex}.csv"
    code = (f"import os, pathlib; pathlib.Path({name!r}).write_text('a,b\\n'); os.makedirs('/var/cache/job')\n"
            f"pathlib.Path('/opt/ml/processing/out/seen.txt').write_text(open({name!r}).read() + os.getcwd())\n")
    record = engine(tmp_path / "store")[0].run(definition(script_step("Scratch", code)), "p", {})
    assert record.status == "Succeeded", record.failure_reason
    seen = Store(tmp_path / "store").path(f"s3://bkt/runs/{record.execution_id}/Scratch/seen.txt").read_text()
    assert seen == "a,b\n/"
    assert not Path(name).exists() and not Path("/var/cache/job").exists()


# algo-1 listens, algo-2 connects to it by name; both try the store's S3 endpoint and read their channel
PEERS = """
import json, os, pathlib, socket, urllib.request
host = json.load(open("/opt/ml/input/config/resourceconfig.json"))["current_host"]
seen = {"host": socket.gethostname(), "rows": sorted(p.name for p in pathlib.Path("/opt/ml/input/data/train").iterdir())}
try:
    urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"], timeout=3)
    seen["s3"] = "reached"
except OSError as exc:
    seen["s3"] = type(exc).__name__
if host == "algo-1":
    server = socket.create_server(("0.0.0.0", 7777))
    server.settimeout(60)
    connection, _ = server.accept()
    seen["heard"] = connection.recv(100).decode()
else:
    for _ in range(600):
        try:
            socket.create_connection(("algo-1", 7777), 5).sendall(b"hello from " + host.encode())
            break
        except ConnectionRefusedError:
            __import__("time").sleep(0.1)
    seen["sent"] = True
pathlib.Path("/opt/ml/model/seen.json").write_text(json.dumps(seen))
print(json.dumps(seen))
"""


def test_two_network_isolated_hosts_reach_each_other_by_name_and_nothing_else(tmp_path) -> None:
    store = Store(tmp_path / "store")
    for index in range(4):
        store.put_bytes(f"{index},1,2\n".encode(), f"s3://their-bucket/train/part-{index}.csv")
    step = training_step({"TrainingImage": CUSTOM_IMAGE, "ContainerEntrypoint": ["python3", "-c", PEERS]}, {},
                         instances=2)
    step["Arguments"]["EnableNetworkIsolation"] = True
    lines: list[str] = []
    record = run(store, step, lines=lines)
    assert record.status == "Succeeded", record.failure_reason
    seen = {json.loads(line.split("] ", 1)[1])["host"]: json.loads(line.split("] ", 1)[1])
            for line in lines if line.startswith("[algo-") and line.endswith("}")}
    assert seen["algo-1"]["heard"] == "hello from algo-2" and seen["algo-2"]["sent"] is True
    assert seen["algo-1"]["rows"] == ["part-0.csv", "part-2.csv"] and seen["algo-2"]["rows"] == ["part-1.csv", "part-3.csv"]
    assert seen["algo-1"]["s3"] != "reached" and seen["algo-2"]["s3"] != "reached"
    assert not any("EnableNetworkIsolation" in line for line in record.step("Fit").unenforced)


def test_the_built_in_algorithm_trains_on_two_network_isolated_hosts(tmp_path) -> None:
    store = Store(tmp_path / "store")
    rng = random.Random(7)
    for part in range(2):
        rows = []
        for _ in range(200):
            x = [rng.random() for _ in range(3)]
            rows.append(f"{int(x[0] + rng.random() * 0.3 > 0.6)},{x[0]:.4f},{x[1]:.4f},{x[2]:.4f}")
        store.put_bytes(("\n".join(rows) + "\n").encode(), f"s3://their-bucket/train/part-{part}.csv")
    step = training_step({"TrainingImage": XGBOOST}, {"objective": "binary:logistic", "num_round": "5"}, instances=2)
    step["Arguments"]["InputDataConfig"][0]["ContentType"] = "text/csv"
    step["Arguments"]["EnableNetworkIsolation"] = True
    record = run(store, step)
    assert record.status == "Succeeded", record.failure_reason
    assert store.path(record.step("Fit").properties["ModelArtifacts"]["S3ModelArtifacts"]).is_file()
