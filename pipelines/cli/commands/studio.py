"""``python -m pipelines.studio`` (also ``pipelines-studio``): the local studio, a web app over a local store.

It listens on loopback only, prints its URL with a per-start token (as Jupyter does) and opens it in
the browser (``webbrowser``, which honours ``BROWSER``) unless ``--no-browser``. Exit codes: 130 stopped
with Ctrl-C; 2 a usage error, or a store that does not exist.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import threading
import webbrowser
from typing import Sequence

from pipelines.cli import options
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.config import local_config
from pipelines.errors import ConfigError

DEFAULT_PORT = 8899
HOST = "127.0.0.1"


def parser() -> argparse.ArgumentParser:
    """The studio's argument parser."""
    p = CommandParser(prog="python -m pipelines.studio",
                      description="The local studio: pipelines, executions (live), steps, logs, comparisons and the "
                                  "model registry of a local store, in the browser. Loopback only, with a token.")
    options.add_store_argument(p, "the local store to show (the --store your runs use)")
    p.add_argument("--port", type=options.port_number, default=DEFAULT_PORT,
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT}, or a free one if it is taken; 0: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL only; do not open a browser")
    p.add_argument("--mlflow-ui", metavar="URL", help="where `mlflow ui` serves the store's tracking database (e.g. "
                   "http://127.0.0.1:5000): executions and model versions link to their MLflow runs there")
    options.add_settings(p, ("pipeline_name", "model_package_group", *options.LOCAL_SETTINGS))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipelines.studio``."""
    return run_parsed(parser(), argv, serve)


def serve(args: argparse.Namespace) -> int:
    """Start the studio and serve until Ctrl-C (uvicorn then raises it again: exit 130)."""
    import uvicorn

    from pipelines.studio.app import create_app

    store = args.store.resolve()
    if not store.is_dir():
        raise ConfigError(f"there is no local store at {store}: pass the --store your runs use "
                          "(`python -m pipelines.run --store DIR` creates one)")
    if args.mlflow_ui and not args.mlflow_ui.startswith(("http://", "https://")):
        raise ConfigError(f"--mlflow-ui {args.mlflow_ui!r} must be an http:// or https:// address")
    config = local_config(options.config_from_args(args, os.environ))
    token = secrets.token_urlsafe(24)
    sock = bind(args.port)
    url = f"http://{HOST}:{sock.getsockname()[1]}/?token={token}"
    print(f"Local studio of {store}\n    {url}\nCtrl-C stops it.", flush=True)
    if not args.no_browser:
        threading.Timer(0.5, webbrowser.open, (url,)).start()
    server = uvicorn.Server(uvicorn.Config(create_app(store, config, token, args.mlflow_ui), log_level="warning",
                                           timeout_graceful_shutdown=1))
    server.run(sockets=[sock])
    return 0


def bind(port: int) -> socket.socket:
    """A listening socket on loopback: ``port``, or a free one when the default is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        if port != DEFAULT_PORT:
            sock.close()
            raise ConfigError(f"--port {port}: cannot listen on {HOST}:{port} ({exc.strerror})") from None
        sock.bind((HOST, 0))
        print(f"note: port {port} is taken; using {sock.getsockname()[1]}", file=sys.stderr)
    sock.listen(64)
    return sock


