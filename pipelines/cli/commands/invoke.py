"""``invoke-endpoint`` (also ``python -m inference.invoke``): score a CSV of any size through an endpoint.

    invoke-endpoint --endpoint-name NAME --input leads.csv[.gz]|FOLDER|s3://bucket/prefix/ --output scores.csv
                    [--id-columns 1] [--max-payload-bytes 6291456] [--concurrency 8] [--resume]
                    [--target local|sagemaker]

How rows are packed, retried, checkpointed and resumed: ``inference/scoring.py``. Exit codes: 0 every row
scored; 1 rows left unscored (the reason is printed); 2 a usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from inference.hosting import MAX_PAYLOAD_BYTES
from inference.scoring import score_file
from pipelines import next_steps
from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed


def parser() -> argparse.ArgumentParser:
    """The invoke-endpoint argument parser."""
    p = CommandParser(prog="invoke-endpoint", description="Score a CSV of any size through an endpoint.",
                      usage="invoke-endpoint --endpoint-name NAME --input PATH|s3://... --output FILE "
                            "[--id-columns N] [--max-payload-bytes B] [--concurrency C] [--resume] "
                            "[--target T] [--store DIR]")
    p.add_argument("--endpoint-name", required=True, help="the endpoint that scores the rows")
    p.add_argument("--input", required=True, help="headerless CSV file (plain or gzip), a folder of them, or s3://prefix")
    p.add_argument("--output", required=True, type=Path, help="CSV of id columns and the score, in input order")
    p.add_argument("--id-columns", type=int, default=0, help="leading columns kept back from the model and joined "
                   "to each score (default 0)")
    p.add_argument("--max-payload-bytes", type=int, default=MAX_PAYLOAD_BYTES,
                   help=f"request body limit (default and maximum {MAX_PAYLOAD_BYTES}, InvokeEndpoint's limit)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at most (default 8)")
    p.add_argument("--max-retries", type=int, default=8, help="retries of one request before giving up (default 8)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same input and output")
    options.add_target_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``invoke-endpoint`` and ``python -m inference.invoke``."""
    return run_parsed(parser(), argv, _score)


def _score(args: argparse.Namespace) -> int:
    """Score the file; once every row is, say what comes next: scoring in bulk, with no endpoint."""
    code = score_file(args, options.config_for(args))
    if code == 0:
        print(f"Next: {next_steps.batch_scoring(args.target, args.store)}")
    return code
