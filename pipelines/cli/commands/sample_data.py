"""``python -m pipelines.run sample-data``: write synthetic leads, as the bundled sample data is made.

    python -m pipelines.run sample-data --output leads.csv [--rows N] [--id-columns N]

The file is headerless CSV of the twenty features in order (no label), as an endpoint and ``invoke-endpoint``
take them; with ``--id-columns``, lead ids come first (``invoke-endpoint --id-columns`` keeps them back).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from pipelines import next_steps
from pipelines.cli.options import positive_int
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    """The ``sample-data`` argument parser."""
    p = CommandParser(prog="python -m pipelines.run sample-data",
                      usage="python -m pipelines.run sample-data --output FILE [--rows N] [--id-columns N]",
                      description="Write synthetic new leads (the twenty features, no label) to score.")
    p.add_argument("--output", type=Path, required=True, help="the CSV file to write")
    p.add_argument("--rows", type=positive_int, default=100, help="how many leads (default 100)")
    p.add_argument("--id-columns", type=int, default=0, help="lead id columns before the features (default 0)")
    return p


def main(argv: Sequence[str]) -> int:
    """Write the file and say what is in it."""
    return run_parsed(parser(), argv, run)


def run(args: argparse.Namespace) -> int:
    from pipelines.sample_data import FEATURES, write_leads

    if not 0 <= args.id_columns <= 5:
        raise ConfigError(f"--id-columns must be between 0 and 5; got {args.id_columns}")
    if not args.output.parent.is_dir():
        raise ConfigError(f"--output {args.output}: there is no folder {args.output.parent} to write it in")
    write_leads(args.output, args.rows, args.id_columns)
    print(f"{args.output}: {args.rows} leads, {args.id_columns} id columns then {len(FEATURES)} features "
          f"({FEATURES[0]} ... {FEATURES[-1]}), no header, no label")
    print(f"Next: {next_steps.invoke_sample(str(args.output), args.id_columns)}")
    return 0
