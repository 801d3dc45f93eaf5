"""``python -m pipelines.run``: build the pipeline, then run it locally or on SageMaker.

Exit codes: 0 the execution succeeded (or was started with --no-wait); 1 it failed or
stopped, or an AWS call failed; 2 a usage, configuration or parameter error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from container.hyperparameters import CALIBRATIONS
from pipelines.atomic import write_text
from pipelines.config import (
    FIELD_NAMES,
    PipelineConfig,
    build_config,
    env_values,
    parse_kwargs_json,
    read_config_file,
)
from pipelines.errors import ConfigError, exit_code_of
from pipelines.results import RunResult

if TYPE_CHECKING:  # the engine is imported only when a local run needs it
    from pipelines.local.engine import RunOptions

LOCAL_BUCKET = "sagemaker-local"
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/LocalRunRoleNotEnforced"


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
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


def add_local_config_arguments(group: argparse._ArgumentGroup) -> None:
    """The settings a local execution uses once its definition exists (all ``retry`` takes)."""
    group.add_argument("--config", type=Path, help="TOML or YAML file of settings")
    group.add_argument("--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1)")
    group.add_argument("--local-image-program", dest="local_image_programs", action="append", metavar="IMAGE=COMMAND",
                       help="local engine: run COMMAND (with 'train' or 'serve' appended, as the container is "
                            "started) for jobs and models of IMAGE (repeatable)")
    group.add_argument("--local-lambda", dest="local_lambdas", action="append", metavar="ARN=MODULE:FUNCTION",
                       help="local engine: run the Python handler MODULE:FUNCTION (a module of the current directory, or "
                            "path/to/file.py:FUNCTION) for Lambda steps of the function ARN (or name) (repeatable)")
    group.add_argument("--callback-timeout", dest="callback_timeout_seconds", type=positive_int, metavar="SECONDS",
                       help="local engine: fail a Callback step whose token is not answered within SECONDS (default: "
                            "wait until it is)")
    group.add_argument("--environments-cache", metavar="DIR",
                       help="local engine: where job environments (an image's libraries, a script's requirements.txt "
                            "installed) are built and cached, for every store and run (default: "
                            "~/.cache/sagemaker-pipelines-local/environments, or under XDG_CACHE_HOME)")
    group.add_argument("--image-libraries", choices=("image", "engine"),
                       help="local engine: 'image' (default) runs the jobs of a SageMaker framework image (SKLearn, "
                            "XGBoost) on that image's libraries, built once per image version; 'engine' runs them "
                            "with this interpreter's (the report names every difference)")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that fill the PipelineConfig (shared by run-pipeline and get-pipeline-definition)."""
    g = parser.add_argument_group(CONFIG_GROUP)
    add_local_config_arguments(g)
    g.add_argument("--role-arn", help="IAM role the pipeline and its jobs run as")
    g.add_argument("--bucket", help="S3 bucket for code, data and artifacts")
    g.add_argument("--base-prefix", help="S3 key prefix under the bucket")
    g.add_argument("--kms-key-arn", help="KMS key for S3 writes, volumes and outputs")
    g.add_argument("--subnets", help="comma-separated VPC subnet ids")
    g.add_argument("--security-group-ids", help="comma-separated VPC security group ids")
    g.add_argument("--pipeline-name", help="SageMaker pipeline name (default LeadScoringPipeline)")
    g.add_argument("--model-package-group", help="model package group models are registered in "
                   "(default LeadScoringModels)")
    g.add_argument("--training-mode", choices=("builtin", "custom"),
                   help="built-in XGBoost (default) or your own training image (--training-image)")
    g.add_argument("--training-image", help="ECR URI of a custom training image (--training-mode custom); "
                   "this repository's own image (repository lead-scoring-xgboost) runs locally with no mapping")
    g.add_argument("--calibration", choices=CALIBRATIONS,
                   help="custom mode with our image: probability calibration fitted on validation (default isotonic)")
    g.add_argument("--monotone-constraints", metavar="(1,0,-1,...)",
                   help="custom mode with our image: per-feature monotone constraints, in column order")
    g.add_argument("--xgboost-version", help="built-in XGBoost image version (default 1.7-1)")
    g.add_argument("--input-data-url", help="default of the InputDataUrl parameter")
    g.add_argument("--source-revision", help="source revision recorded on the model (default: git HEAD)")
    g.add_argument("--data-source", choices=("s3", "redshift"),
                   help="where PrepareData reads: the InputDataUrl prefix (default) or a Redshift query")
    g.add_argument("--redshift-cluster-id", help="Redshift cluster the input is read from (--data-source redshift)")
    g.add_argument("--redshift-database", help="database of that cluster")
    g.add_argument("--redshift-db-user", help="database user; SageMaker gets temporary credentials for it")
    g.add_argument("--redshift-query", help="SELECT whose first column is the 0/1 label")
    g.add_argument("--redshift-cluster-role-arn", help="IAM role attached to the cluster, used for the UNLOAD")
    g.add_argument("--redshift-output-s3-uri", help="where the query result is written (default <bucket>/<prefix>/redshift-unload/)")
    g.add_argument("--input-header", choices=("absent", "present"),
                   help="PrepareData: whether every input file starts with a header line (default absent)")
    g.add_argument("--bad-rows", choices=("fail", "skip"), help="PrepareData: fail at the first bad row (default) "
                   "or skip bad rows up to --max-bad-rows / --max-bad-percent")
    g.add_argument("--max-bad-rows", type=int, help="PrepareData skip policy: most bad rows tolerated (default 1000)")
    g.add_argument("--max-bad-percent", type=float, help="PrepareData skip policy: most bad rows in %% (default 1)")
    g.add_argument("--allowed-buckets", help="comma-separated: validation refuses S3 URIs in any other bucket")
    g.add_argument("--scoring-id-columns", type=int, help="batch-scoring: leading lead-id columns of its input (default 1)")
    g.add_argument("--tags", help='JSON list of {"Key": ..., "Value": ...}')
    g.add_argument("--kwargs", help="JSON object of settings (SageMaker project template style)")


def add_validation_arguments(parser: argparse.ArgumentParser) -> None:
    """--no-validate and --security-lint (shared by runs and ``validate``)."""
    parser.add_argument("--no-validate", action="store_true", help="skip validating the definition before it runs")
    parser.add_argument("--security-lint", action="store_true",
                        help="hold a --definition file to the security rules too (KMS, encryption, no credentials)")


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | os._Environ) -> PipelineConfig:
    """Assemble the configuration from defaults, file, environment, --kwargs and flags."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if args.config:
        layers.append((str(args.config), read_config_file(args.config)))
    layers.append(("environment", env_values(environ)))
    if args.kwargs:
        layers.append(("--kwargs", parse_kwargs_json(args.kwargs)))
    # every flag of add_config_arguments is named after its config field
    flags = {name: getattr(args, name) for name in FIELD_NAMES if getattr(args, name, None) is not None}
    layers.append(("command line", flags))
    if not any("source_revision" in values for _, values in layers):
        layers.append(("git", {"source_revision": git_revision()}))
    return build_config(*layers)


def git_revision() -> str:
    """The git commit of the working directory, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def parser() -> argparse.ArgumentParser:
    """The run-pipeline argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m pipelines.run",
        description="Build the lead-scoring pipeline and run it on the local engine (default) or on SageMaker.",
        epilog="subcommands: `executions`, `describe ID`, `logs ID STEP`, `retry ID` (local executions, or SageMaker "
               "ones with --target sagemaker), `validate` (check a "
               "definition), `images` (list or prepare the image environments local jobs run on), `callbacks` (list and "
               "answer the tokens of waiting Callback steps); see `python -m pipelines.run SUBCOMMAND --help`. Related commands: model-registry, "
               "deploy-model, invoke-endpoint, get-pipeline-definition.",
    )
    p.add_argument("--target", choices=("local", "sagemaker"), default="local",
                   help="run on the local engine (default) or upsert and start on SageMaker")
    p.add_argument("--pipeline", choices=PIPELINES, default="lead-scoring",
                   help="lead-scoring (train, evaluate, register) or batch-scoring (score new leads with an Approved model)")
    p.add_argument("--definition-only", nargs="?", const="-", metavar="FILE",
                   help="write the definition JSON to FILE (or stdout) and stop; no AWS call")
    p.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="override a pipeline parameter (repeatable; checked against its type)")
    p.add_argument("--summary-json", type=Path, metavar="FILE", help="write a machine-readable run summary")
    p.add_argument("--selective-steps", metavar="STEP,STEP", help="run only these steps (selective execution, both "
                   "targets); the steps they depend on are not run, their outputs come from the reference execution")
    p.add_argument("--reference-execution", metavar="ID", help="with --selective-steps: the execution (id, or ARN on "
                   "SageMaker) whose step outputs are reused (default: the pipeline's latest that ended)")
    add_validation_arguments(p)
    add_watch_arguments(p)
    loc = p.add_argument_group("local target")
    loc.add_argument("--store", type=Path, default=Path(".sagemaker-local"),
                     help="local store standing in for S3; both targets cache built definitions in its cache/definitions")
    loc.add_argument("--definition", type=Path, metavar="FILE", help="run this definition JSON instead of building ours")
    loc.add_argument("--rebuild", action="store_true",
                     help="build the definition again even if nothing it depends on changed (both targets)")
    loc.add_argument("--sample-rows", type=positive_int, help="rows of sample data generated when the input is empty "
                     "(default 100000; with --definition, only when given)")
    add_engine_arguments(p)
    add_config_arguments(p)
    return p


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
    from pipelines.local.engine import RunOptions
    from pipelines.local.retries import parse_faults

    if not 0 <= args.retry_interval_scale <= 1000:
        raise ConfigError("--retry-interval-scale must be between 0 and 1000")
    runtime = job_runtime.automatic() if args.job_sandbox == "auto" else job_runtime.Unsandboxed(
        "the job sandbox is off (--job-sandbox off)")
    return RunOptions(cache=not args.no_cache, max_parallel_steps=args.max_parallel_steps,
                      faults=parse_faults(args.inject_fault), retry_interval_scale=args.retry_interval_scale,
                      runtime=runtime)


def offline_bucket(config: PipelineConfig) -> PipelineConfig:
    """Without --bucket, an offline build uses the SDK's default bucket name, its account taken from the role."""
    if config.bucket:
        return config
    if config.role_account is None:
        raise ConfigError("an offline build (--definition-only, get-pipeline-definition) without --bucket needs "
                          f"--role-arn, whose account names the SDK's default bucket sagemaker-{config.region}-ACCOUNT")
    return config.replace(bucket=f"sagemaker-{config.region}-{config.role_account}")


def local_config(config: PipelineConfig) -> PipelineConfig:
    """A local run needs no real bucket or role: fill placeholders (reported as not enforced)."""
    return config.replace(bucket=config.bucket or LOCAL_BUCKET, role_arn=config.role_arn or LOCAL_ROLE_ARN)


def write_output(text: str, destination: str) -> None:
    """Write ``text`` to a file (atomically) or to stdout for '-'."""
    if destination == "-":
        sys.stdout.write(text + "\n")
        return
    write_text(Path(destination), text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipelines.run`` and the ``run-pipeline`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from pipelines import executions_cli

    if argv and argv[0] in executions_cli.COMMANDS:
        return executions_cli.main(argv)
    if argv and argv[0] == "validate":
        from pipelines import validate_cli

        return validate_cli.main(argv[1:])
    if argv and argv[0] == "images":
        from pipelines import images_cli

        return images_cli.main(argv[1:])
    if argv and argv[0] == "callbacks":
        from pipelines import callbacks_cli

        return callbacks_cli.main(argv[1:])
    args = parser().parse_args(argv)
    return exit_code_of(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from pipelines.credentials import refuse_credentials
    from pipelines.overrides import parse_assignments, resolve
    from pipelines.progress import Progress
    from pipelines.targets import Target

    config = config_from_args(args, os.environ)
    refuse_credentials(parse_assignments(args.parameter), "--parameter", check_names=False)  # before anything is written
    if getattr(args, "definition", None) is None:
        check_parameters(args.pipeline, config, args.parameter)
    module = pipeline_module(args.pipeline)
    build = module.build
    if args.definition_only is not None:
        built = build(offline_bucket(config))
        resolve(built.definition_dict, args.parameter)
        write_output(built.definition, args.definition_only)
        return 0
    if args.target == "sagemaker" and args.definition:
        raise ConfigError("--definition runs a definition file on the local target only")
    from pipelines.local.graph import steps_by_name

    from pipelines.selection import parse as parse_selection

    selection = parse_selection(args.selective_steps, args.reference_execution)
    # the display starts before the definition exists: what happens before the first step is shown too
    with Progress(f"{args.pipeline} on {args.target}") as progress:
        from pipelines.definition_cache import cached

        announce = lambda line: progress.update([], line)  # noqa: E731
        # both targets keep built definitions in the store: an unchanged pipeline is upserted without the SDK too
        build = cached(build, args.pipeline, module.write_sample, args.store.resolve() / "cache" / "definitions",
                       args.rebuild, log=announce)
        if args.target == "sagemaker":
            from pipelines.targets.sagemaker import SageMakerTarget

            target: Target = SageMakerTarget(config, wait=not args.no_wait, poll_seconds=args.poll_seconds,
                                             timeout_seconds=args.timeout, max_parallel_steps=args.max_parallel_steps,
                                             builder=build, selection=selection)
        else:
            from pipelines.local.target import LocalTarget

            config = local_config(config)
            target = LocalTarget(config, store=args.store, definition_file=args.definition,
                                 sample_rows=args.sample_rows, options=engine_options(args), builder=build,
                                 selection=selection)
        built = target.prepare()
        progress.title = f"{built.name} on {target.name}"
        if not args.no_validate:
            from pipelines.validation import require_valid

            require_valid(built.definition_dict, security_rules(args, config), built.definition)
        overrides = resolve(built.definition_dict, args.parameter)
        if args.pipeline == "batch-scoring" and args.definition is None and "ModelPackageArn" not in overrides:
            overrides["ModelPackageArn"] = latest_approved_arn(target, config.model_package_group)
        progress.declare(list(steps_by_name(built.definition_dict)))
        result = target.run(built, overrides, progress)
    return finish_run(result, args.summary_json, reasons_shown=not progress.live_mode)


PIPELINES = ("lead-scoring", "batch-scoring")


def security_rules(args: argparse.Namespace, config: PipelineConfig) -> Any:
    """Our pipelines meet the security rules of their config; a --definition file only with --security-lint."""
    from pipelines.validation import SecurityRules

    if getattr(args, "definition", None) is None:
        return SecurityRules.for_config(config)
    return SecurityRules() if args.security_lint else None


def check_parameters(pipeline: str, config: PipelineConfig, assignments: list[str]) -> None:
    """Names, types and ranges of --parameter values for our pipelines, before the definition is built (seconds)."""
    from pipelines import parameters
    from pipelines.errors import ParameterError
    from pipelines.overrides import resolve

    specs, defaults = parameters.for_pipeline(pipeline, local_config(config))  # the defaults only name the parameters
    values = resolve({"Parameters": parameters.declarations(specs, defaults)}, assignments)
    found = parameters.problems(specs, values)
    if found:
        raise ParameterError("; ".join(found))


def pipeline_module(name: str) -> Any:
    """The module of the named pipeline (its ``build``, ``get_pipeline``, ``write_sample``)."""
    if name == "batch-scoring":
        from pipelines import batch_scoring

        return batch_scoring
    from pipelines import lead_scoring

    return lead_scoring


def latest_approved_arn(target: Any, group: str) -> str:
    """The ARN of the newest Approved version of ``group`` on the target; says which it chose."""
    from pipelines.model_registry import latest_approved

    package = latest_approved(target.registry(), group)
    print(f"ModelPackageArn not given: scoring with {group} version {package['ModelPackageVersion']}, the latest "
          f"Approved ({package['ModelPackageArn']})")
    return package["ModelPackageArn"]


def finish_run(result: RunResult, summary_json: Path | None, reasons_shown: bool = False) -> int:
    """Print the closing lines, write the summary if asked; returns the exit code. ``reasons_shown``: the
    progress lines already gave the failing step's reason (plain output), so it is not repeated."""
    print_result(result, reasons_shown)
    if summary_json:
        write_output(json.dumps(result.to_json(), indent=2, default=str), str(summary_json))
    return result.exit_code


def print_result(result: RunResult, reasons_shown: bool = False) -> None:
    """The closing lines of a run: outcome, metrics, registered model, transform output."""
    print(f"Execution {result.execution_id}: {result.status}")
    if result.failed_step and reasons_shown:
        print(f"Failed step: {result.failed_step} (its reason is above)")
    elif result.failed_step or (result.failure_reason and result.status != "Succeeded"):
        print(f"Failed step: {result.failed_step or '(execution)'}: {result.failure_reason}")
    if "auc" in result.metrics:
        print(f"Model test AUC: {result.metrics['auc']:.4f}")
    if result.registered_model:
        m = result.registered_model
        print(f"Registered: {m['ModelPackageGroupName']} version {m['ModelPackageVersion']} ({m['ModelApprovalStatus']})")
    if result.report:
        local = result.report.local_path
        print(f"Evaluation report: {Path(local).resolve().as_uri() if local else result.report.s3_uri}")
    if result.transform_output:
        print(f"Batch transform output: {result.transform_output}")
    for note in result.notes:
        print(f"note: {note}")
    if result.unenforced:
        from pipelines.local.unenforced import grouped

        print("Accepted but not enforced by the local engine:")
        for steps, line in grouped(result.unenforced):
            print(f"  {', '.join(steps)}: {line}")


def cli() -> None:
    """The ``run-pipeline`` command: ``main``, then an exit that skips the interpreter's teardown of every
    module the SDK loaded (over a second here after a definition build). Exit handlers still run, and
    output is flushed first."""
    import atexit
    import logging

    code = main()
    atexit._run_exitfuncs()  # temporary folders and other exit handlers, as a normal exit runs them
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader that went away (| head): nothing left to tell it
            pass
    os._exit(code)


if __name__ == "__main__":
    cli()
