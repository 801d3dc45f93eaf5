"""``python -m pipelines.run [flags]``: build the pipeline, then run it locally or on SageMaker.

Exit codes: 0 the execution succeeded (or was started with --no-wait); 1 it failed or
stopped, or an AWS call failed; 2 a usage, configuration or parameter error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from pipelines.atomic import write_output
from pipelines.catalog import check_parameters, ignored_settings, latest_approved_arn, pipeline_module, security_rules
from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.config import PipelineConfig, local_config, offline_bucket
from pipelines.errors import ConfigError
from pipelines.reporting import finish_run

USAGE = ("python -m pipelines.run [--target local|sagemaker] [--pipeline lead-scoring|batch-scoring] "
         "[--parameter NAME=VALUE ...] [--definition-only [FILE]] [options]\n"
         "       python -m pipelines.run {executions,describe,logs,retry,validate,images,callbacks,stage,sample-data,infra,api} ...")


def parser() -> argparse.ArgumentParser:
    """The run-pipeline argument parser."""
    p = CommandParser(
        prog="python -m pipelines.run", usage=USAGE,
        description="Build the lead-scoring pipeline and run it on the local engine (default) or on SageMaker.",
        epilog="subcommands: `executions`, `describe ID`, `logs ID STEP`, `retry ID` (local executions, or SageMaker "
               "ones with --target sagemaker), `validate` (check a definition), `images` (list or prepare the image "
               "environments local jobs run on), `callbacks` (list and answer the tokens of waiting Callback steps); "
               "see `python -m pipelines.run SUBCOMMAND --help`. Related commands: model-registry, deploy-model, "
               "invoke-endpoint, get-pipeline-definition.",
    )
    p.add_argument("--target", choices=("local", "sagemaker"), default="local",
                   help="run on the local engine (default) or upsert and start on SageMaker")
    options.add_pipeline_choice(p, "lead-scoring (train, evaluate, register) or batch-scoring (score new leads with "
                                   "an Approved model)")
    p.add_argument("--definition-only", nargs="?", const="-", metavar="FILE",
                   help="write the definition JSON to FILE (or stdout) and stop; no AWS call")
    p.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="override a pipeline parameter (repeatable; checked against its type)")
    p.add_argument("--summary-json", type=Path, metavar="FILE", help="write a machine-readable run summary")
    p.add_argument("--not-enforced", action="store_true",
                   help="list every setting the local engine accepted but did not enforce (default: their count)")
    p.add_argument("--selective-steps", metavar="STEP,STEP", help="run only these steps (selective execution, both "
                   "targets); the steps they depend on are not run, their outputs come from the reference execution")
    p.add_argument("--reference-execution", metavar="ID", help="with --selective-steps: the execution (id, or ARN on "
                   "SageMaker) whose step outputs are reused (default: the pipeline's latest that ended)")
    options.add_validation_arguments(p)
    options.add_watch_arguments(p)
    loc = p.add_argument_group("local target")
    loc.add_argument("--store", type=Path, default=Path(".sagemaker-local"),
                     help="local store standing in for S3; both targets cache built definitions in its cache/definitions")
    loc.add_argument("--definition", type=Path, metavar="FILE", help="run this definition JSON instead of building ours")
    loc.add_argument("--rebuild", action="store_true",
                     help="build the definition again even if nothing it depends on changed (both targets)")
    loc.add_argument("--sample-rows", type=options.positive_int, help="rows of sample data generated when the input "
                     "is empty (default 100000; with --definition, only when given)")
    options.add_engine_arguments(p)
    options.add_settings(p, options.PIPELINE_SETTINGS)
    return p


def main(argv: Sequence[str]) -> int:
    """Build and run the pipeline; exit codes as in the module docstring."""
    return run_parsed(parser(), argv, run)


def run(args: argparse.Namespace) -> int:
    """The run the flags ask for: a definition written out, or an execution on the target, reported."""
    from pipelines.credentials import refuse_credentials
    from pipelines.overrides import parse_assignments, resolve

    config = options.config_from_args(args, os.environ)
    refuse_credentials(parse_assignments(args.parameter), "--parameter", check_names=False)  # before anything is written
    if args.definition is None:
        check_parameters(args.pipeline, config, args.parameter)
    module = pipeline_module(args.pipeline)
    given = {name for name in options.PIPELINE_SETTINGS if getattr(args, name, None) is not None}
    for note in [] if args.definition is not None else ignored_settings(args.pipeline, config, given):
        print(f"note: {note}", file=sys.stderr)
    if args.definition_only is not None:
        built = module.build(offline_bucket(config))
        resolve(built.definition_dict, args.parameter)
        write_output(built.definition, args.definition_only)
        return 0
    if args.target == "sagemaker" and args.definition:
        raise ConfigError("--definition runs a definition file on the local target only")
    return execute(args, config, module)


def execute(args: argparse.Namespace, config: PipelineConfig, module: Any) -> int:
    """Prepare the target, validate the definition, run it with the display on, and report it."""
    from pipelines.definition_cache import cached, default_folder
    from pipelines.local.graph import steps_by_name
    from pipelines.overrides import resolve
    from pipelines.progress import Progress
    from pipelines.selection import parse as parse_selection
    from pipelines.targets import Target

    selection = parse_selection(args.selective_steps, args.reference_execution)
    # the display starts before the definition exists: what happens before the first step is shown too
    with Progress(f"{args.pipeline} on {args.target}") as progress:
        announce = lambda line: progress.update([], line)  # noqa: E731
        # both targets reuse built definitions: an unchanged pipeline is upserted without the SDK too
        build = cached(module.build, args.pipeline, module.write_sample, default_folder(), args.rebuild, log=announce)
        if args.target == "sagemaker":
            from pipelines.targets.sagemaker import SageMakerTarget

            target: Target = SageMakerTarget(config, wait=not args.no_wait, poll_seconds=args.poll_seconds,
                                             timeout_seconds=args.timeout, max_parallel_steps=args.max_parallel_steps,
                                             builder=build, selection=selection)
        else:
            from pipelines.local.target import LocalTarget

            config = local_config(config)
            target = LocalTarget(config, store=args.store, definition_file=args.definition,
                                 sample_rows=args.sample_rows, options=options.engine_options(args), builder=build,
                                 selection=selection)
        built = target.prepare()
        progress.title = f"{built.name} on {target.name}"
        if not args.no_validate:
            from pipelines.validation import require_valid

            rules = security_rules(config, args.definition is not None, args.security_lint)
            require_valid(built.definition_dict, rules, built.definition)
        overrides = resolve(built.definition_dict, args.parameter)
        if args.pipeline == "batch-scoring" and args.definition is None and "ModelPackageArn" not in overrides:
            overrides["ModelPackageArn"] = latest_approved_arn(target.registry(), config.model_package_group)
        progress.declare(list(steps_by_name(built.definition_dict)))
        result = target.run(built, overrides, progress)
    return finish_run(result, args.summary_json, reasons_shown=not progress.live_mode, store=args.store,
                      all_unenforced=args.not_enforced)
