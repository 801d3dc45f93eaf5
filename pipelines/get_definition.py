"""``get-pipeline-definition``: print or write the pipeline definition JSON, offline."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from pipelines.errors import exit_code_of
from pipelines.run import (
    PIPELINES,
    add_config_arguments,
    config_from_args,
    offline_bucket,
    pipeline_module,
    write_output,
)


def parser() -> argparse.ArgumentParser:
    """The get-pipeline-definition argument parser."""
    p = argparse.ArgumentParser(prog="get-pipeline-definition", description=__doc__.split("\n")[0])
    p.add_argument("--file-name", "-f", default="-", help="output file (default: stdout)")
    p.add_argument("--pipeline", choices=PIPELINES, default="lead-scoring",
                   help="lead-scoring (default) or batch-scoring")
    add_config_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Build the definition with no AWS credentials and no network, and write it out (without --bucket, the SDK's
    default bucket of the --role-arn account, as ``--definition-only``)."""
    args = parser().parse_args(argv)

    def write() -> int:
        config = offline_bucket(config_from_args(args, os.environ))
        write_output(pipeline_module(args.pipeline).build(config).definition, args.file_name)
        return 0

    return exit_code_of(write)


if __name__ == "__main__":
    sys.exit(main())
