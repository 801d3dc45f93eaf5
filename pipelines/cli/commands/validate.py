"""``python -m pipelines.run validate``: check a definition (ours, or a file) without uploading or running it.

    python -m pipelines.run validate [--pipeline lead-scoring|batch-scoring] [config flags]
    python -m pipelines.run validate --definition FILE [--security-lint]
    ... [--target local|sagemaker] [--json]

For the local target (the default) the steps the local engine cannot run are problems too (rule ``local``): what
``run`` refuses before anything runs.

Exit codes: 0 valid; 2 problems found (all of them listed) or a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from pipelines.catalog import pipeline_module, security_rules
from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.config import local_config


def parser() -> argparse.ArgumentParser:
    """The validate argument parser."""
    p = CommandParser(prog="python -m pipelines.run validate",
                                usage="python -m pipelines.run validate [--pipeline P | --definition FILE] "
                                      "[--target local|sagemaker] [--security-lint] [--json] [config flags]",
                                description="Validate a pipeline definition: API shapes, graph, service limits, security.")
    options.add_pipeline_choice(p, "which of our pipelines to build and check (default lead-scoring), unless "
                                   "--definition")
    p.add_argument("--definition", type=Path, metavar="FILE", help="validate this definition JSON instead of ours")
    p.add_argument("--target", choices=("local", "sagemaker"), default="local",
                   help="where it will run: the local engine (default; what it cannot run is a problem too: step "
                        "types, images with no local stand-in) or SageMaker")
    p.add_argument("--json", action="store_true", help="print the problems as JSON (for CI)")
    options.add_validation_arguments(p)
    options.add_settings(p, options.PIPELINE_SETTINGS)
    return p


def main(argv: Sequence[str]) -> int:
    """Validate and report; exit 2 if there is any problem."""
    return run_parsed(parser(), argv, run)


def run(args: argparse.Namespace) -> int:
    from pipelines.local.target import read_definition_file
    from pipelines.validation import problems_json, validate

    config = local_config(options.config_from_args(args, os.environ))
    if args.definition is not None:
        text, document = read_definition_file(args.definition)
        name = str(args.definition)
    else:
        built = pipeline_module(args.pipeline).build(config)
        text, document, name = built.definition, built.definition_dict, f"the {args.pipeline} pipeline"
    rules = security_rules(config, args.definition is not None, args.security_lint)
    problems = validate(document, rules, text)
    if args.target == "local" and isinstance(document, dict) and isinstance(document.get("Steps"), list):
        from pipelines.validation import local_engine

        problems += local_engine.check(document, dict(config.local_image_programs))
    if args.json:
        print(problems_json(problems))
    elif problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
    else:
        steps = len(document.get("Steps", []))
        print(f"{name}: valid ({steps} top-level steps, {len(document.get('Parameters', []))} parameters; "
              f"security rules {'on' if rules else 'off (--security-lint turns them on)'}; "
              f"checked for {'the local engine' if args.target == 'local' else 'SageMaker'})")
    return 2 if problems else 0
