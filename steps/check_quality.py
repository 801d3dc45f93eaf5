"""CheckQuality: the AUC gate, and the Fail step taken when the model is not good enough."""

from __future__ import annotations

from typing import Any

from steps import evaluate
from steps.context import StepContext

NAME = "CheckQuality"
FAIL_NAME = "QualityGateFailed"


def build(ctx: StepContext, evaluate_step: Any, report: Any, if_steps: list[Any]) -> Any:
    """ConditionStep: test AUC >= AucThreshold runs ``if_steps``; otherwise a FailStep."""
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    auc = JsonGet(step_name=evaluate_step.name, property_file=report, json_path=evaluate.AUC_JSON_PATH)
    threshold = ctx.params["AucThreshold"]
    fail = FailStep(
        name=FAIL_NAME,
        display_name="Quality gate failed",
        description="Stop the execution: the model's test AUC is below AucThreshold.",
        error_message=Join(on=" ", values=[
            "Model test AUC", JsonGet(step_name=evaluate_step.name, property_file=report,
                                      json_path=evaluate.AUC_TEXT_JSON_PATH),
            "is below the threshold AucThreshold =", threshold]),
    )
    return ConditionStep(
        name=NAME,
        display_name="Check quality",
        description="Register and batch-score the model only if its test AUC >= AucThreshold.",
        conditions=[ConditionGreaterThanOrEqualTo(left=auc, right=threshold)],
        if_steps=if_steps,
        else_steps=[fail],
    )
