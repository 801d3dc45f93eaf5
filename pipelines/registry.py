"""``python -m pipelines.registry``: the command of ``pipelines/cli/commands/registry.py``."""

import sys

from pipelines.cli.commands.registry import main

if __name__ == "__main__":
    sys.exit(main())
