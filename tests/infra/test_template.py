"""The template on its own, offline: cfn-lint finds nothing, parliament finds nothing above LOW in any of its
policies, and what it promises is in it (rotation, encryption by default with the key, no public access, TLS only,
versioning, lifecycle, least-privilege trust, the outputs --stack-name reads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import STACK_OUTPUTS
from pipelines.infra import template
from pipelines.infra.stacks import TEMPLATE_BODY_LIMIT
from tests.infra.moto import ADMIN, APPROVER, OPERATOR, REDSHIFT

REPO = Path(__file__).resolve().parents[2]
CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")  # the test extra's console scripts, beside this interpreter
PARLIAMENT = str(Path(sys.executable).parent / "parliament")
BASE = {"AdminPrincipalArn": ADMIN, "OperatorPrincipalArns": OPERATOR, "ApproverPrincipalArns": APPROVER}
EVERYTHING = {**BASE, "EnableVpc": "true", **dict(a.split("=", 1) for a in REDSHIFT)}

# Findings of parliament's community auditors (opt-in, all MEDIUM) that the pipeline needs, each with the reason;
# anything else they find fails the test.
ACCEPTED_COMMUNITY_FINDINGS = {
    ("DataKey", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "the key policy: the admin manages the key (PutKeyPolicy, CreateGrant...), the roles grant it to the volumes "
        "SageMaker makes for their jobs (CreateGrant, only for AWS resources)",
    ("PipelinePolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of the role itself to SageMaker only; kms:CreateGrant only for AWS resources (job volumes)",
    ("PipelinePolicy", "CREDENTIALS_EXPOSURE"): "ecr:GetAuthorizationToken: pulling the images needs the ECR login",
    ("PipelineRedshiftPolicy", "CREDENTIALS_EXPOSURE"):
        "redshift:GetClusterCredentials, for the one database user and database: how SageMaker runs the query",
    ("PipelineRedshiftPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"): "the same redshift:GetClusterCredentials",
    ("PipelineVpcPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "ec2:CreateNetworkInterfacePermission: SageMaker attaches the jobs' network interfaces in the stack's subnets",
    ("DeployPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"): "iam:PassRole of the pipeline role to SageMaker, for endpoints",
    ("OperatorPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"): "iam:PassRole of the pipeline role to SageMaker, for upserts",
}


def rendered(values: dict[str, str]) -> template.Rendering:
    declared = template.load()
    return template.Rendering(declared, template.parameter_values(declared, values))


def test_cfn_lint_finds_nothing_not_even_informational():
    result = subprocess.run([CFN_LINT, "--include-checks", "I", "--", str(template.TEMPLATE)], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_cfn_lint_would_catch_a_broken_template(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(template.TEMPLATE.read_text().replace("EnableKeyRotation: true", "EnableKeyRotations: true"))
    result = subprocess.run([CFN_LINT, "--", str(broken)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode != 0 and "EnableKeyRotation" in result.stdout


def _parliament(documents: dict[str, dict], folder: Path, *flags: str) -> subprocess.CompletedProcess:
    """parliament's command line over ``documents``, one NAME.json file each, as CI would run it."""
    for name, document in documents.items():
        (folder / f"{name}.json").write_text(json.dumps(document, indent=2))
    return subprocess.run([PARLIAMENT, "--directory", str(folder), "--include_policy_extension", ".json", "--json",
                           *flags], capture_output=True, text=True, timeout=300, cwd=REPO)


def _findings(result: subprocess.CompletedProcess) -> list[tuple[str, str, str]]:
    """(policy, issue, severity) of each finding parliament printed."""
    found = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [(Path(f["location"]["filepath"]).stem, f["issue"], f["severity"]) for f in found]


def linted_policies(values: dict[str, str]) -> dict[str, dict]:
    """Every identity and resource policy (a trust policy is neither: parliament reads it as an identity policy
    without a Resource, MALFORMED by design; test_trust_policies checks those)."""
    return {name: document for name, document in template.policies(rendered(values).resources()).items()
            if not name.endswith(".AssumeRolePolicyDocument")}


@pytest.mark.parametrize("values", [BASE, EVERYTHING], ids=["defaults", "vpc-and-redshift"])
def test_parliament_finds_nothing_above_low(values, tmp_path):
    documents = linted_policies(values)
    assert {"DataKey", "DataBucketPolicy", "PipelinePolicy", "DeployPolicy", "OperatorPolicy",
            "RedshiftUnloadPolicy"} <= set(documents)
    result = _parliament(documents, tmp_path, "--minimum_severity", "MEDIUM")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    # what it does say, all LOW: Resource "*" in the key policy (there it means the key itself), and the key's ARN
    # given to a String condition key (S3 compares it as a string: the ARN is what our uploads send)
    lows = _parliament(documents, tmp_path)
    assert {(policy, issue) for policy, issue, _ in _findings(lows)} == {
        ("DataKey", "RESOURCE_STAR"), ("DataBucketPolicy", "MISMATCHED_TYPE_BUT_USABLE")}


def test_parliaments_community_auditors_find_only_what_the_pipeline_needs(tmp_path):
    result = _parliament(linted_policies(EVERYTHING), tmp_path, "--include-community-auditors", "--minimum_severity",
                         "MEDIUM")
    assert {(policy, issue) for policy, issue, _ in _findings(result)} == set(ACCEPTED_COMMUNITY_FINDINGS)


def test_parliament_would_catch_a_broad_policy(tmp_path):
    broad = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:PassRole", "s3:PutBucketPolicy"], "Resource": "*"}]}
    result = _parliament({"broad": broad}, tmp_path, "--include-community-auditors", "--minimum_severity", "MEDIUM")
    assert result.returncode == 1
    assert {("broad", "PERMISSIONS_MANAGEMENT_ACTIONS", "MEDIUM"),
            ("broad", "RESOURCE_POLICY_PRIVILEGE_ESCALATION", "MEDIUM")} <= set(_findings(result))


def test_the_key_rotates_and_the_bucket_is_private_encrypted_versioned_and_kept():
    resources = rendered(BASE).resources()
    key, bucket = resources["DataKey"], resources["DataBucket"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == bucket["DeletionPolicy"] == "Retain"
    properties = bucket["Properties"]
    [rule] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID":
                                                      "arn:aws:kms:us-east-1:123456789012:key/lead-scoring-secure-DataKey"},
                    "BucketKeyEnabled": True}
    assert all(properties["PublicAccessBlockConfiguration"].values()) and len(
        properties["PublicAccessBlockConfiguration"]) == 4
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    lifecycle = {r["Id"]: r for r in properties["LifecycleConfiguration"]["Rules"]}
    assert lifecycle["ExpireRedshiftQueryResults"]["Prefix"] == "lead-scoring/redshift-unload/"
    assert "NoncurrentVersionExpiration" in lifecycle["ExpireOldVersions"]


def test_the_key_policy_names_its_users_and_no_account_wide_statement():
    document = template.policies(rendered(BASE).resources())["DataKey"]
    principals = [p for s in document["Statement"] for p in
                  (s["Principal"]["AWS"] if isinstance(s["Principal"]["AWS"], list) else [s["Principal"]["AWS"]])]
    assert not any(p == "*" or p.endswith(":root") for p in principals)  # no hand-over to the account's IAM
    admin = next(s for s in document["Statement"] if s["Principal"]["AWS"] == ADMIN)
    assert not any(a in admin["Action"] for a in ("kms:Decrypt", "kms:Encrypt", "kms:*", "kms:GenerateDataKey"))


def test_trust_policies_trust_one_service_or_the_named_principals():
    documents = template.policies(rendered(BASE).resources())
    trusts = {name.split(".")[0]: doc["Statement"] for name, doc in documents.items()
              if name.endswith(".AssumeRolePolicyDocument")}
    assert {k: [s["Principal"] for s in v] for k, v in trusts.items()} == {
        "PipelineRole": [{"Service": "sagemaker.amazonaws.com"}],
        "RedshiftUnloadRole": [{"Service": "redshift.amazonaws.com"}],
        "DeployRole": [{"AWS": [APPROVER]}]}
    assert all(s["Action"] == "sts:AssumeRole" and s["Effect"] == "Allow" for v in trusts.values() for s in v)


def test_no_role_has_an_access_key_and_pass_role_goes_to_sagemaker_only():
    resources = rendered(EVERYTHING).resources()
    assert not [r for r in resources.values() if r["Type"] in ("AWS::IAM::AccessKey", "AWS::IAM::User")]
    for name, document in template.policies(resources).items():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            broad = any(a.endswith(":*") or a == "*" for a in actions)
            assert not broad or statement["Effect"] == "Deny", (name, statement.get("Sid"))
            if "iam:PassRole" in actions:
                assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
                assert statement["Resource"] == "arn:aws:iam::123456789012:role/lead-scoring-secure-PipelineRole"


def test_the_vpc_has_no_route_out_and_the_endpoints_the_jobs_need():
    resources = rendered(EVERYTHING).resources()
    kinds = [r["Type"] for r in resources.values()]
    assert "AWS::EC2::InternetGateway" not in kinds and "AWS::EC2::NatGateway" not in kinds
    assert "AWS::EC2::Route" not in kinds  # the route table holds only the S3 gateway endpoint's routes
    services = sorted(r["Properties"]["ServiceName"].removeprefix("com.amazonaws.us-east-1.")
                      for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint")
    assert services == ["ecr.api", "ecr.dkr", "logs", "s3", "sagemaker.api", "sagemaker.runtime", "sts"]
    jobs = resources["JobsSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in jobs  # inbound only through JobsToEachOther, from itself
    assert resources["JobsToEachOther"]["Properties"]["SourceSecurityGroupId"] == \
        resources["JobsToEachOther"]["Properties"]["GroupId"]
    without = rendered(BASE).resources()
    assert not [r for r in without.values() if r["Type"].startswith("AWS::EC2::")]


def test_the_outputs_are_those_stack_name_reads_and_each_says_what_it_fills():
    declared = template.load()
    assert set(STACK_OUTPUTS) <= set(declared["Outputs"])
    for output, settings in STACK_OUTPUTS.items():
        description = declared["Outputs"][output]["Description"]
        assert description.startswith(settings[0]), output
    assert set(rendered(BASE).outputs()) == set(declared["Outputs"]) - {
        "VpcId", "SubnetIds", "SecurityGroupId", "RedshiftClusterId", "RedshiftDatabase", "RedshiftDbUser"}
    assert set(rendered(EVERYTHING).outputs()) == set(declared["Outputs"])


def test_the_sagemaker_image_accounts_are_the_sdks():
    """The image registry accounts the role may pull from are the installed SDK's, region by region."""
    import sagemaker.core

    config = Path(sagemaker.core.__file__).parent / "image_uri_config"
    mapping = {region: row["Account"] for region, row in template.load()["Mappings"]["SageMakerImageAccount"].items()}
    for framework, version in (("xgboost", "1.7-1"), ("sklearn", "1.2-1")):
        registries = json.loads((config / f"{framework}.json").read_text())["training"]["versions"][version]["registries"]
        assert registries == mapping, framework


def test_the_template_fits_in_a_create_stack_call():
    assert len(template.TEMPLATE.read_bytes()) < TEMPLATE_BODY_LIMIT


def test_parameters_are_checked_before_any_call():
    declared = template.load()
    with pytest.raises(Exception, match="no parameter Bogus"):
        template.check_given(declared, {"Bogus": "1"})
    with pytest.raises(Exception, match="lower case only"):
        template.check_given(declared, {"PipelineName": "LeadScoringPipeline"})
    with pytest.raises(Exception, match="EnableVpc='yes': must be one of true, false"):
        template.check_given(declared, {"EnableVpc": "yes"})
    with pytest.raises(Exception, match="ScratchExpirationDays='0': must be at least 1"):
        template.check_given(declared, {"ScratchExpirationDays": "0"})
    with pytest.raises(Exception, match=r"needs --parameter AdminPrincipalArn=\.\.\., --parameter OperatorPrincipalArns"):
        template.parameter_values(declared, {})
    assert template.parameter_values(declared, {}, previous=BASE)["PipelineName"] == "lead-scoring"
