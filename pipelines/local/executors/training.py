"""Training: a definition's ContainerEntrypoint, a framework image's script mode (SDK v2 and v3), the
built-in XGBoost image through its local emulation, or the local program mapped to a custom image
(``local_image_programs``), run with the training container's ``/opt/ml`` contract on every instance."""

from __future__ import annotations

import json
import platform
import re
import tarfile
from importlib import metadata
from pathlib import Path
from typing import Any

from inference.hosting import is_builtin_xgboost
from inference.image_programs import ImageProgram, image_program
from pipelines.local import job_runtime, runnable_images, safe_files
from pipelines.local import training_contract as contract
from pipelines.local.executors import script_mode
from pipelines.local.environments import Environment
from pipelines.local.executors.base import (StepFailed, StepOutcome, StepRun, commands_environment,
                                             image_environment, requirements_environment, run_program)
from pipelines.local.executors.hosts import HostProgram, job_hosts, run_on_hosts
from pipelines.local.store import publishable_files
from pipelines.local.xgboost_algorithm import AlgorithmError, check_channels, content_kind
from pipelines.local.xgboost_versions import ImageVersion, UnknownImageVersionError, version_of
from pipelines.s3uri import join_uri

# how DescribeTrainingJob reports a job stopped at its MaxRuntimeInSeconds
STOPPED_DETAIL = " (TrainingJobStatus Stopped, SecondaryStatus MaxRuntimeExceeded)"


def execute(run: StepRun) -> StepOutcome:
    """Run one training job locally: the definition's ContainerEntrypoint, a framework image's script
    mode, the built-in XGBoost emulation, or the local program mapped to a custom image, in that order."""
    spec = run.arguments.get("AlgorithmSpecification", {})
    image = spec.get("TrainingImage", "")
    entrypoint = list(spec.get("ContainerEntrypoint") or [])
    arguments = list(spec.get("ContainerArguments") or [])
    if entrypoint:
        return container_job(run, entrypoint + arguments)
    if script_mode.is_script_mode(run.arguments.get("HyperParameters", {})):
        return container_job(run, None)
    if is_builtin_xgboost(image):
        return builtin_xgboost(run)
    program = image_program(image, run.image_programs)
    if program is not None:
        return container_job(run, [*program.command, *(arguments or ["train"])], image=program)
    # refused before the run when the image is given as it is; here, an image known only now (a parameter)
    refusal = runnable_images.training_refusal(run.arguments, run.image_programs)
    if refusal is None:
        raise StepFailed("ClientError: AlgorithmSpecification: gives neither a TrainingImage nor an AlgorithmName")
    raise StepFailed(runnable_images.failure_reason(refusal))


def job_environment(run: StepRun, image: ImageProgram | None) -> Environment | None:
    """The environment a training job's programs start from: the environment of the image standing in (ours
    pins its requirements), else the framework image's environment (reported as it differs from the image;
    None: this interpreter's libraries)."""
    if image is not None:
        return (requirements_environment(run, image.requirements, run.log, "the image's ")
                if image.requirements is not None else None)
    uri = run.arguments.get("AlgorithmSpecification", {}).get("TrainingImage", "")
    return image_environment(run, uri, "AlgorithmSpecification.TrainingImage")


def function_step_sdk(command: list[str], environment: Environment | None) -> None:
    """StepFailed if a function step's job ``environment`` (None: this interpreter's) cannot run its pickles:
    no SageMaker Python SDK, or another major version than its client's."""
    if environment is None or environment.image is None:  # this interpreter's libraries, or derived from them
        sdk = (environment.installed_version("sagemaker") if environment else None) or metadata.version("sagemaker")
        core, said = None, "this interpreter's libraries and the step's own"
    else:
        sdk, core = environment.installed_version("sagemaker"), environment.installed_version("sagemaker-core")
        said = f"the image {environment.image}'s libraries and the step's own"
    mismatch = contract.function_step_sdk_mismatch(command, sdk, core, said)
    if mismatch:
        raise StepFailed(f"ClientError: {mismatch}")


ALGORITHM_MODULE = "pipelines.local.xgboost_algorithm"


def algorithm_environment(run: StepRun, version: ImageVersion, hosts: int) -> Environment | None:
    """The environment the built-in algorithm trains in: its image's, so that the model file is what that
    image's XGBoost writes (and what a script on the image loads); this interpreter's XGBoost for a job on
    several hosts (the emulation's collective needs XGBoost 2) and for 0.90-2 (its XGBoost predates the JSON
    model format a model is served from here)."""
    uri = run.arguments.get("AlgorithmSpecification", {}).get("TrainingImage", "")
    field_name = "AlgorithmSpecification.TrainingImage"
    if hosts == 1 and not version.xgboost.startswith("0."):
        return image_environment(run, uri, field_name)
    why = f"training on {hosts} hosts" if hosts > 1 else f"XGBoost {version.xgboost}"
    run.report(f"{field_name} = {uri}: {why} runs on this interpreter's XGBoost {metadata.version('xgboost')}, "
               f"with the defaults of the image's XGBoost {version.xgboost}; a script on the image that loads its "
               "model file may not read it")
    return None


def builtin_xgboost(run: StepRun) -> StepOutcome:
    """The built-in algorithm: channels checked, one emulated host per instance, model.tar.gz published."""
    args = run.arguments
    channels = {c["ChannelName"]: c for c in args.get("InputDataConfig", [])}
    try:
        version = version_of(args.get("AlgorithmSpecification", {}).get("TrainingImage", ""))
        check_channels(list(channels))
        kind = content_kind(channels["train"].get("ContentType"))
    except (AlgorithmError, UnknownImageVersionError) as exc:
        raise StepFailed(f"ClientError: {exc}") from None
    hosts = [f"algo-{i + 1}" for i in range(int(args.get("ResourceConfig", {}).get("InstanceCount", 1)))]
    channels_root = run.job_dir / "root" / "opt" / "ml" / "input" / "data"
    for name, channel in channels.items():
        stage_channel(run, name, channel, [channels_root / host / name for host in hosts])
    with_data = [h for h in hosts if any((channels_root / h / "train").rglob("*"))]
    if not with_data:
        raise StepFailed("ClientError: the train channel has no data")
    for host in hosts:
        if host not in with_data:
            run.log(f"{host}: no data in its train shard; this host drops out of training")
    model_dir = run.job_dir / "root" / "opt" / "ml" / "model"
    spec = {"hyperparameters": args.get("HyperParameters", {}), "content_kind": kind, "image_version": version.tag, "channels_root": str(channels_root),
            "hosts_with_data": with_data, "model_dir": str(model_dir), "metrics_file": str(run.job_dir / "metrics.json")}
    (run.job_dir / "job.json").write_text(json.dumps(spec))
    environment = algorithm_environment(run, version, len(with_data))
    command = (job_runtime.engine_module_command(ALGORITHM_MODULE, "--job-dir", str(run.job_dir)) if environment
               else ["python3", "-m", ALGORITHM_MODULE, "--job-dir", str(run.job_dir)])
    with run.runtime.job_network(bool(args.get("EnableNetworkIsolation")), 1) as network:
        # the engine's own program: it sees its job folder where the engine has it, and the engine's code
        spec = job_runtime.JobSpec(command, run.job_dir / "root" / "opt" / "ml", run.job_dir,
                                   engine_dirs=(run.job_dir,), engine_code=True, network=network,
                                   python_env=environment.root if environment else None)
        job = run_program(run, spec, "training", stopped_detail=STOPPED_DETAIL)
    if job.exit_code != 0:
        last = job.last_line
        raise StepFailed(last if last.startswith("ClientError")
                         else f"AlgorithmError: training exited with code {job.exit_code}: {last}")
    return completed(run, model_dir, json.loads((run.job_dir / "metrics.json").read_text()))


def container_job(run: StepRun, command: list[str] | None, image: ImageProgram | None = None) -> StepOutcome:
    """A training container's contract on every instance: channels staged per host (FullyReplicated or
    ShardedByS3Key), the /opt/ml/input/config files, the platform's environment, ``command`` run on all
    hosts at once (``None``: the framework toolkit's script mode; ``image``: the files and working directory
    of the image standing in); the model is algo-1's /opt/ml/model."""
    args = run.arguments
    image_env = job_environment(run, image)
    python = image_env.python if image_env is not None else platform.python_version()
    mismatch = command and contract.function_step_python_mismatch(command, python)
    if mismatch:  # before any data is staged: the job could not unpickle its function
        raise StepFailed(f"ClientError: {mismatch}")
    count = int(args.get("ResourceConfig", {}).get("InstanceCount", 1))
    hosts = job_hosts(run, count)
    channels = {c["ChannelName"]: c for c in args.get("InputDataConfig", [])}
    for name, channel in channels.items():
        stage_channel(run, name, channel, [host.root / "opt" / "ml" / "input" / "data" / name for host in hosts])
    programs = []
    environment = {**(args.get("Environment") or {}), **contract.training_environment(run.job_name,
                                                                                      run.job_arn("training-job"))}
    for host in hosts:
        contract.write_training_config(host.root, args, host.name, [h.name for h in hosts])
        log = run.log if host is hosts[0] else lambda _: None  # what every host would say, said once
        python_env = image_env
        requirements = contract.sdk_v3_requirements(host.root)
        if requirements is not None:  # as sm_train.sh would pip-install them, before the program starts
            contract.take_over_requirement_installer(host.root)
            python_env = requirements_environment(run, requirements, log, "SourceCode.requirements: ", image_env)
        if command is None:
            program = script_mode.program(run, host.root, args.get("HyperParameters", {}), channels, host.name,
                                          [h.name for h in hosts], log, image_env)
            programs.append(HostProgram(host, program.command, {**environment, **program.environment},
                                        program.workdir, python_env=program.python_env))
        else:
            dependencies, host_command = contract.function_step_dependencies(host.root, command)
            pre_execution = contract.function_step_pre_execution(host.root)
            if pre_execution is not None:  # the bootstrap runs them first, before it installs the dependencies
                python_env = commands_environment(run, pre_execution, log, python_env)
                pre_execution.unlink()
            if dependencies is not None:  # as the function step's bootstrap would pip-install them
                python_env = requirements_environment(run, dependencies, log, "the function step's dependencies: ",
                                                      python_env)
            if contract.is_function_step(command):
                function_step_sdk(command, python_env)
            programs.append(HostProgram(host, host_command, environment, image.workdir if image else "/",
                                        image.files if image else (), python_env))
    ended = run_on_hosts(run, programs, "training", stopped_detail=STOPPED_DETAIL,
                         isolated=bool(args.get("EnableNetworkIsolation")))
    failure = ended.first_failure
    if failure is not None:
        name, job = failure
        root = next(h for h in hosts if h.name == name).root
        written = safe_files.optional_text(root, root / "opt" / "ml" / "output" / "failure")
        reason = written.strip() if written is not None else job.last_line
        where = f" on {name}" if count > 1 else ""
        raise StepFailed(f"AlgorithmError{where}: {reason or f'the training program exited with code {job.exit_code}'}")
    metrics = metric_values(args.get("AlgorithmSpecification", {}).get("MetricDefinitions", []),
                            safe_files.read_text(run.job_dir, hosts[0].directory / "job.log"))
    return completed(run, hosts[0].root / "opt" / "ml" / "model", metrics)


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
    publishable_files(model_dir)  # a link or a FIFO in the model folder fails the step, naming it
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    run.store.put_file(archive, artifact_uri)
    properties = {
        **args,
        "TrainingJobName": run.job_name,
        "TrainingJobArn": run.job_arn("training-job"),
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


def stage_channel(run: StepRun, name: str, channel: dict[str, Any], destinations: list[Path]) -> None:
    """Copy a channel's objects to each host's folder: all of them (FullyReplicated) or every n-th
    (ShardedByS3Key)."""
    uri, sharded = channel_source(run, name, channel)
    run.store.download_to_hosts(uri, destinations, sharded)
