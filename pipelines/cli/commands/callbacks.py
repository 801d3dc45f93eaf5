"""``python -m pipelines.run callbacks``: the Callback steps of local executions that wait for their token.

    python -m pipelines.run callbacks list [--json]
    python -m pipelines.run callbacks succeed TOKEN [--output NAME=VALUE ...]
    python -m pipelines.run callbacks fail TOKEN [--reason TEXT]

``succeed`` and ``fail`` answer a token as ``SendPipelineExecutionStepSuccess`` / ``Failure`` do on SageMaker;
the waiting step then succeeds with those output parameters, or fails with that reason. Exit codes: 0 done;
2 an unknown token, one answered already, or a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.cli.tables import print_rows, print_table
from pipelines.errors import CallbackError


def parser() -> argparse.ArgumentParser:
    """The ``callbacks`` argument parser."""
    p = CommandParser(prog="python -m pipelines.run callbacks",
                                description="List and answer the tokens of waiting Callback steps.")
    commands = p.add_subparsers(dest="command", required=True, metavar="{list,succeed,fail}")
    listing = commands.add_parser("list", help="the tokens that wait for an answer, with their step and message")
    listing.add_argument("--json", action="store_true", help="print the waiting messages as JSON")
    succeed = commands.add_parser("succeed", help="complete the step waiting for TOKEN")
    succeed.add_argument("token", metavar="TOKEN", help="the token of the step's queue message")
    succeed.add_argument("--output", action="append", default=[], metavar="NAME=VALUE",
                         help="an output parameter of the step (repeatable)")
    fail = commands.add_parser("fail", help="fail the step waiting for TOKEN")
    fail.add_argument("token", metavar="TOKEN", help="the token of the step's queue message")
    fail.add_argument("--reason", help="the step's failure reason (256 characters at most)")
    for command in (listing, succeed, fail):
        options.add_store_argument(command)
    return p


def main(argv: Sequence[str]) -> int:
    """List or answer callback tokens."""
    return run_parsed(parser(), argv, run)


def run(args: argparse.Namespace) -> int:
    from pipelines.local import callbacks
    from pipelines.local.store import Store

    store = Store(args.store.resolve())
    if args.command == "list":
        waiting = callbacks.waiting(store, lambda message: print(f"warning: {message}", file=sys.stderr))
        if args.json:
            print_rows([entry["message"] for entry in waiting])
            return 0
        print_table("Callback steps waiting for their token", ["Token", "Execution", "Step", "Arguments"],
                    [[entry["token"], entry["execution_id"], entry["step"], json.dumps(entry["message"]["arguments"])]
                     for entry in waiting], wide="Arguments", empty="no Callback step waits for a token",
                    key="Token")
        return 0
    if args.command == "succeed":
        outputs = []
        for assignment in args.output:
            name, equals, value = assignment.partition("=")
            if not equals or not name:
                raise CallbackError(f"--output {assignment!r}: write it as NAME=VALUE")
            outputs.append({"Name": name, "Value": value})
        answered = callbacks.send_pipeline_execution_step_success(store, CallbackToken=args.token,
                                                                  OutputParameters=outputs)
    else:
        answered = callbacks.send_pipeline_execution_step_failure(store, CallbackToken=args.token,
                                                                  FailureReason=args.reason)
    print(f"token {args.token}: answered ({'succeeded' if args.command == 'succeed' else 'failed'}) for "
          f"{answered['PipelineExecutionArn']}")
    return 0
