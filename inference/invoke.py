"""``python -m inference.invoke``: the ``invoke-endpoint`` command (``pipelines/cli/commands/invoke.py``)."""

import sys

from pipelines.cli.commands.invoke import main

if __name__ == "__main__":
    sys.exit(main())
