"""The local model registry: versions per group, approval, concurrent writers."""

from __future__ import annotations

import multiprocessing

import pytest

from pipelines.local.registry import Registry

SPEC = {"Containers": [{"Image": "img", "ModelDataUrl": "s3://bkt/m.tar.gz"}], "SupportedContentTypes": ["text/csv"]}


def test_versions_metadata_and_approval(tmp_path):
    registry = Registry(tmp_path / "r.sqlite")
    first = registry.register("Leads", "PendingManualApproval", SPEC, {"ModelQuality": {}}, {"rev": "a"})
    second = registry.register("Leads", "PendingManualApproval", SPEC)
    other = registry.register("Other", "Approved", SPEC)
    assert (first["ModelPackageVersion"], second["ModelPackageVersion"], other["ModelPackageVersion"]) == (1, 2, 1)
    assert first["CustomerMetadataProperties"] == {"rev": "a"} and first["InferenceSpecification"] == SPEC
    assert registry.set_approval("Leads", 1, "Approved")["ModelApprovalStatus"] == "Approved"
    assert [p["ModelApprovalStatus"] for p in registry.list("Leads")] == ["Approved", "PendingManualApproval"]
    with pytest.raises(ValueError, match="ModelApprovalStatus must be one of"):
        registry.register("Leads", "Maybe", SPEC)
    with pytest.raises(KeyError):
        registry.describe("Leads", 9)


def _register_many(path: str, count: int) -> list[int]:
    registry = Registry(__import__("pathlib").Path(path))
    return [registry.register("Leads", "PendingManualApproval", SPEC)["ModelPackageVersion"] for _ in range(count)]


def test_concurrent_writers_get_distinct_versions(tmp_path):
    path = str(tmp_path / "r.sqlite")
    Registry(tmp_path / "r.sqlite")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_register_many, [(path, 10)] * 4)
    versions = sorted(v for chunk in results for v in chunk)
    assert versions == list(range(1, 41))


def test_a_step_registering_the_latest_versions_model_again_adds_no_version(tmp_path):
    registry = Registry(tmp_path / "r.sqlite")
    specification = {"Containers": [{"Image": "i", "ModelDataUrl": "s3://b/run1/model.tar.gz"}]}

    def register(execution: str, spec: dict = specification, revision: str = "abc") -> dict:
        return registry.register("Leads", "PendingManualApproval", spec, {"ModelQuality": {}},
                                 {"PipelineExecutionId": execution, "SourceRevision": revision},
                                 source=(execution, "RegisterModel"))

    first = register("run1")
    again = register("run2")  # an unchanged re-run: Train and Evaluate were cache hits of run1
    assert again.pop("Reused") == "identical" and again["ModelPackageVersion"] == first["ModelPackageVersion"] == 1
    assert register("run3", revision="def")["ModelPackageVersion"] == 2  # other metadata: a new version
    changed = {"Containers": [{"Image": "i", "ModelDataUrl": "s3://b/run4/model.tar.gz"}]}
    assert register("run4", changed, revision="def")["ModelPackageVersion"] == 3
    assert register("run5", specification, revision="abc")["ModelPackageVersion"] == 4  # same as v1, not the latest
    assert [p["ModelPackageVersion"] for p in registry.list("Leads")] == [1, 2, 3, 4]
    direct = registry.register("Leads", "PendingManualApproval", specification)  # no step: always a new version
    assert direct["ModelPackageVersion"] == 5
