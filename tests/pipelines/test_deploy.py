"""deploy-model: refusals, SageMaker calls against moto, and a real local endpoint started as a user starts it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from pipelines.cli.commands import deploy as cli
from pipelines.config import build_config
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from pipelines.targets.sagemaker_endpoints import SageMakerEndpoints
from tests.conftest import KMS, ROLE
from tests.inference.test_xgboost_csv import model_archive

REPO = Path(__file__).resolve().parents[2]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
GROUP = "LeadScoringModels"
ROWS = b"2,0,0\n-2,0,0\n,1,1\n"



def endpoint_row(table: str) -> list[str]:
    """The cells of the one endpoint row of ``deploy-model endpoints``."""
    [row] = [line.split() for line in table.splitlines() if line.split()[:1] == ["leads"]]
    return row

def spec(model_uri: str) -> dict:
    return {"Containers": [{"Image": IMAGE, "ModelDataUrl": model_uri}], "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"]}


@pytest.fixture
def store(tmp_path) -> Path:
    """Version 1 Approved, version 2 pending, both real XGBoost models of 3 features."""
    root = tmp_path / "store"
    registry = Registry(root / "registry.sqlite", "us-east-1")
    for version in (1, 2):
        folder = tmp_path / f"m{version}"
        folder.mkdir()
        uri = f"s3://bkt/models/v{version}/model.tar.gz"
        Store(root).put_file(model_archive(folder), uri)
        registry.register(GROUP, "PendingManualApproval", spec(uri))
    registry.set_approval(GROUP, 1, "Approved", "first")
    return root


def deploy_model(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.deploy", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def post(port: int, path: str, body: bytes, content_type: str = "text/csv") -> tuple[int, bytes, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("X-Local-Model-Version")
    finally:
        connection.close()


def server_processes(folder: Path) -> list[str]:
    """Command lines of running processes serving ``folder``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if str(folder) in command and state != "Z":
            found.append(command)
    return found


def test_a_version_that_is_not_approved_is_refused(store):
    result = deploy_model("deploy", "--version", "2", "--endpoint-name", "leads", "--store", str(store))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: {GROUP} version 2 is PendingManualApproval; only an Approved "
                                            "version is deployed (")
    assert f" -m pipelines.registry approve {GROUP} 2 --description 'Reviewed: ...' --store {store})" in result.stderr
    assert not (store / "endpoints").exists()
    bad = deploy_model("deploy", "--endpoint-name", "no_underscores", "--store", str(store))
    assert bad.returncode == 2 and "endpoint name 'no_underscores' must match" in bad.stderr


def test_a_group_that_does_not_exist_is_named_as_such(store):
    result = deploy_model("deploy", "--group", "NoSuchGroup", "--endpoint-name", "leads", "--store", str(store))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: there is no model package group NoSuchGroup (groups: {GROUP}); pass "
                                     "--group, or run the pipeline that registers it first")
    assert not (store / "endpoints").exists()


def test_local_endpoint_serves_swaps_without_failures_and_undeploys(store):
    deployed = deploy_model("deploy", "--endpoint-name", "leads", "--store", str(store))
    assert deployed.returncode == 0, deployed.stderr
    record = json.loads((store / "endpoints" / "leads" / "endpoint.json").read_text())
    port, url = record["Port"], record["Url"]
    assert f"serving {GROUP} version 1 at {url}" in deployed.stdout
    try:
        # boto3's sagemaker-runtime client, unchanged but for endpoint_url
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                               aws_access_key_id="local", aws_secret_access_key="local")
        answer = runtime.invoke_endpoint(EndpointName="leads", Body=ROWS, ContentType="text/csv", Accept="text/csv")
        scores = [float(s) for s in answer["Body"].read().decode().splitlines()]
        assert len(scores) == 3 and scores[0] > 0.8 > 0.2 > scores[1]
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        with pytest.raises(runtime.exceptions.ModelError) as refused:
            runtime.invoke_endpoint(EndpointName="leads", Body=b"a,b,c\n", ContentType="text/csv")
        assert refused.value.response["OriginalStatusCode"] == 415
        # plain HTTP: the container's own contract
        assert post(port, "/invocations", ROWS)[0] == 200
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/execution-parameters")
        assert json.loads(connection.getresponse().read())["MaxPayloadInMB"] == 6
        connection.close()
        assert post(port, "/invocations", b"1,2\n", "application/json")[0] == 415
        status, body, _ = post(port, "/invocations", b"1,2,3\n" * (1024 * 1024 + 1))
        assert status == 413 and b"exceeds 6291456 bytes" in body
        listing = deploy_model("endpoints", "--store", str(store))
        assert endpoint_row(listing.stdout)[:3] == ["leads", "InService", "Healthy"] and url in listing.stdout

        # a version swap under continuous invocations: no request fails
        Registry(store / "registry.sqlite").set_approval(GROUP, 2, "Approved", "better")
        results: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def invoke_until_stopped() -> None:
            while not stop.is_set():
                try:
                    status, _, version = post(port, "/invocations", ROWS)
                    results.append((status, version))
                except OSError as exc:
                    results.append((repr(exc), None))

        clients = [threading.Thread(target=invoke_until_stopped) for _ in range(4)]
        for client in clients:
            client.start()
        swapped = deploy_model("deploy", "--endpoint-name", "leads", "--store", str(store))
        stop.set()
        for client in clients:
            client.join()
        assert swapped.returncode == 0, swapped.stderr
        counts = Counter(results)
        assert set(counts) <= {(200, "1"), (200, "2")}, counts
        assert counts[(200, "1")] > 0 and counts[(200, "2")] > 0
        assert all(post(port, "/invocations", ROWS)[2] == "2" for _ in range(10))
        assert len(list((store / "endpoints" / "leads" / "models").iterdir())) == 1
    finally:
        undeployed = deploy_model("undeploy", "leads", "--store", str(store))
    assert undeployed.returncode == 0 and undeployed.stdout.splitlines()[0] == "Endpoint leads: deleted"
    assert undeployed.stdout.splitlines()[1].endswith(f" -m pipelines.run --store {store}")  # Next: the next run
    assert server_processes(store / "endpoints" / "leads") == []
    assert deploy_model("endpoints", "--store", str(store)).stdout.strip() == "no endpoints"
    gone = deploy_model("undeploy", "leads", "--store", str(store))
    assert gone.returncode == 2 and "Could not find endpoint \"leads\"" in gone.stderr  # not found: exit 2


def test_a_dead_server_shows_as_stopped_and_a_new_deploy_restarts_it_on_the_same_port(store):
    assert deploy_model("deploy", "--endpoint-name", "leads", "--store", str(store)).returncode == 0
    folder = store / "endpoints" / "leads"
    first = json.loads((folder / "endpoint.json").read_text())
    try:
        os.killpg(first["Pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server_processes(folder) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert endpoint_row(deploy_model("endpoints", "--store", str(store)).stdout)[:3] == ["leads", "InService",
                                                                                          "Stopped"]
        again = deploy_model("deploy", "--endpoint-name", "leads", "--instance-count", "2", "--store", str(store))
        assert again.returncode == 0, again.stderr
        second = json.loads((folder / "endpoint.json").read_text())
        assert second["Port"] == first["Port"] and second["Pid"] != first["Pid"] and second["InstanceCount"] == 2
        assert post(second["Port"], "/invocations", ROWS)[0] == 200
    finally:
        deploy_model("undeploy", "leads", "--store", str(store))
    assert server_processes(folder) == []


def test_a_model_that_cannot_be_loaded_is_refused_and_leaves_no_server(store, tmp_path):
    Store(store).put_bytes(b"not a tarball", "s3://bkt/models/broken/model.tar.gz")
    registry = Registry(store / "registry.sqlite")
    registry.register(GROUP, "Approved", spec("s3://bkt/models/broken/model.tar.gz"))
    result = deploy_model("deploy", "--endpoint-name", "leads", "--store", str(store))
    assert result.returncode != 0 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert server_processes(store / "endpoints") == []


@pytest.fixture
def sagemaker(aws_credentials):
    """moto with version 1 Approved and version 2 pending."""
    with mock_aws():
        client = boto3.client("sagemaker")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        for status in ("Approved", "PendingManualApproval"):
            client.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
                                        InferenceSpecification=spec("s3://bkt/m/model.tar.gz"))
        yield client


SAGEMAKER = ("--target", "sagemaker", "--role-arn", ROLE, "--bucket", "lead-bucket", "--kms-key-arn", KMS,
             "--region", "us-east-1", "--poll-seconds", "0")


def test_sagemaker_deploy_creates_model_config_with_kms_and_endpoint(sagemaker, capsys):
    code = cli.main(["deploy", "--endpoint-name", "leads", "--data-capture-percent", "20", *SAGEMAKER])
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[-2] == "Endpoint leads: InService"
    assert out.splitlines()[-1].endswith("-m inference.invoke --endpoint-name leads --input leads.csv --output "
                                         "scores.csv --target sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName="leads")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["KmsKeyId"] == KMS
    [variant] = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 1
    capture = config["DataCaptureConfig"]
    assert capture["KmsKeyId"] == KMS and capture["InitialSamplingPercentage"] == 20
    assert capture["DestinationS3Uri"] == "s3://lead-bucket/lead-scoring/data-capture/leads"
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"].endswith("/leadscoringmodels/1")
    assert model["ExecutionRoleArn"] == ROLE


def test_sagemaker_refuses_pending_and_undeploys_everything(sagemaker, capsys):
    assert cli.main(["deploy", "--endpoint-name", "leads", "--version", "2", *SAGEMAKER]) == 2
    assert "version 2 is PendingManualApproval" in capsys.readouterr().err
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert cli.main(["deploy", "--endpoint-name", "leads", "--no-wait", *SAGEMAKER]) == 0
    capsys.readouterr()
    assert cli.main(["endpoints", "--json", *SAGEMAKER[:2]]) == 0
    assert [e["EndpointName"] for e in json.loads(capsys.readouterr().out)] == ["leads"]
    assert cli.main(["undeploy", "leads", *SAGEMAKER[:2]]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" -m pipelines.run --target sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []


def test_an_existing_sagemaker_endpoint_is_updated_to_the_new_config():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    config = build_config(("test", {"role_arn": ROLE, "bucket": "lead-bucket", "kms_key_arn": KMS}))
    endpoints = SageMakerEndpoints(type("Session", (), {"client": lambda self, name: client})(), config)
    package = {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3", "ModelPackageVersion": 3}
    with Stubber(client) as stub:
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"})
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"})
        stub.add_response("describe_endpoint", {
            "EndpointName": "leads", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/leads",
            "EndpointConfigName": "old", "EndpointStatus": "InService", "CreationTime": "2026-01-01T00:00:00Z",
            "LastModifiedTime": "2026-01-01T00:00:00Z"}, {"EndpointName": "leads"})
        stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/leads"})
        made = endpoints.deploy("leads", package, "ml.m5.large", 2)
        stub.assert_no_pending_responses()
    assert made["Action"] == "updated" and made["EndpointConfig"].startswith("leads-v3-")


def test_an_instance_type_sagemaker_does_not_have_is_refused_with_the_nearest_name(store):
    result = deploy_model("deploy", "--endpoint-name", "leads", "--instance-type", "m5.large", "--store", str(store))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: --instance-type 'm5.large' is not a SageMaker endpoint instance type; "
                                     "did you mean ml.m5.large?")
