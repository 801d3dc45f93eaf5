"""Choosing the job runtime, and what a run says when jobs are not isolated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from inference.image_programs import mapped_program, own_image_program
from pipelines.local.job_runtime.bubblewrap import unusable_reason
from pipelines.local.job_runtime.unsandboxed import Unsandboxed
from tests.pipelines.local.helpers import definition, engine, script_step
from tests.sandboxing import needs_bubblewrap

REPO = Path(__file__).resolve().parents[4]


def test_a_machine_without_bubblewrap_is_told_how_to_install_it():
    reason = unusable_reason(None)
    assert reason.startswith("bubblewrap not found; install it with `sudo apt-get install bubblewrap`")


def test_a_bubblewrap_that_cannot_create_namespaces_is_said_so(tmp_path):
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    assert unusable_reason(str(broken)) == ("bubblewrap cannot create a job's namespaces here "
                                            "(bwrap: No permissions to create new namespace)")


def test_without_the_sandbox_a_run_says_so_once_and_every_job_reports_it(tmp_path):
    runtime = Unsandboxed(unusable_reason(None))
    step = script_step("A", "print('hello')")
    step["Arguments"]["NetworkConfig"] = {"EnableNetworkIsolation": True}
    run, lines = engine(tmp_path / "store", runtime=runtime)
    record = run.run(definition(step, script_step("B", "print('again')")), "p", {})
    assert record.status == "Succeeded", record.failure_reason
    notices = [line for line in lines if "jobs are not isolated" in line]
    assert notices == ["engine: jobs are not isolated: bubblewrap not found; install it with `sudo apt-get install "
                       "bubblewrap` (Debian, Ubuntu) or `sudo dnf install bubblewrap` (Fedora)"]
    for name in "AB":
        assert runtime.notice in record.step(name).unenforced
    assert any(line.startswith("NetworkConfig.EnableNetworkIsolation = True: network isolation: without the job "
                               "sandbox") for line in record.step("A").unenforced)


@needs_bubblewrap
def test_in_the_sandbox_a_model_s_network_isolation_is_reported_for_its_serving_containers(tmp_path):
    model = {"Name": "M", "Type": "Model", "Arguments": {
        "ExecutionRoleArn": "arn:aws:iam::111122223333:role/R", "EnableNetworkIsolation": True,
        "PrimaryContainer": {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                             "ModelDataUrl": "s3://bkt/m/model.tar.gz"}}}
    run, _ = engine(tmp_path / "store")
    record = run.run(definition(model), "p", {})
    assert any(line.startswith("EnableNetworkIsolation = True: network isolation of serving containers")
               for line in record.step("M").unenforced)


def test_job_sandbox_off_runs_jobs_as_the_user_and_says_so(tmp_path):
    path = tmp_path / "def.json"
    path.write_text(json.dumps(definition(script_step("A", "import os; print('cwd', os.getcwd())"))))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    done = subprocess.run([sys.executable, "-m", "pipelines.run", "--definition", str(path), "--store",
                           str(tmp_path / "store"), "--job-sandbox", "off"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "jobs are not isolated: the job sandbox is off (--job-sandbox off)" in done.stdout + done.stderr
    [execution] = (tmp_path / "store" / "jobs").iterdir()
    assert f"cwd {execution / 'A'}" in (execution / "A" / "job.log").read_text()


def test_a_mapped_image_program_sees_the_files_its_command_names(tmp_path):
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "__init__.py").write_text("")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "serve.py").write_text("")
    (tmp_path / "notes.txt").write_text("not named")
    module = mapped_program("python3 -m trainer --verbose", tmp_path)
    assert module.files == ((tmp_path / "trainer", str(tmp_path / "trainer")),) and module.workdir == str(tmp_path)
    script = mapped_program("python3 scripts/serve.py", tmp_path)
    assert script.files == ((tmp_path / "scripts", str(tmp_path / "scripts")),)
    assert mapped_program("/usr/bin/env python3 /", tmp_path).files == ()  # the system and / are never bound


def test_our_image_is_its_container_package_in_opt_program():
    image = own_image_program()
    assert image.command == ("python3", "-m", "container") and image.workdir == "/opt/program"
    # as the Dockerfile lays it out: the package, and the one module that opens a job's MLflow run beside it
    assert image.files == ((REPO / "container", "/opt/program/container"),
                           (REPO / "processing" / "__init__.py", "/opt/program/processing/__init__.py"),
                           (REPO / "processing" / "mlflow_run.py", "/opt/program/processing/mlflow_run.py"))
    dockerfile = (REPO / "container" / "Dockerfile").read_text()
    assert "COPY processing/__init__.py processing/mlflow_run.py /opt/program/processing/" in dockerfile

