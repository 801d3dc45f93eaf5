"""A pipeline of SDK v3 function steps (``@step``), built by the real SDK, run end to end on the local engine:
a parameter passed in, a step fed another's return value and with dependencies of its own, a ConditionStep
on a returned value, and a function that raises."""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import sys
import threading
import uuid
from http.server import ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Iterator

import cloudpickle
import pytest

from pipelines.local import executions
from pipelines.local.store import Store
from tests.pipelines.local.environments.test_images import QuietHandler
from tests.pipelines.local.executors.test_job_contracts import TINYLIB, run, training_step, wheel
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

BUCKET = "sagemaker-us-east-1-111122223333"
ROLE = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole"
REPO = Path(__file__).resolve().parents[3]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
STABLE_PORT = 47_361  # the package server's, where free


def make(n):
    import sklearn
    import tinylib  # the step's dependencies: installed before it runs

    if sklearn.__version__ != "1.2.1":  # not an assert: pytest rewrites those into calls the job cannot unpickle
        raise RuntimeError(f"the job runs on scikit-learn {sklearn.__version__}, not its image's")
    return [i * i * tinylib.SCALE for i in range(n)]


def total(values):
    return sum(values)


def explode(value):
    raise ValueError(f"the total {value} is too big to ship")


def build(store: Store, monkeypatch: pytest.MonkeyPatch, dependencies: Path,
          pre_execution_commands: list[str] | None = None) -> dict:
    """The pipeline as its team builds it (uploads go to moto), then their bucket copied into the store."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    # a notebook's or a script's functions travel by value, as these would from the team's __main__
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with mock_aws():
        import boto3
        from sagemaker.core.workflow.conditions import ConditionGreaterThan
        from sagemaker.core.workflow.parameters import ParameterInteger
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow.condition_step import ConditionStep
        from sagemaker.mlops.workflow.function_step import step
        from sagemaker.mlops.workflow.pipeline import Pipeline

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        session = PipelineSession(default_bucket=BUCKET)
        size = ParameterInteger(name="Size", default_value=4)
        settings = {"role": ROLE, "instance_type": "ml.m5.large", "image_uri": IMAGE, "dependencies": str(dependencies)}
        made = step(make, name="Make", pre_execution_commands=pre_execution_commands, **settings)(size)
        summed = step(total, name="Total", **settings)(made)
        big = ConditionStep(name="IsBig", conditions=[ConditionGreaterThan(left=summed, right=50)],
                            if_steps=[step(explode, name="Explode", **settings)(summed)], else_steps=[])
        definition = json.loads(Pipeline(name="squares", steps=[big], parameters=[size],
                                         sagemaker_session=session).definition())
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                store.put_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read(),
                                f"s3://{BUCKET}/{item['Key']}")
    return definition


@pytest.fixture(scope="module")
def step_requirements(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The steps' dependencies: a library of the team's, from their package server (here on loopback: the job
    reads no file of the machine that defined it), and the SDK v3 core its jobs run (the image has none); one
    file for the module, so that its environment is built once."""
    folder = tmp_path_factory.mktemp("dependencies")
    (folder / "server").mkdir()
    (folder / "server" / TINYLIB).write_bytes(wheel("tinylib", "1.0", "SCALE = 1\n"))
    handler = functools.partial(QuietHandler, directory=str(folder / "server"))
    try:  # the requirements name the server's address: on the same port, their environment is the last run's
        server = ThreadingHTTPServer(("127.0.0.1", STABLE_PORT), handler)
    except OSError:  # taken (another run of the suite): a new environment, built once for this run
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    requirements = folder / "requirements.txt"
    requirements.write_text(f"tinylib @ http://127.0.0.1:{server.server_address[1]}/{TINYLIB}\n"
                            f"sagemaker-core=={metadata.version('sagemaker-core')}\n")
    yield requirements
    server.shutdown()
    server.server_close()


def run_cli(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    return subprocess.run([sys.executable, "-m", "pipelines.run", "--definition", str(tmp_path / "squares.json"),
                           "--store", str(tmp_path / "store"), *arguments], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_function_step_pipeline_validates_and_runs_end_to_end(tmp_path, monkeypatch, step_requirements) -> None:
    store = Store(tmp_path / "store")
    definition = build(store, monkeypatch, step_requirements)
    environment = definition["Steps"][1]["Arguments"]["Environment"]
    assert environment["REMOTE_FUNCTION_SECRET_KEY"].startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "squares.json").write_text(json.dumps(definition))

    small = run_cli(tmp_path, "--parameter", "Size=4")  # 0 + 1 + 4 + 9 = 14: no explosion
    assert small.returncode == 0, small.stdout[-3000:] + small.stderr[-3000:]
    [first] = executions.all_records(store.root, lambda message: None)
    assert first.step("IsBig").properties["Outcome"] in (False, "False")
    assert sorted(s.name for s in first.steps if s.status == "Succeeded") == ["IsBig", "Make", "Total"]
    make_log = (store.root / "jobs" / first.execution_id / "Make" / "job.log").read_text()
    # installed before the job (now, or by an earlier run of the suite into the cached environment), not by it
    assert re.search(r"Successfully installed .*tinylib-1\.0|requirements\.txt: installed in the cached environment",
                     small.stdout), small.stdout[-3000:]
    assert "No dependencies to install" in make_log

    large = run_cli(tmp_path, "--parameter", "Size=6")  # 55
    assert large.returncode != 0
    second = next(r for r in executions.all_records(store.root, lambda message: None)
                  if r.execution_id != first.execution_id)
    assert second.step("IsBig").properties["Outcome"] in (True, "True")
    assert "the total 55 is too big to ship" in (second.step("Explode").failure_reason or ""), large.stdout[-3000:]


PYTHON_HERE = ".".join(platform.python_version_tuple()[:2])
OWN_IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team-functions:1"  # not in the table: this interpreter's


@pytest.mark.parametrize("image, client, says", [
    (IMAGE, ["--client_python_version", "3.9", "--client_sagemaker_pysdk_version", "3.27.0"],
     "the function was pickled with Python 3.9 (--client_python_version) and the local engine runs it with Python"),
    (IMAGE, ["--client_python_version", PYTHON_HERE, "--client_sagemaker_pysdk_version", "3.27.0"],
     "the pipeline was built with SageMaker Python SDK 3.27.0 (--client_sagemaker_pysdk_version) and the job's "
     "environment (the image sagemaker-scikit-learn:1.2-1's libraries and the step's own) has no SageMaker Python "
     "SDK, which runs the function in the job, so on SageMaker the job fails too: list sagemaker==3.27.0 in the "
     "step's dependencies"),
    (OWN_IMAGE, ["--client_python_version", PYTHON_HERE, "--client_sagemaker_pysdk_version", "2.256.0"],
     f"the pipeline was built with SageMaker Python SDK 2.256.0 (--client_sagemaker_pysdk_version) and the job's "
     f"environment (this interpreter's libraries and the step's own) has SDK {metadata.version('sagemaker')}: its "
     "pickles name modules of SDK 2; list sagemaker==2.256.0 in the step's dependencies"),
])
def test_a_function_step_its_environment_cannot_run_is_one_clear_line(tmp_path, image, client, says) -> None:
    store = Store(tmp_path / "store")
    store.put_bytes(b"#!/bin/bash\necho never\n", f"s3://{BUCKET}/funcs/bootstrap/job_driver.sh")
    step = training_step({"TrainingImage": image, "ContainerEntrypoint": [
        "/bin/bash", "/opt/ml/input/data/sagemaker_remote_function_bootstrap/job_driver.sh"],
        "ContainerArguments": ["--s3_base_uri", f"s3://{BUCKET}/funcs", *client]}, {},
        channels={"sagemaker_remote_function_bootstrap": (f"s3://{BUCKET}/funcs/bootstrap", "FullyReplicated")})
    record = run(store, step)
    reason = record.step("Fit").failure_reason
    assert reason.startswith("ClientError: ") and says in reason and record.step("Fit").attempts == 1


SDK_V2_BUILD = '''
import json, os, sys
from pathlib import Path

import boto3
from moto import mock_aws

BUCKET, ROLE, IMAGE = sys.argv[2:5]


def make(n):
    return [i * i for i in range(n)]


def total(values):
    return sum(values)


def explode(value):
    raise ValueError(f"the total {value} is too big to ship")


out = Path(sys.argv[1])
with mock_aws():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    import sagemaker
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThan
    from sagemaker.workflow.function_step import step
    from sagemaker.workflow.parameters import ParameterInteger
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession

    session = PipelineSession(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=BUCKET)
    size = ParameterInteger(name="Size", default_value=4)
    settings = {"role": ROLE, "instance_type": "ml.m5.large", "image_uri": IMAGE}
    summed = step(total, name="Total", **settings)(step(make, name="Make", **settings)(size))
    big = ConditionStep(name="IsBig", conditions=[ConditionGreaterThan(left=summed, right=50)],
                        if_steps=[step(explode, name="Explode", **settings)(summed)], else_steps=[])
    pipeline = Pipeline(name="squares", steps=[big], parameters=[size], sagemaker_session=session)
    (out / "squares.json").write_text(pipeline.definition())
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            target = out / "objects" / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
    print("built with SageMaker Python SDK", sagemaker.__version__)
'''


def test_an_sdk_v2_function_step_pipeline_runs_on_an_sdk_v2_environment(tmp_path) -> None:
    from pipelines.local.environments import Environments

    (tmp_path / "client").mkdir()
    (tmp_path / "client" / "requirements.txt").write_text("sagemaker>=2.256.0,<3.0.0\n")
    client = Environments().with_requirements(tmp_path / "client" / "requirements.txt", lambda line: None)
    (tmp_path / "build.py").write_text(SDK_V2_BUILD)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    built = subprocess.run([str(client.root / "bin" / "python"), str(tmp_path / "build.py"), str(tmp_path), BUCKET,
                            ROLE, IMAGE], capture_output=True, text=True, env=env, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "built with SageMaker Python SDK 2." in built.stdout
    store = Store(tmp_path / "store")
    for path in (tmp_path / "objects").rglob("*"):
        if path.is_file():
            store.put_file(path, f"s3://{BUCKET}/{path.relative_to(tmp_path / 'objects').as_posix()}")

    small = run_cli(tmp_path, "--parameter", "Size=4")
    assert small.returncode == 0, small.stdout[-3000:] + small.stderr[-3000:]
    [first] = executions.all_records(store.root, lambda message: None)
    assert sorted(s.name for s in first.steps if s.status == "Succeeded") == ["IsBig", "Make", "Total"]
    make_log = (store.root / "jobs" / first.execution_id / "Make" / "job.log").read_text()
    assert "Inconsistent sagemaker versions" not in make_log  # the job's SDK is the client's

    large = run_cli(tmp_path, "--parameter", "Size=6")
    assert large.returncode != 0
    second = next(r for r in executions.all_records(store.root, lambda message: None)
                  if r.execution_id != first.execution_id)
    assert "the total 55 is too big to ship" in (second.step("Explode").failure_reason or ""), large.stdout[-3000:]


def test_pre_execution_commands_run_once_into_the_steps_environment(tmp_path, monkeypatch, step_requirements) -> None:
    store = Store(tmp_path / "store")
    definition = build(store, monkeypatch, step_requirements,
                       pre_execution_commands=["pip install --no-deps six==1.16.0", "echo commands ran",
                                               f": a new environment for each run of the suite {uuid.uuid4()}"])
    (tmp_path / "squares.json").write_text(json.dumps(definition))

    first = run_cli(tmp_path, "--parameter", "Size=4")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "pre_exec.sh: running the pre-execution commands into a new environment" in first.stdout
    assert "Successfully installed six-1.16.0" in first.stdout and "pre_exec.sh: commands ran" in first.stdout
    [record] = executions.all_records(store.root, lambda message: None)
    make_log = (store.root / "jobs" / record.execution_id / "Make" / "job.log").read_text()
    assert "commands ran" not in make_log and "No dependencies to install" in make_log  # all done before the job

    again = run_cli(tmp_path, "--parameter", "Size=3", "--no-cache")
    assert again.returncode == 0 and "pre_exec.sh: its commands ran in the cached environment" in again.stdout
    assert "Successfully installed six" not in again.stdout


def test_pre_execution_commands_that_fail_are_one_client_error(tmp_path) -> None:
    store = Store(tmp_path / "store")
    store.put_bytes(b"#!/bin/bash\necho never\n", f"s3://{BUCKET}/funcs/bootstrap/job_driver.sh")
    store.put_bytes(b"echo about to fail\nexit 3\n", f"s3://{BUCKET}/funcs/deps/pre_exec.sh")
    here = ".".join(platform.python_version_tuple()[:2])
    step = training_step({"TrainingImage": IMAGE, "ContainerEntrypoint": [
        "/bin/bash", "/opt/ml/input/data/sagemaker_remote_function_bootstrap/job_driver.sh"],
        "ContainerArguments": ["--s3_base_uri", f"s3://{BUCKET}/funcs", "--client_python_version", here]}, {},
        channels={"sagemaker_remote_function_bootstrap": (f"s3://{BUCKET}/funcs/bootstrap", "FullyReplicated"),
                  "pre_exec_script_and_dependencies": (f"s3://{BUCKET}/funcs/deps", "FullyReplicated")})
    record = run(store, step)
    reason = record.step("Fit").failure_reason
    assert reason == ("ClientError: pre_exec.sh: the pre-execution commands failed with exit code 3 (about to fail); "
                      "fix them and run again") and record.step("Fit").attempts == 1
