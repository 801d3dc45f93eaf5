"""``python -m pipelines.deploy``: the command of ``pipelines/cli/commands/deploy.py``."""

import sys

from pipelines.cli.commands.deploy import main

if __name__ == "__main__":
    sys.exit(main())
