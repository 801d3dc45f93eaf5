"""Credential-shaped values: found anywhere in a value, refused before anything is written, redacted in logs."""

from __future__ import annotations

import json

import pytest

from pipelines.credentials import credential_kind, redact, refuse_credentials
from pipelines.errors import CredentialInConfigError
from pipelines.cli.commands.run import parser
from pipelines.cli.options import config_from_args
from tests.pipelines.test_run_cli import BASE_ARGS, run_cli

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIE..."
# SDK v3's @step sends the job this public key (REMOTE_FUNCTION_SECRET_KEY), to check the pickled function's signature
PUBLIC_KEY = ("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtRP9QHPaY7MMhSHDW29M44Ei+h69\n"
              "Ul/xH0Wdfw4zSWW0xbOvM2BeZaNEfJb1d9fNe567FcbRGNJtXU1TdY3ayA==\n-----END PUBLIC KEY-----\n")


@pytest.mark.parametrize("value, kind", [
    (KEY_ID, "an AWS access key id"),
    (f"key={KEY_ID}", "an AWS access key id"),
    (f"run_{KEY_ID}_x", "an AWS access key id"),
    (f"s3://bkt/{KEY_ID}/data", "an AWS access key id"),
    (f"ASIA{'Q' * 16}", "an AWS access key id"),
    (SECRET, "an AWS secret access key"),
    (f"secret={SECRET}", "an AWS secret access key"),
    (f"s3://bkt/prefix/{SECRET}", "an AWS secret access key"),
    (f"prefix/{SECRET}/more", "an AWS secret access key"),
    (PEM, "a private key"),
    (PUBLIC_KEY, None),
    (PUBLIC_KEY.replace("PUBLIC KEY", "CERTIFICATE"), None),
    (PUBLIC_KEY + PEM, "a private key"),
    (f"{PUBLIC_KEY} {SECRET}", "an AWS secret access key"),  # a public key hides nothing beside it
    (PUBLIC_KEY.replace("-----END PUBLIC KEY-----", ""), "an AWS secret access key"),  # no block: base64 as any
    ("0123456789abcdef0123456789abcdef01234567", None),  # a git SHA: one case only
    ("s3://lead-bucket/lead-scoring/2026/11/25/redshift-unload/part_0000", None),
    ("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", None),
    ("SELECT converted, age, visits FROM leads WHERE created > '2026-01-01'", None),
    ("AKIA-not-a-key", None),
    (42, None),
])
def test_credential_shapes_are_found_anywhere_in_a_value(value, kind):
    assert credential_kind(value) == kind


def test_refusal_names_the_field_and_never_echoes_the_value():
    with pytest.raises(CredentialInConfigError) as caught:
        refuse_credentials({"tags": [{"Key": "owner", "Value": f"me:{KEY_ID}"}]}, "cfg.toml")
    assert "'tags[0].Value'" in str(caught.value) and "cfg.toml" in str(caught.value)
    assert KEY_ID not in str(caught.value)


def test_redact_replaces_every_credential_and_keeps_the_rest():
    line = f"connecting with {KEY_ID} and {SECRET} to s3://bkt/data at commit 0123456789abcdef0123456789abcdef01234567"
    assert redact(line) == ("connecting with [REDACTED] and [REDACTED] to s3://bkt/data "
                            "at commit 0123456789abcdef0123456789abcdef01234567")


@pytest.mark.parametrize("argv", [
    ["--source-revision", f"rev-{KEY_ID}"],
    ["--base-prefix", f"team/{SECRET}"],
    ["--input-data-url", f"s3://bkt/{KEY_ID}/leads/"],
    ["--tags", json.dumps([{"Key": "owner", "Value": f"x={SECRET}"}])],
    ["--redshift-query", f"SELECT 1 FROM t -- {KEY_ID}"],
])
def test_every_setting_is_checked_from_flags(argv):
    args = parser().parse_args(["--role-arn", "arn:aws:iam::123456789012:role/R", *argv])
    with pytest.raises(CredentialInConfigError, match="looks like"):
        config_from_args(args, {})


def test_tags_from_a_config_file_are_checked_as_from_the_cli(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"tags:\n  - Key: owner\n    Value: 'id {KEY_ID}'\n")
    args = parser().parse_args(["--config", str(cfg)])
    with pytest.raises(CredentialInConfigError, match=r"cfg.yaml: the value of 'tags\[0\].Value'"):
        config_from_args(args, {})


def test_a_secret_in_a_parameter_or_a_definition_is_refused_before_anything_is_written(tmp_path):
    store = tmp_path / "store"
    parameter = run_cli("--store", str(store), *BASE_ARGS, "--parameter", f"InputDataUrl=s3://bkt/{KEY_ID}/")
    assert parameter.returncode == 2
    assert "--parameter: the value of 'InputDataUrl' holds what looks like an AWS access key id" in parameter.stderr
    assert KEY_ID not in parameter.stderr and "Traceback" not in parameter.stderr
    definition = tmp_path / "def.json"
    definition.write_text(json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": [
        {"Name": "S", "Type": "Fail", "Arguments": {"ErrorMessage": f"key {SECRET}"}}]}))
    refused = run_cli("--store", str(store), "--definition", str(definition))
    assert refused.returncode == 2 and "Steps[0].Arguments.ErrorMessage" in refused.stderr
    assert not store.exists()


def test_redaction_leaves_known_paths_alone_and_still_finds_secrets_beside_them():
    from pipelines.credentials import redact

    job_dir = "/tmp/tpl/store/jobs/kdy9fjyhoi78/EvaluateAbaloneModel"
    line = f"{job_dir}/root/opt/ml/code/evaluate.py:18: warning"
    assert redact(line) != line  # shaped like a secret key when nothing says it is a path
    assert redact(line, (job_dir,)) == line
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert redact(f"{job_dir} {secret}", (job_dir,)) == f"{job_dir} [REDACTED]"
