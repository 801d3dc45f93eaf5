"""``get-pipeline-definition``: print or write the pipeline definition JSON, offline."""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from pipelines.atomic import write_output
from pipelines.catalog import pipeline_module
from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.config import offline_bucket


def parser() -> argparse.ArgumentParser:
    """The get-pipeline-definition argument parser."""
    p = CommandParser(prog="get-pipeline-definition", description=__doc__.split("\n")[0])
    p.add_argument("--file-name", "-f", default="-", help="output file (default: stdout)")
    options.add_pipeline_choice(p, "lead-scoring (default) or batch-scoring")
    options.add_settings(p, options.PIPELINE_SETTINGS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Build the definition with no AWS credentials and no network, and write it out (without --bucket, the SDK's
    default bucket of the --role-arn account, as ``--definition-only``)."""
    return run_parsed(parser(), argv, write)


def write(args: argparse.Namespace) -> int:
    """The definition of the chosen pipeline, to the file or stdout."""
    config = offline_bucket(options.config_from_args(args, os.environ))
    write_output(pipeline_module(args.pipeline).build(config).definition, args.file_name)
    return 0

