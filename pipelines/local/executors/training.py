"""Training: the built-in XGBoost image through its local emulation; any other image is refused clearly."""

from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

from pipelines.local import sandbox
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.s3uri import join_uri
from pipelines.local.xgboost_algorithm import AlgorithmError, check_channels, content_kind

BUILTIN_XGBOOST = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/sagemaker-xgboost:[\w.-]+$")


def is_builtin_xgboost(image: str) -> bool:
    """True for the SageMaker-provided XGBoost algorithm image of any region and version."""
    return bool(BUILTIN_XGBOOST.match(image))


def execute(run: StepRun) -> StepOutcome:
    """Run one training job locally."""
    args = run.arguments
    image = args.get("AlgorithmSpecification", {}).get("TrainingImage", "")
    if not is_builtin_xgboost(image):
        raise StepFailed(
            f"AlgorithmSpecification.TrainingImage {image!r} is not the built-in XGBoost image, and the local engine "
            "has no program mapped for other images (custom training containers are not emulated yet); "
            "use --training-mode builtin for local runs"
        )
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
    limit = run.max_runtime_seconds
    job = sandbox.run_logged(command, {}, run.job_dir, run.log, run.job_dir / "job.log", limit)
    if job.timed_out:
        raise StepFailed(f"MaxRuntimeExceeded: training job {run.job_name} ran longer than "
                         f"StoppingCondition.MaxRuntimeInSeconds ({limit:g}) and was stopped "
                         "(TrainingJobStatus Stopped, SecondaryStatus MaxRuntimeExceeded)")
    if job.exit_code != 0:
        last = job.last_line
        raise StepFailed(last if last.startswith("ClientError")
                         else f"AlgorithmError: training exited with code {job.exit_code}: {last}")
    artifact_uri = join_uri(args["OutputDataConfig"]["S3OutputPath"], run.job_name, "output", "model.tar.gz")
    archive = run.job_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    run.store.put_file(archive, artifact_uri)
    metrics = json.loads((run.job_dir / "metrics.json").read_text())
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


def stage_channel(run: StepRun, name: str, channel: dict[str, Any], hosts: list[str], channels_root: Path) -> None:
    """Copy a channel's objects to each host: all of them (FullyReplicated) or every n-th (ShardedByS3Key)."""
    source = channel.get("DataSource", {}).get("S3DataSource")
    if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise StepFailed(f"InputDataConfig {name}: only S3DataSource with S3DataType S3Prefix is supported locally")
    if not run.store.objects(source["S3Uri"]):
        raise StepFailed(f"ClientError: channel {name}: no objects under {source['S3Uri']}")
    sharded = source.get("S3DataDistributionType") == "ShardedByS3Key"
    for index, host in enumerate(hosts):
        run.store.download_prefix(source["S3Uri"], channels_root / host / name,
                                  shard=(index, len(hosts)) if sharded else None)
