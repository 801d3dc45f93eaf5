"""``python -m pipelines.run api``: the local SageMaker API over a store, for your own scripts and notebooks.

It prints the ``export`` lines that point boto3 and SDK v3 at it (``AWS_ENDPOINT_URL_SAGEMAKER``,
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, a key of this start's own), then serves until Ctrl-C. It acts for you:
what you delete through it is deleted whoever created it, as ``deploy-model undeploy`` does. Exit codes: 130
stopped with Ctrl-C; 2 a usage error, a store that does not exist or a port that is taken.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import threading
from typing import Sequence

from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.config import local_config
from pipelines.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    """The api command's argument parser."""
    p = CommandParser(prog="python -m pipelines.run api",
                      description="Serve the local SageMaker API (models, endpoints, the registry, jobs, "
                                  "InvokeEndpoint) over a local store, on loopback, until Ctrl-C.")
    options.add_store_argument(p, "the local store to serve (the --store your runs use)")
    p.add_argument("--port", type=options.port_number, default=0, help="port on 127.0.0.1 (default: a free one)")
    options.add_settings(p, ("config", "region", "local_image_programs"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipelines.run api``."""
    return run_parsed(parser(), argv, serve)


def serve(args: argparse.Namespace) -> int:
    """Start the API, print how to reach it, and serve until Ctrl-C."""
    from pipelines.local.registry import Registry
    from pipelines.local.sagemaker_api import Caller, LocalSageMakerApi
    from pipelines.local.store import Store

    store = Store(args.store.resolve())
    if not store.root.is_dir():
        raise ConfigError(f"there is no local store at {store.root}: pass the --store your runs use "
                          "(`python -m pipelines.run --store DIR` creates one)")
    config = local_config(options.config_from_args(args, os.environ))
    api = LocalSageMakerApi(store, Registry(store.root / "registry.sqlite", config.region), config.region,
                            Caller(f"user {getpass.getuser()}", delete_any=True), dict(config.local_image_programs),
                            lambda line: print(line, file=sys.stderr, flush=True), port=args.port)
    try:
        api.__enter__()
    except OSError as exc:
        raise ConfigError(f"--port {args.port}: cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc})") from None
    try:
        print(f"# the local SageMaker API of {store.root}, at {api.url}; paste these into your shell:")
        print("\n".join(api.export_lines()))
        print("# Ctrl-C stops it (endpoints keep running: `python -m pipelines.deploy endpoints` lists them)", flush=True)
        threading.Event().wait()
    finally:
        api.__exit__(None, None, None)
    return 0
