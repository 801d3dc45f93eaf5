"""Configuration: precedence, file formats, validation, credential refusal."""

from __future__ import annotations

import argparse

import pytest

from pipelines.config import build_config, env_values, parse_kwargs_json, read_config_file
from pipelines.errors import ConfigError, CredentialInConfigError
from pipelines.cli.commands.run import parser
from pipelines.cli.options import config_from_args

ROLE = "arn:aws:iam::123456789012:role/R"


def args_for(*argv: str) -> argparse.Namespace:
    return parser().parse_args(list(argv))


def test_precedence_defaults_file_env_kwargs_flags(tmp_path):
    cfg_file = tmp_path / "cfg.toml"
    cfg_file.write_text('bucket = "from-file"\npipeline_name = "FromFile"\nbase_prefix = "file"\nregion = "eu-west-1"\n')
    environ = {"PIPELINE_PIPELINE_NAME": "FromEnv", "PIPELINE_BASE_PREFIX": "env"}
    args = args_for("--config", str(cfg_file), "--kwargs", '{"base_job_prefix": "kw", "role": "%s"}' % ROLE,
                    "--pipeline-name", "FromFlag", "--source-revision", "r1")
    config = config_from_args(args, environ)
    assert config.bucket == "from-file"            # file beats defaults
    assert config.region == "eu-west-1"
    assert config.pipeline_name == "FromFlag"      # flag beats env beats file
    assert config.base_prefix == "kw"              # --kwargs beats env
    assert config.role_arn == ROLE                 # template alias 'role'
    assert config.model_package_group == "LeadScoringModels"  # default


def test_yaml_file_and_lists(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("subnets: [subnet-0123456789abcdef0]\nsecurity_group_ids: sg-0123456789abcdef0\n"
                        "tags:\n  team: growth\n")
    config = config_from_args(args_for("--config", str(cfg_file), "--source-revision", "x"), {})
    assert config.subnets == ("subnet-0123456789abcdef0",)
    assert config.security_group_ids == ("sg-0123456789abcdef0",)
    assert config.tags == (("team", "growth"),)


def test_tags_flag_is_template_json():
    config = config_from_args(args_for("--tags", '[{"Key": "sagemaker:project-name", "Value": "p"}]',
                                       "--source-revision", "x"), {})
    assert config.tags == (("sagemaker:project-name", "p"),)


@pytest.mark.parametrize("values, message", [
    ({"role_arn": "not-an-arn"}, "is not an IAM role ARN"),
    ({"region": "moon-1"}, "is not an AWS region"),
    ({"kms_key_arn": "alias/foo"}, "is not a KMS key"),
    ({"subnets": "subnet-0123456789abcdef0"}, "go together"),
    ({"training_mode": "custom"}, "needs training_image"),
    ({"cache_expire_after": "30 days"}, "ISO 8601"),
    ({"unknown_key": "x"}, "unknown setting 'unknown_key'"),
    ({"input_data_url": "/local/path"}, "must be an s3:// URI"),
    ({"bad_rows": "ignore"}, "bad_rows 'ignore' must be 'fail' or 'skip'"),
    ({"input_header": "yes"}, "input_header 'yes' must be 'absent' or 'present'"),
    ({"max_bad_percent": 120}, "max_bad_percent must be between 0 and 100"),
    ({"max_bad_rows": "many"}, "'max_bad_rows' must be a whole number"),
    # names are matched whole: a trailing newline (a regex's $ matches before it) is not part of a name
    ({"bucket": "lead-bucket\n"}, "is not a valid S3 bucket name"),
    ({"region": "us-east-1\n"}, "is not an AWS region"),
    ({"role_arn": "arn:aws:iam::123456789012:role/R\n"}, "is not an IAM role ARN"),
    ({"model_package_group": "Leads\n"}, "model_package_group"),
    ({"base_prefix": "lead-scoring\n"}, "base_prefix"),
])
def test_invalid_values_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(("test", values))


@pytest.mark.parametrize("values", [
    {"aws_secret_access_key": "abc"},
    {"password": "hunter2"},
    {"tags": [{"Key": "k", "Value": "AKIAIOSFODNN7EXAMPLE"}]},
    {"bucket": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
])
def test_credentials_are_refused(values):
    with pytest.raises(CredentialInConfigError, match="credential|looks like"):
        build_config(("cfg.toml", values))


def test_git_sha_is_not_mistaken_for_a_secret():
    assert build_config(("t", {"source_revision": "0123456789abcdef0123456789abcdef01234567"}))


def test_credentials_in_kwargs_are_refused():
    args = args_for("--kwargs", '{"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE"}')
    with pytest.raises(CredentialInConfigError):
        config_from_args(args, {})


def test_env_values_use_prefix_and_region_variables():
    values = env_values({"AWS_REGION": "eu-central-1", "PIPELINE_BUCKET": "b", "PIPELINE_NOTHING": "x", "HOME": "/"})
    assert values == {"region": "eu-central-1", "bucket": "b"}


def test_bad_files_name_the_file(tmp_path):
    bad_toml = tmp_path / "c.toml"
    bad_toml.write_text("bucket = \n")
    with pytest.raises(ConfigError, match="c.toml: not valid TOML"):
        read_config_file(bad_toml)
    bad_yaml = tmp_path / "c.yaml"
    bad_yaml.write_text("a: [1\nb: 2\n")
    with pytest.raises(ConfigError, match=r"c.yaml line \d+: not valid YAML"):
        read_config_file(bad_yaml)
    with pytest.raises(ConfigError, match="must end in"):
        read_config_file(tmp_path / "c.ini")


def test_kwargs_must_be_an_object():
    with pytest.raises(ConfigError, match="--kwargs must be a JSON object"):
        parse_kwargs_json("[1]")
    with pytest.raises(ConfigError, match="--kwargs is not valid JSON"):
        parse_kwargs_json("{")


def test_local_image_programs_from_a_table_or_image_equals_command():
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/trainer:1"
    table = build_config(("config.toml", {"local_image_programs": {image: "python3 train.py"}}))
    flags = build_config(("command line", {"local_image_programs": [f"{image}=python3 train.py"]}))
    assert table.local_image_programs == flags.local_image_programs == ((image, "python3 train.py"),)
    with pytest.raises(ConfigError, match="'local_image_programs' must map image URIs to commands"):
        build_config(("config.toml", {"local_image_programs": ["no-equals-sign"]}))
