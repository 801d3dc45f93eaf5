"""Shared fixtures: no traffic leaves loopback, fake AWS credentials, a standard config."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Iterator

import pytest

from pipelines.config import build_config
from tests.suite_cache import suite_cache

pytest_plugins = ["tests.longest_first"]  # modules start longest first, as the last run measured them

ROLE = "arn:aws:iam::123456789012:role/PipelineRole"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> object:
    if isinstance(address, tuple) and self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise AssertionError(f"test tried to connect to {host}: only loopback is allowed")
    return _real_connect(self, address)


@pytest.fixture(scope="session", autouse=True)
def cache_home():
    """The suite's own cache folder (``XDG_CACHE_HOME``), from the first fixture on (module fixtures run
    pipelines too), never the user's ~/.cache: job environments, and uv's and pip's downloads, are built there
    once and reused by every later test, worker and run. Environments are keyed by everything they are built
    from and used only once finished; builds take a lock, so parallel workers build each one once.

    The commands a test (or a module fixture) runs track nothing in MLflow unless it asks: a flag, or, for
    the tests of tracking and those that run commands as a user types them, an environment without
    ``MLFLOW_TRACKING_URI``; a tracked run's logger spends seconds of CPU importing MLflow."""
    folder = suite_cache()
    folder.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as session:
        session.setenv("XDG_CACHE_HOME", str(folder))
        session.setenv("MLFLOW_TRACKING_URI", "off")
        yield folder


@pytest.fixture(autouse=True)
def untracked() -> Iterator[None]:
    """``MLFLOW_TRACKING_URI=off`` around every test (see ``cache_home``), set directly: MLflow's
    ``set_tracking_uri``, which a job's code calls when a test runs it in this process, sets the variable
    too, and a value a test leaks must not reach the next test or module fixture."""
    os.environ["MLFLOW_TRACKING_URI"] = "off"
    yield
    os.environ["MLFLOW_TRACKING_URI"] = "off"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, cache_home) -> None:
    """Fail any test that opens a connection beyond loopback; give it fake AWS settings and the suite's cache."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, for moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def full_config(**overrides: object):
    """A config with every security option set."""
    values = {
        "role_arn": ROLE, "bucket": "lead-bucket", "kms_key_arn": KMS,
        "subnets": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
        "security_group_ids": "sg-0123456789abcdef0", "source_revision": "abc123",
    }
    values.update(overrides)
    return build_config(("test", values))
