"""``python -m pipelines.studio``: the command of ``pipelines/cli/commands/studio.py``."""

import sys

from pipelines.cli.commands.studio import main

if __name__ == "__main__":
    sys.exit(main())
