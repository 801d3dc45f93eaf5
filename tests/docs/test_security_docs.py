"""docs/security.md's commands run as written, in order, against a moto_server on loopback (standing in for the
account: its CloudFormation, IAM, KMS, S3 and SageMaker), each showing what the page says it shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3

from tests.infra.calls import values_of
from tests.infra.moto import AWS_ENV, moto_server

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "security.md"


def bash_blocks(page: Path) -> list[str]:
    """The ```bash blocks of a page, in order (```shell blocks change real principals: shown, not run)."""
    return re.findall(r"^```bash\n(.*?)^```$", page.read_text(), re.MULTILINE | re.DOTALL)


def run_block(block: str, cwd: Path, url: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_", "MLFLOW_"))}
    environment.update(AWS_ENV, AWS_ENDPOINT_URL=url)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=600)


def stored(sagemaker, pipeline: str) -> dict:
    return json.loads(sagemaker.describe_pipeline(PipelineName=pipeline)["PipelineDefinition"])


def test_the_security_page_runs_as_written(tmp_path):
    blocks = bash_blocks(PAGE)
    assert len(blocks) == 6
    with moto_server() as url:
        clients = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
        sagemaker = boto3.client("sagemaker", **clients)
        said = []
        for number, block in enumerate(blocks):
            if number == 4:  # the pipeline registered a version (moto runs no step: registered here as it would)
                register_pending_version(sagemaker, boto3.client("cloudformation", **clients))
            result = run_block(block, tmp_path, url)
            assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            said.append(result.stdout)
            if number == 1:
                definition = stored(sagemaker, "lead-scoring")
                assert not list(values_of(definition, ("VpcConfig",)))
            if number == 2:
                vpcs = list(values_of(stored(sagemaker, "lead-scoring"), ("VpcConfig",)))
                assert len(vpcs) == 4 and all(v["Subnets"] and v["SecurityGroupIds"] for v in vpcs)
            if number == 3:
                [dataset] = values_of(stored(sagemaker, "lead-scoring"), ("RedshiftDatasetDefinition",))
                assert dataset["ClusterId"] == "leads-dw" and "RedshiftUnloadRole" in dataset["ClusterRoleArn"]
    created, run, vpc, redshift, approval, deleted = said
    assert "Stack lead-scoring-secure: CREATE_COMPLETE" in created and "(--role-arn)" in created
    assert "Stack lead-scoring-secure in us-east-1: CREATE_COMPLETE" in created  # describe
    assert re.search(r"Execution \w+: Succeeded", run)
    assert "Stack lead-scoring-secure: UPDATE_COMPLETE" in vpc and "(--subnets)" in vpc
    assert "(--redshift-cluster-id)" in redshift and re.search(r"Execution \w+: Succeeded", redshift)
    assert "lead-scoring-models version 1: Approved" in approval and "Endpoint lead-scoring: created" in approval
    assert "Stack lead-scoring-secure: deleted; kept" in deleted


def register_pending_version(sagemaker, cloudformation) -> None:
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cloudformation.describe_stacks(StackName="lead-scoring-secure")["Stacks"][0]["Outputs"]}
    data = f"s3://{outputs['DataBucketName']}/lead-scoring/models/pipelines-x-Train-y/output/model.tar.gz"
    sagemaker.create_model_package_group(ModelPackageGroupName="lead-scoring-models")
    sagemaker.create_model_package(
        ModelPackageGroupName="lead-scoring-models", ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={"Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                                         "sagemaker-xgboost:1.7-1", "ModelDataUrl": data}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]})
