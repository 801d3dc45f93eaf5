"""The option groups and argparse types commands share, and the typed config they assemble. Imports no command."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from container.hyperparameters import CALIBRATIONS
from pipelines.catalog import PIPELINES
from pipelines.config import FIELD_NAMES, STACK_SETTINGS, PipelineConfig, build_config, env_values, local_config, \
    parse_kwargs_json, read_config_file, with_stack_outputs
from pipelines.errors import ConfigError

if TYPE_CHECKING:  # the engine is imported only when a local run needs it
    from pipelines.local.engine import RunOptions


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {text}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


CONFIG_GROUP = "configuration (flags > PIPELINE_* environment > --config file > defaults)"

# every setting flag, named after its PipelineConfig field; a command adds those that apply to it
SETTINGS: dict[str, dict[str, Any]] = {
    "config": dict(type=Path, help="TOML or YAML file of settings"),
    "region": dict(help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1)"),
    "local_image_programs": dict(
        flag="--local-image-program", action="append", metavar="IMAGE=COMMAND",
        help="local engine: run COMMAND (with 'train' or 'serve' appended, as the container is started) for jobs "
             "and models of IMAGE (repeatable)"),
    "local_lambdas": dict(
        flag="--local-lambda", action="append", metavar="ARN=MODULE:FUNCTION",
        help="local engine: run the Python handler MODULE:FUNCTION (a module of the current directory, or "
             "path/to/file.py:FUNCTION) for Lambda steps of the function ARN (or name) (repeatable)"),
    "callback_timeout_seconds": dict(
        flag="--callback-timeout", type=positive_int, metavar="SECONDS",
        help="local engine: fail a Callback step whose token is not answered within SECONDS (default: wait until "
             "it is)"),
    "environments_cache": dict(
        metavar="DIR", help="local engine: where job environments (an image's libraries, a script's "
                            "requirements.txt installed) are built and cached, for every store and run (default: "
                            "~/.cache/sagemaker-pipelines-local/environments, or under XDG_CACHE_HOME)"),
    "image_libraries": dict(
        choices=("image", "engine"),
        help="local engine: 'image' (default) runs the jobs of a SageMaker framework image (SKLearn, XGBoost) on "
             "that image's libraries, built once per image version; 'engine' runs them with this interpreter's "
             "(the report names every difference)"),
    "local_api_deletes": dict(
        choices=("own", "any"),
        help="local engine: what a run's jobs may delete through the local SageMaker API: 'own' (default) the "
             "endpoints, endpoint configs and models their execution created, or 'any'"),
    "role_arn": dict(help="IAM role the pipeline and its jobs run as"),
    "bucket": dict(help="S3 bucket for code, data and artifacts"),
    "base_prefix": dict(help="S3 key prefix under the bucket"),
    "kms_key_arn": dict(help="KMS key for S3 writes, volumes and outputs"),
    "subnets": dict(help="comma-separated VPC subnet ids"),
    "security_group_ids": dict(help="comma-separated VPC security group ids"),
    "pipeline_name": dict(help="SageMaker pipeline name (default LeadScoringPipeline)"),
    "model_package_group": dict(help="model package group models are registered in (default LeadScoringModels)"),
    "training_mode": dict(choices=("builtin", "custom"),
                          help="built-in XGBoost (default) or your own training image (--training-image)"),
    "training_image": dict(help="ECR URI of a custom training image (--training-mode custom); this repository's own "
                                "image (repository lead-scoring-xgboost) runs locally with no mapping"),
    "calibration": dict(choices=CALIBRATIONS, help="custom mode with our image: probability calibration fitted on "
                                                   "validation (default isotonic)"),
    "monotone_constraints": dict(metavar="(1,0,-1,...)",
                                 help="custom mode with our image: per-feature monotone constraints, in column order"),
    "xgboost_version": dict(help="built-in XGBoost image version (default 1.7-1)"),
    "input_data_url": dict(help="default of the InputDataUrl parameter"),
    "source_revision": dict(help="source revision recorded on the model (default: git HEAD)"),
    "data_source": dict(choices=("s3", "redshift"),
                        help="where PrepareData reads: the InputDataUrl prefix (default) or a Redshift query"),
    "redshift_cluster_id": dict(help="Redshift cluster the input is read from (--data-source redshift)"),
    "redshift_database": dict(help="database of that cluster"),
    "redshift_db_user": dict(help="database user; SageMaker gets temporary credentials for it"),
    "redshift_query": dict(help="SELECT whose first column is the 0/1 label"),
    "redshift_cluster_role_arn": dict(help="IAM role attached to the cluster, used for the UNLOAD"),
    "redshift_output_s3_uri": dict(help="where the query result is written (default <bucket>/<prefix>/redshift-unload/)"),
    "input_header": dict(choices=("absent", "present"),
                         help="PrepareData: whether every input file starts with a header line (default absent)"),
    "bad_rows": dict(choices=("fail", "skip"), help="PrepareData: fail at the first bad row (default) or skip bad "
                                                    "rows up to --max-bad-rows / --max-bad-percent"),
    "max_bad_rows": dict(type=int, help="PrepareData skip policy: most bad rows tolerated (default 1000)"),
    "max_bad_percent": dict(type=float, help="PrepareData skip policy: most bad rows in %% (default 1)"),
    "allowed_buckets": dict(help="comma-separated: validation refuses S3 URIs in any other bucket"),
    "scoring_id_columns": dict(type=int, help="batch-scoring: leading lead-id columns of its input (default 1)"),
    "tags": dict(help='JSON list of {"Key": ..., "Value": ...}'),
    "mlflow_resource_arn": dict(metavar="ARN", help="SageMaker managed MLflow: the tracking server the pipeline's "
                                                    "executions log to (the definition's MlflowConfig)"),
    "mlflow_experiment_name": dict(metavar="NAME", help="its MLflow experiment (default: the pipeline name)"),
    "mlflow_tracking_uri": dict(metavar="URI", help="local engine: track each execution as an MLflow run at URI "
                                                    "(default: MLFLOW_TRACKING_URI, else 'store': a tracking "
                                                    "database in the local store; 'off': not tracked)"),
    "kwargs": dict(help="JSON object of settings (SageMaker project template style)"),
    "stack_name": dict(metavar="NAME", help="the secure environment's CloudFormation stack (`infra deploy`): the role, "
                                            "bucket, prefix, KMS key, VPC, pipeline and group names and Redshift "
                                            "settings come from its outputs; a flag given too wins, and is said to"),
}
LOCAL_SETTINGS = ("config", "region", "local_image_programs", "local_lambdas", "callback_timeout_seconds",
                  "environments_cache", "image_libraries", "local_api_deletes", "mlflow_tracking_uri",
                  "mlflow_experiment_name")  # what a local execution uses once its definition exists
PIPELINE_SETTINGS = tuple(SETTINGS)  # what builds a pipeline


def add_settings(parser: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    """The flags of the named settings, in one group; a command given no ``--kwargs`` flag takes none. A command
    taking a setting the secure environment's stack defines also takes ``--stack-name``."""
    group = parser.add_argument_group(CONFIG_GROUP)
    if "stack_name" not in names and set(names) & set(STACK_SETTINGS):
        names = (*names, "stack_name")
    for name in names:
        spec = dict(SETTINGS[name])
        flag = spec.pop("flag", f"--{name.replace('_', '-')}")
        group.add_argument(flag, dest=name, **spec)
    if "kwargs" not in names:
        parser.set_defaults(kwargs=None)


def add_validation_arguments(parser: argparse.ArgumentParser) -> None:
    """--no-validate and --security-lint (shared by runs and ``validate``)."""
    parser.add_argument("--no-validate", action="store_true", help="skip validating the definition before it runs")
    parser.add_argument("--security-lint", action="store_true",
                        help="hold a --definition file to the security rules too (KMS, encryption, no credentials)")


def add_pipeline_choice(parser: argparse.ArgumentParser, what: str) -> None:
    """--pipeline: which of our pipelines."""
    parser.add_argument("--pipeline", choices=PIPELINES, default="lead-scoring", help=what)


def add_store_argument(parser: argparse.ArgumentParser, help: str = "the local store") -> None:
    parser.add_argument("--store", type=Path, default=Path(".sagemaker-local"), help=help)


def add_target_arguments(parser: argparse.ArgumentParser, settings: tuple[str, ...] = ("config", "region")) -> None:
    """--target, --store and the settings a registry, endpoint or scoring command uses."""
    parser.add_argument("--target", choices=("local", "sagemaker"), default="local",
                        help="the local store (default) or the configured AWS account and region")
    add_store_argument(parser, "the local store (--target local)")
    add_settings(parser, settings)


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    """How a SageMaker execution is watched (shared by a run and ``retry``)."""
    s = parser.add_argument_group("sagemaker target")
    s.add_argument("--no-wait", action="store_true", help="return once the execution has started")
    s.add_argument("--poll-seconds", type=seconds, default=30.0, help="how often the execution is polled (default 30)")
    s.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS", help="stop watching after this long")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the local engine (shared by a run and ``retry``)."""
    g = parser.add_argument_group("local engine")
    g.add_argument("--no-cache", action="store_true", help="ignore CacheConfig: run every step")
    g.add_argument("--max-parallel-steps", type=positive_int, metavar="N",
                   help="run at most N steps at once (also sent to SageMaker as ParallelismConfiguration)")
    g.add_argument("--inject-fault", action="append", default=[], metavar="STEP=TYPE[:TIMES]",
                   help="make the first TIMES attempts of STEP fail with a retryable exception type "
                        "(e.g. SageMaker.JOB_INTERNAL_ERROR), to exercise its retry policies")
    g.add_argument("--retry-interval-scale", type=float, default=1.0, metavar="X",
                   help="multiply every retry wait (IntervalSeconds x BackoffRate^n) by X, e.g. 0 for no waiting "
                        "in a demo (local only; default 1, as SageMaker waits)")
    g.add_argument("--job-sandbox", choices=("auto", "off"), default="auto",
                   help="local engine: 'auto' runs every job in a bubblewrap container of its own where bubblewrap "
                        "works (else says why not); 'off' runs jobs as you, with your files open to them")


def engine_options(args: argparse.Namespace) -> RunOptions:
    """The local engine's RunOptions from the flags."""
    from pipelines.local import job_runtime
    from pipelines.local import package_index
    from pipelines.local.engine import RunOptions
    from pipelines.local.retries import parse_faults

    if not 0 <= args.retry_interval_scale <= 1000:
        raise ConfigError("--retry-interval-scale must be between 0 and 1000")
    runtime = job_runtime.automatic() if args.job_sandbox == "auto" else job_runtime.Unsandboxed(
        "the job sandbox is off (--job-sandbox off)")
    return RunOptions(cache=not args.no_cache, max_parallel_steps=args.max_parallel_steps,
                      faults=parse_faults(args.inject_fault), retry_interval_scale=args.retry_interval_scale,
                      runtime=runtime, package_index=package_index.from_user(os.environ))


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | os._Environ) -> PipelineConfig:
    """Assemble the configuration from defaults, file, environment, --kwargs and flags."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if getattr(args, "config", None):
        layers.append((str(args.config), read_config_file(args.config)))
    if environ.get("MLFLOW_TRACKING_URI"):  # MLflow's own variable, below this package's settings
        layers.append(("MLFLOW_TRACKING_URI", {"mlflow_tracking_uri": environ["MLFLOW_TRACKING_URI"]}))
    layers.append(("environment", env_values(environ)))
    if getattr(args, "kwargs", None):
        layers.append(("--kwargs", parse_kwargs_json(args.kwargs)))
    # every setting flag is named after its config field
    flags = {name: getattr(args, name) for name in FIELD_NAMES if getattr(args, name, None) is not None}
    layers.append(("command line", flags))
    # read once, here at the door: the stack's outputs fill the settings this command takes
    layers, notes = with_stack_outputs(layers, [name for name in STACK_SETTINGS if hasattr(args, name)], _stack_outputs)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not any("source_revision" in values for _, values in layers):
        layers.append(("git", {"source_revision": git_revision()}))
    return build_config(*layers)


def _stack_outputs(stack_name: str, region: str) -> dict[str, str]:
    from pipelines.infra.stacks import stack_outputs

    return stack_outputs(stack_name, region)


def config_for(args: argparse.Namespace) -> PipelineConfig:
    """The config of a ``--target`` command: a local target's has the local placeholders for bucket and role."""
    config = config_from_args(args, os.environ)
    return local_config(config) if args.target == "local" else config


def git_revision() -> str:
    """The git commit of the working directory, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
