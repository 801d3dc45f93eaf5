"""What the registry and deploy CLIs share with ``pipelines.run``: the target flags, the config, the clients.

``--target local`` works on the local store (``--store``); ``--target sagemaker`` on the configured
account and region through boto3 and the standard credential chain.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig
from pipelines.errors import MissingCredentialsError


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """--target, --store and the configuration flags of ``pipelines.run``."""
    from pipelines.run import add_config_arguments

    parser.add_argument("--target", choices=("local", "sagemaker"), default="local",
                        help="the local store (default) or the configured AWS account and region")
    parser.add_argument("--store", type=Path, default=Path(".sagemaker-local"), help="the local store (--target local)")
    add_config_arguments(parser)


def config_for(args: argparse.Namespace) -> PipelineConfig:
    """The typed configuration from the same sources as a run (file, environment, --kwargs, flags)."""
    from pipelines.run import config_from_args, local_config

    config = config_from_args(args, os.environ)
    return local_config(config) if args.target == "local" else config


def aws_session(config: PipelineConfig) -> Any:
    """A boto3 session for the configured region; MissingCredentialsError when no credentials are found."""
    import boto3

    session = boto3.Session(region_name=config.region)
    if session.get_credentials() is None:
        raise MissingCredentialsError(
            "no AWS credentials found; configure them the standard way (AWS_PROFILE, SSO, "
            "instance or container role), never in this package's config"
        )
    return session
