"""``python -m pipelines.container``: the command of ``pipelines/cli/commands/container.py``."""

import sys

from pipelines.cli.commands.container import main

if __name__ == "__main__":
    sys.exit(main())
