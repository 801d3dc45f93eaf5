"""Processing: stage inputs, run the entrypoint on every instance in the job runtime (on its image's
environment), publish outputs, read property files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.local import job_runtime, runnable_images, safe_files
from pipelines.local.environments.cache import Environment
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun, image_environment
from pipelines.local.executors.hosts import Host, HostProgram, job_hosts, run_on_hosts
from pipelines.s3uri import join_uri


def execute(run: StepRun) -> StepOutcome:
    """Run one processing job locally: one program per instance of its cluster, each with its inputs
    (every object, or its shard for ShardedByS3Key) and /opt/ml/config; every instance's outputs published."""
    args = run.arguments
    refusal = runnable_images.processing_refusal(args)  # an image known only now (a parameter): refused before any job
    if refusal is not None:
        raise StepFailed(runnable_images.failure_reason(refusal))
    return run_job(run, args)


def run_job(run: StepRun, args: dict[str, Any], program: list[str] | None = None,
            python_env: Environment | None = None) -> StepOutcome:
    """Run the processing job ``args`` (a CreateProcessingJob request): its image's entrypoint, or ``program``, a
    job program of the engine's own run in the image's place (a check step's analyzer) with ``python_env``'s
    interpreter (None: this one)."""
    inputs = args.get("ProcessingInputs", [])
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    count = int(args.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceCount", 1))
    hosts = job_hosts(run, count)
    input_paths = [(item.get("S3Input") or item.get("DatasetDefinition") or {}).get("LocalPath") for item in inputs]
    output_paths = [item.get("S3Output", {}).get("LocalPath") for item in outputs]
    for index, path in enumerate(input_paths):
        job_runtime.processing_path(hosts[0].root, path, f"ProcessingInputs[{index}].LocalPath")
    for index, path in enumerate(output_paths):
        job_runtime.processing_path(hosts[0].root, path, f"ProcessingOutputConfig.Outputs[{index}].S3Output.LocalPath")
    for index, item in enumerate(inputs):
        stage_input(run, index, item, hosts, input_paths[index])
    app = args["AppSpecification"]
    entrypoint = program or list(app.get("ContainerEntrypoint", [])) + list(app.get("ContainerArguments", []))
    environment = python_env if program else image_environment(run, app.get("ImageUri", ""),
                                                                 "AppSpecification.ImageUri")
    programs = []
    for host in hosts:
        for path in output_paths:
            job_runtime.host_path(host.root, path).mkdir(parents=True, exist_ok=True)
        write_processing_config(host.root, args, run.job_name, host.name, [h.name for h in hosts])
        programs.append(HostProgram(host, entrypoint, args.get("Environment") or {}, python_env=environment,
                                    engine_code=program is not None))
    isolated = bool(args.get("NetworkConfig", {}).get("EnableNetworkIsolation"))
    ended = run_on_hosts(run, programs, "processing", isolated=isolated)
    if ended.first_failure is not None:
        name, job = ended.first_failure
        where = f" on {name}" if count > 1 else ""
        raise StepFailed(f"AlgorithmError: the processing program{where} exited with code {job.exit_code}: "
                         f"{job.last_line}")
    for item, path in zip(outputs, output_paths):
        for host in hosts:
            run.store.put_tree(job_runtime.host_path(host.root, path), item["S3Output"]["S3Uri"])
    properties = {**args, "ProcessingJobName": run.job_name, "ProcessingJobStatus": "Completed",
                  "ProcessingJobArn": run.job_arn("processing-job")}
    return StepOutcome(properties=properties, property_files=read_property_files(run, outputs))


def stage_input(run: StepRun, index: int, item: dict[str, Any], hosts: list[Host], local_path: str) -> None:
    """Copy one S3 input to every host: all its objects, or every n-th for ShardedByS3Key."""
    source = item.get("S3Input")
    if source is None and "RedshiftDatasetDefinition" in item.get("DatasetDefinition", {}):
        raise StepFailed(redshift_unreachable(run, index, item))
    if source is None:
        raise StepFailed(f"ProcessingInputs[{index}]: only S3Input is supported locally")
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise StepFailed(f"ProcessingInputs[{index}].S3Input.S3DataType: only S3Prefix is supported locally")
    destinations = [job_runtime.host_path(host.root, local_path) for host in hosts]
    for destination in destinations:  # there even when a host's shard is empty, as on SageMaker
        destination.mkdir(parents=True, exist_ok=True)
    staged = run.store.download_to_hosts(source["S3Uri"], destinations,
                                         source.get("S3DataDistributionType") == "ShardedByS3Key")
    if staged == 0:
        raise StepFailed(f"ClientError: ProcessingInputs[{index}] ({item.get('InputName')}): "
                         f"no objects under {source['S3Uri']}")


def write_processing_config(root: Path, arguments: dict[str, Any], job_name: str, current_host: str,
                            hosts: list[str]) -> None:
    """``/opt/ml/config/resourceconfig.json`` and ``processingjobconfig.json``, as a processing container finds them."""
    config_dir = root / "opt" / "ml" / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "resourceconfig.json").write_text(json.dumps({"current_host": current_host, "hosts": hosts}))
    (config_dir / "processingjobconfig.json").write_text(json.dumps({**arguments, "ProcessingJobName": job_name}))


def redshift_unreachable(run: StepRun, index: int, item: dict[str, Any]) -> str:
    """Why a Redshift dataset definition cannot run locally, and how to stage its data instead."""
    redshift = item["DatasetDefinition"]["RedshiftDatasetDefinition"]
    staged = redshift.get("OutputS3Uri", "s3://BUCKET/PREFIX/")
    return (f"ClientError: ProcessingInputs[{index}] ({item.get('InputName')}) reads Redshift cluster "
            f"{redshift.get('ClusterId')} through a dataset definition, and the local engine cannot reach Redshift. "
            f"Run the query yourself (UNLOAD ('<query>') TO ... FORMAT CSV; label in the first column), copy the "
            f"files to {run.store.path(staged)} (= {staged}), then run with --data-source s3 "
            f"--parameter InputDataUrl={staged}")


def read_property_files(run: StepRun, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Parse each declared PropertyFile from the published outputs; a missing or bad file fails the step."""
    files = {}
    for spec in run.definition.get("PropertyFiles", []):
        output = next((o for o in outputs if o.get("OutputName") == spec["OutputName"]), None)
        if output is None:
            raise StepFailed(f"PropertyFiles {spec['PropertyFileName']}: no output named {spec['OutputName']!r}")
        uri = join_uri(output["S3Output"]["S3Uri"], spec["FilePath"])
        path = run.store.path(uri)
        try:
            files[spec["PropertyFileName"]] = json.loads(safe_files.read_bytes(run.store.root, path).decode("utf-8"))
        except FileNotFoundError:
            raise StepFailed(f"PropertyFile {spec['PropertyFileName']}: {uri} was not written by the job") from None
        except json.JSONDecodeError as exc:
            raise StepFailed(f"PropertyFile {spec['PropertyFileName']}: {uri} is not JSON: {exc}") from None
    return files
