"""A store with a real XGBoost model (an Approved registered version of it) and the local SageMaker API over it,
reached with boto3 as a job program or a user's script reaches it."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from botocore.config import Config

from pipelines.local.endpoints import LocalEndpoints
from pipelines.local.registry import Registry
from pipelines.local.sagemaker_api import Caller, LocalSageMakerApi
from pipelines.local.store import Store
from tests.inference.test_xgboost_csv import model_archive
from tests.pipelines.test_deploy import GROUP, spec

MODEL_URI = "s3://bkt/models/model.tar.gz"


def make_store(root: Path) -> tuple[Store, Registry, dict]:
    """A store holding a model at MODEL_URI, registered as version 1 (Approved) and 2 (pending) of GROUP."""
    store = Store(root / "store")
    store.put_file(model_archive(root), MODEL_URI)
    registry = Registry(store.root / "registry.sqlite", "us-east-1")
    approved = registry.register(GROUP, "Approved", spec(MODEL_URI))
    registry.register(GROUP, "PendingManualApproval", {**spec(MODEL_URI), "SupportedRealtimeInferenceInstanceTypes":
                                                       ["ml.m5.large"]})
    return store, registry, approved


def clients(api: LocalSageMakerApi, **config: object) -> tuple[object, object]:
    """boto3's sagemaker and sagemaker-runtime clients signing with the API's key."""
    keys = dict(endpoint_url=api.url, region_name="us-east-1", aws_access_key_id=api.key.access_key_id,
                aws_secret_access_key=api.key.secret_access_key,
                config=Config(retries={"max_attempts": 1}, **config))
    return boto3.client("sagemaker", **keys), boto3.client("sagemaker-runtime", **keys)


@contextmanager
def serving(store: Store, registry: Registry, caller: Caller, **options: object) -> Iterator[LocalSageMakerApi]:
    """The API over ``store`` for the length of the ``with``."""
    with LocalSageMakerApi(store, registry, "us-east-1", caller, **options) as api:
        yield api


def stop_endpoints(store: Store) -> None:
    """Stop every endpoint of ``store`` (their servers outlive the API that started them)."""
    endpoints = LocalEndpoints(store)
    for record in endpoints.list():
        endpoints.delete(record["EndpointName"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(store, registry, approved version, api, sagemaker client, runtime client) shared by a module's tests."""
    store, registry, approved = make_store(tmp_path_factory.mktemp("api"))
    with serving(store, registry, Caller("execution aaaabbbbcccc")) as api:
        sagemaker, runtime = clients(api)
        yield store, registry, approved, api, sagemaker, runtime
    stop_endpoints(store)
