"""``python -m pipelines.get_definition``: the command of ``pipelines/cli/commands/definition.py``."""

import sys

from pipelines.cli.commands.definition import main

if __name__ == "__main__":
    sys.exit(main())
