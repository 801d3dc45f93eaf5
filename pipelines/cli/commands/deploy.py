"""``deploy-model`` (also ``python -m pipelines.deploy``): put an Approved model version behind an endpoint.

    deploy-model deploy --group G [--version N] --endpoint-name NAME [--instance-type T] [--instance-count N]
                        [--data-capture-percent P] [--no-wait]
    deploy-model undeploy NAME
    deploy-model endpoints [--json]

Only an Approved version is deployed: the latest one of the group, or the one given. ``--target
local`` (default) serves it on loopback from the local store (a gunicorn server in the background;
the endpoint answers SageMaker Runtime's ``InvokeEndpoint`` at its URL); ``--target sagemaker``
creates or updates a real endpoint. Exit codes: 0 done; 1 an AWS call or the endpoint failed;
2 a usage error, an unknown or unapproved version.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from rich.console import Console

from pipelines import next_steps
from pipelines.aws import aws_session
from pipelines.cli import options
from pipelines.cli.options import positive_int, seconds
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.cli.tables import print_rows, print_table
from pipelines.config import PipelineConfig
from pipelines.errors import ConfigError, ModelPackageError
from pipelines.local.endpoints import check_endpoint_name, served_label
from pipelines.model_registry import latest_approved, open_registry


def parser() -> argparse.ArgumentParser:
    """The deploy-model argument parser."""
    p = CommandParser(prog="deploy-model", description="Deploy an Approved model version to an endpoint.")
    sub = p.add_subparsers(dest="command", required=True)
    deploy = sub.add_parser("deploy", usage="deploy-model deploy --endpoint-name NAME [--group G] [--version N] "
                            "[--instance-type T] [--instance-count N] [--data-capture-percent P] [--no-wait] "
                            "[--target T] [--store DIR]", help="create or update an endpoint serving an Approved version")
    deploy.add_argument("--group", help="model package group (default: the configured model_package_group)")
    deploy.add_argument("--version", type=positive_int, help="the version to deploy (default: the latest Approved)")
    deploy.add_argument("--endpoint-name", required=True, help="the endpoint to create, or update in place")
    deploy.add_argument("--instance-type", help="default: the configured inference_instance_type")
    deploy.add_argument("--instance-count", type=positive_int, default=1, help="instances (locally: server worker processes)")
    deploy.add_argument("--data-capture-percent", type=int, metavar="P",
                        help="capture P%% of requests and responses to S3, encrypted with the KMS key (SageMaker)")
    deploy.add_argument("--no-wait", action="store_true", help="return once SageMaker accepted the request")
    deploy.add_argument("--poll-seconds", type=seconds, default=15.0,
                        help="SageMaker: how often the endpoint status is polled (default 15)")
    deploy.add_argument("--timeout", type=seconds, metavar="SECONDS", help="stop waiting after this long")
    undeploy = sub.add_parser("undeploy", usage="deploy-model undeploy NAME [--target T] [--store DIR]", help="delete an endpoint (locally: stop its server)")
    undeploy.add_argument("endpoint_name", help="the endpoint to delete, with its endpoint config")
    listing = sub.add_parser("endpoints", usage="deploy-model endpoints [--json] [--target T] [--store DIR]", help="list endpoints (locally: with URL and health)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    # SageMaker's endpoint takes the role, the KMS key, the VPC and the tags of the configuration
    options.add_target_arguments(deploy, ("config", "region", "model_package_group", "role_arn", "kms_key_arn",
                                          "subnets", "security_group_ids", "bucket", "base_prefix", "tags",
                                          "local_image_programs"))
    for command in (undeploy, listing):
        options.add_target_arguments(command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipelines.deploy`` and ``deploy-model``."""
    commands = {"deploy": deploy, "undeploy": undeploy, "endpoints": list_endpoints}
    return run_parsed(parser(), argv, lambda args: commands[args.command](args))


def _endpoints(args: argparse.Namespace, config: PipelineConfig) -> Any:
    if args.target == "sagemaker":
        from pipelines.targets.sagemaker_endpoints import SageMakerEndpoints

        return SageMakerEndpoints(aws_session(config), config)
    from pipelines.local.endpoints import LocalEndpoints
    from pipelines.local.store import Store

    return LocalEndpoints(Store(args.store.resolve()), log=lambda line: print(line, file=sys.stderr),
                          image_programs=dict(config.local_image_programs))


def approved_version(args: argparse.Namespace, config: PipelineConfig) -> dict[str, Any]:
    """The version to deploy: the one asked for, which must be Approved, or the latest Approved one."""
    registry = open_registry(args.target, args.store, config)
    group = args.group or config.model_package_group
    if args.version is None:
        return latest_approved(registry, group)
    package = registry.describe(group, args.version)
    if package["ModelApprovalStatus"] != "Approved":
        approve = next_steps.approve(group, args.version, args.target, args.store)
        raise ModelPackageError(f"{group} version {args.version} is {package['ModelApprovalStatus']}; only an Approved "
                                f"version is deployed ({approve})")
    return package


def check_instance_type(instance_type: str | None) -> None:
    """ConfigError unless ``instance_type`` is None or an endpoint instance type SageMaker has (botocore's
    ``ProductionVariantInstanceType``), as a run's instance types are checked."""
    from pipelines.validation.references import service_model

    known = service_model().shape_for("ProductionVariantInstanceType").enum
    if instance_type is not None and instance_type not in known:
        near = [t for t in known if t.endswith(f".{instance_type}") or t == f"ml.{instance_type}"]
        raise ConfigError(f"--instance-type {instance_type!r} is not a SageMaker endpoint instance type"
                          + (f"; did you mean {near[0]}?" if near else " (for example ml.m5.large)"))


def deploy(args: argparse.Namespace) -> int:
    check_endpoint_name(args.endpoint_name)
    check_instance_type(args.instance_type)
    if args.data_capture_percent is not None and not 0 < args.data_capture_percent <= 100:
        raise ModelPackageError("--data-capture-percent must be between 1 and 100")
    config = options.config_for(args)
    endpoints = _endpoints(args, config)
    package = approved_version(args, config)
    what = f"{package['ModelPackageGroupName']} version {package['ModelPackageVersion']}"
    if args.target == "local":
        record = endpoints.deploy(args.endpoint_name, package, args.instance_count)
        print(f"Endpoint {args.endpoint_name}: InService, serving {what} at {record['Url']}")
        for flag, value, why in (("--instance-type", args.instance_type, "the server uses this machine's CPUs"),
                                 ("--data-capture-percent", args.data_capture_percent, "requests are not captured")):
            if value:
                print(f"note: {flag} {value} is accepted but not enforced locally: {why}")
        print(f"Next: {next_steps.command('pipelines.run', 'sample-data', '--rows', '1000', '--output', 'leads.csv')}")
        print(f"      {next_steps.invoke(args.endpoint_name, 'leads.csv', 'scores.csv', args.target, args.store)}")
        return 0
    instance_type = args.instance_type or config.inference_instance_type
    made = endpoints.deploy(args.endpoint_name, package, instance_type, args.instance_count, args.data_capture_percent)
    print(f"Endpoint {args.endpoint_name}: {made['Action']} with EndpointConfig {made['EndpointConfig']} ({what})")
    if args.no_wait:
        return 0
    console = Console(stderr=True)
    with console.status(f"waiting for {args.endpoint_name}") as status:
        def show(state: str, elapsed: float) -> None:
            if console.is_terminal:
                status.update(f"{args.endpoint_name}: {state} ({elapsed:.0f}s)")
            else:
                print(f"{args.endpoint_name}: {state} after {elapsed:.0f}s", file=sys.stderr)

        endpoint = endpoints.wait(args.endpoint_name, args.poll_seconds, show, args.timeout)
    state = endpoint["EndpointStatus"]
    print(f"Endpoint {args.endpoint_name}: {state}" + (f": {endpoint['FailureReason']}" if endpoint.get("FailureReason")
                                                        else ""))
    if state == "InService":
        print(f"Next: {next_steps.invoke(args.endpoint_name, 'leads.csv', 'scores.csv', args.target, args.store)}")
    return 0 if state == "InService" else 1


def undeploy(args: argparse.Namespace) -> int:
    check_endpoint_name(args.endpoint_name)
    _endpoints(args, options.config_for(args)).delete(args.endpoint_name)
    print(f"Endpoint {args.endpoint_name}: deleted")
    print(f"Next: {next_steps.new_run(args.target, args.store)}")
    return 0


def list_endpoints(args: argparse.Namespace) -> int:
    rows = _endpoints(args, options.config_for(args)).list()
    if args.json:
        print_rows(rows)
    elif args.target == "local":
        print_table("Local endpoints", ["Endpoint", "Status", "Health", "URL", "Model"],
                    [[r["EndpointName"], r["EndpointStatus"], r["Health"], r.get("Url", ""), served_label(r)]
                     for r in rows], wide="Model",
                    empty="no endpoints")
    else:
        print_table("Endpoints", ["Endpoint", "Status", "Created", "Modified"],
                    [[r["EndpointName"], r["EndpointStatus"], str(r["CreationTime"])[:16],
                      str(r["LastModifiedTime"])[:16]] for r in rows], empty="no endpoints")
    return 0

