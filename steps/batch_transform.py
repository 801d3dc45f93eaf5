"""BatchTransform: score the test split offline, not bound by the endpoint payload limit."""

from __future__ import annotations

from typing import Any

from steps import prepare_data
from steps.context import StepContext

NAME = "BatchTransform"


def build(ctx: StepContext, create_model: Any, prepare: Any) -> Any:
    """The TransformStep: label-first rows in, 'label,score' lines out, one per input row."""
    from sagemaker.mlops.workflow import TransformStep

    transformer = ctx.transformer(create_model.properties.ModelName, ctx.config.transform_instance_type,
                                  ctx.output_uri(NAME, "predictions"))
    step_args = transformer.transform(
        data=prepare_data.split_uri(prepare, "test"),
        content_type="text/csv",
        split_type="Line",
        input_filter="$[1:]",
        join_source="Input",
        output_filter="$[0,-1]",
    )
    return TransformStep(
        name=NAME,
        display_name="Batch transform",
        description="Score the test split (SplitType Line, MultiRecord up to 6 MB); each output line "
        "is the row's label and its score.",
        step_args=step_args,
        cache_config=ctx.cache_config(),
        retry_policies=ctx.retry_policies(),
    )
