"""Processing: stage inputs, run the entrypoint as a subprocess, publish outputs, read property files."""

from __future__ import annotations

import json
from typing import Any

from pipelines.local import sandbox
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun, run_program
from pipelines.s3uri import join_uri


def execute(run: StepRun) -> StepOutcome:
    """Run one processing job locally."""
    args = run.arguments
    root = run.job_dir / "root"
    inputs = args.get("ProcessingInputs", [])
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    input_dirs = [sandbox.processing_path(root, (item.get("S3Input") or item.get("DatasetDefinition") or {}).get(
        "LocalPath"), f"ProcessingInputs[{index}].LocalPath") for index, item in enumerate(inputs)]
    output_dirs = [sandbox.processing_path(root, item.get("S3Output", {}).get("LocalPath"),
                                           f"ProcessingOutputConfig.Outputs[{index}].S3Output.LocalPath")
                   for index, item in enumerate(outputs)]
    for index, (item, destination) in enumerate(zip(inputs, input_dirs)):
        source = item.get("S3Input")
        if source is None and "RedshiftDatasetDefinition" in item.get("DatasetDefinition", {}):
            raise StepFailed(redshift_unreachable(run, index, item))
        if source is None:
            raise StepFailed(f"ProcessingInputs[{index}]: only S3Input is supported locally")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailed(f"ProcessingInputs[{index}].S3Input.S3DataType: only S3Prefix is supported locally")
        destination.mkdir(parents=True, exist_ok=True)
        if run.store.download_prefix(source["S3Uri"], destination) == 0:
            raise StepFailed(f"ClientError: ProcessingInputs[{index}] ({item.get('InputName')}): "
                             f"no objects under {source['S3Uri']}")
    for directory in output_dirs:
        directory.mkdir(parents=True, exist_ok=True)

    app = args["AppSpecification"]
    entrypoint = list(app.get("ContainerEntrypoint", [])) + list(app.get("ContainerArguments", []))
    if not entrypoint:
        raise StepFailed("AppSpecification: no ContainerEntrypoint; the local engine runs entrypoints, not images")
    job = run_program(run, entrypoint, "processing", args.get("Environment"), container_root=root)
    if job.exit_code != 0:
        raise StepFailed(f"AlgorithmError: the processing program exited with code {job.exit_code}: {job.last_line}")

    for item, local in zip(outputs, output_dirs):
        run.store.put_tree(local, item["S3Output"]["S3Uri"])
    properties = {**args, "ProcessingJobName": run.job_name, "ProcessingJobStatus": "Completed",
                  "ProcessingJobArn": f"arn:aws:sagemaker:local:000000000000:processing-job/{run.job_name.lower()}"}
    return StepOutcome(properties=properties, property_files=read_property_files(run, outputs))


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
            files[spec["PropertyFileName"]] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StepFailed(f"PropertyFile {spec['PropertyFileName']}: {uri} was not written by the job") from None
        except json.JSONDecodeError as exc:
            raise StepFailed(f"PropertyFile {spec['PropertyFileName']}: {uri} is not JSON: {exc}") from None
    return files
