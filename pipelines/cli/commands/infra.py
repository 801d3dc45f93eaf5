"""``python -m pipelines.run infra``: the secure environment (infra/secure-environment.yaml) as a CloudFormation stack.

    python -m pipelines.run infra deploy --stack-name NAME [--parameter KEY=VALUE ...] [--template FILE]
    python -m pipelines.run infra describe --stack-name NAME [--json]
    python -m pipelines.run infra delete --stack-name NAME

``deploy`` creates the stack, or updates it in place (parameters not given keep the stack's values; no change is
not an error), printing each stack event until it ends. ``describe`` prints its status and outputs, with the
setting each output fills under ``--stack-name``. ``delete`` waits until it is gone and names what it kept (the
bucket and the key). Exit codes: 0 done; 1 CloudFormation failed (the first failed resource and its reason are
said); 2 a usage error, an unknown stack or a parameter the template refuses.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Sequence

from pipelines.cli import options
from pipelines.cli.options import seconds
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.config import STACK_OUTPUTS, PipelineConfig
from pipelines.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    """The ``infra`` argument parser."""
    p = CommandParser(prog="python -m pipelines.run infra",
                      description="Stand up, describe and delete the secure environment: the KMS key, the encrypted "
                                  "bucket, the least-privilege roles and the optional VPC (docs/security.md).")
    commands = p.add_subparsers(dest="command", required=True, metavar="{deploy,describe,delete}")
    deploy = commands.add_parser("deploy", help="create the stack, or update it in place, and wait for it")
    deploy.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="a template parameter (repeatable); an update keeps the values of those not given")
    deploy.add_argument("--template", type=Path, metavar="FILE",
                        help="the template (default: infra/secure-environment.yaml of this checkout)")
    describe = commands.add_parser("describe", help="the stack's status and outputs, and the setting each fills")
    describe.add_argument("--json", action="store_true", help="print status, outputs and parameters as JSON")
    delete = commands.add_parser("delete", help="delete the stack and wait; the bucket and the key are kept")
    for command in (deploy, delete):
        command.add_argument("--poll-seconds", type=seconds, default=5.0,
                             help="how often the stack's events are read (default 5)")
        command.add_argument("--timeout", type=seconds, metavar="SECONDS",
                             help="stop waiting after this long (CloudFormation goes on)")
    for command in (deploy, describe, delete):
        options.add_settings(command, ("config", "region", "stack_name"))
    return p


def main(argv: Sequence[str]) -> int:
    """Run the chosen ``infra`` subcommand."""
    commands = {"deploy": deploy, "describe": describe, "delete": delete}
    return run_parsed(parser(), argv, lambda args: commands[args.command](args))


def _config(args: argparse.Namespace) -> PipelineConfig:
    config = options.config_from_args(args, os.environ)
    if not config.stack_name:
        raise ConfigError(f"infra {args.command} needs --stack-name NAME (or stack_name in --config or "
                          "PIPELINE_STACK_NAME)")
    return config


def _stacks(args: argparse.Namespace, config: PipelineConfig) -> Any:
    from pipelines.aws import aws_session
    from pipelines.infra.stacks import Stacks

    return Stacks(aws_session(config), poll_seconds=getattr(args, "poll_seconds", 5.0),
                  timeout_seconds=getattr(args, "timeout", None))


def parse_parameters(assignments: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a mapping; ConfigError for one without ``=`` or a key given twice."""
    from pipelines.credentials import refuse_credentials

    given: dict[str, str] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--parameter {assignment!r}: expected KEY=VALUE")
        if key.strip() in given:
            raise ConfigError(f"--parameter {key.strip()} is given twice")
        given[key.strip()] = value.strip()
    refuse_credentials(given, "--parameter", check_names=False)
    return given


def deploy(args: argparse.Namespace) -> int:
    from pipelines.infra import template

    config = _config(args)
    path = args.template or template.TEMPLATE
    given = parse_parameters(args.parameter)
    declared = template.load(path)
    template.check_given(declared, given)  # before any call
    stacks = _stacks(args, config)
    name = config.stack_name
    existing = stacks.exists(name)
    previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in (existing or {}).get("Parameters") or []}
    template.parameter_values(declared, given, previous)  # what a new stack lacks, said before it is made
    # what was set keeps its value; what was left at the template's default follows the template's default
    defaults = {k: str(v.get("Default")) for k, v in declared.get("Parameters", {}).items() if "Default" in v}
    keep = tuple(key for key, value in previous.items()
                 if key in declared.get("Parameters", {}) and key not in given and defaults.get(key) != value)
    print(f"Stack {name} in {config.region}: {'updating' if existing else 'creating'} from {path}")
    stacks.deploy(name, path.read_text(encoding="utf-8"), given, keep)
    _print_outputs(stacks.describe(name))
    print(f"Next: python -m pipelines.run --target sagemaker --stack-name {name}")
    return 0


def describe(args: argparse.Namespace) -> int:
    config = _config(args)
    stack = _stacks(args, config).describe(config.stack_name)
    if args.json:
        from pipelines.infra.stacks import outputs_of

        print(json.dumps({"StackName": stack["StackName"], "StackStatus": stack["StackStatus"],
                          "StackStatusReason": stack.get("StackStatusReason"), "Outputs": outputs_of(stack),
                          "Parameters": {p["ParameterKey"]: p.get("ParameterValue")
                                         for p in stack.get("Parameters") or []}}, indent=2))
        return 0
    reason = f" ({stack['StackStatusReason']})" if stack.get("StackStatusReason") else ""
    print(f"Stack {stack['StackName']} in {config.region}: {stack['StackStatus']}{reason}")
    _print_outputs(stack)
    return 0


def delete(args: argparse.Namespace) -> int:
    from pipelines.infra.stacks import outputs_of

    config = _config(args)
    stack = _stacks(args, config).delete(config.stack_name)
    outputs = outputs_of(stack)
    print(f"Stack {config.stack_name}: deleted; kept, as their DeletionPolicy says: the bucket "
          f"{outputs.get('DataBucketName', '(none)')} (versioned: empty it, old versions too, before deleting it) "
          f"and the KMS key {outputs.get('KmsKeyArn', '(none)')} (schedule its deletion only once nothing it "
          "encrypted is needed)")
    return 0


def _print_outputs(stack: dict[str, Any]) -> None:
    """The stack's outputs, one a line, never cut (ARNs are copied from here), each with the flags it fills under
    --stack-name."""
    outputs = sorted(stack.get("Outputs") or [], key=lambda o: o["OutputKey"])
    if not outputs:
        print("(no outputs)")
    width = max((len(o["OutputKey"]) for o in outputs), default=0)
    for output in outputs:
        flags = ", ".join("--" + s.replace("_", "-") for s in STACK_OUTPUTS.get(output["OutputKey"], ()))
        print(f"  {output['OutputKey']:<{width}}  {output['OutputValue']}" + (f"  ({flags})" if flags else ""))
