"""Models, endpoint configs and endpoints through the local SageMaker API, with boto3 as the client: real local
endpoints that score, seen by deploy-model and the API alike, and the errors SageMaker answers with."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, WaiterError

from pipelines.local.endpoints import LocalEndpoints
from pipelines.local.sagemaker_api import Caller
from pipelines.local.sagemaker_api import hosting
from tests.pipelines.local.sagemaker_api.conftest import MODEL_URI, clients, serving
from tests.pipelines.test_deploy import ROWS, deploy_model, server_processes

VARIANT = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}


def error(call, **request) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**request)
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def model_and_config(sagemaker, name: str, image: str | None = None) -> None:
    container = {"Image": image or "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                 "ModelDataUrl": MODEL_URI}
    sagemaker.create_model(ModelName=name, PrimaryContainer=container,
                           ExecutionRoleArn="arn:aws:iam::123456789012:role/r")
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{**VARIANT, "ModelName": name}])


def test_models_are_created_described_listed_and_deleted_as_store_records(world):
    store, _, approved, _, sagemaker, _ = world
    made = sagemaker.create_model(ModelName="from-package", Containers=[{"ModelPackageName": approved["ModelPackageArn"]}])
    assert made["ModelArn"] == "arn:aws:sagemaker:local:000000000000:model/from-package"
    described = sagemaker.describe_model(ModelName="from-package")
    assert described["PrimaryContainer"]["ModelDataUrl"] == MODEL_URI  # resolved from the registry, as SageMaker does
    assert described["CreationTime"].year >= 2026 and "VpcConfig" not in described
    assert json.loads(store.model_path("from-package").read_text())["LocalCreator"] == "execution aaaabbbbcccc"
    assert "from-package" in [m["ModelName"] for m in sagemaker.list_models(NameContains="FROM")["Models"]]
    assert error(sagemaker.create_model, ModelName="from-package", PrimaryContainer={"Image": "i"}) == (
        "ValidationException", 'Cannot create already existing model "arn:aws:sagemaker:local:000000000000:model/'
                               'from-package".')
    sagemaker.delete_model(ModelName="from-package")
    assert not store.model_path("from-package").exists()
    assert error(sagemaker.describe_model, ModelName="from-package")[1].startswith('Could not find model')


def test_a_model_of_an_unapproved_version_or_of_missing_data_is_refused(world):
    _, registry, _, _, sagemaker, _ = world
    pending = registry.describe("LeadScoringModels", 2)
    code, message = error(sagemaker.create_model, ModelName="pending",
                          PrimaryContainer={"ModelPackageName": pending["ModelPackageArn"]})
    assert code == "ValidationException" and "is PendingManualApproval" in message
    assert error(sagemaker.create_model, ModelName="nodata", PrimaryContainer={
        "Image": "i", "ModelDataUrl": "s3://bkt/models/none.tar.gz"}) == (
        "ValidationException", "Could not find model data at s3://bkt/models/none.tar.gz.")
    code, message = error(sagemaker.create_model, ModelName="two", Containers=[{"Image": "a"}, {"Image": "b"}])
    assert "inference pipeline of 2 containers has no local form" in message


def test_endpoint_configs_check_their_model_and_what_a_local_endpoint_can_serve(world):
    store, _, _, _, sagemaker, _ = world
    model_and_config(sagemaker, "cfg")
    described = sagemaker.describe_endpoint_config(EndpointConfigName="cfg")
    assert described["ProductionVariants"][0]["ModelName"] == "cfg" and described["CreationTime"]
    assert error(sagemaker.create_endpoint_config, EndpointConfigName="cfg2",
                 ProductionVariants=[{**VARIANT, "ModelName": "nope"}])[1] == (
        'Could not find model "arn:aws:sagemaker:local:000000000000:model/nope".')
    code, message = error(sagemaker.create_endpoint_config, EndpointConfigName="cfg3",
                          ProductionVariants=[{**VARIANT, "ModelName": "cfg", "InitialInstanceCount": 9}])
    assert code == "ResourceLimitExceeded" and "at most 4 instances" in message
    code, message = error(sagemaker.create_endpoint_config, EndpointConfigName="cfg4",
                          ProductionVariants=[{**VARIANT, "ModelName": "cfg"}],
                          AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://bkt/async/"}})
    assert code == "ValidationException" and "AsyncInferenceConfig" in message and "no local form" in message
    assert not any(store.endpoint_config_path(n).exists() for n in ("cfg2", "cfg3", "cfg4"))
    sagemaker.delete_endpoint_config(EndpointConfigName="cfg")
    assert error(sagemaker.describe_endpoint_config, EndpointConfigName="cfg")[1] == (
        'Could not find endpoint configuration "cfg".')


def test_an_endpoint_serves_waits_updates_and_is_deleted_like_a_sagemaker_one(world):
    store, _, _, _, sagemaker, runtime = world
    model_and_config(sagemaker, "blue")
    model_and_config(sagemaker, "green")
    arn = sagemaker.create_endpoint(EndpointName="leads-api", EndpointConfigName="blue")["EndpointArn"]
    assert arn == "arn:aws:sagemaker:local:000000000000:endpoint/leads-api"
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="leads-api")  # at its first poll
    described = sagemaker.describe_endpoint(EndpointName="leads-api")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "blue")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    answer = runtime.invoke_endpoint(EndpointName="leads-api", ContentType="text/csv", Body=ROWS)
    scores = [float(x) for x in answer["Body"].read().split()]
    assert len(scores) == 3 and scores[0] > 0.9 > 0.1 > scores[1] and answer["InvokedProductionVariant"] == "AllTraffic"
    assert error(sagemaker.create_endpoint, EndpointName="leads-api", EndpointConfigName="green")[1] == (
        'Cannot create already existing endpoint "arn:aws:sagemaker:local:000000000000:endpoint/leads-api".')
    pid = json.loads((store.endpoint_dir("leads-api") / "endpoint.json").read_text())["Pid"]
    sagemaker.update_endpoint(EndpointName="leads-api", EndpointConfigName="green")
    updated = sagemaker.describe_endpoint(EndpointName="leads-api")
    assert (updated["EndpointStatus"], updated["EndpointConfigName"]) == ("InService", "green")
    assert json.loads((store.endpoint_dir("leads-api") / "endpoint.json").read_text())["Pid"] == pid  # swapped
    listed = sagemaker.list_endpoints(StatusEquals="InService", NameContains="leads")["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["leads-api"]
    sagemaker.delete_endpoint(EndpointName="leads-api")
    assert not server_processes(store.endpoint_dir("leads-api"))
    with pytest.raises(WaiterError):  # the waiter's ValidationException acceptor: a failure, as on SageMaker
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="leads-api")


def test_a_model_that_cannot_be_served_leaves_a_failed_endpoint_with_its_reason(world):
    _, _, _, _, sagemaker, runtime = world
    model_and_config(sagemaker, "unservable", image="123456789012.dkr.ecr.us-east-1.amazonaws.com/ours:1")
    sagemaker.create_endpoint(EndpointName="broken", EndpointConfigName="unservable")
    described = sagemaker.describe_endpoint(EndpointName="broken")
    assert described["EndpointStatus"] == "Failed"
    assert "no local program is mapped to it" in described["FailureReason"]
    code, message = error(runtime.invoke_endpoint, EndpointName="broken", Body=ROWS, ContentType="text/csv")
    assert code == "ValidationError" and "Failed" in message
    sagemaker.delete_endpoint(EndpointName="broken")


def test_a_failed_update_keeps_the_endpoint_serving_its_old_configuration(world):
    _, _, _, _, sagemaker, runtime = world
    model_and_config(sagemaker, "keeps")
    model_and_config(sagemaker, "keeps-bad", image="123456789012.dkr.ecr.us-east-1.amazonaws.com/ours:1")
    sagemaker.create_endpoint(EndpointName="keeps", EndpointConfigName="keeps")
    sagemaker.update_endpoint(EndpointName="keeps", EndpointConfigName="keeps-bad")
    described = sagemaker.describe_endpoint(EndpointName="keeps")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "keeps")
    assert "no local program" in described["FailureReason"]
    assert runtime.invoke_endpoint(EndpointName="keeps", Body=ROWS, ContentType="text/csv")["Body"].read()
    sagemaker.delete_endpoint(EndpointName="keeps")


def test_invocations_over_six_megabytes_or_to_unknown_endpoints_are_refused(world):
    _, _, _, _, sagemaker, runtime = world
    model_and_config(sagemaker, "limits")
    sagemaker.create_endpoint(EndpointName="limits", EndpointConfigName="limits")
    code, message = error(runtime.invoke_endpoint, EndpointName="limits", ContentType="text/csv",
                          Body=b"1,2,3\n" * (1024 * 1024 + 1))
    assert code == "ValidationError" and "exceeds the endpoint's limit of 6291456 bytes" in message
    code, message = error(runtime.invoke_endpoint, EndpointName="nowhere", ContentType="text/csv", Body=ROWS)
    assert (code, message) == ("ValidationError", "Endpoint nowhere of account 000000000000 not found.")
    code, message = error(runtime.invoke_endpoint, EndpointName="limits", ContentType="text/csv", Body=b"1,2\n")
    assert code == "ModelError" and "expected 3 features, got 2" in message
    sagemaker.delete_endpoint(EndpointName="limits")


def test_the_endpoint_limit_answers_resource_limit_exceeded(world, monkeypatch):
    _, _, _, _, sagemaker, _ = world
    model_and_config(sagemaker, "many")
    monkeypatch.setattr(hosting, "MAX_ENDPOINTS", 0)
    code, message = error(sagemaker.create_endpoint, EndpointName="many", EndpointConfigName="many")
    assert code == "ResourceLimitExceeded" and "delete one first" in message


def test_endpoints_of_deploy_model_and_of_the_api_are_the_same_endpoints(world, tmp_path):
    store, registry, approved, api, sagemaker, _ = world
    LocalEndpoints(store).deploy("by-cli", approved)
    assert sagemaker.describe_endpoint(EndpointName="by-cli")["EndpointStatus"] == "InService"
    code, message = error(sagemaker.delete_endpoint, EndpointName="by-cli")
    assert code == "AccessDeniedException" and "created by deploy-model or the studio" in message
    model_and_config(sagemaker, "by-api")
    sagemaker.create_endpoint(EndpointName="by-api", EndpointConfigName="by-api")
    listed = {r["EndpointName"]: r for r in LocalEndpoints(store).list()}
    assert listed["by-api"]["Health"] == "Healthy" and listed["by-api"]["ModelName"] == "by-api"
    table = deploy_model("endpoints", "--store", str(store.root)).stdout
    rows = {line.split()[0]: line for line in table.splitlines() if line.split()[:1] in (["by-api"], ["by-cli"])}
    assert "model by-api" in rows["by-api"] and "LeadScoringModels v1" in rows["by-cli"]
    other_run = Caller("execution ddddeeeeffff")
    with serving(store, registry, other_run) as other:
        other_client, _ = clients(other)
        assert error(other_client.delete_endpoint, EndpointName="by-api")[0] == "AccessDeniedException"
        assert error(other_client.delete_model, ModelName="by-api")[0] == "AccessDeniedException"
    with serving(store, registry, Caller("execution ddddeeeeffff", delete_any=True)) as allowed:
        clients(allowed)[0].delete_endpoint(EndpointName="by-cli")
    assert "by-cli" not in {r["EndpointName"] for r in LocalEndpoints(store).list()}
    sagemaker.delete_endpoint(EndpointName="by-api")


def test_an_endpoint_being_created_is_creating_and_cannot_be_updated_or_deleted_yet(tmp_path, monkeypatch):
    import threading

    from tests.pipelines.local.sagemaker_api.conftest import make_store, stop_endpoints

    store, registry, _ = make_store(tmp_path)
    gate = threading.Event()
    serve = LocalEndpoints.serve

    def held(self, *args, **kwargs):
        assert gate.wait(60)
        return serve(self, *args, **kwargs)

    monkeypatch.setattr(LocalEndpoints, "serve", held)
    with serving(store, registry, Caller("execution aaaabbbbcccc"), settle_seconds=0) as api:
        sagemaker, _ = clients(api)
        model_and_config(sagemaker, "slow")
        sagemaker.create_endpoint(EndpointName="slow", EndpointConfigName="slow")
        assert sagemaker.describe_endpoint(EndpointName="slow")["EndpointStatus"] == "Creating"
        assert [e["EndpointStatus"] for e in sagemaker.list_endpoints()["Endpoints"]] == ["Creating"]
        assert error(sagemaker.delete_endpoint, EndpointName="slow")[0] == "ResourceInUse"
        code, message = error(sagemaker.update_endpoint, EndpointName="slow", EndpointConfigName="slow")
        assert code == "ValidationException" and message.startswith("Cannot update in-progress endpoint")
        gate.set()
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="slow", WaiterConfig={"Delay": 1})
    stop_endpoints(store)
