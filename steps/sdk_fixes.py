"""Work-arounds for defects of the SageMaker Python SDK this package depends on (imports the SDK)."""

from __future__ import annotations

from typing import Any

from sagemaker.core.utils.utils import serialize
from sagemaker.core.workflow.properties import Properties
from sagemaker.mlops.workflow import ProcessingStep, TrainingStep, TransformStep
from sagemaker.mlops.workflow.steps import ConfigurableRetryStep, StepTypeEnum


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


class PackageModelStep(ConfigurableRetryStep):
    """A CreateModel step whose container is a model package, given as a pipeline variable.

    sagemaker 3.27's ModelStep builds a model from a package only through ModelBuilder, which describes
    the package through the API while the pipeline is built (impossible for a parameter resolved at run
    time), and its validation rejects the CreateModel request that its own code (DictStepArgs) could
    take. This step carries the request as given and exposes DescribeModel's properties.
    """

    def __init__(self, name: str, request: dict[str, Any], display_name: str | None = None,
                 description: str | None = None, retry_policies: list[Any] | None = None):
        super().__init__(name, StepTypeEnum.CREATE_MODEL, display_name, description, None, retry_policies)
        self._request = request
        self._properties = Properties(step_name=name, step=self, shape_name="DescribeModelOutput")

    @property
    def arguments(self) -> Any:
        return self._request

    @property
    def properties(self) -> Any:
        return self._properties


class ParameterCountTransformStep(TransformStep):
    """A TransformStep whose TransformResources.InstanceCount is a pipeline parameter.

    sagemaker 3.27's Transformer validates ``instance_count`` as a plain int (pydantic
    ``TransformResources``) and refuses a ParameterInteger, although CreateTransformJob in a pipeline
    takes one; the step is built with a placeholder and the parameter is put in its place.
    """

    def __init__(self, *args: Any, instance_count: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.instance_count = instance_count

    @property
    def arguments(self) -> Any:
        request = super().arguments
        request["TransformResources"]["InstanceCount"] = self.instance_count
        return request


class MlflowTrainingStep(TrainingStep):
    """A TrainingStep whose CreateTrainingJob request carries ``MlflowConfig`` (SageMaker managed MLflow logs the
    job's metrics to that run).

    sagemaker 3.27's ModelTrainer has no parameter for the request's ``MlflowConfig`` (only its fine-tuning
    trainers set one), so it is added to the request the trainer built.
    """

    def __init__(self, *args: Any, mlflow_config: dict[str, Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._mlflow_config = mlflow_config

    @property
    def arguments(self) -> Any:
        return {**super().arguments, "MlflowConfig": self._mlflow_config}
