"""A job on an SKLearn or XGBoost image finds what the image gives a program: requests, pip installing at run
time (from an index on loopback), and the ``aws`` command reaching the store.

The suite runs it on the four images its other tests build anyway (our pipeline's two, the project template's
two): each image environment takes 20 to 80 s to build. ``SUITE_IMAGES`` lists them; the table's other eight
were run the same way by hand (``pytest ... -k`` with the name added), as ``docs/foreign-pipelines.md`` reports."""

from __future__ import annotations

import pytest

from pipelines.local.package_index import IndexSettings
from tests.pipelines.local.helpers import definition, engine, script_step
from tests.sandboxing import needs_bubblewrap

REGISTRY = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
SUITE_IMAGES = ("sagemaker-scikit-learn:1.2-1", "sagemaker-xgboost:1.7-1", "sagemaker-scikit-learn:0.23-1",
                "sagemaker-xgboost:1.0-1")

USES_ITS_IMAGE = (
    "import pathlib, subprocess, sys\n"
    "import requests\n"
    "def ok(command):\n"
    "    done = subprocess.run(command, capture_output=True, text=True)\n"
    "    assert done.returncode == 0, done.stdout + done.stderr\n"
    "ok([sys.executable, '-m', 'pip', 'install', '--retries', '0', 'tinypkg'])\n"
    "import tinypkg\n"
    "ok(['aws', 's3', 'cp', 's3://bkt/in/greeting.txt', '/tmp/greeting.txt'])\n"
    "ok(['aws', 's3', 'cp', '/tmp/greeting.txt', 's3://bkt/copied/greeting.txt'])\n"
    "pathlib.Path('/opt/ml/processing/out/result.txt').write_text(f'{requests.__name__} {tinypkg.VALUE}')\n")

ISOLATED = ("import pathlib, subprocess, sys\n"
            "done = subprocess.run([sys.executable, '-m', 'pip', 'install', '--retries', '0', 'tinypkg'])\n"
            "pathlib.Path('/opt/ml/processing/out/result.txt').write_text(str(done.returncode))\n")


def on_image(step: dict, image: str) -> dict:
    step["Arguments"]["AppSpecification"]["ImageUri"] = image
    return step


@needs_bubblewrap
@pytest.mark.parametrize("name", SUITE_IMAGES)
def test_a_job_finds_requests_pip_and_the_aws_command_of_its_image(name, package_index, tmp_path):
    image = f"{REGISTRY}/{name}-cpu-py3"
    isolated = on_image(script_step("Isolated", ISOLATED), image)
    isolated["Arguments"]["NetworkConfig"] = {"EnableNetworkIsolation": True}
    run, lines = engine(tmp_path / "store", package_index=IndexSettings((package_index.url,)))
    run.store.put_bytes(b"hello\n", "s3://bkt/in/greeting.txt")
    record = run.run(definition(on_image(script_step("Uses", USES_ITS_IMAGE), image), isolated), "image-world", {})
    assert record.status == "Succeeded", [s.failure_reason for s in record.steps] + lines[-30:]
    runs = tmp_path / "store" / "s3" / "bkt" / "runs" / record.execution_id
    assert (runs / "Uses" / "result.txt").read_text() == "requests 1"
    assert (runs / "Isolated" / "result.txt").read_text() != "0"
    assert run.store.path("s3://bkt/copied/greeting.txt").read_bytes() == b"hello\n"
