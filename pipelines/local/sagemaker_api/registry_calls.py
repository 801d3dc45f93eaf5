"""The model registry through the local SageMaker API: ListModelPackageGroups, ListModelPackages,
DescribeModelPackage and UpdateModelPackage over the store's registry, so an approval made here has the same
audit trail and state-change event as one made with ``model-registry approve`` or in the studio."""

from __future__ import annotations

from typing import Any, Callable

from pipelines.credentials import refuse_credentials
from pipelines.errors import ConfigError, RegistryError
from pipelines.local.registry import LOCAL_ACCOUNT, Registry
from pipelines.local.sagemaker_api.errors import ValidationError
from pipelines.local.sagemaker_api.shapes import epoch_seconds, filtered, page

# what UpdateModelPackage may change locally; any other member is refused, naming it
UPDATABLE = ("ModelPackageArn", "ModelApprovalStatus", "ApprovalDescription")


def _by_time(item: dict[str, Any]) -> float:
    return epoch_seconds(item["CreationTime"])


class RegistryCalls:
    """The registry operations, on behalf of ``approver`` (recorded in the audit trail)."""

    def __init__(self, registry: Registry, approver: str, log: Callable[[str], None] = lambda line: None):
        self.registry, self.approver, self.log = registry, approver, log

    def list_model_package_groups(self, request: dict[str, Any]) -> dict[str, Any]:
        groups = [{"ModelPackageGroupName": name, "CreationTime": created, "ModelPackageGroupStatus": "Completed",
                   "ModelPackageGroupArn": f"arn:aws:sagemaker:{self.registry.region}:{LOCAL_ACCOUNT}:"
                                           f"model-package-group/{name.lower()}"}
                  for name, created in self.registry.group_times().items()]
        listed, token = page(filtered(groups, request, "ModelPackageGroupName", {
            "Name": lambda item: item["ModelPackageGroupName"].lower(), "CreationTime": _by_time}, "CreationTime"),
            request)
        return {"ModelPackageGroupSummaryList": listed, "NextToken": token}

    def list_model_packages(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("ModelPackageType") == "Unversioned":
            return {"ModelPackageSummaryList": []}  # the local registry holds versions of groups only
        group = request.get("ModelPackageGroupName")
        if group is not None:
            group = group.rsplit("/", 1)[-1] if group.startswith("arn:") else group
            if group not in self.registry.group_times():
                raise ValidationError(f"Model Package Group {group} does not exist.")
        packages = [self._summary(package) for package in self.registry.list(group, request.get("ModelApprovalStatus"))]
        listed, token = page(filtered(packages, request, "ModelPackageName", {
            "Name": lambda item: (item["ModelPackageName"].lower(), item["ModelPackageVersion"]),
            "CreationTime": lambda item: (_by_time(item), item["ModelPackageVersion"])}, "CreationTime"), request)
        return {"ModelPackageSummaryList": listed, "NextToken": token}

    def describe_model_package(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._described(self._package(request["ModelPackageName"]))

    def update_model_package(self, request: dict[str, Any]) -> dict[str, Any]:
        refused = sorted(set(request) - set(UPDATABLE))
        if refused:
            raise ValidationError(f"{', '.join(refused)}: no local form; locally UpdateModelPackage changes "
                                  "ModelApprovalStatus (with ApprovalDescription)")
        package = self._package(request["ModelPackageArn"])
        status = request.get("ModelApprovalStatus")
        if status is not None and status != package["ModelApprovalStatus"]:
            description = request.get("ApprovalDescription") or "(no ApprovalDescription given)"
            try:
                refuse_credentials({"ApprovalDescription": description}, "ApprovalDescription", check_names=False)
                self.registry.set_approval(package["ModelPackageGroupName"], package["ModelPackageVersion"], status,
                                           description, self.approver)
            except (ConfigError, ValueError, KeyError) as exc:
                raise ValidationError(str(exc).strip("'\"")) from None
            self.log(f"UpdateModelPackage: {package['ModelPackageGroupName']} version "
                     f"{package['ModelPackageVersion']} {package['ModelApprovalStatus']} -> {status}")
        return {"ModelPackageArn": package["ModelPackageArn"]}

    def _package(self, name: str) -> dict[str, Any]:
        try:
            return self.registry.describe_arn(name)
        except KeyError:
            hint = "" if name.startswith("arn:") else " (a version of a group is named by its ModelPackageArn)"
            raise ValidationError(f"ModelPackage {name} does not exist.{hint}") from None
        except RegistryError as exc:
            raise ValidationError(str(exc)) from None

    @staticmethod
    def _summary(package: dict[str, Any]) -> dict[str, Any]:
        return {**package, "ModelPackageName": package["ModelPackageGroupName"]}

    def _described(self, package: dict[str, Any]) -> dict[str, Any]:
        return {**self._summary(package), "ModelPackageStatusDetails": {"ValidationStatuses": [],
                                                                        "ImageScanStatuses": []}}
