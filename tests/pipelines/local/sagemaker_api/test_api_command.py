"""``python -m pipelines.run api``: the export lines it prints point a user's own script at the store, and SDK
v3's resource classes (Model, EndpointConfig, Endpoint) deploy, wait, invoke and delete through it unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.local.endpoints import LocalEndpoints
from tests.pipelines.local.sagemaker_api.conftest import MODEL_URI, make_store, stop_endpoints
from tests.pipelines.test_deploy import ROWS

REPO = Path(__file__).resolve().parents[4]

SDK_V3_SCRIPT = '''
import sys
from sagemaker.core.resources import Endpoint, EndpointConfig, Model
from sagemaker.core.shapes import ContainerDefinition, ProductionVariant

model = Model.create(model_name="sdk-model", execution_role_arn="arn:aws:iam::111122223333:role/r",
                     primary_container=ContainerDefinition(image=sys.argv[1], model_data_url=sys.argv[2]))
config = EndpointConfig.create(endpoint_config_name="sdk-config", production_variants=[ProductionVariant(
    variant_name="AllTraffic", model_name=model.model_name, initial_instance_count=1, instance_type="ml.m5.large")])
endpoint = Endpoint.create(endpoint_name="sdk-endpoint", endpoint_config_name=config.endpoint_config_name)
endpoint.wait_for_status("InService")
print("status", Endpoint.get("sdk-endpoint").endpoint_status)
print("scores", endpoint.invoke(body=sys.argv[3].encode(), content_type="text/csv").body.read().decode().split())
print("listed", [e.endpoint_name for e in Endpoint.get_all()])
endpoint.delete()
config.delete()
model.delete()
print("deleted")
'''


def start_api(store: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """The command, started as a user starts it; the variables its export lines set."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    process = subprocess.Popen([sys.executable, "-m", "pipelines.run", "api", "--store", str(store)], cwd=REPO,
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exported = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exported[name] = value
        if line.startswith("# Ctrl-C"):
            return process, exported
    raise AssertionError(f"the api command ended: {process.wait()} {process.stderr.read()}")


def test_the_api_command_serves_sdk_v3_deployments_until_ctrl_c(tmp_path):
    store, _, approved = make_store(tmp_path)
    LocalEndpoints(store).deploy("from-cli", approved)
    process, exported = start_api(store.root)
    try:
        assert set(exported) >= {"AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
        assert exported["AWS_ENDPOINT_URL_SAGEMAKER"].startswith("http://127.0.0.1:")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        script = subprocess.run([sys.executable, "-c", SDK_V3_SCRIPT, approved["InferenceSpecification"]["Containers"][0]
                                 ["Image"], MODEL_URI, ROWS.decode()], cwd=tmp_path,
                                env={**environment, **exported, "SAGEMAKER_VALIDATE_ROLE": "false"},
                                capture_output=True, text=True, timeout=180)
        assert script.returncode == 0, script.stderr[-3000:]
        printed = dict(line.split(" ", 1) for line in script.stdout.splitlines() if " " in line)
        assert printed["status"] == "InService" and len(eval(printed["scores"])) == 3
        assert set(eval(printed["listed"])) == {"sdk-endpoint", "from-cli"}
        assert "deleted" in script.stdout
        assert [e["EndpointName"] for e in LocalEndpoints(store).list()] == ["from-cli"]
        assert not store.model_path("sdk-model").exists()
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        stop_endpoints(store)
    assert code == 130
    assert "CreateModel sdk-model" in process.stderr.read()


@pytest.mark.parametrize("arguments, says", [
    (["--store", "/nonexistent/store"], "there is no local store at /nonexistent/store"),
    (["--port", "70000"], "--port"),
])
def test_bad_api_flags_get_one_line_and_exit_2(arguments, says):
    done = subprocess.run([sys.executable, "-m", "pipelines.run", "api", *arguments], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and says in done.stderr.splitlines()[0] and "Traceback" not in done.stderr
