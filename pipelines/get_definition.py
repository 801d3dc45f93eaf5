"""``get-pipeline-definition``: print or write the pipeline definition JSON, offline."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from pipelines.errors import PipelineError
from pipelines.run import PIPELINES, add_config_arguments, config_from_args, pipeline_module, write_output


def main(argv: Sequence[str] | None = None) -> int:
    """Build the definition with no AWS credentials and no network, and write it out."""
    p = argparse.ArgumentParser(prog="get-pipeline-definition", description=__doc__.split("\n")[0])
    p.add_argument("--file-name", "-f", default="-", help="output file (default: stdout)")
    p.add_argument("--pipeline", choices=PIPELINES, default="lead-scoring")
    add_config_arguments(p)
    args = p.parse_args(argv)
    try:
        build = pipeline_module(args.pipeline).build
        write_output(build(config_from_args(args, os.environ)).definition, args.file_name)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
