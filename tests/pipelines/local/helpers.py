"""Hand-written definitions and an engine wired to collect log lines, for the local engine's tests."""

from __future__ import annotations

from pathlib import Path

from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.store import Store

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
INTERNAL_ERROR_POLICY = {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR", "Step.SERVICE_FAULT"],
                         "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 3}


# the code travels in ContainerArguments, 256 characters each (SageMaker's limit on one argument)
RUN_ARGUMENTS = "import sys; exec(''.join(sys.argv[1:]))"


def script_step(name: str, code: str, depends_on: tuple[str, ...] = (), max_runtime: int = 120,
                cache: bool = False, retry: bool = True) -> dict:
    """A processing step running ``code`` with python; it writes whatever it likes to its 'out' output."""
    step = {
        "Name": name, "Type": "Processing", "DependsOn": list(depends_on),
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5}},
            "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "-c", RUN_ARGUMENTS],
                                 "ContainerArguments": [code[i:i + 256] for i in range(0, len(code), 256)]},
            "RoleArn": "arn:aws:iam::111122223333:role/Mine",
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://bkt/runs", {"Get": "Execution.PipelineExecutionId"}, name]}},
                "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]},
        },
    }
    if cache:
        step["CacheConfig"] = {"Enabled": True, "ExpireAfter": "P1D"}
    if retry:
        step["RetryPolicies"] = [INTERNAL_ERROR_POLICY]
    return step


# a job sees nothing of this machine but its own /opt/ml: it reports to a test as a job reports anywhere, in
# S3 (the run's endpoint, which checks no signature), under s3://bkt/markers/ (``markers(store_dir)`` on disk)
MARK = ("import os, urllib.error, urllib.request\n"
        "URL = os.environ['AWS_ENDPOINT_URL'] + '/bkt/markers/'\n"
        "def mark(name, text=''):\n"
        "    urllib.request.urlopen(urllib.request.Request(URL + name, data=text.encode(), method='PUT')).close()\n"
        "def marked(name):\n"
        "    try:\n"
        "        return urllib.request.urlopen(URL + name).read().decode()\n"
        "    except urllib.error.HTTPError:\n"
        "        return None\n")


def markers(store_dir: Path) -> Path:
    """Where the markers jobs write (``MARK``) are on disk."""
    return store_dir / "s3" / "bkt" / "markers"


def stamp(name: str, seconds: float = 0.0) -> str:
    """Code that records its start, sleeps, records its end (as markers) and writes an output file."""
    return (MARK + f"import time, pathlib; mark('{name}.start', repr(time.time())); time.sleep({seconds})\n"
            f"mark('{name}.end', repr(time.time()))\n"
            f"pathlib.Path('/opt/ml/processing/out/result.txt').write_text('{name}')\n")


def definition(*steps: dict) -> dict:
    return {"Version": "2020-12-01", "Parameters": [], "Steps": list(steps)}


def engine(store_dir: Path, **options) -> tuple[LocalEngine, list[str]]:
    lines: list[str] = []
    store = Store(store_dir)
    return LocalEngine(store, Registry(store_dir / "registry.sqlite"), lambda step, line: lines.append(f"{step}: {line}"),
                       lambda record: None, RunOptions(**options)), lines


