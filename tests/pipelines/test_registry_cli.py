"""model-registry on both targets: list with metrics, describe, approve/reject, refusals, audit trail, events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipelines.cli.commands import registry as cli
from pipelines.local.registry import Registry
from pipelines.local.store import Store

REPO = Path(__file__).resolve().parents[2]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
GROUP = "LeadScoringModels"


def evaluation(auc: float, lift: float) -> bytes:
    return json.dumps({"binary_classification_metrics": {"auc": {"value": auc, "standard_deviation": 0.01}},
                       "lead_scoring_metrics": {"test_rows": 1500, "top_decile": {"lift": lift, "capture_rate": 0.4}}
                       }).encode()


def package_fields(index: int) -> dict:
    return {"InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://bkt/m{index}/model.tar.gz"}],
                                       "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            "ModelMetrics": {"ModelQuality": {"Statistics": {
                "ContentType": "application/json", "S3Uri": f"s3://bkt/run{index}/Evaluate/evaluation/evaluation.json"}}},
            "CustomerMetadataProperties": {"SourceRevision": f"rev{index}", "PipelineExecutionId": f"exec{index}"}}


@pytest.fixture
def store(tmp_path) -> Path:
    """A local store with two pending versions and their evaluation reports."""
    root = tmp_path / "store"
    registry, objects = Registry(root / "registry.sqlite", "us-east-1"), Store(root)
    for index, (auc, lift) in enumerate([(0.81, 3.1), (0.84, 3.4)], start=1):
        fields = package_fields(index)
        objects.put_bytes(evaluation(auc, lift), fields["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
        registry.register(GROUP, "PendingManualApproval", fields["InferenceSpecification"], fields["ModelMetrics"],
                          fields["CustomerMetadataProperties"])
    return root


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_status_metrics_and_source(store, capsys):
    code, out, _ = run(capsys, "list", "--store", str(store))
    lines = out.splitlines()
    assert code == 0 and lines[0].strip() == f"Model versions of {GROUP}" and max(map(len, lines)) <= 80
    assert next(line for line in lines if line.strip()).split() and [line.split()[:3] for line in lines if "Version" in line] == [["Version", "Status", "Created"]]
    version_2 = next(line for line in lines if line.split()[:1] == ["2"])
    assert version_2.split()[1] == "Pending"
    assert "0.8400" in version_2 and "3.40x" in version_2 and "rev2" in version_2 and "exec2" in version_2
    code, out, _ = run(capsys, "list", "--store", str(store), "--status", "Approved", "--json")
    assert code == 0 and json.loads(out) == []


def test_approve_and_reject_keep_an_audit_trail_and_emit_events(store, capsys):
    code, out, _ = run(capsys, "approve", GROUP, "2", "--description", "AUC 0.84 beats v1", "--store", str(store))
    assert code == 0 and out.startswith(f"{GROUP} version 2: Approved (arn:aws:sagemaker:us-east-1:000000000000:")
    assert run(capsys, "reject", GROUP, "1", "--description", "superseded", "--store", str(store))[0] == 0
    code, out, _ = run(capsys, "describe", GROUP, "2", "--store", str(store), "--json")
    details = json.loads(out)
    assert details["package"]["ModelApprovalStatus"] == "Approved"
    assert details["package"]["ApprovalDescription"] == "AUC 0.84 beats v1"
    assert details["metrics"]["test_auc"] == 0.84 and details["metrics"]["top_decile_lift"] == 3.4
    assert details["metrics"]["charts"][0] == "s3://bkt/run2/Evaluate/evaluation/report.html"
    [change] = details["history"]
    assert change["from_status"] == "PendingManualApproval" and change["to_status"] == "Approved"
    assert change["who"] and change["description"] == "AUC 0.84 beats v1"
    events = [json.loads(line) for line in (store / "events" / "model-package-state-change.jsonl").read_text().splitlines()]
    assert [e["detail"]["ModelApprovalStatus"] for e in events] == [
        "PendingManualApproval", "PendingManualApproval", "Approved", "Rejected"]
    assert all(e["source"] == "aws.sagemaker" and e["detail-type"] == "SageMaker Model Package State Change"
               for e in events)
    assert events[2]["resources"] == [details["package"]["ModelPackageArn"]]


def test_describe_by_arn_prints_metrics_and_report(store, capsys):
    arn = Registry(store / "registry.sqlite").describe(GROUP, 1)["ModelPackageArn"]
    code, out, _ = run(capsys, "describe", arn, "--store", str(store))
    assert code == 0
    assert out.splitlines()[0] == f"{GROUP} version 1: PendingManualApproval"
    assert "test AUC:     0.8100 on 1500 rows" in out and "top-decile lift: 3.10" in out
    assert "s3://bkt/run1/Evaluate/evaluation/evaluation.json" in out


@pytest.mark.parametrize("argv, message", [
    (["approve", GROUP, "9", "--description", "x"], f"error: {GROUP} version 9 is not registered"),
    (["approve", "Nope", "1", "--description", "x"], "(no model package group Nope; groups: LeadScoringModels)"),
    (["reject", GROUP, "1", "--description", "x"], None),
    (["describe", GROUP, "one"], "describe takes GROUP VERSION or a model package ARN"),
    (["describe", "arn:aws:sagemaker:us-east-1:000000000000:model-package/x/1"], "does not exist in the local registry"),
])
def test_refusals_are_one_line_exit_2(store, capsys, argv, message):
    if message is None:  # a no-op: rejecting what is already rejected
        assert run(capsys, *argv, "--store", str(store))[0] == 0
        message = f"error: {GROUP} version 1 is already Rejected; nothing to change"
    code, out, err = run(capsys, *argv, "--store", str(store))
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_store_without_a_registry_is_not_created(tmp_path, capsys):
    code, _, err = run(capsys, "list", "--store", str(tmp_path / "typo"))
    assert code == 2 and "there is no local registry in" in err and not (tmp_path / "typo").exists()


def test_a_secret_in_the_approval_description_is_refused_before_it_is_recorded(store, capsys):
    code, _, err = run(capsys, "approve", GROUP, "1", "--description", "ok AKIAIOSFODNN7EXAMPLE", "--store", str(store))
    assert code == 2 and "looks like an AWS access key id" in err and "AKIAIOSFODNN7EXAMPLE" not in err
    assert Registry(store / "registry.sqlite").describe(GROUP, 1)["ModelApprovalStatus"] == "PendingManualApproval"


def test_two_concurrent_approvals_of_different_versions_both_land(store):
    commands = [[sys.executable, "-m", "pipelines.registry", "approve", GROUP, str(v), "--description", f"v{v}",
                 "--store", str(store)] for v in (1, 2)]
    processes = [subprocess.Popen(c, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    results = [p.communicate(timeout=60) + (p.returncode,) for p in processes]
    assert [code for _, _, code in results] == [0, 0], results
    registry = Registry(store / "registry.sqlite")
    assert [p["ModelApprovalStatus"] for p in registry.list(GROUP)] == ["Approved", "Approved"]
    assert [len(registry.history(GROUP, v)) for v in (1, 2)] == [1, 1]
    lines = (store / "events" / "model-package-state-change.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line) for line in lines)


@pytest.fixture
def sagemaker(aws_credentials):
    with mock_aws():
        client, s3 = boto3.client("sagemaker"), boto3.client("s3")
        s3.create_bucket(Bucket="bkt")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        for index, (auc, lift) in enumerate([(0.81, 3.1), (0.84, 3.4)], start=1):
            fields = package_fields(index)
            s3.put_object(Bucket="bkt", Key=f"run{index}/Evaluate/evaluation/evaluation.json", Body=evaluation(auc, lift))
            client.create_model_package(ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval",
                                        **fields)
        yield client


def test_sagemaker_target_lists_approves_and_refuses_like_local(sagemaker, capsys):
    target = ("--target", "sagemaker", "--region", "us-east-1")
    code, out, _ = run(capsys, "list", "--group", GROUP, "--json", *target)
    rows = json.loads(out)
    assert code == 0 and [(r["version"], r["status"], r["test_auc"]) for r in rows] == [
        (1, "PendingManualApproval", 0.81), (2, "PendingManualApproval", 0.84)]
    code, out, _ = run(capsys, "approve", GROUP, "2", "--description", "good", *target)
    assert code == 0 and "version 2: Approved" in out
    arn = rows[1]["arn"]
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    code, _, err = run(capsys, "approve", GROUP, "2", "--description", "again", *target)
    assert code == 2 and "already Approved" in err
    code, _, err = run(capsys, "approve", GROUP, "7", "--description", "x", *target)
    assert code == 2 and f"{GROUP} version 7 is not registered" in err
    code, out, _ = run(capsys, "list", "--status", "Approved", "--json", *target)
    assert [r["version"] for r in json.loads(out)] == [2]


def test_sagemaker_target_errors_are_worded_as_aws_says(aws_credentials, capsys):
    with mock_aws():
        code, _, err = run(capsys, "describe", "arn:aws:sagemaker:us-east-1:123456789012:model-package/nope/1",
                           "--target", "sagemaker")
    assert code == 1 and err.startswith("error: DescribeModelPackage failed: ") and err.count("\n") == 1


# -- hostile references and hand-edited rows: one line each, never a traceback --------------------------------

def _hostile_registry(tmp_path):
    import sqlite3

    from pipelines.local.registry import Registry

    store = tmp_path / "store"
    registry = Registry(store / "registry.sqlite")
    for _ in range(4):
        registry.register("Leads", "PendingManualApproval", {"Containers": [{"Image": "i", "ModelDataUrl": "s3://b/m"}]})
    edits = {2: "inference_specification = 'not json'", 3: "model_metrics = '[1, 2]'",
             4: "inference_specification = '{\"Containers\": []}'"}
    with sqlite3.connect(store / "registry.sqlite") as db:
        for version, edit in edits.items():
            db.execute(f"UPDATE model_packages SET {edit} WHERE version = {version}")
    return store


@pytest.mark.parametrize("argv, message", [
    (["approve", "Leads", "99999999999999999999", "--description", "x"], "must be a whole number from 1 to"),
    (["describe", "Leads", "99999999999999999999"], "must be a whole number from 1 to"),
    (["describe", "Le\udcffads", "1"], "is not a valid ModelPackageGroupName"),
    (["approve", "bad_name", "1", "--description", "x"], "is not a valid ModelPackageGroupName"),
    (["list", "--group", "Le ads"], "is not a valid ModelPackageGroupName"),
    (["approve", "Leads", "1", "--description", "ok \udcff"], "the description 'ok \\udcff' is not valid UTF-8"),
    (["describe", "Leads", "2"], "Leads version 2: the inference_specification column is not JSON"),
    (["describe", "Leads", "3"], "Leads version 3: the model_metrics column is not a JSON object"),
    (["describe", "Leads", "4"], "Leads version 4: the inference_specification column has no Containers"),
    (["list"], "Leads version 2: the inference_specification column is not JSON"),
])
def test_hostile_references_and_edited_rows_are_one_line(tmp_path, capsys, argv, message):
    from pipelines.cli.commands import registry as registry_cli

    store = _hostile_registry(tmp_path)
    code = registry_cli.main([*argv, "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_registering_a_specification_without_containers_is_refused(tmp_path):
    from pipelines.local.registry import Registry

    registry = Registry(tmp_path / "registry.sqlite")
    for specification in ({"Containers": []}, {}, {"Containers": [{"Image": "i"}]}):
        with pytest.raises(ValueError, match="InferenceSpecification has"):
            registry.register("Leads", "Approved", specification)
    assert registry.list() == []


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_an_empty_description_is_refused(store, capsys, command):
    code, _, err = run(capsys, command, "LeadScoringModels", "1", "--store", str(store), "--description", "  ")
    assert code == 2 and err.strip() == (f"error: model-registry {command}: --description must say why (it is kept "
                                         "in the audit trail); it is empty")
