"""``python -m pipelines.run stage``: copy a definition's objects (scripts, input data) into the store.

    python -m pipelines.run stage --definition FILE --from DIR [--store DIR]

Each literal ``s3://`` object the definition names (a code input, an input-data parameter's default, ...) is
copied from the file of the same name in DIR, so that ``python -m pipelines.run --definition FILE`` then finds
it. Exit codes: 0 done (objects that DIR has no file for are listed); 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed


def parser() -> argparse.ArgumentParser:
    """The ``stage`` argument parser."""
    p = CommandParser(prog="python -m pipelines.run stage",
                      usage="python -m pipelines.run stage --definition FILE --from DIR [--store DIR]",
                      description="Copy the objects a definition names (its scripts, its input data) into the "
                                  "store from the folder they came from.")
    p.add_argument("--definition", type=Path, required=True, metavar="FILE", help="the definition JSON")
    p.add_argument("--from", dest="folder", type=Path, required=True, metavar="DIR",
                   help="the folder holding the files, by the names the definition's URIs end with")
    options.add_store_argument(p, "the local store to copy them into")
    return p


def main(argv: Sequence[str]) -> int:
    """Stage the objects and say what was copied and what was not found."""
    return run_parsed(parser(), argv, run)


def run(args: argparse.Namespace) -> int:
    from pipelines.local.staging import stage
    from pipelines.local.store import Store
    from pipelines.local.target import read_definition_file

    store = Store(args.store.resolve())
    staged = stage(read_definition_file(args.definition)[1], args.folder, store)
    for uri, source in staged.copied:
        print(f"{uri} <- {source}")
    missing = [uri for uri in staged.unmatched if not store.objects(uri)]
    if missing:
        print(f"not in {args.folder} (stage them yourself, or they come from an earlier step): {', '.join(missing)}")
    print(f"Next: python -m pipelines.run --definition {args.definition} --store {args.store}")
    return 0
