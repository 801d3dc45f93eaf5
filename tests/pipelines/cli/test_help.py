"""Every command's --help: each flag and argument says what it does, and the subcommands are listed."""

from __future__ import annotations

import argparse
import importlib

import pytest

COMMANDS = ["run", "executions", "registry", "deploy", "invoke", "definition", "validate", "container", "images",
            "callbacks", "sample_data"]
PARSERS = [f"pipelines.cli.commands.{name}" for name in COMMANDS]


def undocumented(parser: argparse.ArgumentParser, name: str) -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += undocumented(sub, f"{name} {sub_name}")
        elif action.help is None:
            found.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    return found


@pytest.mark.parametrize("module", PARSERS)
def test_every_flag_and_argument_has_help(module):
    assert undocumented(importlib.import_module(module).parser(), module) == []


def test_run_help_names_the_subcommands(capsys):
    from pipelines.cli.commands.run import parser

    text = parser().format_help()
    for subcommand in ("executions", "describe ID", "logs ID STEP", "retry ID", "validate", "images", "callbacks"):
        assert f"`{subcommand}`" in text
