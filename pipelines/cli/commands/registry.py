"""``model-registry`` (also ``python -m pipelines.registry``) (console script ``model-registry``): review and approve model versions.

    model-registry list [--group G] [--status S] [--json]
    model-registry describe GROUP VERSION | ARN [--json]
    model-registry approve GROUP VERSION --description TEXT
    model-registry reject GROUP VERSION --description TEXT

``--target local`` (default) works on the local store's registry, ``--target sagemaker`` on SageMaker's,
with the same configuration sources as ``pipelines.run``. Exit codes: 0 done; 1 an AWS call failed;
2 a usage error, an unknown version or a change to the status a version already has.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from pipelines import next_steps, tracking, tracking_logger
from pipelines.cli import options
from pipelines.check_results import check_results
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.cli.tables import print_rows, print_table
from pipelines.errors import ModelPackageError, UnsafePathError
from pipelines.model_registry import ModelRegistry, decide, open_registry, summary


def parser() -> argparse.ArgumentParser:
    """The model-registry argument parser."""
    p = CommandParser(prog="model-registry", description="List, describe, approve and reject model versions.")
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", usage="model-registry list [--group G] [--status S] [--json] [--target T] [--store DIR]",
                             help="versions with status, creation time, test AUC, top-decile lift, source")
    listing.add_argument("--group", help="one model package group (default: every group)")
    listing.add_argument("--status", choices=("Approved", "Rejected", "PendingManualApproval"),
                         help="only versions with this approval status")
    describe = sub.add_parser("describe", usage="model-registry describe GROUP VERSION | ARN [--json] [--target T] "
                              "[--store DIR]", help="everything the registry holds about one version")
    describe.add_argument("version_ref", nargs="+", metavar="GROUP VERSION | ARN",
                          help="the model package group and version number, or the model package ARN")
    for command in (listing, describe):
        command.add_argument("--json", action="store_true", help="print JSON instead of text")
    for name, verb in (("approve", "Approved"), ("reject", "Rejected")):
        change = sub.add_parser(name, usage=f"model-registry {name} GROUP VERSION --description TEXT [--target T] "
                                "[--store DIR]", help=f"set a version's ModelApprovalStatus to {verb}")
        change.add_argument("group", help="the model package group")
        change.add_argument("version", type=int, help="the version number in the group")
        change.add_argument("--description", required=True, help="ApprovalDescription: why (kept in the audit trail)")
    for command in sub.choices.values():
        options.add_target_arguments(command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipelines.registry`` and ``model-registry``."""
    return run_parsed(parser(), argv, run_command)


def run_command(args: argparse.Namespace) -> int:
    """The chosen subcommand."""
    registry = open_registry(args.target, args.store, options.config_for(args))
    if args.command == "list":
        return list_versions(registry, args.group, args.status, args.json)
    if args.command == "describe":
        return describe(registry, args.version_ref, args.json, locate=_locator(args), target=args.target,
                        store=args.store)
    status = "Approved" if args.command == "approve" else "Rejected"
    package = decide(registry, args.group, args.version, status, args.description,
                     f"model-registry {args.command}: --description")
    print(f"{package['ModelPackageGroupName']} version {package['ModelPackageVersion']}: "
          f"{package['ModelApprovalStatus']} ({package['ModelPackageArn']})")
    if status == "Approved":
        print("Next: " + next_steps.deploy(package["ModelPackageGroupName"], int(package["ModelPackageVersion"]),
                                           args.target, args.store))
    return 0


def _locator(args: argparse.Namespace) -> Callable[[str], str]:
    """How ``describe`` shows an S3 URI: on a local store, with the file it is."""
    if args.target == "sagemaker":
        return lambda uri: uri
    from pipelines.local.store import Store

    store = Store(Path(args.store).resolve())

    def locate(uri: str) -> str:
        try:
            return f"{uri} ({store.path(uri)})"
        except UnsafePathError:  # a URI the store cannot hold is shown as it is
            return uri

    return locate


def row(registry: ModelRegistry, package: dict[str, Any]) -> dict[str, Any]:
    """One version as ``list`` shows it."""
    metrics = summary(registry, package)
    metadata = package.get("CustomerMetadataProperties", {})
    return {"group": package["ModelPackageGroupName"], "version": package["ModelPackageVersion"],
            "status": package["ModelApprovalStatus"], "created": str(package["CreationTime"]),
            "test_auc": metrics["test_auc"], "top_decile_lift": metrics["top_decile_lift"],
            "source_revision": metadata.get("SourceRevision"), "execution": metadata.get("PipelineExecutionId"),
            "arn": package["ModelPackageArn"]}


SHORT_STATUS = {"PendingManualApproval": "Pending"}  # the table's word; --json says the status in full


def list_versions(registry: ModelRegistry, group: str | None, status: str | None, as_json: bool) -> int:
    rows = [row(registry, p) for p in registry.list(group, status)]
    if as_json:
        print_rows(rows)
        return 0
    groups = {r["group"] for r in rows}
    one_group = len(groups) == 1  # then it is named in the title, and its column left out
    cells = [[*([] if one_group else [r["group"]]), str(r["version"]), SHORT_STATUS.get(r["status"], r["status"]),
              r["created"][5:16].replace("T", " "), _number(r["test_auc"], ".4f"),
              _number(r["top_decile_lift"], ".2f") + ("x" if r["top_decile_lift"] is not None else ""),
              (r["source_revision"] or "-")[:8], r["execution"] or "-"] for r in rows]
    columns = [*([] if one_group else ["Group"]), "Version", "Status", "Created", "AUC", "Lift@10%", "Source",
               "Execution"]
    print_table(f"Model versions of {next(iter(groups))}" if one_group else "Model versions", columns, cells,
                empty="no model versions" + (f" in {group}" if group else "") + (f" with status {status}" if status
                                                                                  else ""))
    return 0


def describe(registry: ModelRegistry, ref: list[str], as_json: bool, locate: Callable[[str], str] = lambda uri: uri,
             target: str = "local", store: Path | None = None) -> int:
    """One version: its status, model, metrics, report and audit trail, then what it needs next."""
    if len(ref) == 1 and ref[0].startswith("arn:"):
        package = registry.describe_arn(ref[0])
    elif len(ref) == 2 and ref[1].isdigit():
        package = registry.describe(ref[0], int(ref[1]))
    else:
        raise ModelPackageError(f"describe takes GROUP VERSION or a model package ARN; got {' '.join(ref)!r}")
    group, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
    if target == "local" and store is not None:  # its execution's run, once logged
        tracking_logger.settle(store.resolve(), lambda line: print(f"note: {line}", file=sys.stderr),
                               lambda line: print(f"warning: {line}", file=sys.stderr))
    details = {"package": package, "metrics": summary(registry, package), "history": registry.history(group, version),
               "mlflow_run": registry.mlflow_run(package), "checks": check_results(package, registry.read_text)}
    if as_json:
        print(json.dumps(details, indent=2, default=str))
        return 0
    metrics, container = details["metrics"], package["InferenceSpecification"]["Containers"][0]
    print(f"{group} version {version}: {package['ModelApprovalStatus']}")
    print(f"  arn:          {package['ModelPackageArn']}")
    print(f"  created:      {package['CreationTime']}")
    if package.get("ApprovalDescription"):
        print(f"  approval:     {package['ApprovalDescription']}")
    print(f"  description:  {package.get('ModelPackageDescription') or '-'}")
    print(f"  image:        {container.get('Image')}")
    print(f"  model data:   {locate(container.get('ModelDataUrl'))}")
    print(f"  test AUC:     {_number(metrics['test_auc'], '.4f')}"
          + (f" on {metrics['test_rows']} rows" if metrics.get("test_rows") else ""))
    print(f"  top-decile lift: {_number(metrics['top_decile_lift'], '.2f')}")
    if metrics.get("unreadable"):
        print(f"  note:         {metrics['unreadable']}")
    print(f"  report:       {locate(metrics['report']) if metrics['report'] else '-'}")
    for chart in metrics.get("charts", []):
        print(f"                {locate(chart)}")
    for check in details["checks"]:
        print(f"  {check['title']}: {check['summary']} ({locate(check['uri'])})")
    if details["mlflow_run"]:
        print(f"  MLflow run:   {tracking.run_summary(details['mlflow_run'])}")
    for key, value in sorted(package.get("CustomerMetadataProperties", {}).items()):
        print(f"  {key}: {value}")
    for change in details["history"]:
        print(f"  {change['at'][:19]} {change['who']}: {change['from_status']} -> {change['to_status']}"
              + (f" ({change['description']})" if change.get("description") else ""))
    following = next_steps.after_version(group, int(version), package["ModelApprovalStatus"], target, store)
    if following:
        print(f"Next: {following}")
    return 0


def _number(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)

