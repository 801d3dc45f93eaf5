"""ScoreLeads: batch transform of new, unlabeled leads; each output line is the lead's ids and its score."""

from __future__ import annotations

from typing import Any

from steps.context import StepContext

NAME = "ScoreLeads"


def id_filters(id_columns: int) -> tuple[str, str]:
    """(InputFilter, OutputFilter): send the features only; keep the ids and the score of the joined record."""
    kept = ",".join(str(i) for i in range(id_columns))
    return f"$[{id_columns}:]", f"$[{kept},-1]"


def build(ctx: StepContext, model: Any) -> Any:
    """The TransformStep over InputDataUrl, output under the execution id, KMS on volume and output."""
    from steps.sdk_fixes import ParameterCountTransformStep

    # its instance count is replaced by the TransformInstanceCount parameter (see ParameterCountTransformStep)
    transformer = ctx.transformer(model.properties.ModelName, ctx.params["TransformInstanceType"],
                                  ctx.output_uri(NAME, "scores"))
    input_filter, output_filter = id_filters(ctx.config.scoring_id_columns)
    step_args = transformer.transform(
        data=ctx.params["InputDataUrl"],
        content_type="text/csv",
        split_type="Line",
        input_filter=input_filter,
        join_source="Input",
        output_filter=output_filter,
    )
    return ParameterCountTransformStep(
        instance_count=ctx.params["TransformInstanceCount"],
        name=NAME,
        display_name="Score leads",
        description="Score every lead under InputDataUrl (SplitType Line, MultiRecord up to 6 MB); the lead ids "
        "are kept back from the model and joined to each score.",
        step_args=step_args,
        retry_policies=ctx.retry_policies(),
    )
