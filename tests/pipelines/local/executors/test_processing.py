"""The processing executor on inputs it cannot run locally, and on a script that hardcodes /opt/ml paths."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from pipelines.local.job_runtime.unsandboxed import mount_namespace_available
from pipelines.local.executors import processing
from pipelines.local.executors.base import StepFailed, StepRun
from pipelines.local.expressions import Context
from pipelines.local.store import Store
from tests.sandboxing import needs_container_paths

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def step_run(tmp_path, arguments) -> StepRun:
    (tmp_path / "job").mkdir(exist_ok=True)
    return StepRun("PrepareData", {"Name": "PrepareData", "Type": "Processing"}, arguments, Context({}, {}, {}),
                   "exec1", "p", Store(tmp_path / "store"), tmp_path / "job", None, lambda line: None)


def test_a_redshift_dataset_definition_says_how_to_stage_the_data(tmp_path):
    arguments = {"ProcessingInputs": [{"InputName": "raw", "DatasetDefinition": {
        "RedshiftDatasetDefinition": {"ClusterId": "leads-dw", "OutputS3Uri": "s3://lead-bucket/lead-scoring/redshift-unload/"},
        "LocalPath": "/opt/ml/processing/input/raw"}}]}
    with pytest.raises(StepFailed) as caught:
        processing.execute(step_run(tmp_path, arguments))
    message = str(caught.value)
    assert "reads Redshift cluster leads-dw through a dataset definition" in message
    assert f"copy the files to {tmp_path / 'store' / 's3' / 'lead-bucket' / 'lead-scoring' / 'redshift-unload'}" in message
    assert "run with --data-source s3 --parameter InputDataUrl=s3://lead-bucket/lead-scoring/redshift-unload/" in message


@needs_container_paths
def test_a_script_hardcoding_opt_ml_paths_runs_unchanged(tmp_path):
    store = Store(tmp_path / "store")
    store.put_bytes(b"hello\n", "s3://bkt/in/greeting.txt")
    code = ("import pathlib; text = pathlib.Path('/opt/ml/processing/input/greeting.txt').read_text();"
            "pathlib.Path('/opt/ml/processing/output/shout.txt').write_text(text.upper())")
    arguments = {
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "-c", code]},
        "ProcessingInputs": [{"InputName": "in", "S3Input": {"S3Uri": "s3://bkt/in", "LocalPath": "/opt/ml/processing/input",
                                                            "S3DataType": "S3Prefix"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": "s3://bkt/out", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
    }
    outcome = processing.execute(step_run(tmp_path, arguments))
    assert outcome.properties["ProcessingJobStatus"] == "Completed"
    assert store.path("s3://bkt/out/shout.txt").read_text() == "HELLO\n"


def test_an_unrelated_mount_under_tmp_does_not_hide_the_private_opt_ml(tmp_path):
    """The probe binds a folder of its own: a mount somewhere under /tmp (common on CI runners) is irrelevant."""
    if not mount_namespace_available.__wrapped__():
        pytest.skip("this machine gives no private mount namespace at all")
    unrelated = Path(tempfile.mkdtemp(prefix="unrelated-mount-", dir="/tmp"))
    try:
        if subprocess.run(["mount", "-t", "tmpfs", "none", str(unrelated)], capture_output=True).returncode != 0:
            pytest.skip("mounting a tmpfs needs privileges this machine does not give")
        try:
            assert mount_namespace_available.__wrapped__()
        finally:
            subprocess.run(["umount", str(unrelated)], capture_output=True)
    finally:
        unrelated.rmdir()
