"""A local SageMaker API: SageMaker's JSON protocol (``X-Amz-Target: SageMaker.<Operation>``) and SageMaker
Runtime's InvokeEndpoint on loopback, answered from the local store (its models, endpoint configurations, local
endpoints, registry and execution records), so deployment code written with boto3 or SDK v3 runs against it
unchanged: a Lambda step's handler that creates an endpoint, a processing job that approves a model package, a
script that waits with ``endpoint_in_service``.

As moto splits a service: ``wire`` parses and answers requests, ``signing`` checks who sends them, ``shapes``
checks requests and shapes answers against botocore's service model, and ``hosting``, ``registry_calls``,
``jobs`` and ``runtime`` hold the operations, whose state is the store's (never a second copy).
"""

from pipelines.local.sagemaker_api.hosting import Caller
from pipelines.local.sagemaker_api.server import LocalSageMakerApi

__all__ = ["Caller", "LocalSageMakerApi"]
