"""Pipelines that deploy from code, built with the real SDK v3 in the style of the public Lambda-deploy examples
and run unchanged on the local engine: a Model step, a processing job that approves the version with boto3's
``update_model_package``, and a Lambda step whose handler creates the endpoint config and endpoint with plain
boto3 and waits with ``endpoint_in_service``. The endpoint it made scores through InvokeEndpoint and is on the
studio's Endpoints page."""

from __future__ import annotations

import json

from pipelines.local.endpoints import LocalEndpoints
from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.sagemaker_api import Caller
from pipelines.local.store import Store
from tests.inference.test_xgboost_csv import model_archive
from tests.pipelines.local.sagemaker_api.conftest import clients, serving, stop_endpoints
from tests.pipelines.local.test_pipelines_written_elsewhere import BUCKET, ROLE, sdk_on_moto
from tests.pipelines.studio.conftest import Studio
from tests.pipelines.test_deploy import ROWS, spec
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

ARN = "arn:aws:lambda:us-east-1:111122223333:function:deploy-leads-model"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
MODEL_URI = f"s3://{BUCKET}/leads/model/model.tar.gz"

APPROVE = '''
import argparse
import boto3

parser = argparse.ArgumentParser()
parser.add_argument("--model-package-arn", required=True)
arn = parser.parse_args().model_package_arn
sagemaker = boto3.client("sagemaker")
sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                               ApprovalDescription="approved by the pipeline's quality gate")
print("now", sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"])
'''

HANDLER = '''
import json
import boto3


def deploy(event, context):
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_endpoint_config(EndpointConfigName=event["endpoint_config_name"], ProductionVariants=[{
        "InstanceType": "ml.m5.large", "InitialVariantWeight": 1, "InitialInstanceCount": 1,
        "ModelName": event["model_name"], "VariantName": "AllTraffic"}])
    sagemaker.create_endpoint(EndpointName=event["endpoint_name"], EndpointConfigName=event["endpoint_config_name"])
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=event["endpoint_name"])
    status = sagemaker.describe_endpoint(EndpointName=event["endpoint_name"])["EndpointStatus"]
    return {"statusCode": 200, "body": json.dumps(f"Created Endpoint! ({status})")}
'''


def build(monkeypatch, folder) -> tuple[dict, dict[str, bytes]]:
    """The pipeline as the SDK writes it, and what it uploaded (the approval script)."""
    (folder / "approve.py").write_text(APPROVE)
    with sdk_on_moto(monkeypatch) as s3:
        from sagemaker.core.lambda_helper import Lambda
        from sagemaker.core.processing import ScriptProcessor
        from sagemaker.core.workflow.parameters import ParameterString
        from sagemaker.core.workflow.pipeline_context import PipelineSession
        from sagemaker.mlops.workflow import ModelStep, ProcessingStep
        from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
        from sagemaker.mlops.workflow.pipeline import Pipeline
        from sagemaker.serve.model_builder import ModelBuilder

        session = PipelineSession(default_bucket=BUCKET)
        package_arn = ParameterString(name="ModelPackageArn")
        endpoint_name = ParameterString(name="EndpointName", default_value="leads-from-lambda")
        model = ModelStep(name="CreateLeadsModel", step_args=ModelBuilder(
            image_uri=XGBOOST, s3_model_data_url=MODEL_URI, role_arn=ROLE, sagemaker_session=session,
            instance_type="ml.m5.large").build())
        approve = ProcessingStep(name="ApproveVersion", step_args=ScriptProcessor(
            image_uri=SKLEARN, command=["python3"], role=ROLE, instance_count=1, instance_type="ml.m5.large",
            sagemaker_session=session).run(code=str(folder / "approve.py"),
                                           arguments=["--model-package-arn", package_arn]))
        deploy = LambdaStep(name="DeployLeadsModel", lambda_func=Lambda(function_arn=ARN), inputs={
            "model_name": model.properties.ModelName, "endpoint_config_name": endpoint_name,
            "endpoint_name": endpoint_name}, outputs=[LambdaOutput(output_name="statusCode",
                                                                   output_type=LambdaOutputTypeEnum.String),
                                                      LambdaOutput(output_name="body",
                                                                   output_type=LambdaOutputTypeEnum.String)],
            depends_on=[approve])
        pipeline = Pipeline(name="leads-deploy", steps=[model, approve, deploy], parameters=[package_arn, endpoint_name],
                            sagemaker_session=session)
        definition = json.loads(pipeline.definition())
        uploaded = {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                    for item in page.get("Contents", [])}
    return definition, uploaded


def test_a_lambda_step_deploys_the_model_step_s_model_and_the_endpoint_scores(tmp_path, monkeypatch):
    definition, uploaded = build(monkeypatch, tmp_path)
    (tmp_path / "handlers.py").write_text(HANDLER)
    store = Store(tmp_path / "store")
    for key, data in uploaded.items():
        store.put_bytes(data, f"s3://{BUCKET}/{key}")
    store.put_file(model_archive(tmp_path), MODEL_URI)
    registry = Registry(store.root / "registry.sqlite")
    pending = registry.register("LeadScoringModels", "PendingManualApproval", spec(MODEL_URI))
    lines: list[str] = []
    engine = LocalEngine(store, registry, lambda step, line: lines.append(f"{step}: {line}"), lambda record: None,
                         RunOptions(lambdas={ARN: f"{tmp_path / 'handlers.py'}:deploy"}))
    try:
        record = engine.run(definition, "leads-deploy", {"ModelPackageArn": pending["ModelPackageArn"]})
        assert record.status == "Succeeded", (record.failure_reason, lines[-20:])
        assert "ApproveVersion: now Approved" in lines
        [approval] = registry.history("LeadScoringModels", 1)
        assert approval["who"] == f"execution {record.execution_id} (local SageMaker API)"
        outputs = record.step("DeployLeadsModel").properties["OutputParameters"]
        assert outputs == {"statusCode": "200", "body": '"Created Endpoint! (InService)"'}
        model_name = record.step("CreateLeadsModel").properties["ModelName"]
        [endpoint] = LocalEndpoints(store).list()
        assert (endpoint["EndpointName"], endpoint["ModelName"], endpoint["Health"]) == (
            "leads-from-lambda", model_name, "Healthy")
        with serving(store, registry, Caller("user test")) as api:
            sagemaker, runtime = clients(api)
            scores = runtime.invoke_endpoint(EndpointName="leads-from-lambda", ContentType="text/csv", Body=ROWS)
            assert len(scores["Body"].read().split()) == 3
            steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=(
                "arn:aws:sagemaker:local:000000000000:pipeline/leads-deploy/execution/" + record.execution_id))
            assert steps["PipelineExecutionSteps"][0]["Metadata"]["Lambda"]["OutputParameters"][0] == {
                "Name": "statusCode", "Value": "200"}
        from pipelines.config import PipelineConfig, local_config

        studio = Studio(store.root, local_config(PipelineConfig(mlflow_tracking_uri="off")))
        try:
            status, page = studio.get("/endpoints")
        finally:
            studio.stop()
        assert status == 200 and "leads-from-lambda" in page and f"model {model_name}" in page
    finally:
        stop_endpoints(store)
