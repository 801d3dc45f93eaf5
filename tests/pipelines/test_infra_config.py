"""--stack-name: the stack's outputs fill the settings a command takes, read once at the door, below what the
layer naming the stack (and any later one) gives; every disagreement is said in one line."""

from __future__ import annotations

import argparse

import pytest

from pipelines.config import STACK_SETTINGS, build_config, with_stack_outputs
from pipelines.errors import ConfigError

OUTPUTS = {"PipelineRoleArn": "arn:aws:iam::123456789012:role/secure-PipelineRole-ABC",
           "DataBucketName": "secure-databucket-xyz", "BasePrefix": "lead-scoring",
           "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
           "SubnetIds": "subnet-0abc1234,subnet-0def5678", "SecurityGroupId": "sg-0abc1234",
           "PipelineName": "lead-scoring", "ModelPackageGroupName": "lead-scoring-models",
           "DeployRoleArn": "arn:aws:iam::123456789012:role/secure-DeployRole-DEF"}


class Reader:
    """Stands in for CloudFormation: the outputs, and who asked for which stack in which region."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, stack: str, region: str) -> dict[str, str]:
        self.asked.append((stack, region))
        return OUTPUTS


def test_the_outputs_fill_what_the_command_takes_and_nothing_else():
    reader = Reader()
    layers, notes = with_stack_outputs([("environment", {"region": "eu-west-1"}),
                                        ("command line", {"stack_name": "secure"})],
                                       ["role_arn", "bucket", "kms_key_arn", "subnets", "security_group_ids"], reader)
    assert reader.asked == [("secure", "eu-west-1")] and notes == []
    config = build_config(*layers)
    assert config.role_arn == OUTPUTS["PipelineRoleArn"] and config.bucket == "secure-databucket-xyz"
    assert config.subnets == ("subnet-0abc1234", "subnet-0def5678") and config.security_group_ids == ("sg-0abc1234",)
    assert config.pipeline_name == "LeadScoringPipeline"  # not taken by this command: left alone
    assert config.stack_name == "secure"


def test_a_flag_beside_the_stack_name_wins_and_is_said():
    layers, notes = with_stack_outputs(
        [("environment", {"bucket": "env-bucket"}),
         ("command line", {"stack_name": "secure", "role_arn": "arn:aws:iam::123456789012:role/Mine"})],
        ["role_arn", "bucket"], Reader())
    config = build_config(*layers)
    assert config.role_arn == "arn:aws:iam::123456789012:role/Mine" and config.bucket == "secure-databucket-xyz"
    assert notes == [
        f"--role-arn arn:aws:iam::123456789012:role/Mine overrides output PipelineRoleArn ({OUTPUTS['PipelineRoleArn']})"
        " of stack secure",
        "output DataBucketName (secure-databucket-xyz) of stack secure replaces PIPELINE_BUCKET env-bucket"]


def test_a_stack_named_in_a_file_is_below_the_environment_and_the_flags():
    layers, notes = with_stack_outputs(
        [("lead.toml", {"stack_name": "secure", "bucket": "file-bucket"}),
         ("environment", {"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/other"}),
         ("command line", {})], ["bucket", "kms_key_arn"], Reader())
    config = build_config(*layers)
    assert config.bucket == "file-bucket" and config.kms_key_arn.endswith("key/other")
    assert notes == [
        "bucket in lead.toml file-bucket overrides output DataBucketName (secure-databucket-xyz) of stack secure",
        f"PIPELINE_KMS_KEY_ARN arn:aws:kms:us-east-1:123456789012:key/other overrides output KmsKeyArn "
        f"({OUTPUTS['KmsKeyArn']}) of stack secure"]


def test_the_same_value_given_twice_says_nothing():
    given = {"stack_name": "secure", "subnets": ["subnet-0abc1234", "subnet-0def5678"]}  # a list, the output a string
    _, notes = with_stack_outputs([("command line", given)], ["subnets"], Reader())
    assert notes == []


def test_no_stack_or_no_setting_it_fills_reads_nothing():
    reader = Reader()
    layers = [("command line", {"role_arn": "arn:aws:iam::123456789012:role/Mine"})]
    assert with_stack_outputs(layers, STACK_SETTINGS, reader) == (layers, [])
    named = [("command line", {"stack_name": "secure"})]
    assert with_stack_outputs(named, [], reader) == (named, [])  # `infra describe` takes none of them
    assert reader.asked == []


def test_a_malformed_stack_name_is_a_config_error():
    with pytest.raises(ConfigError, match="stack_name '9lives' is not a CloudFormation stack name"):
        build_config(("command line", {"stack_name": "9lives"}))


@pytest.mark.parametrize("module, argv, takes", [
    ("run", [], True), ("definition", [], True), ("validate", [], True),
    ("deploy", ["deploy", "--endpoint-name", "e"], True), ("executions", ["executions"], True),
    ("registry", ["list"], False), ("images", ["list"], False), ("infra", ["describe"], True),
])
def test_stack_name_is_taken_by_every_command_with_a_setting_the_stack_defines(module, argv, takes):
    import importlib

    parser = importlib.import_module(f"pipelines.cli.commands.{module}").parser()
    if takes:
        assert parser.parse_args([*argv, "--stack-name", "secure"]).stack_name == "secure"
    else:
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--stack-name", "secure"])


def test_the_cli_layer_reads_the_stack_once_and_says_each_override(monkeypatch, capsys):
    from pipelines.cli import options

    reader = Reader()
    monkeypatch.setattr(options, "_stack_outputs", reader)
    args = argparse.Namespace(config=None, kwargs=None, stack_name="secure", role_arn=None, bucket="mine-bucket",
                              kms_key_arn=None, source_revision="abc")
    config = options.config_from_args(args, {"AWS_DEFAULT_REGION": "us-west-2"})
    assert reader.asked == [("secure", "us-west-2")]
    assert (config.role_arn, config.bucket, config.kms_key_arn) == (OUTPUTS["PipelineRoleArn"], "mine-bucket",
                                                                     OUTPUTS["KmsKeyArn"])
    assert capsys.readouterr().err == ("note: --bucket mine-bucket overrides output DataBucketName "
                                       "(secure-databucket-xyz) of stack secure\n")
