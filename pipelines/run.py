"""``python -m pipelines.run``, the entry the team's runbooks use: the command line of ``pipelines/cli``."""

from pipelines.cli.main import cli, main

__all__ = ["cli", "main"]

if __name__ == "__main__":
    cli()
