"""Pure rules of the local engine's operations: cache durations and keys, retry policies, unenforced settings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipelines.errors import ConfigError, DefinitionError, RegistryBusyError
from pipelines.local import caching, retries, unenforced


@pytest.mark.parametrize("text, expected", [
    ("P30D", timedelta(days=30)), ("30d", timedelta(days=30)), ("T16m", timedelta(minutes=16)),
    ("30dT5h", timedelta(days=30, hours=5)), ("PT1H", timedelta(hours=1)), ("5y", timedelta(days=5 * 365)),
    ("P1W", timedelta(weeks=1)), ("P1M", timedelta(days=30)), ("PT10S", timedelta(seconds=10)),
])
def test_expire_after_durations(text, expected):
    assert caching.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "30", "1 day", "P1DT", "-P1D"])
def test_bad_durations_name_the_field(text):
    with pytest.raises(DefinitionError, match="CacheConfig.ExpireAfter"):
        caching.parse_duration(text)


def test_cache_key_covers_the_documented_attributes_only():
    base = {"AppSpecification": {"ImageUri": "i"}, "ProcessingInputs": [{"S3Input": {"S3Uri": "s3://bkt/in"}}],
            "ProcessingOutputConfig": {"Outputs": [{"S3Output": {"S3Uri": "s3://bkt/run-1/out"}}]},
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large"}}}
    key = caching.cache_key("Processing", base)
    # outputs and resources are not part of a processing step's key
    assert caching.cache_key("Processing", {**base, "ProcessingOutputConfig": {}}) == key
    assert caching.cache_key("Processing", {**base, "ProcessingResources": {}}) == key
    assert caching.cache_key("Processing", {**base, "ProcessingInputs": []}) != key
    assert caching.cache_key("Training", base) != key


def test_latest_unexpired_success_wins():
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    ended = lambda days: (now - timedelta(days=days)).isoformat()  # noqa: E731
    candidates = [
        ("old", {"status": "Succeeded", "cache_key": "k", "end_time": ended(5)}),
        ("new", {"status": "Succeeded", "cache_key": "k", "end_time": ended(1)}),
        ("failed", {"status": "Failed", "cache_key": "k", "end_time": ended(0)}),
        ("other", {"status": "Succeeded", "cache_key": "x", "end_time": ended(0)}),
    ]
    assert caching.latest_hit(candidates, "k", timedelta(days=30), now)[0] == "new"
    assert caching.latest_hit(candidates, "k", timedelta(hours=12), now) is None
    assert caching.latest_hit(candidates, "k", None, now)[0] == "new"


def test_cacheable_step_types():
    assert caching.is_cacheable({"Type": "Training", "CacheConfig": {"Enabled": True}})
    assert not caching.is_cacheable({"Type": "Training", "CacheConfig": {"Enabled": False}})
    assert not caching.is_cacheable({"Type": "RegisterModel", "CacheConfig": {"Enabled": True}})


POLICIES = retries.policies({"Name": "S", "RetryPolicies": [
    {"ExceptionType": ["Step.SERVICE_FAULT", "Step.THROTTLING"], "IntervalSeconds": 10, "BackoffRate": 2.0,
     "MaxAttempts": 3},
    {"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 60, "BackoffRate": 2.0,
     "ExpireAfterMin": 3},
]})


@pytest.mark.parametrize("kind, retries_so_far, elapsed, expected", [
    ("Step.THROTTLING", 0, 0, 10), ("Step.THROTTLING", 1, 0, 20), ("Step.THROTTLING", 2, 0, 40),
    ("Step.THROTTLING", 3, 0, None),                       # MaxAttempts retries used up
    ("SageMaker.JOB_INTERNAL_ERROR", 0, 0, 60), ("SageMaker.JOB_INTERNAL_ERROR", 1, 0, 120),
    ("SageMaker.JOB_INTERNAL_ERROR", 1, 61, None),         # the retry would start after ExpireAfterMin
    ("SageMaker.CAPACITY_ERROR", 0, 0, None),              # no policy lists it
])
def test_retry_delays(kind, retries_so_far, elapsed, expected):
    assert retries.retry_delay(POLICIES, kind, retries_so_far, elapsed) == expected


def test_local_failures_map_onto_exception_types():
    assert retries.classify("Processing", OSError(28, "No space left")).exception_type == "SageMaker.JOB_INTERNAL_ERROR"
    assert retries.classify("RegisterModel", OSError(5, "I/O")).exception_type == "Step.SERVICE_FAULT"
    busy = RegistryBusyError("the local registry r.sqlite stayed locked by another writer")
    assert retries.classify("RegisterModel", busy).exception_type == "Step.THROTTLING"
    assert str(retries.classify("Training", RuntimeError("boom"))).startswith("InternalServerError: ")


def test_unknown_exception_types_and_fault_specs_are_refused():
    with pytest.raises(DefinitionError, match="RetryPolicies\\[0\\].ExceptionType"):
        retries.policies({"Name": "S", "RetryPolicies": [{"ExceptionType": ["Step.OOPS"]}]})
    assert retries.parse_faults(["Train=SageMaker.CAPACITY_ERROR:2"]) == {"Train": ("SageMaker.CAPACITY_ERROR", 2)}
    with pytest.raises(ConfigError, match="expected STEP=TYPE"):
        retries.parse_faults(["Train=Oops"])


def test_unenforced_settings_are_listed_with_their_path():
    arguments = {
        "RoleArn": "arn:aws:iam::1:role/R",
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "VolumeKmsKeyId": "key-1"}},
        "ProcessingOutputConfig": {"KmsKeyId": "key-2", "Outputs": []},
        "NetworkConfig": {"EnableNetworkIsolation": False, "VpcConfig": {"Subnets": ["s"], "SecurityGroupIds": ["g"]}},
        "Environment": {"A": "1"},
    }
    lines = unenforced.settings(arguments, "Processing")
    assert any(line.startswith("RoleArn = arn:aws:iam::1:role/R: IAM role") for line in lines)
    assert any(line.startswith("ProcessingResources.ClusterConfig.VolumeKmsKeyId = key-1: KMS") for line in lines)
    assert any(line.startswith("ProcessingOutputConfig.KmsKeyId = key-2") for line in lines)
    assert any(line.startswith("NetworkConfig.VpcConfig = set: VPC subnets") for line in lines)
    assert not any("EnableNetworkIsolation" in line or "Environment" in line for line in lines)
