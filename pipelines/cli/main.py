"""``python -m pipelines.run``: the one place that picks the command from the first word, as pip's
``main_parser`` does. No command imports this module."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

# first word -> the module of its command; anything else is a run's flags
SUBCOMMANDS = {
    "executions": "executions", "describe": "executions", "logs": "executions", "retry": "executions",
    "validate": "validate", "images": "images", "callbacks": "callbacks", "sample-data": "sample_data",
    "stage": "stage", "infra": "infra", "api": "api",
}
OWN_PARSER = ("validate", "images", "callbacks", "sample_data", "stage", "infra", "api")  # their parsers start after the first word


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipelines.run`` and the ``run-pipeline`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = SUBCOMMANDS.get(argv[0], "run") if argv else "run"
    command = importlib.import_module(f"pipelines.cli.commands.{name}")
    if name in OWN_PARSER:
        return command.main(argv[1:])
    return command.main(argv)


def exit_quickly(code: int) -> None:
    """Exit with ``code`` and skip the interpreter's teardown of every module the SDK loaded (over a second
    after a definition build). Exit handlers still run, and output is flushed first."""
    import atexit
    import logging

    atexit._run_exitfuncs()  # temporary folders and other exit handlers, as a normal exit runs them
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader that went away (| head): nothing left to tell it
            pass
    os._exit(code)


def cli() -> None:
    """The ``run-pipeline`` command."""
    exit_quickly(main())
