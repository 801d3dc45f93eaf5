"""Work-arounds for defects of the SageMaker Python SDK this package depends on (imports the SDK)."""

from __future__ import annotations

from typing import Any

from sagemaker.core.utils.utils import serialize
from sagemaker.mlops.workflow import ProcessingStep


class DatasetDefinitionProcessingStep(ProcessingStep):
    """A ProcessingStep that keeps its inputs' DatasetDefinition in the pipeline definition.

    sagemaker 3.27 serialises a ProcessingInput's S3Input only
    (``sagemaker.core.processing._processing_input_to_request_dict``) and silently drops a
    DatasetDefinition; the input objects passed to ``run()`` still hold it, so it is put back.
    """

    @property
    def arguments(self) -> Any:
        request = super().arguments
        given = {i.input_name: i for i in self.step_args.func_kwargs.get("inputs") or []}
        for item in request.get("ProcessingInputs", []):
            source = given.get(item.get("InputName"))
            if source is not None and source.dataset_definition and "DatasetDefinition" not in item:
                item["DatasetDefinition"] = serialize(source.dataset_definition)
        return request
