"""The parser every command uses: a usage error is one line (with "did you mean" for a mistyped subcommand
or flag) and the command's short usage, exit 2, instead of the full list of options."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import Any, NoReturn, Sequence


class CommandParser(argparse.ArgumentParser):
    """argparse, with short usage errors; subcommands made with ``add_subparsers`` are CommandParsers too."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # argparse would report a subcommand's unknown flag against the top parser, which knows none of its flags
            chosen_parser(self, parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        hint = suggestion(self, message)
        choice = re.match(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice and self._subparsers is not None and not choice.group(1).startswith("-"):
            message = f"unknown command '{choice.group(2)}' (choose from {', '.join(_words(choice.group(3)))})"
        sys.stderr.write(f"{self.prog}: error: {message}{hint}\n")
        sys.stderr.write(self.format_usage())
        sys.stderr.write(f"(`{self.prog} --help` lists every option)\n")
        sys.exit(2)


def chosen_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subcommand parser the parsed arguments chose."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
            if chosen is not None:
                return chosen_parser(chosen, parsed)
    return parser


def suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """" (did you mean X?)" for an invalid choice or an unrecognized flag close to a known one, else ""."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        return _closest(choice.group(1), _words(choice.group(2)))
    unknown = re.match(r"unrecognized arguments: (\S+)", message)
    if unknown and unknown.group(1).startswith("--"):
        flag = unknown.group(1).split("=", 1)[0]
        return _closest(flag, [o for o in parser._option_string_actions if o.startswith("--")])
    return ""


def _words(listing: str) -> list[str]:
    """The choices of argparse's "(choose from 'a', 'b')" (quoted before Python 3.12.8, bare after)."""
    return re.findall(r"'([^']*)'", listing) or [word.strip() for word in listing.split(",")]


def _closest(word: str, known: list[str]) -> str:
    near = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def run_parsed(parser: argparse.ArgumentParser, argv: Sequence[str] | None, command: Any) -> int:
    """Parse ``argv`` (usage errors exit 2 here) and run ``command(args)`` behind the one error boundary, which
    turns a PipelineError into one line and its exit code."""
    from pipelines.errors import exit_code_of

    args = parser.parse_args(argv)
    return exit_code_of(lambda: command(args))
