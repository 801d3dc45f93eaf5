"""Training: the built-in XGBoost image through its local emulation, any other image through the local
program mapped to it (``local_image_programs``), run with the training container's ``/opt/ml`` contract."""

from __future__ import annotations

import json
import re
import shlex
import sys
import tarfile
from pathlib import Path
from typing import Any

from inference.hosting import is_builtin_xgboost
from pipelines.local import sandbox
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun, run_program
from pipelines.local.xgboost_algorithm import AlgorithmError, check_channels, content_kind
from pipelines.s3uri import join_uri

def execute(run: StepRun) -> StepOutcome:
    """Run one training job locally."""
    image = run.arguments.get("AlgorithmSpecification", {}).get("TrainingImage", "")
    if is_builtin_xgboost(image):
        return builtin_xgboost(run)
    if image in run.image_programs:
        return container_program(run, shlex.split(run.image_programs[image]))
    raise StepFailed(
        f"AlgorithmSpecification.TrainingImage {image!r} is not the built-in XGBoost image and no local program is "
        "mapped to it: set the config key local_image_programs (flag --local-image-program "
        f"'{image}=COMMAND'), COMMAND being what the image runs as `train`"
    )


def builtin_xgboost(run: StepRun) -> StepOutcome:
    """The built-in algorithm: channels checked, one emulated host per instance, model.tar.gz published."""
    args = run.arguments
    channels = {c["ChannelName"]: c for c in args.get("InputDataConfig", [])}
    try:
        check_channels(list(channels))
        kind = content_kind(channels["train"].get("ContentType"))
    except AlgorithmError as exc:
        raise StepFailed(f"ClientError: {exc}") from None
    hosts = [f"algo-{i + 1}" for i in range(int(args.get("ResourceConfig", {}).get("InstanceCount", 1)))]
    channels_root = run.job_dir / "root" / "opt" / "ml" / "input" / "data"
    for name, channel in channels.items():
        stage_channel(run, name, channel, hosts, channels_root)
    with_data = [h for h in hosts if any((channels_root / h / "train").rglob("*"))]
    if not with_data:
        raise StepFailed("ClientError: the train channel has no data")
    for host in hosts:
        if host not in with_data:
            run.log(f"{host}: no data in its train shard; this host drops out of training")
    model_dir = run.job_dir / "root" / "opt" / "ml" / "model"
    spec = {"hyperparameters": args.get("HyperParameters", {}), "content_kind": kind, "channels_root": str(channels_root),
            "hosts_with_data": with_data, "model_dir": str(model_dir), "metrics_file": str(run.job_dir / "metrics.json")}
    (run.job_dir / "job.json").write_text(json.dumps(spec))
    command = [sys.executable, "-m", "pipelines.local.xgboost_algorithm", "--job-dir", str(run.job_dir)]
    job = run_training_program(run, command)
    if job.exit_code != 0:
        last = job.last_line
        raise StepFailed(last if last.startswith("ClientError")
                         else f"AlgorithmError: training exited with code {job.exit_code}: {last}")
    return completed(run, model_dir, json.loads((run.job_dir / "metrics.json").read_text()))


def container_program(run: StepRun, command: list[str]) -> StepOutcome:
    """A bring-your-own image: its mapped program run as ``COMMAND train`` against /opt/ml, as the container is."""
    args = run.arguments
    if int(args.get("ResourceConfig", {}).get("InstanceCount", 1)) != 1:
        raise StepFailed("ClientError: the local program of a custom image runs on one instance; "
                         "run with --parameter TrainingInstanceCount=1 locally")
    opt_ml = run.job_dir / "root" / "opt" / "ml"
    config_dir = opt_ml / "input" / "config"
    channels = {c["ChannelName"]: c for c in args.get("InputDataConfig", [])}
    for name, channel in channels.items():
        uri, _ = channel_source(run, name, channel)
        run.store.download_prefix(uri, opt_ml / "input" / "data" / name)
    for directory in (config_dir, opt_ml / "model", opt_ml / "output" / "data", opt_ml / "checkpoints"):
        directory.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(args.get("HyperParameters", {})))
    (config_dir / "inputdataconfig.json").write_text(json.dumps({
        name: {"ContentType": c.get("ContentType", ""), "TrainingInputMode": args.get("AlgorithmSpecification", {}).get(
            "TrainingInputMode", "File"), "S3DistributionType": c.get("DataSource", {}).get("S3DataSource", {}).get(
            "S3DataDistributionType", "FullyReplicated"), "RecordWrapperType": c.get("RecordWrapperType", "None")}
        for name, c in channels.items()}))
    (config_dir / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"}))
    job = run_training_program(run, command + ["train"], args.get("Environment"), run.job_dir / "root")
    if job.exit_code != 0:
        failure = opt_ml / "output" / "failure"
        reason = failure.read_text(errors="replace").strip() if failure.exists() else job.last_line
        raise StepFailed(f"AlgorithmError: {reason or f'the training program exited with code {job.exit_code}'}")
    metrics = metric_values(args.get("AlgorithmSpecification", {}).get("MetricDefinitions", []),
                            (run.job_dir / "job.log").read_text(errors="replace"))
    return completed(run, opt_ml / "model", metrics)


def run_training_program(run: StepRun, command: list[str], environment: dict[str, Any] | None = None,
                         container_root: Path | None = None) -> sandbox.JobRun:
    """Run a training program; one over MaxRuntimeInSeconds ends as DescribeTrainingJob reports it."""
    return run_program(run, command, "training", environment, container_root,
                       stopped_detail=" (TrainingJobStatus Stopped, SecondaryStatus MaxRuntimeExceeded)")


def metric_values(definitions: list[dict[str, str]], log: str) -> dict[str, float]:
    """The last value each MetricDefinitions regex captured from the job log, as SageMaker reports them."""
    values = {}
    for definition in definitions:
        matches = re.findall(definition["Regex"], log)
        if matches:
            last = matches[-1][0] if isinstance(matches[-1], tuple) else matches[-1]
            try:
                values[definition["Name"]] = float(last)
            except ValueError:
                continue
    return values


def completed(run: StepRun, model_dir: Path, metrics: dict[str, float]) -> StepOutcome:
    """Publish ``model.tar.gz`` under the job's output path; the properties DescribeTrainingJob returns."""
    args = run.arguments
    artifact_uri = join_uri(args["OutputDataConfig"]["S3OutputPath"], run.job_name, "output", "model.tar.gz")
    archive = run.job_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    run.store.put_file(archive, artifact_uri)
    properties = {
        **args,
        "TrainingJobName": run.job_name,
        "TrainingJobArn": f"arn:aws:sagemaker:local:000000000000:training-job/{run.job_name.lower()}",
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": artifact_uri},
        "FinalMetricDataList": [{"MetricName": name, "Value": value} for name, value in sorted(metrics.items())],
    }
    return StepOutcome(properties=properties)


def channel_source(run: StepRun, name: str, channel: dict[str, Any]) -> tuple[str, bool]:
    """(S3 prefix, sharded by key?) of a channel; StepFailed if it cannot be staged locally or is empty."""
    source = channel.get("DataSource", {}).get("S3DataSource")
    if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise StepFailed(f"InputDataConfig {name}: only S3DataSource with S3DataType S3Prefix is supported locally")
    if not run.store.objects(source["S3Uri"]):
        raise StepFailed(f"ClientError: channel {name}: no objects under {source['S3Uri']}")
    return source["S3Uri"], source.get("S3DataDistributionType") == "ShardedByS3Key"


def stage_channel(run: StepRun, name: str, channel: dict[str, Any], hosts: list[str], channels_root: Path) -> None:
    """Copy a channel's objects to each host: all of them (FullyReplicated) or every n-th (ShardedByS3Key)."""
    uri, sharded = channel_source(run, name, channel)
    for index, host in enumerate(hosts):
        run.store.download_prefix(uri, channels_root / host / name, shard=(index, len(hosts)) if sharded else None)
